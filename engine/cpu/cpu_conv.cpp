// CpuBackend: im2col/col2im for convolution, and 2-D pooling.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/blas.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_loops.h"
#include "engine/cpu/winograd.h"

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

// Stride 1 and an output as wide as the input ("same" padding, as in 3x3 pad 1 and 5x5 pad 2):
// then the column matrix's row (ky, kx) is the input plane shifted by (ky - ph) W + (kx - pw),
// read contiguously over the rows oy that lie inside the image, except for the columns ox outside
// [lo, hi), which that shift reads from the neighbouring row and which must be zero.
bool shifted_copy(const ConvGeom& g) {
  return g.sh == 1 && g.sw == 1 && g.OW == g.W;
}

// sum(x[0..n)) in double, from 16 float lanes (vectorized; the order is fixed, so the result
// does not depend on the machine's vector width).
TRINE_VECTOR_CLONES double row_sum(const float* x, int64_t n) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lane[l] += x[i + l];
  double acc = 0;
  for (float v : lane) acc += v;
  for (; i < n; ++i) acc += x[i];
  return acc;
}

// One row (c, ky, kx) of one image's column matrix: dst[oy OW + ox] = x[c, oy sh - ph + ky,
// ox sw - pw + kx] (0 outside the image). Plain loops, compiled per vector width: the rows are
// short (OW floats), so a memcpy per row cost more than the copy.
TRINE_VECTOR_CLONES void im2col_row(const float* plane, const ConvGeom& g, int64_t ky, int64_t kx,
                                    float* dst) {
  int64_t lo, hi, y0, y1;
  valid_range(g.W, g.OW, g.sw, g.pw, kx, lo, hi);
  valid_range(g.H, g.OH, g.sh, g.ph, ky, y0, y1);  // output rows that read an input row
  for (int64_t j = 0; j < y0 * g.OW; ++j) dst[j] = 0.f;
  for (int64_t j = y1 * g.OW; j < g.OH * g.OW; ++j) dst[j] = 0.f;
  if (shifted_copy(g)) {
    const int64_t shift = (ky - g.ph) * g.W + (kx - g.pw);
    const int64_t j0 = y0 * g.W, j1 = y1 * g.W;
    // Sources outside the plane only occur in columns outside [lo, hi): zero.
    const int64_t a = std::clamp(-shift, j0, j1), b = std::clamp(g.H * g.W - shift, a, j1);
    for (int64_t j = j0; j < a; ++j) dst[j] = 0.f;
    for (int64_t j = a; j < b; ++j) dst[j] = plane[j + shift];
    for (int64_t j = b; j < j1; ++j) dst[j] = 0.f;
    for (int64_t oy = y0; oy < y1; ++oy) {
      float* drow = dst + oy * g.OW;
      for (int64_t ox = 0; ox < lo; ++ox) drow[ox] = 0.f;
      for (int64_t ox = hi; ox < g.OW; ++ox) drow[ox] = 0.f;
    }
    return;
  }
  for (int64_t oy = y0; oy < y1; ++oy) {
    float* drow = dst + oy * g.OW;
    const float* srow = plane + (oy * g.sh - g.ph + ky) * g.W - g.pw + kx;  // srow[ox sw]: input
    for (int64_t ox = 0; ox < lo; ++ox) drow[ox] = 0.f;
    for (int64_t ox = lo; ox < hi; ++ox) drow[ox] = srow[ox * g.sw];
    for (int64_t ox = hi; ox < g.OW; ++ox) drow[ox] = 0.f;
  }
}

// col2im for one image and channel, for shifted_copy(g) geometries: plane (H x W) = the sum of
// the kh kw shifted rows of `col` (rows c kh kw ... of one image's column matrix). Clobbers those
// rows: their entries outside the image are zeroed first, so that each row adds contiguously.
TRINE_VECTOR_CLONES void col2im_plane_shifted(float* col, const ConvGeom& g, int64_t c,
                                              float* plane) {
  const int64_t ohw = g.OH * g.OW;
  for (int64_t j = 0; j < g.H * g.W; ++j) plane[j] = 0.f;
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      float* src = col + ((c * g.kh + ky) * g.kw + kx) * ohw;
      int64_t lo, hi, y0, y1;
      valid_range(g.W, g.OW, 1, g.pw, kx, lo, hi);
      valid_range(g.H, g.OH, 1, g.ph, ky, y0, y1);
      for (int64_t oy = y0; oy < y1; ++oy) {
        float* srow = src + oy * g.OW;
        for (int64_t ox = 0; ox < lo; ++ox) srow[ox] = 0.f;
        for (int64_t ox = hi; ox < g.OW; ++ox) srow[ox] = 0.f;
      }
      const int64_t shift = (ky - g.ph) * g.W + (kx - g.pw);
      const int64_t j0 = y0 * g.W, j1 = y1 * g.W;
      const int64_t a = std::clamp(-shift, j0, j1), b = std::clamp(g.H * g.W - shift, a, j1);
      for (int64_t j = a; j < b; ++j) plane[j + shift] += src[j];
    }
}

}  // namespace

void CpuBackend::im2col(const float* x, const ConvGeom& g, int64_t images, float* col) {
  const int64_t ohw = g.OH * g.OW, cols = images * ohw, rows = g.col_rows();
  // One task per (row, image): the row's output segment for that image is contiguous.
  parallel_for(rows * images, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / images, img = t % images;
      const int64_t c = r / (g.kh * g.kw), ky = (r / g.kw) % g.kh, kx = r % g.kw;
      im2col_row(x + (img * g.C + c) * g.H * g.W, g, ky, kx, col + r * cols + img * ohw);
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

void CpuBackend::conv2d_forward(const float* x, const float* w, const float* bias,
                                const ConvGeom& g, int64_t N, int64_t M, float* y) {
  if (cpu::winograd_suits(g, M)) return cpu::winograd_conv2d_forward(*this, x, w, bias, g, N, M, y);
  const int64_t K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
  // One column matrix per part of the batch, taken before the parts run (parallel_parts).
  const int64_t parts = std::min<int64_t>(num_threads(), N);
  cpu::PartScratch cols(*this, parts, K * ohw);
  blas::SingleThreaded one_thread_per_gemm;
  parallel_parts(N, parts, [&](int64_t q, int64_t i0, int64_t i1) {
    float* col = cols.part(q);
    for (int64_t i = i0; i < i1; ++i) {
      im2col(x + i * chw, g, 1, col);  // runs inline: we are inside parallel_for
      float* yi = y + i * M * ohw;
      gemm(false, false, M, ohw, K, 1.f, w, K, col, ohw, 0.f, yi, ohw);
      if (bias)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t p = 0; p < ohw; ++p) yi[m * ohw + p] += bias[m];
    }
  });
}

void CpuBackend::conv2d_backward(const float* x, const float* w, const float* gy, const ConvGeom& g,
                                 int64_t N, int64_t M, float* gx, float* gw, float* gb) {
  if (cpu::winograd_suits(g, M)) {
    if (gx) cpu::winograd_conv2d_input_grad(*this, w, gy, g, N, M, gx);
    if (gw) cpu::winograd_conv2d_weight_grad(*this, x, gy, g, N, M, gw);
    if (!gb) return;
    gx = gw = nullptr;  // the loop below computes gb only
  }
  const int64_t K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
  const int threads = num_threads();
  // Each of `threads` parts of the batch sums its weight and bias gradients separately; the
  // partial sums are added in part order afterwards, so the result does not depend on timing.
  // (Scratch from the caching allocator: a fresh vector of this size would be a fresh mmap, and
  // its page faults, at every step.)
  Scratch gw_buffer(*this, gw ? threads * M * K : 0), gb_buffer(*this, gb ? 2 * threads * M : 0);
  cpu::PartScratch cols(*this, gw || gx ? threads : 0, K * ohw);  // a column matrix per part
  float* gw_part = gw_buffer.get();
  double* gb_part = reinterpret_cast<double*>(gb_buffer.get());
  if (gw) std::fill(gw_part, gw_part + threads * M * K, 0.f);
  if (gb) std::fill(gb_part, gb_part + threads * M, 0.0);
  {
    blas::SingleThreaded one_thread_per_gemm;
    // Part t always covers images [N t / T, N (t+1) / T), whichever thread runs it.
    parallel_parts(N, threads, [&](int64_t t, int64_t i0, int64_t i1) {
      float* gw_t = gw ? gw_part + t * M * K : nullptr;
      float* col = gw || gx ? cols.part(t) : nullptr;
      for (int64_t i = i0; i < i1; ++i) {
        const float* gyi = gy + i * M * ohw;
        if (gw) {  // gW [M, K] += gy_i [M, ohw] @ col_i^T
          im2col(x + i * chw, g, 1, col);
          gemm(false, true, M, K, ohw, 1.f, gyi, ohw, col, ohw, 1.f, gw_t, K);
        }
        if (gx) {  // gcol [K, ohw] = W^T @ gy_i, scattered back to image i
          gemm(true, false, K, ohw, M, 1.f, w, K, gyi, ohw, 0.f, col, ohw);
          if (shifted_copy(g)) {
            for (int64_t c = 0; c < g.C; ++c)
              col2im_plane_shifted(col, g, c, gx + i * chw + c * g.H * g.W);
          } else {
            col2im(col, g, 1, gx + i * chw);  // runs inline: inside parallel_for
          }
        }
        if (gb)
          for (int64_t m = 0; m < M; ++m) gb_part[t * M + m] += row_sum(gyi + m * ohw, ohw);
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

namespace {

// The 2x2/2 max pool (no padding) in blocks of 8 windows: 8 floats (GCC/Clang vector extension,
// one AVX register), moved from and to memory with memcpy and never passed by value (the ABI for
// that differs between the clones). W1's rows are 14 and 7 windows long: a plain loop over a row
// vectorized for 16 lanes left most of it to a scalar tail, which GCC compiled with branches.
using F8 = float __attribute__((vector_size(32)));
using I8 = int32_t __attribute__((vector_size(32)));

template <typename V, typename T>
[[gnu::always_inline]] inline void load8(V& v, const T* p) {
  std::memcpy(&v, p, sizeof v);
}
template <typename V, typename T>
[[gnu::always_inline]] inline void store8(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

// Windows ox .. ox+7 of input rows r0, r1 (reads 16 floats of each from column 2 ox): each one's
// first maximum, or its first NaN, as the scalar scan finds it, and where it lies (`base` + its
// flat index in the plane). With `relu`, of the values after a ReLU (NaN gives 0), and -1 where
// the maximum is 0.
[[gnu::always_inline]] inline void max_pool_2x2_block(const float* r0, const float* r1,
                                                      int32_t base, int32_t W, bool relu,
                                                      float* out, int32_t* argmax) {
  F8 a0, a1, b0, b1;
  load8(a0, r0), load8(a1, r0 + 8), load8(b0, r1), load8(b1, r1 + 8);
  F8 v[4] = {__builtin_shufflevector(a0, a1, 0, 2, 4, 6, 8, 10, 12, 14),
             __builtin_shufflevector(a0, a1, 1, 3, 5, 7, 9, 11, 13, 15),
             __builtin_shufflevector(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14),
             __builtin_shufflevector(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15)};
  if (relu)
    for (F8& x : v) x = x > 0.f ? x : F8{};
  const int32_t at[4] = {0, 1, W, W + 1};
  F8 best = v[0];
  I8 arg = I8{} + base + I8{0, 2, 4, 6, 8, 10, 12, 14};
  for (int k = 1; k < 4; ++k) {
    // Strictly greater keeps the first maximum; a NaN wins and stays.
    const I8 take = (best == best) & ~(v[k] <= best);
    best = take ? v[k] : best;
    arg = take ? I8{} + base + at[k] + I8{0, 2, 4, 6, 8, 10, 12, 14} : arg;
  }
  if (relu) arg = best > 0.f ? arg : I8{} - 1;
  store8(out, best);
  store8(argmax, arg);
}

// Input gradient of windows ox .. ox+7 from their output gradients and arg-maxes: writes 16
// floats of each of rows g0 and g1 from column 2 ox, every cell its window's gradient or 0 (an
// arg-max of -1 matches no cell).
[[gnu::always_inline]] inline void max_pool_2x2_backward_block(const float* gy,
                                                               const int32_t* argmax, int32_t base,
                                                               int32_t W, float* g0, float* g1) {
  F8 g;
  I8 k;
  load8(g, gy), load8(k, argmax);
  k -= base + I8{0, 2, 4, 6, 8, 10, 12, 14};
  const F8 zero = {};
  const F8 e0 = k == 0 ? g : zero, e1 = k == 1 ? g : zero;
  const F8 f0 = k == W ? g : zero, f1 = k == W + 1 ? g : zero;
  const F8 lo0 = __builtin_shufflevector(e0, e1, 0, 8, 1, 9, 2, 10, 3, 11);
  const F8 hi0 = __builtin_shufflevector(e0, e1, 4, 12, 5, 13, 6, 14, 7, 15);
  const F8 lo1 = __builtin_shufflevector(f0, f1, 0, 8, 1, 9, 2, 10, 3, 11);
  const F8 hi1 = __builtin_shufflevector(f0, f1, 4, 12, 5, 13, 6, 14, 7, 15);
  store8(g0, lo0), store8(g0 + 8, hi0), store8(g1, lo1), store8(g1 + 8, hi1);
}

// Whether a pooling takes the 2x2/2 max-pool kernels below: max (or max of ReLU), no padding.
bool max_pool_2x2(PoolKind kind, const PoolGeom& g) {
  return is_max_pool(kind) && g.ph == 0 && g.pw == 0 && g.kh == 2 && g.kw == 2 && g.sh == 2 &&
         g.sw == 2;
}

// Whether output row oy's blocks may read and write past the row's end: a last, partial block
// touches up to round_up(OW, 8) outputs and twice as many columns of the input rows 2 oy and
// 2 oy + 1. Within the plane that lands on the next rows, which are done after this one and
// overwrite it; past the plane it could reach another thread's planes or the end of the tensor.
bool room_after_row(const PoolGeom& g, int64_t oy) {
  const int64_t span = (g.OW + 7) / 8 * 8;
  return oy * g.OW + span <= g.OH * g.OW && (2 * oy + 1) * g.W + 2 * span <= g.H * g.W;
}

// One plane of the 2x2/2 max pool. A row without room past its end takes its last, partial
// block through zero-padded copies.
TRINE_VECTOR_CLONES void max_pool_2x2_plane(const float* x, const PoolGeom& g, bool relu,
                                            float* out, int32_t* argmax) {
  const int32_t W = static_cast<int32_t>(g.W);
  for (int64_t oy = 0; oy < g.OH; ++oy) {
    const float* r0 = x + 2 * oy * g.W;
    const int32_t base = static_cast<int32_t>(2 * oy * g.W);
    float* o = out + oy * g.OW;
    int32_t* a = argmax + oy * g.OW;
    const int64_t direct = room_after_row(g, oy) ? g.OW : g.OW / 8 * 8;
    for (int64_t ox = 0; ox < direct; ox += 8)
      max_pool_2x2_block(r0 + 2 * ox, r0 + g.W + 2 * ox, base + static_cast<int32_t>(2 * ox), W,
                         relu, o + ox, a + ox);
    if (direct >= g.OW) continue;
    // The block reads through the copies but numbers the cells as in the plane (base, W).
    const int64_t ox = direct, n = g.OW - ox, cols = g.W - 2 * ox;  // n < 8, cols <= 2 n + 1
    float in0[16] = {}, in1[16] = {}, best[8];
    int32_t arg[8];
    std::memcpy(in0, r0 + 2 * ox, static_cast<size_t>(cols) * sizeof(float));
    std::memcpy(in1, r0 + g.W + 2 * ox, static_cast<size_t>(cols) * sizeof(float));
    max_pool_2x2_block(in0, in1, base + static_cast<int32_t>(2 * ox), W, relu, best, arg);
    std::memcpy(o + ox, best, static_cast<size_t>(n) * sizeof(float));
    std::memcpy(a + ox, arg, static_cast<size_t>(n) * sizeof(int32_t));
  }
}

// Gradient of one plane of the 2x2/2 max pool: windows do not overlap, so each input cell takes
// its window's gradient or 0, written once (no zero fill, no scatter); cells in no window (an odd
// last row or column) take 0.
TRINE_VECTOR_CLONES void max_pool_2x2_backward_plane(const float* gy, const int32_t* argmax,
                                                     const PoolGeom& g, float* gx) {
  const int32_t W = static_cast<int32_t>(g.W);
  for (int64_t oy = 0; oy < g.OH; ++oy) {
    float* g0 = gx + 2 * oy * g.W;
    float* g1 = g0 + g.W;
    const float* gr = gy + oy * g.OW;
    const int32_t* ar = argmax + oy * g.OW;
    const int32_t base = static_cast<int32_t>(2 * oy * g.W);
    const int64_t direct = room_after_row(g, oy) ? g.OW : g.OW / 8 * 8;
    if (direct < g.OW) {
      const int64_t ox = direct, n = g.OW - ox;
      float grad[8] = {}, e0[16], e1[16];
      int32_t arg[8] = {};
      std::memcpy(grad, gr + ox, static_cast<size_t>(n) * sizeof(float));
      std::memcpy(arg, ar + ox, static_cast<size_t>(n) * sizeof(int32_t));
      max_pool_2x2_backward_block(grad, arg, base + static_cast<int32_t>(2 * ox), W, e0, e1);
      std::memcpy(g0 + 2 * ox, e0, static_cast<size_t>(2 * n) * sizeof(float));
      std::memcpy(g1 + 2 * ox, e1, static_cast<size_t>(2 * n) * sizeof(float));
    }
    // Last block first: its row-g0 store may run past the row into g1's first columns, which the
    // first block's g1 store then writes.
    for (int64_t block = (direct + 7) / 8; block-- > 0;) {
      const int64_t ox = 8 * block;
      max_pool_2x2_backward_block(gr + ox, ar + ox, base + static_cast<int32_t>(2 * ox), W,
                                  g0 + 2 * ox, g1 + 2 * ox);
    }
    for (int64_t c = 2 * g.OW; c < g.W; ++c) g0[c] = g1[c] = 0.f;
  }
  for (int64_t j = 2 * g.OH * g.W; j < g.H * g.W; ++j) gx[j] = 0.f;
}

}  // namespace

void CpuBackend::pool2d_forward(PoolKind kind, const float* x, const PoolGeom& g, int64_t planes,
                                float* out, int32_t* argmax) {
  const int64_t ohw = g.OH * g.OW;
  const float inv_area = 1.f / static_cast<float>(g.kh * g.kw);
  const int64_t grain = std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(1, ohw * g.kh * g.kw));
  // Without padding every window lies inside the plane: no bounds checks.
  const bool inside = g.ph == 0 && g.pw == 0;
  const bool relu = kind == PoolKind::MaxRelu;
  if (max_pool_2x2(kind, g)) {
    parallel_for(planes, grain, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        max_pool_2x2_plane(x + p * g.H * g.W, g, relu, out + p * ohw, argmax + p * ohw);
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
          if (is_max_pool(kind)) {
            // With `relu`, of the values after a ReLU (NaN gives 0), and -1 where the maximum
            // is 0: the window's winner then has no gradient.
            auto value = [&](int32_t at) {
              const float v = plane[at];
              return relu && !(v > 0.f) ? 0.f : v;
            };
            int32_t arg = static_cast<int32_t>((y0 + ky0) * g.W + x0 + kx0);
            float best = value(arg);
            for (int64_t ky = ky0; ky < ky1; ++ky)
              for (int64_t kx = kx0; kx < kx1; ++kx) {
                const int32_t at = static_cast<int32_t>((y0 + ky) * g.W + x0 + kx);
                const float v = value(at);
                // Strictly greater keeps the first maximum; a NaN wins and stays.
                if (v > best || (v != v && best == best)) best = v, arg = at;
              }
            out[o] = best;
            argmax[o] = relu && !(best > 0.f) ? -1 : arg;
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
  const bool max_2x2 = max_pool_2x2(kind, g);
  parallel_for(
      planes, std::max<int64_t>(1, cpu::kGrain / std::max<int64_t>(1, hw)),
      [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          float* plane = gx + p * hw;
          if (max_2x2) {
            max_pool_2x2_backward_plane(gy + p * ohw, argmax + p * ohw, g, plane);
            continue;
          }
          std::memset(plane, 0, static_cast<size_t>(hw) * sizeof(float));
          if (is_max_pool(kind)) {
            for (int64_t o = p * ohw; o < (p + 1) * ohw; ++o)
              if (argmax[o] >= 0) plane[argmax[o]] += gy[o];
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
