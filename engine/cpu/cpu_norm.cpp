// CpuBackend: fused batch normalization, one channel per task (a channel's values are N runs of
// HW contiguous floats), statistics accumulated in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_loops.h"
#include "engine/parallel.h"

namespace trine {

namespace {

// sum(p) and sum(p^2) over n values.
TRINE_VECTOR_CLONES void sum_and_squares(const float* p, int64_t n, double& s, double& ss) {
  double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < n; ++i) a += p[i], b += static_cast<double>(p[i]) * p[i];
  s += a, ss += b;
}

// q = p scale + shift, then with `relu` q = v > 0 ? v : 0 (UnaryOp::Relu's rule).
TRINE_VECTOR_CLONES void affine(const float* p, int64_t n, float scale, float shift, bool relu,
                                float* q) {
  if (relu) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = p[i] * scale + shift;
      q[i] = v > 0.f ? v : 0.f;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) q[i] = p[i] * scale + shift;
  }
}

// sum(g) and sum(g * (p - m)) over n values.
TRINE_VECTOR_CLONES void grad_sums(const float* p, const float* g, int64_t n, float m, double& sg,
                                   double& sgx) {
  double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < n; ++i) a += g[i], b += static_cast<double>(g[i]) * (p[i] - m);
  sg += a, sgx += b;
}

// grad_sums with g counted only where a fused ReLU's output r > 0. The masked g goes through a
// small buffer: GCC 12 vectorizes no select inside the double reduction (the loop ran scalar,
// three times as long as the two loops here).
TRINE_VECTOR_CLONES void masked_grad_sums(const float* p, const float* r, const float* g, int64_t n,
                                          float m, double& sg, double& sgx) {
  constexpr int64_t kBlock = 256;
  float gm[kBlock];
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t k = std::min(kBlock, n - i0);
    for (int64_t i = 0; i < k; ++i) gm[i] = r[i0 + i] > 0.f ? g[i0 + i] : 0.f;
    grad_sums(p + i0, gm, k, m, sg, sgx);
  }
}

// q = k (g - a - (p - m) b), g masked by r as in grad_sums.
TRINE_VECTOR_CLONES void grad_apply(const float* p, const float* r, const float* g, int64_t n,
                                    float m, float k, float a, float b, float* q) {
  if (r) {
    for (int64_t i = 0; i < n; ++i) q[i] = k * ((r[i] > 0.f ? g[i] : 0.f) - a - (p[i] - m) * b);
  } else {
    for (int64_t i = 0; i < n; ++i) q[i] = k * (g[i] - a - (p[i] - m) * b);
  }
}

}  // namespace

void CpuBackend::batch_norm_forward(const float* x, int64_t N, int64_t C, int64_t HW,
                                    const float* weight, const float* bias, float eps, bool relu,
                                    float* y, float* mean, float* var, float* invstd) {
  const double count = static_cast<double>(N * HW);
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0, ss = 0;
      for (int64_t n = 0; n < N; ++n) sum_and_squares(x + (n * C + c) * HW, HW, s, ss);
      const double m = s / count, v = std::max(0.0, ss / count - m * m);
      const float is = static_cast<float>(1.0 / std::sqrt(v + eps));
      mean[c] = static_cast<float>(m);
      var[c] = static_cast<float>(v);
      invstd[c] = is;
      const float scale = (weight ? weight[c] : 1.f) * is;
      const float shift = (bias ? bias[c] : 0.f) - static_cast<float>(m) * scale;
      for (int64_t n = 0; n < N; ++n)
        affine(x + (n * C + c) * HW, HW, scale, shift, relu, y + (n * C + c) * HW);
    }
  });
}

void CpuBackend::batch_norm_inference(const float* x, int64_t N, int64_t C, int64_t HW,
                                      const float* mean, const float* var, const float* weight,
                                      const float* bias, float eps, bool relu, float* y) {
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const float is = static_cast<float>(1.0 / std::sqrt(double{var[c]} + eps));
    scale[c] = (weight ? weight[c] : 1.f) * is;
    shift[c] = (bias ? bias[c] : 0.f) - mean[c] * scale[c];
  }
  parallel_for(N * C, std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(HW, 1)),
               [&](int64_t p0, int64_t p1) {
                 for (int64_t p = p0; p < p1; ++p)  // plane p: image p / C, channel p % C
                   affine(x + p * HW, HW, scale[p % C], shift[p % C], relu, y + p * HW);
               });
}

void CpuBackend::batch_norm_update_running(const float* mean, const float* var, int64_t C,
                                           float momentum, float var_scale, float* running_mean,
                                           float* running_var) {
  const double keep = 1.0 - static_cast<double>(momentum);
  for (int64_t c = 0; c < C; ++c) {
    running_mean[c] = static_cast<float>(keep * running_mean[c] + double{momentum} * mean[c]);
    running_var[c] =
        static_cast<float>(keep * running_var[c] + double{momentum} * var_scale * var[c]);
  }
}

void CpuBackend::batch_norm_backward(const float* x, const float* relu_out, const float* gy,
                                     int64_t N, int64_t C, int64_t HW, const float* mean,
                                     const float* invstd, const float* weight, float* gx,
                                     float* gweight, float* gbias) {
  const double count = static_cast<double>(N * HW);
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float m = mean[c], is = invstd[c];
      double sg = 0, sgx = 0;  // sum(gy), sum(gy * (x - mean))
      for (int64_t n = 0; n < N; ++n) {
        const int64_t at = (n * C + c) * HW;
        if (relu_out)
          masked_grad_sums(x + at, relu_out + at, gy + at, HW, m, sg, sgx);
        else
          grad_sums(x + at, gy + at, HW, m, sg, sgx);
      }
      sgx *= is;  // sum(gy * xhat)
      if (gweight) gweight[c] = static_cast<float>(sgx);
      if (gbias) gbias[c] = static_cast<float>(sg);
      if (!gx) continue;
      // gx = k (gy - sg/M - xhat sgx/M) with k = weight invstd and xhat = (x - m) invstd
      const float k = (weight ? weight[c] : 1.f) * is;
      const float a = static_cast<float>(sg / count);
      const float b = static_cast<float>(sgx / count) * is;  // multiplies (x - m)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t at = (n * C + c) * HW;
        grad_apply(x + at, relu_out ? relu_out + at : nullptr, gy + at, HW, m, k, a, b, gx + at);
      }
    }
  });
}

}  // namespace trine
