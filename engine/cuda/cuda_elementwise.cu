// CudaBackend: elementwise and broadcasting ops, strided copies, reductions and indexing.
// Each kernel is the loop body of the CpuBackend function of the same name
// (engine/cpu/cpu_elementwise.cpp), with the same float expressions, so results agree to within
// the last-bit differences of the device math library and fused multiply-adds.
#include <cmath>
#include <optional>
#include <vector>

#include "engine/cuda/cuda_backend.cuh"

namespace trine {

namespace {

// ------------------------------------------------------------------------------ unary functions

__device__ __forceinline__ float sigmoid_dev(float x) {
  if (x >= 0) return 1.f / (1.f + expf(-x));
  const float e = expf(x);
  return e / (1.f + e);
}

__device__ __forceinline__ float softplus_dev(float x) {
  return (x < 0.f ? 0.f : x) + log1pf(expf(-fabsf(x)));  // std::max(x, 0.f), NaN kept
}

template <UnaryOp op>
__device__ __forceinline__ float unary_f(float x, [[maybe_unused]] float p0,
                                         [[maybe_unused]] float p1) {
  if constexpr (op == UnaryOp::Neg)
    return -x;
  else if constexpr (op == UnaryOp::Exp)
    return expf(x);
  else if constexpr (op == UnaryOp::Log)
    return logf(x);
  else if constexpr (op == UnaryOp::Sqrt)
    return sqrtf(x);
  else if constexpr (op == UnaryOp::Abs)
    return fabsf(x);
  else if constexpr (op == UnaryOp::Relu)
    return x > 0.f ? x : 0.f;
  else if constexpr (op == UnaryOp::LeakyRelu)
    return x > 0.f ? x : p0 * x;
  else if constexpr (op == UnaryOp::Sigmoid)
    return sigmoid_dev(x);
  else if constexpr (op == UnaryOp::Tanh)
    return tanhf(x);
  else if constexpr (op == UnaryOp::Softplus)
    return softplus_dev(x);
  else if constexpr (op == UnaryOp::Pow)
    return powf(x, p0);
  else if constexpr (op ==
                     UnaryOp::Clamp) {  // std::min(std::max(x, p0), p1), NaN behaviour included
    const float lo = x < p0 ? p0 : x;
    return p1 < lo ? p1 : lo;
  } else if constexpr (op == UnaryOp::Square)
    return x * x;
  else if constexpr (op == UnaryOp::Recip)
    return 1.f / x;
  else if constexpr (op == UnaryOp::AddScalar)
    return x + p0;
  else if constexpr (op == UnaryOp::MulScalar)
    return x * p0;
  else
    return x;
}

// gx for gy at x, with y = f(x).
template <UnaryOp op>
__device__ __forceinline__ float unary_grad([[maybe_unused]] float x, [[maybe_unused]] float y,
                                            float gy, [[maybe_unused]] float p0,
                                            [[maybe_unused]] float p1) {
  if constexpr (op == UnaryOp::Neg)
    return -gy;
  else if constexpr (op == UnaryOp::Exp)
    return gy * y;
  else if constexpr (op == UnaryOp::Log)
    return gy / x;
  else if constexpr (op == UnaryOp::Sqrt)
    return gy * 0.5f / y;
  else if constexpr (op == UnaryOp::Abs)
    return x > 0.f ? gy : (x < 0.f ? -gy : 0.f);
  else if constexpr (op == UnaryOp::Relu)
    return x > 0.f ? gy : 0.f;
  else if constexpr (op == UnaryOp::LeakyRelu)
    return x > 0.f ? gy : p0 * gy;
  else if constexpr (op == UnaryOp::Sigmoid)
    return gy * y * (1.f - y);
  else if constexpr (op == UnaryOp::Tanh)
    return gy * (1.f - y * y);
  else if constexpr (op == UnaryOp::Softplus)
    return gy * sigmoid_dev(x);
  else if constexpr (op == UnaryOp::Pow)
    return gy * p0 * powf(x, p0 - 1.f);
  else if constexpr (op == UnaryOp::Clamp)
    return (x >= p0 && x <= p1) ? gy : 0.f;
  else if constexpr (op == UnaryOp::Square)
    return 2.f * x * gy;
  else if constexpr (op == UnaryOp::Recip)
    return -gy / (x * x);
  else if constexpr (op == UnaryOp::AddScalar)
    return gy;
  else if constexpr (op == UnaryOp::MulScalar)
    return gy * p0;
  else
    return gy;
}

template <UnaryOp op>
__global__ void unary_kernel(const float* x, float* y, int64_t n, float p0, float p1) {
  TRINE_CUDA_KERNEL_LOOP(i, n) y[i] = unary_f<op>(x[i], p0, p1);
}

// x or y may be null when the op's gradient does not read it.
template <UnaryOp op>
__global__ void unary_backward_kernel(const float* x, const float* y, const float* gy, float* gx,
                                      int64_t n, float p0, float p1) {
  TRINE_CUDA_KERNEL_LOOP(i, n) {
    const float xi = x ? x[i] : 0.f, yi = y ? y[i] : 0.f;
    gx[i] = unary_grad<op>(xi, yi, gy[i], p0, p1);
  }
}

// The unary ops, for dispatch from a run-time UnaryOp to a template instance.
// clang-format off
#define TRINE_FOR_EACH_UNARY(X)                                                        \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Abs) X(Relu) X(LeakyRelu) X(Sigmoid) X(Tanh)          \
  X(Softplus) X(Pow) X(Clamp) X(Square) X(Recip) X(AddScalar) X(MulScalar)
// clang-format on

// ------------------------------------------------------------------------------ binary functions

template <BinaryOp op>
__device__ __forceinline__ float binary_f(float x, float y) {
  if constexpr (op == BinaryOp::Add)
    return x + y;
  else if constexpr (op == BinaryOp::Sub)
    return x - y;
  else if constexpr (op == BinaryOp::Mul)
    return x * y;
  else if constexpr (op == BinaryOp::Div)
    return x / y;
  else if constexpr (op == BinaryOp::Max)
    return x >= y || isnan(x) ? x : y;
  else if constexpr (op == BinaryOp::Min)
    return x <= y || isnan(x) ? x : y;
  else if constexpr (op == BinaryOp::Eq)
    return x == y ? 1.f : 0.f;
  else if constexpr (op == BinaryOp::Ne)
    return x != y ? 1.f : 0.f;
  else if constexpr (op == BinaryOp::Lt)
    return x < y ? 1.f : 0.f;
  else if constexpr (op == BinaryOp::Le)
    return x <= y ? 1.f : 0.f;
  else if constexpr (op == BinaryOp::Gt)
    return x > y ? 1.f : 0.f;
  else if constexpr (op == BinaryOp::Ge)
    return x >= y ? 1.f : 0.f;
  return x;
}

// clang-format off
#define TRINE_FOR_EACH_BINARY(X) \
  X(Add) X(Sub) X(Mul) X(Div) X(Max) X(Min) X(Eq) X(Ne) X(Lt) X(Le) X(Gt) X(Ge)
// clang-format on

// ------------------------------------------------------------------------------ strided indexing

// Dims a kernel decomposes an index over; more are handled by launching once per leading index.
constexpr int kMaxDims = 8;

// Two operands read (or written) through strides over `shape` (row-major; dims beyond ndim
// unused). Passed by value as a kernel parameter.
struct Strided2 {
  int64_t shape[kMaxDims];
  int64_t s0[kMaxDims];
  int64_t s1[kMaxDims];
  int ndim;
};

// Offsets of linear index i (row-major over p.shape) into both operands. `I` is the index type:
// 32-bit divisions when the element count allows (they are several times cheaper).
template <typename I>
__device__ __forceinline__ void strided_offsets(const Strided2& p, I i, int64_t& o0, int64_t& o1) {
  o0 = 0;
  o1 = 0;
#pragma unroll
  for (int d = kMaxDims - 1; d > 0; --d) {
    if (d < p.ndim) {
      const I size = static_cast<I>(p.shape[d]);
      const I q = i / size, r = i - q * size;
      o0 += static_cast<int64_t>(r) * p.s0[d];
      o1 += static_cast<int64_t>(r) * p.s1[d];
      i = q;
    }
  }
  o0 += static_cast<int64_t>(i) * p.s0[0];
  o1 += static_cast<int64_t>(i) * p.s1[0];
}

template <typename I>
__global__ void copy_strided_kernel(const float* src, float* dst, Strided2 p, I n) {
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<I>(blockDim.x) * gridDim.x) {
    int64_t os, od;
    strided_offsets<I>(p, i, os, od);
    dst[od] = src[os];
  }
}

// out (contiguous over p.shape) = op(a, b); `out` may alias an operand read contiguously, since
// every element is read and written by the same thread.
template <BinaryOp op, typename I>
__global__ void binary_kernel(const float* a, const float* b, float* out, Strided2 p, I n) {
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<I>(blockDim.x) * gridDim.x) {
    int64_t oa, ob;
    strided_offsets<I>(p, i, oa, ob);
    out[i] = binary_f<op>(a[oa], b[ob]);
  }
}

// Both operands contiguous and of the same shape: no index arithmetic.
template <BinaryOp op>
__global__ void binary_contiguous_kernel(const float* a, const float* b, float* out, int64_t n) {
  TRINE_CUDA_KERNEL_LOOP(i, n) out[i] = binary_f<op>(a[i], b[i]);
}

// Calls fn(offsets, params) once per index of the dims beyond the last kMaxDims (usually once):
// `offsets[k]` is operand k's offset for that leading index, and `params` describes the trailing
// dims for operands 0 and 1.
template <typename F>
void for_each_launch(const Coalesced& c, F fn) {
  const int nd = static_cast<int>(c.shape.size());
  const int lead = std::max(0, nd - kMaxDims);
  Strided2 p{};
  p.ndim = nd - lead;
  for (int d = 0; d < p.ndim; ++d) {
    p.shape[d] = c.shape[lead + d];
    p.s0[d] = c.strides[0][lead + d];
    p.s1[d] = c.strides[1][lead + d];
  }
  int64_t count = 1;
  for (int d = 0; d < lead; ++d) count *= c.shape[d];
  std::vector<int64_t> off(c.strides.size());
  for (int64_t o = 0; o < count; ++o) {
    std::fill(off.begin(), off.end(), 0);
    int64_t rem = o;
    for (int d = lead - 1; d >= 0; --d) {
      const int64_t i = rem % c.shape[d];
      rem /= c.shape[d];
      for (size_t k = 0; k < off.size(); ++k) off[k] += i * c.strides[k][d];
    }
    fn(off, p);
  }
}

// True when every offset a kernel over `p` can form fits the 32-bit index type (the element
// count too), so the kernel may decompose indices with 32-bit divisions.
bool fits_32bit(const Strided2& p) {
  int64_t n = 1;
  for (int d = 0; d < p.ndim; ++d) n *= p.shape[d];
  return n < (int64_t{1} << 31);
}

// ------------------------------------------------------------------------------ reductions

// A candidate of a max/min reduction. The CPU loop keeps the first NaN if there is one, else the
// lowest-index extreme; `better` picks that from two candidates in any order.
struct Pick {
  float v;
  int32_t i;
};

template <bool is_max>
__device__ __forceinline__ Pick better(Pick x, Pick y) {
  const bool xn = isnan(x.v), yn = isnan(y.v);
  if (xn || yn) {
    if (xn && yn) return x.i <= y.i ? x : y;
    return xn ? x : y;
  }
  if (is_max ? y.v > x.v : y.v < x.v) return y;
  if (is_max ? x.v > y.v : x.v < y.v) return x;
  return x.i <= y.i ? x : y;
}

template <bool is_max>
__device__ __forceinline__ Pick pick_identity() {
  return Pick{is_max ? -INFINITY : INFINITY, INT32_MAX};
}

template <bool is_max>
__device__ __forceinline__ Pick warp_best(Pick b) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    Pick o{__shfl_down_sync(0xffffffffu, b.v, off), __shfl_down_sync(0xffffffffu, b.i, off)};
    b = better<is_max>(b, o);
  }
  return b;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// x viewed as [rows, n] (inner == 1): one warp per (row, segment of n). With one segment the
// warp writes the result; with more, a partial (part_v/part_i [rows, splits]) for
// reduce_combine_kernel. Sums accumulate in double.
template <ReduceOp op>
__global__ void reduce_rows_kernel(const float* x, int64_t rows, int64_t n, int64_t splits,
                                   int64_t seg, float* out, int32_t* index, double* part_v,
                                   int32_t* part_i) {
  constexpr bool is_max = op == ReduceOp::Max;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  // The loop bound is the same for every lane of a warp, so the shuffles see all 32 lanes.
  for (int64_t w = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
       w < rows * splits; w += warps) {
    const int64_t r = w / splits, s = w % splits;
    const int64_t j0 = s * seg, j1 = min(n, j0 + seg);
    const float* src = x + r * n;
    if constexpr (op == ReduceOp::Sum) {
      double acc = 0;
      for (int64_t j = j0 + lane; j < j1; j += 32) acc += src[j];
      acc = warp_sum(acc);
      if (lane == 0) {
        if (splits == 1)
          out[r] = static_cast<float>(acc);
        else
          part_v[w] = acc;
      }
    } else {
      Pick b = pick_identity<is_max>();
      for (int64_t j = j0 + lane; j < j1; j += 32)
        b = better<is_max>(b, Pick{src[j], static_cast<int32_t>(j)});
      b = warp_best<is_max>(b);
      if (lane == 0) {
        if (splits == 1) {
          out[r] = b.v;
          if (index) index[r] = b.i;
        } else {
          part_v[w] = b.v;
          part_i[w] = b.i;
        }
      }
    }
  }
}

// x viewed as [outer, n, inner] (inner > 1): one thread per (output, segment of n); neighbouring
// threads read neighbouring inner positions, so loads are coalesced.
template <ReduceOp op>
__global__ void reduce_cols_kernel(const float* x, int64_t outer, int64_t n, int64_t inner,
                                   int64_t splits, int64_t seg, float* out, int32_t* index,
                                   double* part_v, int32_t* part_i) {
  constexpr bool is_max = op == ReduceOp::Max;
  TRINE_CUDA_KERNEL_LOOP(t, outer * inner * splits) {
    const int64_t i = t % inner, q = t / inner, o = q % outer, s = q / outer;
    const int64_t j0 = s * seg, j1 = min(n, j0 + seg);
    const int64_t p = o * inner + i;  // the output
    const float* src = x + o * n * inner + i;
    if constexpr (op == ReduceOp::Sum) {
      double acc = 0;
      for (int64_t j = j0; j < j1; ++j) acc += src[j * inner];
      if (splits == 1)
        out[p] = static_cast<float>(acc);
      else
        part_v[p * splits + s] = acc;
    } else {
      Pick b = pick_identity<is_max>();
      for (int64_t j = j0; j < j1; ++j)
        b = better<is_max>(b, Pick{src[j * inner], static_cast<int32_t>(j)});
      if (splits == 1) {
        out[p] = b.v;
        if (index) index[p] = b.i;
      } else {
        part_v[p * splits + s] = b.v;
        part_i[p * splits + s] = b.i;
      }
    }
  }
}

// Folds the `splits` partials of each output.
template <ReduceOp op>
__global__ void reduce_combine_kernel(const double* part_v, const int32_t* part_i, int64_t outputs,
                                      int64_t splits, float* out, int32_t* index) {
  constexpr bool is_max = op == ReduceOp::Max;
  TRINE_CUDA_KERNEL_LOOP(p, outputs) {
    const double* pv = part_v + p * splits;
    if constexpr (op == ReduceOp::Sum) {
      double acc = 0;
      for (int64_t s = 0; s < splits; ++s) acc += pv[s];
      out[p] = static_cast<float>(acc);
    } else {
      const int32_t* pi = part_i + p * splits;
      Pick b = pick_identity<is_max>();
      for (int64_t s = 0; s < splits; ++s)
        b = better<is_max>(b, Pick{static_cast<float>(pv[s]), pi[s]});
      out[p] = b.v;
      if (index) index[p] = b.i;
    }
  }
}

// Up to cuda::kMaxArrays arrays per launch (cuda::plan_blocks), kMaxAbsPerBlock elements a block.
constexpr int64_t kMaxAbsPerBlock = 8192;
struct MaxAbsArrays {
  const float* x[cuda::kMaxArrays];
  int64_t n[cuda::kMaxArrays];
  int64_t first_block[cuda::kMaxArrays + 1];
};

// out[i] = max over array i of |x| as bits: they order as the values do, with every NaN above
// +inf, so an unsigned max finds the largest magnitude and lets a NaN win (out starts at 0).
__global__ void max_abs_kernel(MaxAbsArrays a, unsigned* out) {
  int64_t begin;
  const int i = cuda::array_of_block(a.first_block, kMaxAbsPerBlock, &begin);
  const int64_t end = min(a.n[i], begin + kMaxAbsPerBlock);
  unsigned m = 0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x)
    m = max(m, __float_as_uint(a.x[i][j]) & 0x7fffffffu);
  for (int off = 16; off > 0; off >>= 1) m = max(m, __shfl_down_sync(0xffffffffu, m, off));
  __shared__ unsigned warp_max[cuda::kThreads / 32];
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (unsigned w = 1; w < blockDim.x / 32; ++w) m = max(m, warp_max[w]);
    atomicMax(out + i, m);
  }
}

// ------------------------------------------------------------------------------ indexing kernels

// An index outside [0, n) names no element (backend.h): it reads as 0 and adds nothing, so a bad
// index can never fault the device (a fault is sticky: every later CUDA call would fail).
__device__ __forceinline__ bool in_range(int32_t k, int64_t n) {
  return k >= 0 && k < n;
}

// out[o, j, i] = x[o, idx[j], i]
__global__ void index_select_kernel(const float* x, int64_t outer, int64_t n, int64_t inner,
                                    const int32_t* idx, int64_t n_idx, float* out) {
  TRINE_CUDA_KERNEL_LOOP(p, outer * n_idx * inner) {
    const int64_t i = p % inner, j = (p / inner) % n_idx, o = p / (inner * n_idx);
    const int32_t k = idx[j];
    out[p] = in_range(k, n) ? x[(o * n + k) * inner + i] : 0.f;
  }
}

// x[o, idx[j], i] += g[o, j, i]; repeated indices meet in atomicAdd.
__global__ void index_add_kernel(const float* g, int64_t outer, int64_t n, int64_t inner,
                                 const int32_t* idx, int64_t n_idx, float* x) {
  TRINE_CUDA_KERNEL_LOOP(p, outer * n_idx * inner) {
    const int64_t i = p % inner, j = (p / inner) % n_idx, o = p / (inner * n_idx);
    const int32_t k = idx[j];
    if (in_range(k, n)) atomicAdd(x + (o * n + k) * inner + i, g[p]);
  }
}

// out[o, j, i] = x[o, idx[o, j, i], i]
__global__ void gather_kernel(const float* x, int64_t outer, int64_t n, int64_t inner,
                              const int32_t* idx, int64_t n_idx, float* out) {
  TRINE_CUDA_KERNEL_LOOP(p, outer * n_idx * inner) {
    const int64_t o = p / (n_idx * inner), i = p % inner;
    const int32_t k = idx[p];
    out[p] = in_range(k, n) ? x[(o * n + k) * inner + i] : 0.f;
  }
}

// x[o, idx[o, j, i], i] += g[o, j, i]
__global__ void scatter_add_kernel(const float* g, int64_t outer, int64_t n, int64_t inner,
                                   const int32_t* idx, int64_t n_idx, float* x) {
  TRINE_CUDA_KERNEL_LOOP(p, outer * n_idx * inner) {
    const int64_t o = p / (n_idx * inner), i = p % inner;
    const int32_t k = idx[p];
    if (in_range(k, n)) atomicAdd(x + (o * n + k) * inner + i, g[p]);
  }
}

__global__ void where_kernel(const float* cond, const float* a, const float* b, float* out,
                             int64_t n) {
  TRINE_CUDA_KERNEL_LOOP(i, n) out[i] = cond[i] != 0.f ? a[i] : b[i];
}

}  // namespace

// ------------------------------------------------------------------------------ entry points

void CudaBackend::copy_strided(const float* src, const Shape& src_strides, float* dst,
                               const Shape& dst_strides, const Shape& shape) {
  if (numel_of(shape) == 0) return;
  activate();
  const Coalesced c = coalesce(shape, {src_strides, dst_strides});
  for_each_launch(c, [&](const std::vector<int64_t>& off, const Strided2& p) {
    const int64_t n = numel_of(Shape(p.shape, p.shape + p.ndim));
    if (fits_32bit(p))
      copy_strided_kernel<uint32_t><<<grid(n), cuda::kThreads, 0, stream_>>>(
          src + off[0], dst + off[1], p, static_cast<uint32_t>(n));
    else
      copy_strided_kernel<int64_t>
          <<<grid(n), cuda::kThreads, 0, stream_>>>(src + off[0], dst + off[1], p, n);
    TRINE_CUDA_CHECK_LAUNCH("copy_strided_kernel");
  });
}

void CudaBackend::unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  if (n <= 0) return;
  activate();
  switch (op) {
#define TRINE_UNARY_CASE(name)                                                             \
  case UnaryOp::name:                                                                      \
    unary_kernel<UnaryOp::name><<<grid(n), cuda::kThreads, 0, stream_>>>(x, y, n, p0, p1); \
    TRINE_CUDA_CHECK_LAUNCH("unary_kernel<" #name ">");                                    \
    return;
    TRINE_FOR_EACH_UNARY(TRINE_UNARY_CASE)
#undef TRINE_UNARY_CASE
  }
  throw Error("unary: unknown op");
}

void CudaBackend::unary_backward(UnaryOp op, const float* x, const float* y, const float* gy,
                                 float* gx, int64_t n, float p0, float p1) {
  if (n <= 0) return;
  activate();
  switch (op) {
#define TRINE_UNARY_CASE(name)                                              \
  case UnaryOp::name:                                                       \
    unary_backward_kernel<UnaryOp::name>                                    \
        <<<grid(n), cuda::kThreads, 0, stream_>>>(x, y, gy, gx, n, p0, p1); \
    TRINE_CUDA_CHECK_LAUNCH("unary_backward_kernel<" #name ">");            \
    return;
    TRINE_FOR_EACH_UNARY(TRINE_UNARY_CASE)
#undef TRINE_UNARY_CASE
  }
  throw Error("unary_backward: unknown op");
}

void CudaBackend::binary(BinaryOp op, const StridedIn& a, const StridedIn& b, float* out,
                         const Shape& shape) {
  const int64_t total = numel_of(shape);
  if (total == 0) return;
  activate();
  const Coalesced c = coalesce(shape, {a.strides, b.strides, contiguous_strides(shape)});
  const bool contiguous = c.shape.size() == 1 && c.strides[0][0] == 1 && c.strides[1][0] == 1;
  switch (op) {
#define TRINE_BINARY_CASE(name)                                                           \
  case BinaryOp::name:                                                                    \
    if (contiguous) {                                                                     \
      binary_contiguous_kernel<BinaryOp::name>                                            \
          <<<grid(total), cuda::kThreads, 0, stream_>>>(a.ptr, b.ptr, out, total);        \
      TRINE_CUDA_CHECK_LAUNCH("binary_contiguous_kernel<" #name ">");                     \
      return;                                                                             \
    }                                                                                     \
    for_each_launch(c, [&](const std::vector<int64_t>& off, const Strided2& p) {          \
      const int64_t n = numel_of(Shape(p.shape, p.shape + p.ndim));                       \
      if (fits_32bit(p))                                                                  \
        binary_kernel<BinaryOp::name, uint32_t><<<grid(n), cuda::kThreads, 0, stream_>>>( \
            a.ptr + off[0], b.ptr + off[1], out + off[2], p, static_cast<uint32_t>(n));   \
      else                                                                                \
        binary_kernel<BinaryOp::name, int64_t><<<grid(n), cuda::kThreads, 0, stream_>>>(  \
            a.ptr + off[0], b.ptr + off[1], out + off[2], p, n);                          \
      TRINE_CUDA_CHECK_LAUNCH("binary_kernel<" #name ">");                                \
    });                                                                                   \
    return;
    TRINE_FOR_EACH_BINARY(TRINE_BINARY_CASE)
#undef TRINE_BINARY_CASE
  }
  throw Error("binary: unknown op");
}

void CudaBackend::where(const float* cond, const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  activate();
  where_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(cond, a, b, out, n);
  TRINE_CUDA_CHECK_LAUNCH("where_kernel");
}

namespace {

// Launches the reduction kernels for one op.
template <ReduceOp op>
void reduce_launch(cudaStream_t stream, int64_t max_blocks, const float* x, float* out,
                   int32_t* index, int64_t outer, int64_t n, int64_t inner, double* part_v,
                   int32_t* part_i, int64_t splits) {
  const int64_t seg = (n + splits - 1) / splits;
  if (inner == 1) {
    const int64_t warps = outer * splits;
    reduce_rows_kernel<op><<<cuda::grid_for(warps * 32, max_blocks), cuda::kThreads, 0, stream>>>(
        x, outer, n, splits, seg, out, index, part_v, part_i);
    TRINE_CUDA_CHECK_LAUNCH("reduce_rows_kernel");
  } else {
    const int64_t threads = outer * inner * splits;
    reduce_cols_kernel<op><<<cuda::grid_for(threads, max_blocks), cuda::kThreads, 0, stream>>>(
        x, outer, n, inner, splits, seg, out, index, part_v, part_i);
    TRINE_CUDA_CHECK_LAUNCH("reduce_cols_kernel");
  }
  if (splits > 1) {
    const int64_t outputs = outer * inner;
    reduce_combine_kernel<op><<<cuda::grid_for(outputs, max_blocks), cuda::kThreads, 0, stream>>>(
        part_v, part_i, outputs, splits, out, index);
    TRINE_CUDA_CHECK_LAUNCH("reduce_combine_kernel");
  }
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const float* x, float* out, int32_t* index, int64_t outer,
                         int64_t n, int64_t inner) {
  const int64_t outputs = outer * inner;
  if (outputs == 0) return;
  activate();
  if (n == 0) {  // empty rows: the identity, as the CPU loop leaves it
    fill(out, outputs, op == ReduceOp::Sum ? 0.f : (op == ReduceOp::Max ? -INFINITY : INFINITY));
    if (index && op != ReduceOp::Sum) fill_i32(index, outputs, 0);
    return;
  }
  // Split long rows across warps/threads when there are too few outputs to fill the GPU; the
  // partials are folded by a second kernel.
  int64_t splits = 1;
  if (inner == 1) {
    const int64_t target_warps = sm_count_ * 64;
    if (outputs < target_warps / 2 && n > 4096)
      splits = std::clamp<int64_t>(std::min((n + 2047) / 2048, target_warps / outputs), 1, 256);
  } else {
    const int64_t target_threads = sm_count_ * 2048;
    if (outputs < target_threads / 2 && n > 128)
      splits = std::clamp<int64_t>(std::min((n + 63) / 64, target_threads / outputs), 1, 256);
  }
  // Partials only when rows are split.
  std::optional<Scratch> part_v, part_i;
  if (splits > 1) {
    part_v.emplace(*this, static_cast<size_t>(outputs * splits) * sizeof(double));
    part_i.emplace(*this, static_cast<size_t>(outputs * splits) * sizeof(int32_t));
  }
  double* pv = part_v ? part_v->as<double>() : nullptr;
  int32_t* pi = part_i ? part_i->as<int32_t>() : nullptr;
  switch (op) {
    case ReduceOp::Sum:
      return reduce_launch<ReduceOp::Sum>(stream_, max_blocks_, x, out, index, outer, n, inner, pv,
                                          pi, splits);
    case ReduceOp::Max:
      return reduce_launch<ReduceOp::Max>(stream_, max_blocks_, x, out, index, outer, n, inner, pv,
                                          pi, splits);
    case ReduceOp::Min:
      return reduce_launch<ReduceOp::Min>(stream_, max_blocks_, x, out, index, outer, n, inner, pv,
                                          pi, splits);
  }
  throw Error("reduce: unknown op");
}

void CudaBackend::max_abs_each(const std::vector<const float*>& xs,
                               const std::vector<int64_t>& sizes, float* out) {
  if (xs.empty()) return;
  activate();
  TRINE_CUDA_CHECK(cudaMemsetAsync(out, 0, xs.size() * sizeof(float), stream_));  // +0.f
  for (size_t first = 0; first < xs.size(); first += cuda::kMaxArrays) {
    MaxAbsArrays a{};
    const int count = static_cast<int>(std::min<size_t>(cuda::kMaxArrays, xs.size() - first));
    for (int k = 0; k < count; ++k) a.x[k] = xs[first + k], a.n[k] = sizes[first + k];
    const int64_t blocks = cuda::plan_blocks(a.n, count, kMaxAbsPerBlock, a.first_block);
    if (blocks == 0) continue;  // all empty: their 0 is written
    TRINE_CHECK(blocks <= INT32_MAX, "max_abs_each: arrays too large for one launch");
    max_abs_kernel<<<static_cast<unsigned>(blocks), cuda::kThreads, 0, stream_>>>(
        a, reinterpret_cast<unsigned*>(out + first));
    TRINE_CUDA_CHECK_LAUNCH("max_abs_kernel");
  }
}

void CudaBackend::index_select(const float* x, int64_t outer, int64_t n, int64_t inner,
                               const int32_t* idx, int64_t n_idx, float* out) {
  const int64_t total = outer * n_idx * inner;
  if (total <= 0) return;
  activate();
  index_select_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(x, outer, n, inner, idx, n_idx,
                                                                   out);
  TRINE_CUDA_CHECK_LAUNCH("index_select_kernel");
}

void CudaBackend::index_add(const float* g, int64_t outer, int64_t n, int64_t inner,
                            const int32_t* idx, int64_t n_idx, float* x) {
  const int64_t total = outer * n_idx * inner;
  if (total <= 0) return;
  activate();
  index_add_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(g, outer, n, inner, idx, n_idx, x);
  TRINE_CUDA_CHECK_LAUNCH("index_add_kernel");
}

void CudaBackend::gather(const float* x, int64_t outer, int64_t n, int64_t inner,
                         const int32_t* idx, int64_t n_idx, float* out) {
  const int64_t total = outer * n_idx * inner;
  if (total <= 0) return;
  activate();
  gather_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(x, outer, n, inner, idx, n_idx, out);
  TRINE_CUDA_CHECK_LAUNCH("gather_kernel");
}

void CudaBackend::scatter_add(const float* g, int64_t outer, int64_t n, int64_t inner,
                              const int32_t* idx, int64_t n_idx, float* x) {
  const int64_t total = outer * n_idx * inner;
  if (total <= 0) return;
  activate();
  scatter_add_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(g, outer, n, inner, idx, n_idx,
                                                                  x);
  TRINE_CUDA_CHECK_LAUNCH("scatter_add_kernel");
}

}  // namespace trine
