// CpuBackend: memory, fills, copies, GEMM, random numbers and optimizer updates.
// Elementwise/reduction/indexing loops are in cpu_elementwise.cpp, conv/pool in cpu_conv.cpp.
#include "engine/cpu/cpu_backend.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <sys/mman.h>

#include "engine/cpu/blas.h"
#include "engine/cpu/cpu_loops.h"
#include "engine/parallel.h"
#include "engine/philox.h"
#include "engine/random.h"

namespace trine {

// Segments (1 MiB and more) straight from mmap, page-aligned, so a freed one goes back to the
// system at once. From malloc they did not: glibc raises its mmap threshold to the size of each
// mmapped block freed (up to 32 MiB), so later segments came from its heap, which keeps what is
// freed inside it; peak RSS of `trine bench w2 --threads 2 --steps 40` was 535 MB, now 472.
CpuBackend::CpuBackend()
    : allocator_(
          "cpu",
          [](size_t bytes) -> void* {
            void* p =
                mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            return p == MAP_FAILED ? nullptr : p;
          },
          [](void* p, size_t bytes) { munmap(p, bytes); }, /*trim_on_grow=*/true) {}

std::string CpuBackend::description() const {
  return "cpu: " + blas::summary() + ", " + std::to_string(num_threads()) + " loop threads";
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  copy(dst, src, bytes);
}
void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  copy(dst, src, bytes);
}
void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  auto* d = static_cast<char*>(dst);
  auto* s = static_cast<const char*>(src);
  // Overlapping views: chunks copied in parallel would read bytes another chunk already wrote.
  if (d < s + bytes && s < d + bytes) {
    std::memmove(d, s, bytes);
    return;
  }
  parallel_for(static_cast<int64_t>(bytes), 1 << 20, [&](int64_t b, int64_t e) {
    std::memmove(d + b, s + b, static_cast<size_t>(e - b));
  });
}

void CpuBackend::fill(float* out, int64_t n, float value) {
  cpu::map_n(n, [=](int64_t i) { out[i] = value; });
}
void CpuBackend::fill_i32(int32_t* out, int64_t n, int32_t value) {
  cpu::map_n(n, [=](int64_t i) { out[i] = value; });
}
void CpuBackend::cast_i32_to_f32(const int32_t* x, float* out, int64_t n) {
  cpu::map_n(n, [=](int64_t i) { out[i] = static_cast<float>(x[i]); });
}
void CpuBackend::cast_f32_to_i32(const float* x, int32_t* out, int64_t n) {
  // A plain static_cast is undefined out of range (x86 gives INT32_MIN, NaN included).
  cpu::map_n(n, [=](int64_t i) {
    const float v = x[i];
    out[i] = std::isnan(v)        ? 0
             : v >= 2147483648.f  ? std::numeric_limits<int32_t>::max()
             : v <= -2147483648.f ? std::numeric_limits<int32_t>::min()
                                  : static_cast<int32_t>(v);
  });
}

void CpuBackend::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                      float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS rejects k = 0 leading dimensions; the product is empty
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  blas::sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void CpuBackend::gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                              float alpha, const float* a, int64_t lda, int64_t stride_a,
                              const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                              int64_t ldc, int64_t stride_c, int64_t batch) {
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
         c + i * stride_c, ldc);
}

void CpuBackend::random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  cpu::map_n(n, [=](int64_t i) { out[i] = philox::uniform(seed, offset + i); });
}

void CpuBackend::random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  cpu::map_n(n, [=](int64_t i) {
    philox::U4 w = philox::draw(seed, offset + i);
    out[i] = normal_from_uniforms(philox::to_unit(w.x[0]), philox::to_unit(w.x[1]));
  });
}

void CpuBackend::sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdStep& s) {
  cpu::map_n(n, [=](int64_t i) {
    float d = g[i] + s.weight_decay * p[i];
    if (s.momentum != 0.f) {
      buf[i] = s.first ? d : s.momentum * buf[i] + (1.f - s.dampening) * d;
      d = s.nesterov ? d + s.momentum * buf[i] : buf[i];
    }
    p[i] -= s.lr * d;
  });
}

namespace {

// Adam (or AdamW) over [begin, end): no aliasing between the four arrays and no branch inside the
// loop, so it vectorizes; compiled per vector width.
TRINE_VECTOR_CLONES void adam_range(float* __restrict p, const float* __restrict g,
                                    float* __restrict m, float* __restrict v, int64_t begin,
                                    int64_t end, float beta1, float beta2, float eps, float l2,
                                    float decay, float step_size, float inv_sqrt_bc2) {
  for (int64_t i = begin; i < end; ++i) {
    const float pi = p[i] * decay;      // AdamW: p (1 - lr wd); Adam: decay = 1
    const float grad = g[i] + l2 * pi;  // Adam: g + wd p; AdamW: l2 = 0
    const float mi = beta1 * m[i] + (1.f - beta1) * grad;
    const float vi = beta2 * v[i] + (1.f - beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace

void CpuBackend::adam_step(float* p, const float* g, float* m, float* v, int64_t n,
                           const AdamStep& s) {
  const float bc1 = 1.f - std::pow(s.beta1, static_cast<float>(s.step));
  const float bc2 = 1.f - std::pow(s.beta2, static_cast<float>(s.step));
  const float step_size = s.lr / bc1;
  const float inv_sqrt_bc2 = 1.f / std::sqrt(bc2);
  const float decay = s.decoupled ? 1.f - s.lr * s.weight_decay : 1.f;
  const float l2 = s.decoupled ? 0.f : s.weight_decay;
  parallel_for(n, cpu::kGrain, [&](int64_t begin, int64_t end) {
    adam_range(p, g, m, v, begin, end, s.beta1, s.beta2, s.eps, l2, decay, step_size, inv_sqrt_bc2);
  });
}

}  // namespace trine
