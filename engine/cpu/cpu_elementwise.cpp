// CpuBackend: elementwise, broadcasting, reductions, indexing and strided copies.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_loops.h"
#include "engine/error.h"

namespace trine {

namespace {

// The ReLU passes, the most frequent elementwise work in conv nets, built for wide vectors.
TRINE_VECTOR_CLONES void relu_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

TRINE_VECTOR_CLONES void relu_backward_kernel(const float* x, const float* gy, float* gx,
                                              int64_t n) {
  for (int64_t i = 0; i < n; ++i) gx[i] = x[i] > 0.f ? gy[i] : 0.f;
}

inline float sigmoid(float x) {
  if (x >= 0) return 1.f / (1.f + std::exp(-x));
  float e = std::exp(x);
  return e / (1.f + e);
}

inline float softplus(float x) {
  return std::max(x, 0.f) + std::log1p(std::exp(-std::fabs(x)));
}

// Offset of outer index `o` (over all dims but the last) for each operand.
template <size_t K>
void outer_offsets(const Coalesced& c, int64_t o, int64_t (&off)[K]) {
  for (size_t k = 0; k < K; ++k) off[k] = 0;
  for (size_t d = c.shape.size() - 1; d-- > 0;) {
    int64_t i = o % c.shape[d];
    o /= c.shape[d];
    for (size_t k = 0; k < K; ++k) off[k] += i * c.strides[k][d];
  }
}

template <typename F>
void binary_loop(F f, const StridedIn& a, const StridedIn& b, float* out, const Shape& shape) {
  Coalesced c = coalesce(shape, {a.strides, b.strides, contiguous_strides(shape)});
  const int64_t inner = c.shape.back();
  const int64_t outer = numel_of(c.shape) / inner;
  const int64_t sa = c.strides[0].back(), sb = c.strides[1].back();
  const float* pa = a.ptr;
  const float* pb = b.ptr;
  auto row = [&](int64_t o, int64_t i0, int64_t i1) {
    int64_t off[3];
    outer_offsets(c, o, off);
    const float* x = pa + off[0];
    const float* y = pb + off[1];
    float* z = out + off[2];
    if (sa == 1 && sb == 1) {
      for (int64_t i = i0; i < i1; ++i) z[i] = f(x[i], y[i]);
    } else if (sa == 1 && sb == 0) {
      const float yv = *y;
      for (int64_t i = i0; i < i1; ++i) z[i] = f(x[i], yv);
    } else if (sa == 0 && sb == 1) {
      const float xv = *x;
      for (int64_t i = i0; i < i1; ++i) z[i] = f(xv, y[i]);
    } else {
      for (int64_t i = i0; i < i1; ++i) z[i] = f(x[i * sa], y[i * sb]);
    }
  };
  if (outer == 1) {
    parallel_for(inner, cpu::kGrain, [&](int64_t i0, int64_t i1) { row(0, i0, i1); });
  } else {
    parallel_for(outer, std::max<int64_t>(1, cpu::kGrain / inner), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) row(o, 0, inner);
    });
  }
}

}  // namespace

void CpuBackend::copy_strided(const float* src, const Shape& src_strides, float* dst,
                              const Shape& dst_strides, const Shape& shape) {
  if (numel_of(shape) == 0) return;
  Coalesced c = coalesce(shape, {src_strides, dst_strides});
  const int64_t inner = c.shape.back();
  const int64_t outer = numel_of(c.shape) / inner;
  const int64_t ss = c.strides[0].back(), ds = c.strides[1].back();
  parallel_for(outer, std::max<int64_t>(1, cpu::kGrain / inner), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      int64_t off[2];
      outer_offsets(c, o, off);
      const float* s = src + off[0];
      float* d = dst + off[1];
      if (ss == 1 && ds == 1)
        std::memcpy(d, s, static_cast<size_t>(inner) * sizeof(float));
      else
        for (int64_t i = 0; i < inner; ++i) d[i * ds] = s[i * ss];
    }
  });
}

void CpuBackend::unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  using cpu::map_n;
  switch (op) {
    case UnaryOp::Neg:
      return map_n(n, [=](int64_t i) { y[i] = -x[i]; });
    case UnaryOp::Exp:
      return map_n(n, [=](int64_t i) { y[i] = std::exp(x[i]); });
    case UnaryOp::Log:
      return map_n(n, [=](int64_t i) { y[i] = std::log(x[i]); });
    case UnaryOp::Sqrt:
      return map_n(n, [=](int64_t i) { y[i] = std::sqrt(x[i]); });
    case UnaryOp::Abs:
      return map_n(n, [=](int64_t i) { y[i] = std::fabs(x[i]); });
    case UnaryOp::Relu:
      return parallel_for(n, cpu::kGrain,
                          [=](int64_t b, int64_t e) { relu_kernel(x + b, y + b, e - b); });
    case UnaryOp::LeakyRelu:
      return map_n(n, [=](int64_t i) { y[i] = x[i] > 0.f ? x[i] : p0 * x[i]; });
    case UnaryOp::Sigmoid:
      return map_n(n, [=](int64_t i) { y[i] = sigmoid(x[i]); });
    case UnaryOp::Tanh:
      return map_n(n, [=](int64_t i) { y[i] = std::tanh(x[i]); });
    case UnaryOp::Softplus:
      return map_n(n, [=](int64_t i) { y[i] = softplus(x[i]); });
    case UnaryOp::Pow:
      return map_n(n, [=](int64_t i) { y[i] = std::pow(x[i], p0); });
    case UnaryOp::Clamp:
      return map_n(n, [=](int64_t i) { y[i] = std::min(std::max(x[i], p0), p1); });
    case UnaryOp::Square:
      return map_n(n, [=](int64_t i) { y[i] = x[i] * x[i]; });
    case UnaryOp::Recip:
      return map_n(n, [=](int64_t i) { y[i] = 1.f / x[i]; });
    case UnaryOp::AddScalar:
      return map_n(n, [=](int64_t i) { y[i] = x[i] + p0; });
    case UnaryOp::MulScalar:
      return map_n(n, [=](int64_t i) { y[i] = x[i] * p0; });
  }
  throw Error("unary: unknown op");
}

void CpuBackend::unary_backward(UnaryOp op, const float* x, const float* y, const float* gy,
                                float* gx, int64_t n, float p0, float p1) {
  using cpu::map_n;
  switch (op) {
    case UnaryOp::Neg:
      return map_n(n, [=](int64_t i) { gx[i] = -gy[i]; });
    case UnaryOp::Exp:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] * y[i]; });
    case UnaryOp::Log:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] / x[i]; });
    case UnaryOp::Sqrt:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] * 0.5f / y[i]; });
    case UnaryOp::Abs:
      return map_n(n, [=](int64_t i) { gx[i] = x[i] > 0.f ? gy[i] : (x[i] < 0.f ? -gy[i] : 0.f); });
    case UnaryOp::Relu:
      return parallel_for(n, cpu::kGrain, [=](int64_t b, int64_t e) {
        relu_backward_kernel(x + b, gy + b, gx + b, e - b);
      });
    case UnaryOp::LeakyRelu:
      return map_n(n, [=](int64_t i) { gx[i] = x[i] > 0.f ? gy[i] : p0 * gy[i]; });
    case UnaryOp::Sigmoid:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] * y[i] * (1.f - y[i]); });
    case UnaryOp::Tanh:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] * (1.f - y[i] * y[i]); });
    case UnaryOp::Softplus:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] * sigmoid(x[i]); });
    case UnaryOp::Pow:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] * p0 * std::pow(x[i], p0 - 1.f); });
    case UnaryOp::Clamp:
      return map_n(n, [=](int64_t i) { gx[i] = (x[i] >= p0 && x[i] <= p1) ? gy[i] : 0.f; });
    case UnaryOp::Square:
      return map_n(n, [=](int64_t i) { gx[i] = 2.f * x[i] * gy[i]; });
    case UnaryOp::Recip:
      return map_n(n, [=](int64_t i) { gx[i] = -gy[i] / (x[i] * x[i]); });
    case UnaryOp::AddScalar:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i]; });
    case UnaryOp::MulScalar:
      return map_n(n, [=](int64_t i) { gx[i] = gy[i] * p0; });
  }
  throw Error("unary_backward: unknown op");
}

void CpuBackend::binary(BinaryOp op, const StridedIn& a, const StridedIn& b, float* out,
                        const Shape& shape) {
  if (numel_of(shape) == 0) return;
  switch (op) {
    case BinaryOp::Add:
      return binary_loop([](float x, float y) { return x + y; }, a, b, out, shape);
    case BinaryOp::Sub:
      return binary_loop([](float x, float y) { return x - y; }, a, b, out, shape);
    case BinaryOp::Mul:
      return binary_loop([](float x, float y) { return x * y; }, a, b, out, shape);
    case BinaryOp::Div:
      return binary_loop([](float x, float y) { return x / y; }, a, b, out, shape);
    case BinaryOp::Max:
      return binary_loop([](float x, float y) { return x >= y || std::isnan(x) ? x : y; }, a, b,
                         out, shape);
    case BinaryOp::Min:
      return binary_loop([](float x, float y) { return x <= y || std::isnan(x) ? x : y; }, a, b,
                         out, shape);
    case BinaryOp::Eq:
      return binary_loop([](float x, float y) { return x == y ? 1.f : 0.f; }, a, b, out, shape);
    case BinaryOp::Ne:
      return binary_loop([](float x, float y) { return x != y ? 1.f : 0.f; }, a, b, out, shape);
    case BinaryOp::Lt:
      return binary_loop([](float x, float y) { return x < y ? 1.f : 0.f; }, a, b, out, shape);
    case BinaryOp::Le:
      return binary_loop([](float x, float y) { return x <= y ? 1.f : 0.f; }, a, b, out, shape);
    case BinaryOp::Gt:
      return binary_loop([](float x, float y) { return x > y ? 1.f : 0.f; }, a, b, out, shape);
    case BinaryOp::Ge:
      return binary_loop([](float x, float y) { return x >= y ? 1.f : 0.f; }, a, b, out, shape);
  }
  throw Error("binary: unknown op");
}

void CpuBackend::where(const float* cond, const float* a, const float* b, float* out, int64_t n) {
  cpu::map_n(n, [=](int64_t i) { out[i] = cond[i] != 0.f ? a[i] : b[i]; });
}

void CpuBackend::reduce(ReduceOp op, const float* x, float* out, int32_t* index, int64_t outer,
                        int64_t n, int64_t inner) {
  if (op == ReduceOp::Sum) {
    if (inner == 1) {
      // Each output is a contiguous run of n; accumulate in double for accuracy.
      auto sum_run = [](const float* p, int64_t len) {
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < len; ++j) acc += p[j];
        return acc;
      };
      if (outer == 1 && n > 4 * cpu::kGrain) {
        // One long run: per-chunk partial sums, then combined in chunk order (deterministic).
        const int64_t chunks = 64;
        std::vector<double> part(chunks, 0.0);
        parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
          for (int64_t c = c0; c < c1; ++c)
            part[c] = sum_run(x + n * c / chunks, n * (c + 1) / chunks - n * c / chunks);
        });
        double acc = 0;
        for (double p : part) acc += p;
        out[0] = static_cast<float>(acc);
        return;
      }
      parallel_for(outer, std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(n, 1)),
                   [&](int64_t o0, int64_t o1) {
                     for (int64_t o = o0; o < o1; ++o)
                       out[o] = static_cast<float>(sum_run(x + o * n, n));
                   });
      return;
    }
    parallel_for(outer * inner, std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(n, 1)),
                 [&](int64_t b0, int64_t b1) {
                   // Walk [b0, b1) as (outer, inner) rows so the inner loop stays contiguous.
                   int64_t pos = b0;
                   while (pos < b1) {
                     const int64_t o = pos / inner, i0 = pos % inner;
                     const int64_t i1 = std::min(inner, i0 + (b1 - pos));
                     float* dst = out + o * inner;
                     for (int64_t i = i0; i < i1; ++i) dst[i] = 0.f;
                     for (int64_t j = 0; j < n; ++j) {
                       const float* src = x + (o * n + j) * inner;
                       for (int64_t i = i0; i < i1; ++i) dst[i] += src[i];
                     }
                     pos += i1 - i0;
                   }
                 });
    return;
  }
  const bool is_max = op == ReduceOp::Max;
  parallel_for(outer * inner, std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(n, 1)),
               [&](int64_t b0, int64_t b1) {
                 for (int64_t p = b0; p < b1; ++p) {
                   const int64_t o = p / inner, i = p % inner;
                   const float* src = x + o * n * inner + i;
                   float best = n > 0 ? src[0] : (is_max ? -INFINITY : INFINITY);
                   int32_t arg = 0;
                   for (int64_t j = 1; j < n; ++j) {
                     const float v = src[j * inner];
                     if (std::isnan(best)) break;  // NaN wins, like NumPy and PyTorch
                     if ((is_max ? v > best : v < best) || std::isnan(v)) {
                       best = v;
                       arg = static_cast<int32_t>(j);
                     }
                   }
                   out[p] = best;
                   if (index) index[p] = arg;
                 }
               });
}

// |x| as bits orders as the values do, with every NaN above +inf: one unsigned max finds the
// largest magnitude and lets a NaN win, as the contract asks (and the CUDA kernel does the same).
void CpuBackend::max_abs_each(const std::vector<const float*>& xs,
                              const std::vector<int64_t>& sizes, float* out) {
  for (size_t t = 0; t < xs.size(); ++t) {
    const float* x = xs[t];
    const int64_t n = sizes[t], chunks = std::clamp<int64_t>(n / cpu::kGrain, 1, 64);
    std::vector<uint32_t> part(static_cast<size_t>(chunks), 0);
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        uint32_t m = 0;
        for (int64_t j = n * c / chunks; j < n * (c + 1) / chunks; ++j) {
          uint32_t bits;
          std::memcpy(&bits, x + j, sizeof bits);
          m = std::max(m, bits & 0x7fffffffu);
        }
        part[static_cast<size_t>(c)] = m;
      }
    });
    const uint32_t m = *std::max_element(part.begin(), part.end());
    std::memcpy(out + t, &m, sizeof m);
  }
}

void CpuBackend::index_select(const float* x, int64_t outer, int64_t n, int64_t inner,
                              const int32_t* idx, int64_t n_idx, float* out) {
  parallel_for(outer * n_idx, std::max<int64_t>(1, cpu::kGrain / inner),
               [&](int64_t b0, int64_t b1) {
                 for (int64_t p = b0; p < b1; ++p) {
                   const int64_t o = p / n_idx, j = p % n_idx;
                   std::memcpy(out + p * inner, x + (o * n + idx[j]) * inner,
                               static_cast<size_t>(inner) * sizeof(float));
                 }
               });
}

void CpuBackend::index_add(const float* g, int64_t outer, int64_t n, int64_t inner,
                           const int32_t* idx, int64_t n_idx, float* x) {
  // Parallel over outer and inner positions; j runs serially so repeated indices never race.
  parallel_for(outer, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < n_idx; ++j) {
        float* dst = x + (o * n + idx[j]) * inner;
        const float* src = g + (o * n_idx + j) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
      }
  });
}

void CpuBackend::gather(const float* x, int64_t outer, int64_t n, int64_t inner, const int32_t* idx,
                        int64_t n_idx, float* out) {
  cpu::map_n(outer * n_idx * inner, [=](int64_t p) {
    const int64_t o = p / (n_idx * inner), i = p % inner;
    out[p] = x[(o * n + idx[p]) * inner + i];
  });
}

void CpuBackend::scatter_add(const float* g, int64_t outer, int64_t n, int64_t inner,
                             const int32_t* idx, int64_t n_idx, float* x) {
  parallel_for(outer, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < n_idx; ++j)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t p = (o * n_idx + j) * inner + i;
          x[(o * n + idx[p]) * inner + i] += g[p];
        }
  });
}

}  // namespace trine
