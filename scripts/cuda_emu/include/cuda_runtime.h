// A CPU emulation of the small part of the CUDA runtime and device language that trine's CUDA
// backend uses, so its kernels can run (slowly) on a machine without a GPU. Test tool only: see
// scripts/cuda_emu/run.sh. Each block runs as blockDim cooperative fibers on one OS thread;
// __syncthreads and the warp intrinsics (__shfl_down_sync, __ballot_sync) are barriers over the
// block or the warp, so a barrier not reached by every thread of its group is reported as a
// deadlock. "Device" memory is host memory that host code can touch only inside a kernel, a copy,
// a memset or a cuBLAS call (emu.cpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <utility>

// ---------------------------------------------------------------------------- language
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __align__(n) alignas(n)
#define __shared__ static  // blocks run one at a time: a static is one block's shared memory

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

namespace emu {

const dim3& thread_idx();
const dim3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
unsigned char* dynamic_shared();

void sync_block();
void sync_warp();
// Exchange slot of the calling thread's warp (32 x 8 bytes), for the warp intrinsics.
uint64_t* warp_slots();
int lane();

template <typename T>
T shfl_down(T v, unsigned off) {
  static_assert(sizeof(T) <= 8);
  uint64_t* slots = warp_slots();
  std::memcpy(&slots[lane()], &v, sizeof(T));
  sync_warp();
  T r = v;
  if (lane() + off < 32) std::memcpy(&r, &slots[lane() + off], sizeof(T));
  sync_warp();
  return r;
}

unsigned ballot(bool pred);

// ---- launches: `kernel<<<g, b, s, st>>>(args)` is rewritten to `kernel * ::emu::cfg(g, b, s,
// st)(args)`.
struct Config {
  unsigned grid, block;
  size_t shared;
};

template <typename... A>
struct Pending {
  Config cfg;
  std::tuple<A...> args;
};

struct Cfg {
  Config c;
  template <typename... A>
  Pending<std::decay_t<A>...> operator()(A&&... args) const {
    return {c, std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)};
  }
};

template <typename G, typename B, typename S = size_t, typename St = void*>
Cfg cfg(G grid, B block, S shared = 0, St = nullptr) {
  return Cfg{Config{static_cast<unsigned>(grid), static_cast<unsigned>(block),
                    static_cast<size_t>(shared)}};
}

// While one lives, host code may touch device memory (a kernel, a copy, a cuBLAS call); at any
// other time such a touch stops the program with a report. Nests; one thread at a time.
struct DeviceAccess {
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};

// Runs body(thread) for every thread of every block.
void run_grid(const Config& cfg, void (*body)(void*), void* ctx);

template <typename... P, typename... A>
void operator*(void (*kernel)(P...), Pending<A...>&& p) {
  struct Ctx {
    void (*kernel)(P...);
    std::tuple<A...>* args;
  } ctx{kernel, &p.args};
  run_grid(
      p.cfg,
      [](void* c) {
        auto* x = static_cast<Ctx*>(c);
        std::apply([&](auto&... a) { x->kernel(a...); }, *x->args);
      },
      &ctx);
}

}  // namespace emu

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())

inline void __syncthreads() {
  ::emu::sync_block();
}
template <typename T>
T __shfl_down_sync(unsigned, T v, unsigned off) {
  return ::emu::shfl_down(v, off);
}
inline unsigned __ballot_sync(unsigned, bool pred) {
  return ::emu::ballot(pred);
}
inline int __popc(unsigned v) {
  return __builtin_popcount(v);
}
// One OS thread runs every fiber, so a plain add is atomic here.
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
  const unsigned old = *p;
  *p = old < v ? v : old;
  return old;
}
inline unsigned __float_as_uint(float v) {
  unsigned bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}
// float -> int toward zero, saturating, NaN -> 0 (PTX cvt.rzi.s32.f32).
inline int __float2int_rz(float v) {
  if (v != v) return 0;
  if (v >= 2147483648.f) return 2147483647;
  if (v <= -2147483648.f) return -2147483647 - 1;
  return static_cast<int>(v);
}
// A product rounded on its own (never merged into a fused multiply-add).
inline float __fmul_rn(float a, float b) {
  return a * b;
}
template <typename T>
T min(T a, T b) {
  return b < a ? b : a;
}
template <typename T>
T max(T a, T b) {
  return a < b ? b : a;
}
using std::isnan;

// ---------------------------------------------------------------------------- runtime API
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidValue = 1,
};
using cudaError = cudaError_t;
using cudaStream_t = struct emu_stream*;
using cudaEvent_t = struct emu_event*;
enum cudaMemcpyKind {
  cudaMemcpyHostToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice,
};
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount,
  cudaDevAttrComputeCapabilityMajor,
  cudaDevAttrComputeCapabilityMinor,
  cudaDevAttrMaxSharedMemoryPerBlockOptin,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDisableTiming = 2;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
};

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
// Work runs when it is queued here, so events and cross-stream waits only check their arguments.
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
// Page-locked host memory: plain host memory here.
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
template <typename T>
cudaError_t cudaFuncSetAttribute(T*, cudaFuncAttribute, int) {
  return cudaSuccess;
}
// The emulation cannot see a kernel's static __shared__ arrays (they are plain statics here).
struct cudaFuncAttributes {
  size_t sharedSizeBytes;
};
template <typename T>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, T*) {
  attr->sharedSizeBytes = 0;
  return cudaSuccess;
}
