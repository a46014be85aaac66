// TRINE_HD marks a small function that both the CPU backend and CUDA kernels call: host+device
// code (inlined) under nvcc, a plain inline function elsewhere. Such headers include no CUDA
// headers.
#pragma once

#if defined(__CUDACC__)
#define TRINE_HD __host__ __device__ __forceinline__
#else
#define TRINE_HD inline
#endif
