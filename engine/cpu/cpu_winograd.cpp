// Winograd convolution F(m x m, r x r) on the CPU: transforms, tile kernels and the chunked drivers
// (see winograd.h for the algorithm).
//
// Data layout for a chunk of images (the chunking depends on the geometry only, never on the
// thread count):
//   tiles  t = img * T + ty * tiles_w + tx, T = tiles_h * tiles_w output tiles per image
//   input  channels last and zero-padded: [imgs, rows, cols, Cp], Cp = C rounded up to 16
//   V  [a*a, nt, Cp]  transformed input tiles     U  [a*a, M, C]  transformed kernels
//   Mo [a*a, M, nt]   U[xi] V[xi]^T, one GEMM per xi
// The input transform works on 16 channels of one tile at a time (one vector), the output
// transform on 16 tiles of one channel.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/cpu/blas.h"
#include "engine/cpu/cpu_loops.h"
#include "engine/cpu/winograd.h"
#include "engine/error.h"

namespace trine::cpu {

namespace {

constexpr int kLanes = 16;

// Coefficients of prod (x - p) over `roots`, lowest power first.
std::vector<double> poly_from_roots(const std::vector<double>& roots) {
  std::vector<double> c{1.0};
  for (double p : roots) {
    std::vector<double> next(c.size() + 1, 0.0);
    for (size_t k = 0; k < c.size(); ++k) {
      next[k + 1] += c[k];
      next[k] -= p * c[k];
    }
    c = std::move(next);
  }
  return c;
}

}  // namespace

// Toom-Cook: correlation y = C_g^T d is the transpose of the linear convolution s = C_g u,
// computed by evaluating u and g at a - 1 points and infinity, multiplying, and interpolating.
// With E the a x a evaluation matrix, AT = (evaluation of u)^T, G = evaluation of g and BT =
// (E^-1)^T. The Lagrange factors 1 / f_i of E^-1 go into G, so that BT has integer entries.
WinogradTransform make_winograd(int m, int r) {
  const int a = m + r - 1;
  if (m < 1 || r < 1 || a > 8)
    throw Error("make_winograd: F(" + std::to_string(m) + ", " + std::to_string(r) +
                ") needs m, r >= 1, m + r - 1 <= 8");
  std::vector<double> pts{0.0};
  for (int k = 1; static_cast<int>(pts.size()) < a - 1; ++k) {
    pts.push_back(k);
    if (static_cast<int>(pts.size()) < a - 1) pts.push_back(-k);
  }
  WinogradTransform t;
  t.m = m, t.r = r, t.a = a;
  t.AT.assign(static_cast<size_t>(m * a), 0.f);
  t.G.assign(static_cast<size_t>(a * r), 0.f);
  t.BT.assign(static_cast<size_t>(a * a), 0.f);
  auto power = [](double p, int k) {
    double v = 1;
    for (int i = 0; i < k; ++i) v *= p;
    return v;
  };
  for (int i = 0; i < a - 1; ++i) {
    std::vector<double> others;
    double f = 1;
    for (int l = 0; l < a - 1; ++l)
      if (l != i) others.push_back(pts[l]), f *= pts[i] - pts[l];
    for (int j = 0; j < m; ++j) t.AT[j * a + i] = static_cast<float>(power(pts[i], j));
    for (int k = 0; k < r; ++k) t.G[i * r + k] = static_cast<float>(power(pts[i], k) / f);
    const std::vector<double> c = poly_from_roots(others);  // degree a - 2
    for (size_t k = 0; k < c.size(); ++k) t.BT[i * a + k] = static_cast<float>(c[k]);
  }
  // The point at infinity: the leading coefficients.
  t.AT[(m - 1) * a + a - 1] = 1.f;
  t.G[(a - 1) * r + r - 1] = 1.f;
  const std::vector<double> c = poly_from_roots(pts);  // degree a - 1
  for (int k = 0; k < a; ++k) t.BT[(a - 1) * a + k] = static_cast<float>(c[k]);
  return t;
}

const WinogradTransform* winograd_for_kernel(int64_t r) {
  static const WinogradTransform f2_5 = make_winograd(2, 5), f4_3 = make_winograd(4, 3);
  if (r == 5) return &f2_5;
  if (r == 3) return &f4_3;
  return nullptr;
}

const WinogradTransform* winograd_for_weight_grad(int64_t r) {
  static const WinogradTransform f5_2 = make_winograd(5, 2), f3_4 = make_winograd(3, 4);
  if (r == 5) return &f5_2;
  if (r == 3) return &f3_4;
  return nullptr;
}

namespace {

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("TRINE_CONV");
    return !(v && std::string(v) == "im2col");
  }()};
  return on;
}

}  // namespace

void set_winograd_enabled(bool on) {
  enabled_flag() = on;
}
bool winograd_enabled() {
  return enabled_flag();
}

bool winograd_suits(const ConvGeom& g, int64_t M) {
  return winograd_enabled() && g.sh == 1 && g.sw == 1 && g.kh == g.kw &&
         winograd_for_kernel(g.kh) && g.ph < g.kh && g.pw < g.kw && g.C >= 16 && M >= 16 &&
         g.OH >= 1 && g.OW >= 1;
}

namespace {

// U [a*a, O, I] = G g G^T for every kernel g. Forward: O = M, I = C, g = w[o, i]. For the input
// gradient: O = C, I = M, g = w[i, o] rotated by 180 degrees.
void transform_kernels(const WinogradTransform& t, const float* w, int64_t M, int64_t C,
                       bool input_grad, float* U) {
  const int a = t.a, r = t.r;
  const int64_t O = input_grad ? C : M, I = input_grad ? M : C;
  parallel_for(M * C, 64, [&](int64_t p0, int64_t p1) {
    float tmp[8 * 8];
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t co = p / C, c = p % C;  // w[co, c]
      const float* g = w + p * r * r;
      const int64_t o = input_grad ? c : co, i = input_grad ? co : c;
      for (int u = 0; u < a; ++u)
        for (int x = 0; x < r; ++x) {  // tmp = G g (g rotated for the input gradient)
          float acc = 0.f;
          for (int y = 0; y < r; ++y)
            acc += t.G[u * r + y] * (input_grad ? g[(r - 1 - y) * r + (r - 1 - x)] : g[y * r + x]);
          tmp[u * r + x] = acc;
        }
      for (int u = 0; u < a; ++u)
        for (int v = 0; v < a; ++v) {
          float acc = 0.f;
          for (int x = 0; x < r; ++x) acc += tmp[u * r + x] * t.G[v * r + x];
          U[(u * a + v) * O * I + o * I + i] = acc;
        }
    }
  });
}

// Sixteen floats as one value (GCC/Clang vector extension): one AVX-512 register, two AVX ones.
// Moved from and to memory with memcpy (unaligned, no aliasing questions), never passed by value.
using Lanes = float __attribute__((vector_size(64)));

// A chunk of images as the tile kernels read them: channels last, zero-padded, channels rounded
// up to Cp (a multiple of 16) so that 16 channels are one vector: [imgs, rows, cols, Cp].
struct ChannelsLast {
  float* data;
  int64_t rows, cols, Cp;
  float* at(int64_t img, int64_t y, int64_t x) const {
    return data + ((img * rows + y) * cols + x) * Cp;
  }
};

// Shuffle indices of one transpose stage (below): bit `bit` of the row index is swapped with the
// same bit of the column index between rows i (bit clear) and j = i | bit. Index n < 16 takes
// lane n of row i, 16 + n lane n of row j. Lane c of the new row i, then of the new row j:
constexpr int stage_lo(int bit, int c) {
  return (c & bit) ? 16 + (c ^ bit) : c;
}
constexpr int stage_hi(int bit, int c) {
  return (c & bit) ? 16 + c : (c | bit);
}

#define TRINE_STAGE_SHUFFLE(f, a, b)                                                              \
  __builtin_shufflevector(a, b, f(Bit, 0), f(Bit, 1), f(Bit, 2), f(Bit, 3), f(Bit, 4), f(Bit, 5), \
                          f(Bit, 6), f(Bit, 7), f(Bit, 8), f(Bit, 9), f(Bit, 10), f(Bit, 11),     \
                          f(Bit, 12), f(Bit, 13), f(Bit, 14), f(Bit, 15))

template <int Bit>
[[gnu::always_inline]] inline void transpose_stage(Lanes (&v)[16]) {
  for (int i = 0; i < 16; ++i)
    if (!(i & Bit)) {
      const Lanes a = v[i], b = v[i | Bit];
      v[i] = TRINE_STAGE_SHUFFLE(stage_lo, a, b);
      v[i | Bit] = TRINE_STAGE_SHUFFLE(stage_hi, a, b);
    }
}
#undef TRINE_STAGE_SHUFFLE

// v[i][j] <-> v[j][i]: four stages, each swapping one bit of the row index with the same bit of
// the column index (64 two-register shuffles instead of 256 single-float moves).
[[gnu::always_inline]] inline void transpose16(Lanes (&v)[16]) {
  transpose_stage<1>(v);
  transpose_stage<2>(v);
  transpose_stage<4>(v);
  transpose_stage<8>(v);
}

// Copies src [imgs, C, H, W] into `dst` with pixel (y, x) at (top + y, left + x). Leaves the
// borders as they are (zero: the buffer is cleared once per call) and writes zeros to the channels
// past C. Moves 16 channels x 16 columns at a time: 16 row vectors in (a row shorter than 16 is
// read whole when the floats past it are still inside src; they land in columns never written),
// transposed in registers, 16 channel vectors out.
TRINE_VECTOR_CLONES void pack_channels_last(const float* src, int64_t imgs, int64_t C, int64_t H,
                                            int64_t W, int64_t top, int64_t left,
                                            const ChannelsLast& dst) {
  const int64_t hw = H * W, total = imgs * C * hw;
  for (int64_t img = 0; img < imgs; ++img)
    for (int64_t y = 0; y < H; ++y) {
      float* d = dst.at(img, top + y, left);
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int64_t cn = std::min<int64_t>(16, C - c0);
        for (int64_t x0 = 0; x0 < W; x0 += 16) {
          const int64_t xn = std::min<int64_t>(16, W - x0);
          Lanes v[16];  // [c][x], then [x][c]
          for (int64_t c = 0; c < 16; ++c) {
            const int64_t at = (img * C + c0 + c) * hw + y * W + x0;  // src[img, c0 + c, y, x0]
            if (c < cn && at + 16 <= total) {
              std::memcpy(&v[c], src + at, sizeof v[c]);
            } else {
              v[c] = Lanes{};
              if (c < cn)
                for (int64_t x = 0; x < xn; ++x) v[c][x] = src[at + x];
            }
          }
          transpose16(v);
          for (int64_t x = 0; x < xn; ++x)
            std::memcpy(d + (x0 + x) * dst.Cp + c0, &v[x], sizeof v[x]);
        }
      }
    }
}

// out[xi, t, c] = (T d_t T^T)[xi] for every tile t = (img, ty, tx) of the chunk and 16 channels c
// at once, where d_t is the K x K block of `src` at (ty m, tx m) and T is A x K; out is
// [A*A, nt, Cp]. The input transform is T = BT (K = A); the weight gradient's transform of gy
// is T = G of F(r, m) (K = m).
template <int A, int K>
[[gnu::always_inline]] inline void tile_transform(const ChannelsLast& src, int64_t imgs,
                                                  int64_t tiles_h, int64_t tiles_w, int64_t m,
                                                  const float* T_in, float* out) {
  float T[A][K];
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < K; ++j) T[i][j] = T_in[i * K + j];
  const int64_t Cp = src.Cp, nt = imgs * tiles_h * tiles_w, xi_stride = nt * Cp;
  int64_t t = 0;
  for (int64_t img = 0; img < imgs; ++img)
    for (int64_t ty = 0; ty < tiles_h; ++ty)
      for (int64_t tx = 0; tx < tiles_w; ++tx, ++t) {
        const float* tile = src.at(img, ty * m, tx * m);
        for (int64_t c = 0; c < Cp; c += 16) {
          Lanes d[K][K];
          for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j)
              std::memcpy(&d[i][j], tile + (i * src.cols + j) * Cp + c, sizeof(Lanes));
          for (int u = 0; u < A; ++u) {
            Lanes s[K];  // row u of T d
            for (int j = 0; j < K; ++j) {
              s[j] = T[u][0] * d[0][j];
              for (int i = 1; i < K; ++i) s[j] += T[u][i] * d[i][j];
            }
            for (int v = 0; v < A; ++v) {  // (T d T^T)[u, v]
              Lanes acc = T[v][0] * s[0];
              for (int j = 1; j < K; ++j) acc += T[v][j] * s[j];
              std::memcpy(out + (u * A + v) * xi_stride + t * Cp + c, &acc, sizeof acc);
            }
          }
        }
      }
}

// One output channel of a chunk: y_c [imgs, OH, OW] (images img_stride floats apart) = the
// output tiles AT o_t AT^T + bias, o_t[xi] = Mo[xi * mo_stride + t], cropped to OH x OW. Works on
// 16 tiles at a time; reads up to 15 floats past the last tile of the last xi.
struct OutputPlanes {
  float* y;
  int64_t img_stride, OH, OW, tiles_h, tiles_w;
  float bias;
};

template <int A, int Mt>
[[gnu::always_inline]] inline void output_tiles(const float* Mo, int64_t mo_stride, int64_t nt,
                                                const float* at_in, const OutputPlanes& out) {
  float at[Mt][A];
  for (int i = 0; i < Mt; ++i)
    for (int j = 0; j < A; ++j) at[i][j] = at_in[i * A + j];
  int64_t img = 0, ty = 0, tx = 0;  // tile t0's place
  for (int64_t t0 = 0; t0 < nt; t0 += kLanes) {
    // One vector per matrix element, one lane per tile: 16 tiles at once.
    Lanes s[Mt][A] = {};  // s = AT o
    for (int u = 0; u < A; ++u)
      for (int v = 0; v < A; ++v) {
        Lanes o;
        std::memcpy(&o, Mo + (u * A + v) * mo_stride + t0, sizeof o);
        for (int i = 0; i < Mt; ++i) s[i][v] += at[i][u] * o;
      }
    Lanes yv[Mt][Mt];  // Y = s AT^T + bias
    for (int i = 0; i < Mt; ++i)
      for (int j = 0; j < Mt; ++j) {
        Lanes acc = {};
        for (int v = 0; v < A; ++v) acc += s[i][v] * at[j][v];
        yv[i][j] = acc + out.bias;
      }
    const int64_t lanes = std::min<int64_t>(kLanes, nt - t0);
    for (int64_t l = 0; l < lanes; ++l) {
      float* y = out.y + img * out.img_stride + ty * Mt * out.OW + tx * Mt;
      if ((ty + 1) * Mt <= out.OH && (tx + 1) * Mt <= out.OW) {  // the whole tile is inside
        for (int i = 0; i < Mt; ++i)
          for (int j = 0; j < Mt; ++j) y[i * out.OW + j] = yv[i][j][l];
      } else {
        for (int i = 0; i < Mt && ty * Mt + i < out.OH; ++i)
          for (int j = 0; j < Mt && tx * Mt + j < out.OW; ++j) y[i * out.OW + j] = yv[i][j][l];
      }
      if (++tx == out.tiles_w) {
        tx = 0;
        if (++ty == out.tiles_h) ty = 0, ++img;
      }
    }
  }
}

// The tile kernels for the transforms in use (a = 6: F(2, 5), F(4, 3) and, for the weight
// gradient, F(5, 2) and F(3, 4)), compiled per vector width.
TRINE_VECTOR_CLONES void tile_transform_dispatch(int a, int k, const ChannelsLast& src,
                                                 int64_t imgs, int64_t tiles_h, int64_t tiles_w,
                                                 int64_t m, const float* T, float* out) {
  if (a == 6 && k == 6) return tile_transform<6, 6>(src, imgs, tiles_h, tiles_w, m, T, out);
  if (a == 6 && k == 4) return tile_transform<6, 4>(src, imgs, tiles_h, tiles_w, m, T, out);
  if (a == 6 && k == 2) return tile_transform<6, 2>(src, imgs, tiles_h, tiles_w, m, T, out);
  throw Error("winograd: no tile kernel for a = " + std::to_string(a) +
              ", k = " + std::to_string(k));
}

TRINE_VECTOR_CLONES void output_tiles_dispatch(int a, int m, const float* Mo, int64_t mo_stride,
                                               int64_t nt, const float* at,
                                               const OutputPlanes& out) {
  if (a == 6 && m == 2) return output_tiles<6, 2>(Mo, mo_stride, nt, at, out);
  if (a == 6 && m == 4) return output_tiles<6, 4>(Mo, mo_stride, nt, at, out);
  throw Error("winograd: no output-tile kernel for F(" + std::to_string(m) + ", " +
              std::to_string(a - m + 1) + ")");
}

// One convolution problem for the driver: x [N, C, H, W] -> y [N, M, OH, OW], stride 1, padding
// (ph, pw).
struct Problem {
  int64_t N, C, H, W, ph, pw, M, OH, OW;
};

// The tiling of a problem's output by m x m tiles, and its chunks of images: about 1.5 MB of
// transformed tiles per chunk (a*a (C + M) floats per tile), at least one image, so that a chunk's
// GEMM operands stay in the caches. Depends on the geometry only, never on the thread count.
struct Tiling {
  int64_t tiles_h, tiles_w, T;  // T tiles per image
  int64_t Cp, Mp;               // C and M rounded up to 16
  int64_t per_chunk, max_nt;    // images per chunk, tiles per chunk
  Tiling(const Problem& p, int a, int m) {
    tiles_h = (p.OH + m - 1) / m, tiles_w = (p.OW + m - 1) / m, T = tiles_h * tiles_w;
    Cp = (p.C + 15) / 16 * 16, Mp = (p.M + 15) / 16 * 16;
    const int64_t bytes_per_image = a * a * (Cp + Mp) * T * 4;
    per_chunk = std::clamp<int64_t>((3 << 19) / std::max<int64_t>(1, bytes_per_image), 1,
                                    std::max<int64_t>(1, p.N));
    max_nt = per_chunk * T;
  }
};

// y = the convolution of x with the kernels transformed into U [a*a, M, C], plus bias.
void winograd_run(Backend& be, const WinogradTransform& t, const Problem& p, const float* x,
                  const float* U, const float* bias, float* y) {
  const int a = t.a, m = t.m;
  const Tiling tl(p, a, m);
  const int64_t T = tl.T, tiles_w = tl.tiles_w, per_chunk = tl.per_chunk, max_nt = tl.max_nt;
  // Every tile's a x a block lies inside the padded image.
  const int64_t rows = tl.tiles_h * m + t.r - 1, cols = tl.tiles_w * m + t.r - 1;
  const int64_t pad_floats = per_chunk * rows * cols * tl.Cp;

  // The chunks of per_chunk images, in parts; each part's buffers are taken before the parts run.
  const int64_t chunks = (p.N + per_chunk - 1) / per_chunk;
  const int64_t parts = std::min<int64_t>(num_threads(), chunks);
  PartScratch pads(be, parts, pad_floats), Vs(be, parts, a * a * max_nt * tl.Cp);
  PartScratch Mos(be, parts, a * a * p.M * max_nt + kLanes);
  blas::SingleThreaded one_thread_per_gemm;
  parallel_parts(chunks, parts, [&](int64_t q, int64_t c0, int64_t c1) {
    float *pad = pads.part(q), *V = Vs.part(q), *Mo = Mos.part(q);
    const ChannelsLast xs{pad, rows, cols, tl.Cp};
    std::fill(pad, pad + pad_floats, 0.f);
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      const int64_t n0 = chunk * per_chunk, imgs = std::min(per_chunk, p.N - n0);
      const int64_t nt = imgs * T;
      // The output transform's last 16 tiles read up to 15 floats past Mo's last row.
      std::fill_n(Mo + a * a * p.M * nt, kLanes, 0.f);
      pack_channels_last(x + n0 * p.C * p.H * p.W, imgs, p.C, p.H, p.W, p.ph, p.pw, xs);
      tile_transform_dispatch(a, a, xs, imgs, tl.tiles_h, tiles_w, m, t.BT.data(), V);
      // Mo[xi] [M, nt] = U[xi] [M, C] V[xi]^T, V[xi] being [nt, Cp].
      for (int xi = 0; xi < a * a; ++xi)
        be.gemm(false, true, p.M, nt, p.C, 1.f, U + xi * p.M * p.C, p.C, V + xi * nt * tl.Cp, tl.Cp,
                0.f, Mo + xi * p.M * nt, nt);
      for (int64_t co = 0; co < p.M; ++co) {
        const OutputPlanes out{y + (n0 * p.M + co) * p.OH * p.OW,
                               p.M * p.OH * p.OW,
                               p.OH,
                               p.OW,
                               tl.tiles_h,
                               tiles_w,
                               bias ? bias[co] : 0.f};
        output_tiles_dispatch(a, m, Mo + co * nt, p.M * nt, nt, t.AT.data(), out);
      }
    }
  });
}

}  // namespace

void winograd_conv2d_forward(Backend& be, const float* x, const float* w, const float* bias,
                             const ConvGeom& g, int64_t N, int64_t M, float* y) {
  const WinogradTransform& t = *winograd_for_kernel(g.kh);
  Scratch U(be, t.a * t.a * M * g.C);
  transform_kernels(t, w, M, g.C, false, U.get());
  const Problem p{N, g.C, g.H, g.W, g.ph, g.pw, M, g.OH, g.OW};
  winograd_run(be, t, p, x, U.get(), bias, y);
}

void winograd_conv2d_input_grad(Backend& be, const float* w, const float* gy, const ConvGeom& g,
                                int64_t N, int64_t M, float* gx) {
  const WinogradTransform& t = *winograd_for_kernel(g.kh);
  Scratch U(be, t.a * t.a * M * g.C);
  transform_kernels(t, w, M, g.C, true, U.get());
  // gx = gy padded by r - 1 - p, convolved with the rotated kernels: an output as large as x.
  const Problem p{N, M, g.OH, g.OW, g.kh - 1 - g.ph, g.kw - 1 - g.pw, g.C, g.H, g.W};
  winograd_run(be, t, p, gy, U.get(), nullptr, gx);
}

// The weight gradient sums, over images and output tiles, the correlation of the input's a x a
// block with the output gradient's m x m block: an F(r, m) per tile whose input transform is
// BT (the same points) and whose "kernel" is the gy block. The elementwise products summed over
// tiles are a*a GEMMs [M, nt] x [nt, C] with the long dimension inside, accumulated per part of
// the batch (one part per thread, fixed image ranges) and added in part order.
void winograd_conv2d_weight_grad(Backend& be, const float* x, const float* gy, const ConvGeom& g,
                                 int64_t N, int64_t M, float* gw) {
  const WinogradTransform& f = *winograd_for_kernel(g.kh);        // F(m, r): tiling and BT
  const WinogradTransform& fw = *winograd_for_weight_grad(g.kh);  // F(r, m): G and AT
  const int a = f.a, m = f.m, r = f.r;
  const Problem p{N, g.C, g.H, g.W, g.ph, g.pw, M, g.OH, g.OW};
  const Tiling tl(p, a, m);
  const int64_t x_rows = tl.tiles_h * m + r - 1, x_cols = tl.tiles_w * m + r - 1;
  const int64_t y_rows = tl.tiles_h * m, y_cols = tl.tiles_w * m;
  const int64_t x_floats = tl.per_chunk * x_rows * x_cols * tl.Cp;
  const int64_t y_floats = tl.per_chunk * y_rows * y_cols * tl.Mp;
  const int64_t sums = a * a * M * g.C;
  const int parts = num_threads();
  Scratch partial(be, parts * sums);
  PartScratch xpads(be, parts, x_floats), ypads(be, parts, y_floats);
  PartScratch Vs(be, parts, a * a * tl.max_nt * tl.Cp), Zs(be, parts, a * a * tl.max_nt * tl.Mp);
  {
    blas::SingleThreaded one_thread_per_gemm;
    parallel_parts(N, parts, [&](int64_t q, int64_t i0, int64_t i1) {
      float *xpad = xpads.part(q), *ypad = ypads.part(q), *V = Vs.part(q), *Z = Zs.part(q);
      const ChannelsLast xs{xpad, x_rows, x_cols, tl.Cp};
      const ChannelsLast ys{ypad, y_rows, y_cols, tl.Mp};
      std::fill(xpad, xpad + x_floats, 0.f);
      std::fill(ypad, ypad + y_floats, 0.f);
      float* W = partial.get() + q * sums;  // [a*a, M, C]
      std::fill(W, W + sums, 0.f);
      for (int64_t n0 = i0; n0 < i1; n0 += tl.per_chunk) {
        const int64_t imgs = std::min(tl.per_chunk, i1 - n0), nt = imgs * tl.T;
        pack_channels_last(x + n0 * g.C * g.H * g.W, imgs, g.C, g.H, g.W, g.ph, g.pw, xs);
        tile_transform_dispatch(a, a, xs, imgs, tl.tiles_h, tl.tiles_w, m, f.BT.data(), V);
        pack_channels_last(gy + n0 * M * g.OH * g.OW, imgs, M, g.OH, g.OW, 0, 0, ys);
        tile_transform_dispatch(a, m, ys, imgs, tl.tiles_h, tl.tiles_w, m, fw.G.data(), Z);
        // W[xi] [M, C] += Z[xi]^T V[xi], Z[xi] being [nt, Mp] and V[xi] [nt, Cp].
        for (int xi = 0; xi < a * a; ++xi)
          be.gemm(true, false, M, g.C, nt, 1.f, Z + xi * nt * tl.Mp, tl.Mp, V + xi * nt * tl.Cp,
                  tl.Cp, 1.f, W + xi * M * g.C, g.C);
      }
    });
  }
  // gw[co, c] = AT (sum over parts of W[:, co, c]) AT^T, AT being r x a.
  parallel_for(M * g.C, 64, [&](int64_t p0, int64_t p1) {
    float s[8 * 8], tmp[8 * 8];
    for (int64_t pc = p0; pc < p1; ++pc) {
      for (int xi = 0; xi < a * a; ++xi) {
        float acc = 0.f;
        for (int q = 0; q < parts; ++q) acc += partial.get()[q * sums + xi * M * g.C + pc];
        s[xi] = acc;
      }
      for (int i = 0; i < r; ++i)
        for (int v = 0; v < a; ++v) {
          float acc = 0.f;
          for (int u = 0; u < a; ++u) acc += fw.AT[i * a + u] * s[u * a + v];
          tmp[i * a + v] = acc;
        }
      float* out = gw + pc * r * r;
      for (int i = 0; i < r; ++i)
        for (int j = 0; j < r; ++j) {
          float acc = 0.f;
          for (int v = 0; v < a; ++v) acc += tmp[i * a + v] * fw.AT[j * a + v];
          out[i * r + j] = acc;
        }
    }
  });
}

}  // namespace trine::cpu
