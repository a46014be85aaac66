// CpuBackend: im2col/col2im for convolution, and 2-D pooling.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/blas.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_loops.h"

namespace trine {

namespace {

// Output columns ox whose input column ox*s - p + k lies in [0, W): [lo, hi).
inline void valid_range(int64_t W, int64_t OW, int64_t s, int64_t p, int64_t k, int64_t& lo,
                        int64_t& hi) {
  // ox*s >= p - k  and  ox*s < W + p - k
  const int64_t a = p - k, b = W + p - k;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = b <= 0 ? 0 : (b + s - 1) / s;
  lo = std::min(lo, OW);
  hi = std::clamp(hi, lo, OW);
}

}  // namespace

void CpuBackend::im2col(const float* x, const ConvGeom& g, int64_t images, float* col) {
  const int64_t ohw = g.OH * g.OW, cols = images * ohw, rows = g.col_rows();
  // One task per (row, image): the row's output segment for that image is contiguous.
  parallel_for(rows * images, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / images, img = t % images;
      const int64_t c = r / (g.kh * g.kw), ky = (r / g.kw) % g.kh, kx = r % g.kw;
      const float* plane = x + (img * g.C + c) * g.H * g.W;
      float* dst = col + r * cols + img * ohw;
      int64_t lo, hi;
      valid_range(g.W, g.OW, g.sw, g.pw, kx, lo, hi);
      for (int64_t oy = 0; oy < g.OH; ++oy) {
        const int64_t iy = oy * g.sh - g.ph + ky;
        float* drow = dst + oy * g.OW;
        if (iy < 0 || iy >= g.H) {
          std::memset(drow, 0, static_cast<size_t>(g.OW) * sizeof(float));
          continue;
        }
        const float* srow = plane + iy * g.W - g.pw + kx;  // srow[ox * sw] is the input
        for (int64_t ox = 0; ox < lo; ++ox) drow[ox] = 0.f;
        if (g.sw == 1) {
          if (hi > lo) std::memcpy(drow + lo, srow + lo, static_cast<size_t>(hi - lo) * 4);
        } else {
          for (int64_t ox = lo; ox < hi; ++ox) drow[ox] = srow[ox * g.sw];
        }
        for (int64_t ox = hi; ox < g.OW; ++ox) drow[ox] = 0.f;
      }
    }
  });
}

void CpuBackend::col2im(const float* col, const ConvGeom& g, int64_t images, float* x) {
  const int64_t ohw = g.OH * g.OW, cols = images * ohw;
  // One task per (image, channel) plane: only that plane's kh*kw rows write to it.
  parallel_for(images * g.C, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t img = t / g.C, c = t % g.C;
      float* plane = x + (img * g.C + c) * g.H * g.W;
      std::memset(plane, 0, static_cast<size_t>(g.H * g.W) * sizeof(float));
      for (int64_t ky = 0; ky < g.kh; ++ky)
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const float* src = col + ((c * g.kh + ky) * g.kw + kx) * cols + img * ohw;
          int64_t lo, hi;
          valid_range(g.W, g.OW, g.sw, g.pw, kx, lo, hi);
          for (int64_t oy = 0; oy < g.OH; ++oy) {
            const int64_t iy = oy * g.sh - g.ph + ky;
            if (iy < 0 || iy >= g.H) continue;
            float* drow = plane + iy * g.W - g.pw + kx;  // drow[ox * sw] is the input
            const float* srow = src + oy * g.OW;
            if (g.sw == 1) {
              for (int64_t ox = lo; ox < hi; ++ox) drow[ox] += srow[ox];
            } else {
              for (int64_t ox = lo; ox < hi; ++ox) drow[ox * g.sw] += srow[ox];
            }
          }
        }
    }
  });
}

namespace {

// Thread-local scratch from the backend's caching allocator.
class Buffer {
 public:
  Buffer(Backend& be, int64_t floats) : be_(be), bytes_(static_cast<size_t>(floats) * 4) {
    ptr_ = static_cast<float*>(be_.allocate(bytes_));
  }
  ~Buffer() { be_.deallocate(ptr_, bytes_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* get() const { return ptr_; }

 private:
  Backend& be_;
  size_t bytes_;
  float* ptr_;
};

}  // namespace

void CpuBackend::conv2d_forward(const float* x, const float* w, const float* bias,
                                const ConvGeom& g, int64_t N, int64_t M, float* y) {
  const int64_t K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
  blas::SingleThreaded one_thread_per_gemm;
  parallel_for(N, 1, [&](int64_t i0, int64_t i1) {
    Buffer col(*this, K * ohw);
    for (int64_t i = i0; i < i1; ++i) {
      im2col(x + i * chw, g, 1, col.get());  // runs inline: we are inside parallel_for
      float* yi = y + i * M * ohw;
      gemm(false, false, M, ohw, K, 1.f, w, K, col.get(), ohw, 0.f, yi, ohw);
      if (bias)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t p = 0; p < ohw; ++p) yi[m * ohw + p] += bias[m];
    }
  });
}

void CpuBackend::conv2d_backward(const float* x, const float* w, const float* gy, const ConvGeom& g,
                                 int64_t N, int64_t M, float* gx, float* gw, float* gb) {
  const int64_t K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
  const int threads = num_threads();
  // Each of `threads` parts of the batch sums its weight and bias gradients separately; the
  // partial sums are added in part order afterwards, so the result does not depend on timing.
  std::vector<float> gw_part(gw ? static_cast<size_t>(threads * M * K) : 0, 0.f);
  std::vector<double> gb_part(gb ? static_cast<size_t>(threads * M) : 0, 0.0);
  {
    blas::SingleThreaded one_thread_per_gemm;
    // Part t always covers images [N t / T, N (t+1) / T), whichever thread runs it.
    parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
      Buffer col(*this, K * ohw);
      for (int64_t t = t0; t < t1; ++t) {
        float* gw_t = gw ? gw_part.data() + t * M * K : nullptr;
        for (int64_t i = N * t / threads; i < N * (t + 1) / threads; ++i) {
          const float* gyi = gy + i * M * ohw;
          if (gw) {  // gW [M, K] += gy_i [M, ohw] @ col_i^T
            im2col(x + i * chw, g, 1, col.get());
            gemm(false, true, M, K, ohw, 1.f, gyi, ohw, col.get(), ohw, 1.f, gw_t, K);
          }
          if (gx) {  // gcol [K, ohw] = W^T @ gy_i, scattered back to image i
            gemm(true, false, K, ohw, M, 1.f, w, K, gyi, ohw, 0.f, col.get(), ohw);
            col2im(col.get(), g, 1, gx + i * chw);
          }
          if (gb)
            for (int64_t m = 0; m < M; ++m) {
              double acc = 0;
              for (int64_t p = 0; p < ohw; ++p) acc += gyi[m * ohw + p];
              gb_part[t * M + m] += acc;
            }
        }
      }
    });
  }
  if (gw) {
    for (int64_t j = 0; j < M * K; ++j) gw[j] = gw_part[j];
    for (int t = 1; t < threads; ++t)
      for (int64_t j = 0; j < M * K; ++j) gw[j] += gw_part[t * M * K + j];
  }
  if (gb)
    for (int64_t m = 0; m < M; ++m) {
      double acc = 0;
      for (int t = 0; t < threads; ++t) acc += gb_part[t * M + m];
      gb[m] = static_cast<float>(acc);
    }
}

void CpuBackend::pool2d_forward(PoolKind kind, const float* x, const PoolGeom& g, int64_t planes,
                                float* out, int32_t* argmax) {
  const int64_t ohw = g.OH * g.OW;
  const float inv_area = 1.f / static_cast<float>(g.kh * g.kw);
  const int64_t grain = std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(1, ohw * g.kh * g.kw));
  // Without padding every window lies inside the plane: no bounds checks.
  const bool inside = g.ph == 0 && g.pw == 0;
  if (kind == PoolKind::Max && inside && g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2) {
    // The common 2x2/2 max pool, unrolled.
    parallel_for(planes, grain, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const float* plane = x + p * g.H * g.W;
        float* o = out + p * ohw;
        int32_t* a = argmax + p * ohw;
        for (int64_t oy = 0; oy < g.OH; ++oy) {
          const float* r0 = plane + 2 * oy * g.W;
          const float* r1 = r0 + g.W;
          const int32_t base = static_cast<int32_t>(2 * oy * g.W);
          for (int64_t ox = 0; ox < g.OW; ++ox) {
            const int64_t c = 2 * ox;
            float best = r0[c];
            int32_t arg = base + static_cast<int32_t>(c);
            if (r0[c + 1] > best || (r0[c + 1] != r0[c + 1] && best == best))
              best = r0[c + 1], arg = base + static_cast<int32_t>(c + 1);
            if (r1[c] > best || (r1[c] != r1[c] && best == best))
              best = r1[c], arg = base + static_cast<int32_t>(g.W + c);
            if (r1[c + 1] > best || (r1[c + 1] != r1[c + 1] && best == best))
              best = r1[c + 1], arg = base + static_cast<int32_t>(g.W + c + 1);
            o[oy * g.OW + ox] = best;
            a[oy * g.OW + ox] = arg;
          }
        }
      }
    });
    return;
  }
  parallel_for(planes, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* plane = x + p * g.H * g.W;
      for (int64_t oy = 0; oy < g.OH; ++oy)
        for (int64_t ox = 0; ox < g.OW; ++ox) {
          const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
          const int64_t ky0 = inside ? 0 : std::max<int64_t>(0, -y0);
          const int64_t ky1 = inside ? g.kh : std::min(g.kh, g.H - y0);
          const int64_t kx0 = inside ? 0 : std::max<int64_t>(0, -x0);
          const int64_t kx1 = inside ? g.kw : std::min(g.kw, g.W - x0);
          const int64_t o = p * ohw + oy * g.OW + ox;
          if (kind == PoolKind::Max) {
            int32_t arg = static_cast<int32_t>((y0 + ky0) * g.W + x0 + kx0);
            float best = plane[arg];
            for (int64_t ky = ky0; ky < ky1; ++ky)
              for (int64_t kx = kx0; kx < kx1; ++kx) {
                const int32_t at = static_cast<int32_t>((y0 + ky) * g.W + x0 + kx);
                const float v = plane[at];
                // Strictly greater keeps the first maximum; a NaN wins and stays.
                if (v > best || (v != v && best == best)) best = v, arg = at;
              }
            out[o] = best;
            argmax[o] = arg;
          } else {
            float acc = 0.f;
            for (int64_t ky = ky0; ky < ky1; ++ky)
              for (int64_t kx = kx0; kx < kx1; ++kx) acc += plane[(y0 + ky) * g.W + x0 + kx];
            out[o] = acc * inv_area;
          }
        }
    }
  });
}

void CpuBackend::pool2d_backward(PoolKind kind, const float* gy, const int32_t* argmax,
                                 const PoolGeom& g, int64_t planes, float* gx) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W;
  const float inv_area = 1.f / static_cast<float>(g.kh * g.kw);
  parallel_for(
      planes, std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(1, hw)),
      [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          float* plane = gx + p * hw;
          std::memset(plane, 0, static_cast<size_t>(hw) * sizeof(float));
          if (kind == PoolKind::Max) {
            for (int64_t o = p * ohw; o < (p + 1) * ohw; ++o) plane[argmax[o]] += gy[o];
            continue;
          }
          for (int64_t oy = 0; oy < g.OH; ++oy)
            for (int64_t ox = 0; ox < g.OW; ++ox) {
              const int64_t o = p * ohw + oy * g.OW + ox;
              const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
              const float v = gy[o] * inv_area;
              for (int64_t ky = std::max<int64_t>(0, -y0); ky < g.kh && y0 + ky < g.H; ++ky)
                for (int64_t kx = std::max<int64_t>(0, -x0); kx < g.kw && x0 + kx < g.W; ++kx)
                  plane[(y0 + ky) * g.W + x0 + kx] += v;
            }
        }
      });
}

}  // namespace trine
