// CpuBackend: fused batch normalization, one channel per task (a channel's values are N runs of
// HW contiguous floats), statistics accumulated in double.
#include <cmath>

#include "engine/cpu/cpu_backend.h"
#include "engine/parallel.h"

namespace trine {

void CpuBackend::batch_norm_forward(const float* x, int64_t N, int64_t C, int64_t HW,
                                    const float* weight, const float* bias, float eps, float* y,
                                    float* mean, float* var, float* invstd) {
  const double count = static_cast<double>(N * HW);
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0, ss = 0;
      for (int64_t n = 0; n < N; ++n) {
        const float* p = x + (n * C + c) * HW;
#pragma omp simd reduction(+ : s, ss)
        for (int64_t i = 0; i < HW; ++i) s += p[i], ss += static_cast<double>(p[i]) * p[i];
      }
      const double m = s / count, v = std::max(0.0, ss / count - m * m);
      const float is = static_cast<float>(1.0 / std::sqrt(v + eps));
      mean[c] = static_cast<float>(m);
      var[c] = static_cast<float>(v);
      invstd[c] = is;
      const float scale = (weight ? weight[c] : 1.f) * is;
      const float shift = (bias ? bias[c] : 0.f) - static_cast<float>(m) * scale;
      for (int64_t n = 0; n < N; ++n) {
        const float* p = x + (n * C + c) * HW;
        float* q = y + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) q[i] = p[i] * scale + shift;
      }
    }
  });
}

void CpuBackend::batch_norm_backward(const float* x, const float* gy, int64_t N, int64_t C,
                                     int64_t HW, const float* mean, const float* invstd,
                                     const float* weight, float* gx, float* gweight, float* gbias) {
  const double count = static_cast<double>(N * HW);
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float m = mean[c], is = invstd[c];
      double sg = 0, sgx = 0;  // sum(gy), sum(gy * (x - mean))
      for (int64_t n = 0; n < N; ++n) {
        const float* p = x + (n * C + c) * HW;
        const float* g = gy + (n * C + c) * HW;
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t i = 0; i < HW; ++i) sg += g[i], sgx += static_cast<double>(g[i]) * (p[i] - m);
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
        const float* p = x + (n * C + c) * HW;
        const float* g = gy + (n * C + c) * HW;
        float* q = gx + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) q[i] = k * (g[i] - a - (p[i] - m) * b);
      }
    }
  });
}

}  // namespace trine
