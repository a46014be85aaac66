// CpuBackend: im2col/col2im for convolution, and 2-D pooling.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_loops.h"

namespace trine {

void CpuBackend::im2col(const float* x, const ConvGeom& g, int64_t images, float* col) {
  const int64_t ohw = g.OH * g.OW, cols = images * ohw, rows = g.col_rows();
  // One task per (row, image): the row's output segment for that image is contiguous.
  parallel_for(rows * images, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / images, img = t % images;
      const int64_t c = r / (g.kh * g.kw), ky = (r / g.kw) % g.kh, kx = r % g.kw;
      const float* plane = x + (img * g.C + c) * g.H * g.W;
      float* dst = col + r * cols + img * ohw;
      for (int64_t oy = 0; oy < g.OH; ++oy) {
        const int64_t iy = oy * g.sh - g.ph + ky;
        float* drow = dst + oy * g.OW;
        if (iy < 0 || iy >= g.H) {
          std::memset(drow, 0, static_cast<size_t>(g.OW) * sizeof(float));
          continue;
        }
        const float* srow = plane + iy * g.W;
        if (g.sw == 1) {
          // Valid ox: 0 <= ox - pw + kx < W.
          const int64_t lo = std::clamp<int64_t>(g.pw - kx, 0, g.OW);
          const int64_t hi = std::clamp<int64_t>(g.W + g.pw - kx, lo, g.OW);
          for (int64_t ox = 0; ox < lo; ++ox) drow[ox] = 0.f;
          if (hi > lo)
            std::memcpy(drow + lo, srow + lo - g.pw + kx, static_cast<size_t>(hi - lo) * 4);
          for (int64_t ox = hi; ox < g.OW; ++ox) drow[ox] = 0.f;
        } else {
          for (int64_t ox = 0; ox < g.OW; ++ox) {
            const int64_t ix = ox * g.sw - g.pw + kx;
            drow[ox] = (ix >= 0 && ix < g.W) ? srow[ix] : 0.f;
          }
        }
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
          for (int64_t oy = 0; oy < g.OH; ++oy) {
            const int64_t iy = oy * g.sh - g.ph + ky;
            if (iy < 0 || iy >= g.H) continue;
            float* drow = plane + iy * g.W;
            const float* srow = src + oy * g.OW;
            for (int64_t ox = 0; ox < g.OW; ++ox) {
              const int64_t ix = ox * g.sw - g.pw + kx;
              if (ix >= 0 && ix < g.W) drow[ix] += srow[ox];
            }
          }
        }
    }
  });
}

void CpuBackend::pool2d_forward(PoolKind kind, const float* x, const PoolGeom& g, int64_t planes,
                                float* out, int32_t* argmax) {
  const int64_t ohw = g.OH * g.OW;
  const float inv_area = 1.f / static_cast<float>(g.kh * g.kw);
  parallel_for(
      planes, std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(1, ohw * g.kh * g.kw)),
      [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const float* plane = x + p * g.H * g.W;
          for (int64_t oy = 0; oy < g.OH; ++oy)
            for (int64_t ox = 0; ox < g.OW; ++ox) {
              const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
              const int64_t o = p * ohw + oy * g.OW + ox;
              if (kind == PoolKind::Max) {
                float best = -INFINITY;
                int32_t arg = -1;
                for (int64_t ky = std::max<int64_t>(0, -y0); ky < g.kh && y0 + ky < g.H; ++ky)
                  for (int64_t kx = std::max<int64_t>(0, -x0); kx < g.kw && x0 + kx < g.W; ++kx) {
                    const int64_t at = (y0 + ky) * g.W + x0 + kx;
                    const float v = plane[at];
                    if (arg < 0 || v > best || std::isnan(v)) {
                      best = v;
                      arg = static_cast<int32_t>(at);
                      if (std::isnan(v)) break;
                    }
                  }
                out[o] = best;
                argmax[o] = arg;
              } else {
                float acc = 0.f;
                for (int64_t ky = std::max<int64_t>(0, -y0); ky < g.kh && y0 + ky < g.H; ++ky)
                  for (int64_t kx = std::max<int64_t>(0, -x0); kx < g.kw && x0 + kx < g.W; ++kx)
                    acc += plane[(y0 + ky) * g.W + x0 + kx];
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
          for (int64_t oy = 0; oy < g.OH; ++oy)
            for (int64_t ox = 0; ox < g.OW; ++ox) {
              const int64_t o = p * ohw + oy * g.OW + ox;
              if (kind == PoolKind::Max) {
                if (argmax[o] >= 0) plane[argmax[o]] += gy[o];
              } else {
                const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
                const float v = gy[o] * inv_area;
                for (int64_t ky = std::max<int64_t>(0, -y0); ky < g.kh && y0 + ky < g.H; ++ky)
                  for (int64_t kx = std::max<int64_t>(0, -x0); kx < g.kw && x0 + kx < g.W; ++kx)
                    plane[(y0 + ky) * g.W + x0 + kx] += v;
              }
            }
        }
      });
}

}  // namespace trine
