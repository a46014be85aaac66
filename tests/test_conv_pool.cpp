// conv2d and pooling, forward and backward, against plain-loop references on odd shapes, strides,
// padding and batches split into several im2col chunks; max-pool ties/NaN, the fused
// max_pool2d_relu, avg-pool padding.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "support/test_util.h"

namespace trine {
namespace {

using test::ConvShape;
using test::PoolShape;

// A 16 MB im2col column buffer: the chunk size conv2d was first written with, kept as the scale
// of the batched tests below (a batch whose columns need several such buffers).
constexpr int64_t kChunkBytes = 16 << 20;

int64_t col_bytes_per_image(const ConvShape& s) {
  return s.C * s.kh * s.kw * s.OH() * s.OW() * 4;
}

// Forward and backward of conv2d against ref_conv2d / ref_conv2d_backward.
void check_conv(const ConvShape& s, bool bias, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "N" << s.N << " C" << s.C << " " << s.H << "x" << s.W << " M"
                                    << s.M << " k" << s.kh << "x" << s.kw << " stride " << s.sh
                                    << "x" << s.sw << " pad " << s.ph << "x" << s.pw);
  Tensor x = test::random_tensor({s.N, s.C, s.H, s.W}, seed, -1.f, 1.f, true);
  Tensor w = test::random_tensor({s.M, s.C, s.kh, s.kw}, seed + 1, -1.f, 1.f, true);
  Tensor b = bias ? test::random_tensor({s.M}, seed + 2, -1.f, 1.f, true) : Tensor();
  Tensor y = conv2d(x, w, b, {s.sh, s.sw, s.ph, s.pw});
  ASSERT_EQ(y.shape(), (Shape{s.N, s.M, s.OH(), s.OW()}));

  const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
  const std::vector<float> bv = bias ? b.to_vector() : std::vector<float>();
  // float32 sums of K products of size <= 1 (forward, gx) or N*OH*OW of them (gw, gb).
  const double k_terms = static_cast<double>(s.C * s.kh * s.kw);
  const double img_terms = static_cast<double>(s.N * s.OH() * s.OW());
  EXPECT_TRUE(test::all_close_ref(y.to_vector(), test::ref_conv2d(s, xv, wv, bv),
                                  1e-5 + 3e-7 * k_terms, 1e-4));

  Tensor gy = test::random_tensor(y.shape(), seed + 3);
  y.backward(gy);
  std::vector<double> gx, gw, gb;
  test::ref_conv2d_backward(s, xv, wv, gy.to_vector(), gx, gw, gb);
  EXPECT_TRUE(test::all_close_ref(x.grad().to_vector(), gx,
                                  1e-5 + 3e-7 * static_cast<double>(s.M * s.kh * s.kw), 1e-4));
  EXPECT_TRUE(test::all_close_ref(w.grad().to_vector(), gw, 1e-5 + 3e-7 * img_terms, 1e-4));
  if (bias) {
    EXPECT_TRUE(test::all_close_ref(b.grad().to_vector(), gb, 1e-5 + 3e-7 * img_terms, 1e-4));
  }
}

TEST(Conv2d, MatchesLoopOnOddShapes) {
  const std::vector<ConvShape> shapes = {
      {1, 1, 1, 1, 1, 1, 1},                // 1x1 everything
      {2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1},    // padding, non-square input
      {3, 2, 11, 13, 5, 3, 3, 2, 2, 0, 0},  // stride 2, prime sizes
      {2, 3, 9, 7, 2, 5, 5, 3, 3, 2, 2},    // stride 3, padding 2
      {1, 4, 6, 10, 3, 1, 1, 2, 2, 0, 0},   // 1x1 kernel, stride 2
      {2, 2, 8, 5, 3, 2, 3, 2, 1, 1, 0},    // non-square kernel, stride and padding
      {1, 3, 4, 4, 2, 4, 4, 1, 1, 0, 0},    // kernel as large as the input: 1x1 output
      {2, 1, 3, 3, 2, 3, 3, 1, 1, 2, 2},    // padding wider than the valid overlap
      {2, 3, 6, 9, 4, 5, 5, 1, 1, 2, 2},    // 5x5 "same" padding (W1's convs: shifted copies)
      {1, 2, 2, 7, 3, 5, 5, 1, 1, 2, 2},    // "same" padding taller than the image
  };
  uint64_t seed = 1;
  for (const ConvShape& s : shapes) {
    check_conv(s, true, seed += 4);
    check_conv(s, false, seed += 4);
  }
}

TEST(Conv2d, BatchOf37SpansSeveralIm2colChunks) {
  const ConvShape s{37, 16, 31, 33, 8, 3, 3, 1, 1, 1, 1};
  // The columns of the batch need several 16 MB buffers with a short last one (37 = 28 + 9),
  // and 37 is prime, so no split of the batch into chunks or thread parts is even. (A wrong
  // leading dimension for a short last chunk once broke exactly this case.)
  const int64_t per_chunk = kChunkBytes / col_bytes_per_image(s);
  ASSERT_LT(per_chunk, s.N);
  ASSERT_NE(s.N % per_chunk, 0);
  check_conv(s, true, 100);
}

TEST(Conv2d, ImageLargerThanOneChunk) {
  // One image's columns alone exceed 16 MB.
  const ConvShape s{2, 64, 96, 96, 3, 3, 3, 1, 1, 1, 1};
  ASSERT_GT(col_bytes_per_image(s), kChunkBytes);
  check_conv(s, true, 110);
}

TEST(Conv2d, BatchOfOne) {
  check_conv({1, 3, 12, 17, 4, 3, 3, 2, 2, 1, 1}, true, 120);
}

// Backend::conv2d_forward/backward directly: the CPU override, and the generic chunked default
// (a qualified call skips the override) that other backends inherit. Outputs start as NaN so an
// element left unwritten shows.
void check_conv_composites(const ConvShape& s, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "N" << s.N << " C" << s.C << " " << s.H << "x" << s.W << " M"
                                    << s.M << " k" << s.kh << "x" << s.kw);
  Backend& cpu = backend_for(Device::cpu());
  const ConvGeom g{s.C, s.H, s.W, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.OH(), s.OW()};
  const std::vector<float> x = test::random_values(s.N * s.C * s.H * s.W, seed);
  const std::vector<float> w = test::random_values(s.M * s.C * s.kh * s.kw, seed + 1);
  const std::vector<float> b = test::random_values(s.M, seed + 2);
  const std::vector<float> gy = test::random_values(s.N * s.M * s.OH() * s.OW(), seed + 3);
  std::vector<double> want_gx, want_gw, want_gb;
  test::ref_conv2d_backward(s, x, w, gy, want_gx, want_gw, want_gb);
  const std::vector<double> want_y = test::ref_conv2d(s, x, w, b);
  const double k_terms = static_cast<double>(s.C * s.kh * s.kw);
  const double img_terms = static_cast<double>(s.N * s.OH() * s.OW());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (bool generic : {false, true}) {
    SCOPED_TRACE(generic ? "generic default" : "CPU override");
    std::vector<float> y(gy.size(), nan), gx(x.size(), nan), gw(w.size(), nan), gb(s.M, nan);
    if (generic) {
      cpu.Backend::conv2d_forward(x.data(), w.data(), b.data(), g, s.N, s.M, y.data());
      cpu.Backend::conv2d_backward(x.data(), w.data(), gy.data(), g, s.N, s.M, gx.data(), gw.data(),
                                   gb.data());
    } else {
      cpu.conv2d_forward(x.data(), w.data(), b.data(), g, s.N, s.M, y.data());
      cpu.conv2d_backward(x.data(), w.data(), gy.data(), g, s.N, s.M, gx.data(), gw.data(),
                          gb.data());
    }
    EXPECT_TRUE(test::all_close_ref(y, want_y, 1e-5 + 3e-7 * k_terms, 1e-4));
    EXPECT_TRUE(test::all_close_ref(gx, want_gx,
                                    1e-5 + 3e-7 * static_cast<double>(s.M * s.kh * s.kw), 1e-4));
    EXPECT_TRUE(test::all_close_ref(gw, want_gw, 1e-5 + 3e-7 * img_terms, 1e-4));
    EXPECT_TRUE(test::all_close_ref(gb, want_gb, 1e-5 + 3e-7 * img_terms, 1e-4));
    // Null outputs are skipped; the others are still right.
    std::vector<float> gb_only(s.M, nan);
    if (generic)
      cpu.Backend::conv2d_backward(x.data(), w.data(), gy.data(), g, s.N, s.M, nullptr, nullptr,
                                   gb_only.data());
    else
      cpu.conv2d_backward(x.data(), w.data(), gy.data(), g, s.N, s.M, nullptr, nullptr,
                          gb_only.data());
    EXPECT_TRUE(test::all_close_ref(gb_only, want_gb, 1e-5 + 3e-7 * img_terms, 1e-4));
    // Without bias the forward is the bare convolution.
    std::vector<float> y0(gy.size(), nan);
    if (generic)
      cpu.Backend::conv2d_forward(x.data(), w.data(), nullptr, g, s.N, s.M, y0.data());
    else
      cpu.conv2d_forward(x.data(), w.data(), nullptr, g, s.N, s.M, y0.data());
    EXPECT_TRUE(
        test::all_close_ref(y0, test::ref_conv2d(s, x, w, {}), 1e-5 + 3e-7 * k_terms, 1e-4));
  }
}

TEST(Conv2d, BackendCompositesGenericAndCpu) {
  check_conv_composites({2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1}, 500);
  check_conv_composites({3, 2, 11, 13, 5, 3, 3, 2, 2, 0, 0}, 510);
  check_conv_composites({1, 4, 6, 10, 3, 1, 1, 2, 2, 0, 0}, 520);
  check_conv_composites({2, 2, 8, 5, 3, 2, 3, 2, 1, 1, 0}, 530);
  check_conv_composites({2, 3, 6, 9, 4, 5, 5, 1, 1, 2, 2}, 535);  // "same" 5x5: shifted copies
  // Several chunks in the generic default, the last one short (37 = 28 + 9).
  check_conv_composites({37, 16, 31, 33, 8, 3, 3, 1, 1, 1, 1}, 540);
  // Winograd in the CPU override (16+ channels, stride 1, 3x3 or 5x5): W1's conv2, a 3x3 one.
  check_conv_composites({5, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2}, 550);
  check_conv_composites({3, 16, 13, 10, 24, 3, 3, 1, 1, 1, 0}, 560);
}

// The CPU backend has no TF32: asking for it is a UsageError that says so, and its convolutions
// stay FP32.
TEST(Conv2d, CpuBackendRefusesTf32) {
  Backend& cpu = backend_for(Device::cpu());
  EXPECT_EQ(cpu.conv_math(), ConvMath::FP32);
  EXPECT_NO_THROW(cpu.set_conv_math(ConvMath::FP32));
  try {
    cpu.set_conv_math(ConvMath::TF32);
    ADD_FAILURE() << "set_conv_math(TF32) on the CPU did not throw";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("TF32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cpu"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cpu.conv_math(), ConvMath::FP32);
}

TEST(Conv2d, Errors) {
  Tensor x = Tensor::zeros({1, 3, 5, 5});
  EXPECT_TRUE(test::throws_with<Error>(
      [&] {
        conv2d(x, Tensor::zeros({2, 4, 3, 3}), Tensor());
      },
      {"conv2d", "channels"}));
  EXPECT_THROW(conv2d(Tensor::zeros({3, 5, 5}), Tensor::zeros({2, 3, 3, 3}), Tensor()), Error);
  EXPECT_THROW(conv2d(x, Tensor::zeros({2, 3, 6, 6}), Tensor()), Error);
  EXPECT_THROW(conv2d(x, Tensor::zeros({2, 3, 3, 3}), Tensor(), {0, 1, 0, 0}), Error);
  EXPECT_THROW(conv2d(x, Tensor::zeros({2, 3, 3, 3}), Tensor::zeros({3})), Error);
  EXPECT_TRUE(test::throws_with<Error>(
      [&] {
        conv2d(x, Tensor::zeros({2, 3, 3, 3}), Tensor::from_ints({0, 0}));
      },
      {"conv2d", "bias", "float32", "int32"}));
}

// ------------------------------------------------------------------------------ pooling

const std::vector<PoolShape> kPoolShapes = {
    {2, 3, 7, 6, 3, 2, 1},  // padding, non-square
    {1, 2, 5, 5, 2, 2, 0},  // odd size floors
    {1, 1, 6, 6, 3, 1, 1},  // overlapping windows
    {2, 2, 9, 8, 3, 3, 0},  // stride 3
    {1, 1, 1, 1, 1, 1, 0},  // trivial
    {3, 1, 4, 7, 2, 1, 1},  // stride 1, padding 1
};

Tensor pool_input(const PoolShape& s, uint64_t seed, bool ties) {
  Shape shape{s.N, s.C, s.H, s.W};
  if (!ties) return test::random_tensor(shape, seed, -1.f, 1.f, true);
  // Values from {0, 1, 2}: most windows hold several equal maxima.
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<float> v(static_cast<size_t>(numel_of(shape)));
  for (float& x : v) x = static_cast<float>(rng() % 3);
  return Tensor::from_vector(v, shape).set_requires_grad(true);
}

TEST(Pooling, MaxPoolMatchesLoopWithTies) {
  uint64_t seed = 200;
  for (const PoolShape& s : kPoolShapes)
    for (bool ties : {false, true}) {
      SCOPED_TRACE(::testing::Message() << s.H << "x" << s.W << " k" << s.k << " s" << s.s << " p"
                                        << s.p << (ties ? " ties" : ""));
      Tensor x = pool_input(s, ++seed, ties);
      Tensor y = max_pool2d(x, s.k, s.s, s.p);
      ASSERT_EQ(y.shape(), (Shape{s.N, s.C, s.OH(), s.OW()}));
      const std::vector<float> xv = x.to_vector();
      EXPECT_TRUE(test::all_close_ref(y.to_vector(), test::ref_max_pool(s, xv), 0));
      Tensor gy = test::random_tensor(y.shape(), ++seed);
      y.backward(gy);
      // Each gradient element is a sum of a few gy values: exact up to float addition order.
      EXPECT_TRUE(test::all_close_ref(x.grad().to_vector(),
                                      test::ref_max_pool_backward(s, xv, gy.to_vector()), 1e-6));
    }
}

const std::vector<PoolShape> k2x2Shapes = {
    {2, 3, 28, 28, 2, 2, 0},  // W1's first pool: 14 windows a row, a full and a partial block
    {3, 2, 14, 14, 2, 2, 0},  // W1's second: 7, one partial block; no room after the last row
    {2, 2, 35, 33, 2, 2, 0},  // 17 rows of 16 windows, a last row and column in none
    {1, 3, 3, 5, 2, 2, 0},    // one row of two windows a plane: never room
    {2, 1, 6, 40, 2, 2, 0},   // 20 a row: two full blocks and a partial one
    {1, 1, 2, 2, 2, 2, 0},
};

// Pooling input of `kind`: "random" in [-1, 1), "ties" from {0, 1, 2}, "nan": random with about
// one value in 8 NaN (some windows hold two).
Tensor pool_values(const PoolShape& s, uint64_t seed, const std::string& kind) {
  Tensor x = pool_input(s, seed, kind == "ties");
  if (kind != "nan") return x;
  std::vector<float> v = x.to_vector();
  for (size_t i = 0; i < v.size(); ++i)
    if ((i * 7919 + seed) % 8 == 0) v[i] = std::numeric_limits<float>::quiet_NaN();
  return Tensor::from_vector(v, x.shape()).set_requires_grad(true);
}

// The 2x2/2 max pool takes the CPU backend's vectorized path: blocks of 8 windows, a row's last
// partial block reading and writing past the row where the plane has room for it, else through
// padded copies; the gradient written cell by cell without a zero fill. Rows of one, two and
// partial blocks, odd sizes (a last row and column in no window), ties and NaNs, against the loop.
TEST(Pooling, MaxPool2x2MatchesLoop) {
  uint64_t seed = 230;
  for (const PoolShape& s : k2x2Shapes)
    for (const char* values : {"random", "ties", "nan"}) {
      SCOPED_TRACE(::testing::Message()
                   << s.N << "x" << s.C << "x" << s.H << "x" << s.W << " " << values);
      Tensor x = pool_values(s, ++seed, values);
      const std::vector<float> xv = x.to_vector();
      Tensor y = max_pool2d(x, 2);
      ASSERT_EQ(y.shape(), (Shape{s.N, s.C, s.OH(), s.OW()}));
      const std::vector<float> got = y.to_vector();
      const std::vector<double> want = test::ref_max_pool(s, xv);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_TRUE(std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i])
            << "output " << i << ": " << got[i] << " vs " << want[i];
      Tensor gy = test::random_tensor(y.shape(), ++seed);
      y.backward(gy);
      // Windows do not overlap: each input cell's gradient is one gy value or 0, exactly.
      EXPECT_TRUE(test::all_close_ref(x.grad().to_vector(),
                                      test::ref_max_pool_backward(s, xv, gy.to_vector()), 0));
    }
}

// max_pool2d_relu, the fused op, against max_pool2d(relu(x)): the same values and gradients, bit
// for bit, on every pooling shape (the 2x2 path and the general loop), with negative windows,
// maxima of exactly 0 ("ties" shifted down by one: {-1, 0, 1}), and NaNs, which the ReLU turns
// into 0 before the pooling. Without NaNs, also against relu(max_pool2d(x)).
TEST(Pooling, MaxPoolReluIsMaxPoolOfRelu) {
  std::vector<PoolShape> shapes = kPoolShapes;
  shapes.insert(shapes.end(), k2x2Shapes.begin(), k2x2Shapes.end());
  uint64_t seed = 250;
  for (const PoolShape& s : shapes)
    for (const char* values : {"random", "ties", "nan"}) {
      SCOPED_TRACE(::testing::Message() << s.N << "x" << s.C << "x" << s.H << "x" << s.W << " k"
                                        << s.k << " s" << s.s << " p" << s.p << " " << values);
      Tensor x0 = pool_values(s, ++seed, values);
      if (std::string(values) == "ties") x0 = (x0 - 1.f).detach();
      const bool nan = std::string(values) == "nan";
      Tensor gy;
      for (bool relu_first : {true, false}) {
        if (nan && !relu_first) continue;
        SCOPED_TRACE(relu_first ? "max_pool2d(relu(x))" : "relu(max_pool2d(x))");
        Tensor xa = x0.detach().set_requires_grad(true), xb = x0.detach().set_requires_grad(true);
        Tensor ya = max_pool2d_relu(xa, s.k, s.s, s.p);
        Tensor yb =
            relu_first ? max_pool2d(relu(xb), s.k, s.s, s.p) : relu(max_pool2d(xb, s.k, s.s, s.p));
        ASSERT_EQ(ya.shape(), yb.shape());
        EXPECT_EQ(ya.to_vector(), yb.to_vector());
        if (!gy.defined()) gy = test::random_tensor(ya.shape(), ++seed);
        ya.backward(gy), yb.backward(gy);
        EXPECT_EQ(xa.grad().to_vector(), xb.grad().to_vector());
      }
    }
}

TEST(Pooling, MaxPoolPaddingNeverWins) {
  // All values negative: a zero-padded window would return 0.
  const PoolShape s{1, 2, 5, 4, 3, 2, 1};
  Tensor x = test::random_tensor({1, 2, 5, 4}, 210, -3.f, -1.f, true);
  Tensor y = max_pool2d(x, 3, 2, 1);
  for (float v : y.to_vector()) EXPECT_LT(v, -0.5f);
  EXPECT_TRUE(test::all_close_ref(y.to_vector(), test::ref_max_pool(s, x.to_vector()), 0));
}

TEST(Pooling, MaxPoolPropagatesNaN) {
  std::vector<float> v(16, 1.f);
  v[5] = std::numeric_limits<float>::quiet_NaN();  // (1, 1)
  v[0] = 7.f;                                      // same first window, before the NaN
  Tensor y = max_pool2d(Tensor::from_vector(v, {1, 1, 4, 4}), 2);
  std::vector<float> out = y.to_vector();
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], 1.f);
  EXPECT_EQ(out[3], 1.f);
}

TEST(Pooling, AvgPoolMatchesLoopCountIncludePad) {
  uint64_t seed = 300;
  for (const PoolShape& s : kPoolShapes) {
    SCOPED_TRACE(::testing::Message()
                 << s.H << "x" << s.W << " k" << s.k << " s" << s.s << " p" << s.p);
    Tensor x = pool_input(s, ++seed, false);
    Tensor y = avg_pool2d(x, s.k, s.s, s.p);
    ASSERT_EQ(y.shape(), (Shape{s.N, s.C, s.OH(), s.OW()}));
    EXPECT_TRUE(test::all_close_ref(y.to_vector(), test::ref_avg_pool(s, x.to_vector()), 1e-6));
    Tensor gy = test::random_tensor(y.shape(), ++seed);
    y.backward(gy);
    EXPECT_TRUE(test::all_close_ref(x.grad().to_vector(),
                                    test::ref_avg_pool_backward(s, gy.to_vector()), 1e-6));
  }
  // A corner window with padding 1 covers 1 valid cell of 4: the mean counts the padding.
  Tensor ones = Tensor::ones({1, 1, 2, 2});
  EXPECT_EQ(avg_pool2d(ones, 2, 2, 1).to_vector(), std::vector<float>(4, 0.25f));
}

TEST(Pooling, StrideDefaultsToKernel) {
  Tensor x = test::random_tensor({1, 1, 6, 6}, 400);
  EXPECT_EQ(max_pool2d(x, 2).shape(), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(max_pool2d(x, 2).to_vector(), max_pool2d(x, 2, 2).to_vector());
  EXPECT_EQ(avg_pool2d(x, 3).to_vector(), avg_pool2d(x, 3, 3).to_vector());
}

TEST(Pooling, GlobalAvgPool) {
  Tensor x = test::random_tensor({3, 4, 5, 7}, 410, -1.f, 1.f, true);
  Tensor y = global_avg_pool2d(x);
  ASSERT_EQ(y.shape(), (Shape{3, 4}));
  std::vector<float> xv = x.to_vector();
  std::vector<double> want(12, 0.0);
  for (int p = 0; p < 12; ++p) {
    for (int i = 0; i < 35; ++i) want[p] += xv[p * 35 + i];
    want[p] /= 35;
  }
  EXPECT_TRUE(test::all_close_ref(y.to_vector(), want, 1e-6));
  sum(y).backward();
  EXPECT_TRUE(test::all_close(x.grad().to_vector(), std::vector<float>(xv.size(), 1.f / 35), 1e-7));
}

TEST(Pooling, EmptyBatch) {
  // An empty batch (e.g. the last, empty split of a dataset) passes through every pooling op.
  Tensor x = Tensor::zeros({0, 3, 4, 4}).set_requires_grad(true);
  EXPECT_EQ(max_pool2d(x, 2).shape(), (Shape{0, 3, 2, 2}));
  EXPECT_EQ(avg_pool2d(x, 3, 1, 1).shape(), (Shape{0, 3, 4, 4}));
  Tensor g = global_avg_pool2d(x);
  EXPECT_EQ(g.shape(), (Shape{0, 3}));
  sum(g).backward();
  EXPECT_EQ(x.grad().shape(), x.shape());
  EXPECT_EQ(conv2d(x, Tensor::zeros({2, 3, 3, 3}), Tensor::zeros({2})).shape(),
            (Shape{0, 2, 2, 2}));
}

TEST(Pooling, Errors) {
  Tensor x = Tensor::zeros({1, 1, 4, 4});
  EXPECT_THROW(max_pool2d(x, 2, 2, 2), Error);  // padding above half the kernel
  EXPECT_THROW(max_pool2d(x, 7), Error);        // kernel larger than the padded input
  EXPECT_THROW(avg_pool2d(Tensor::zeros({4, 4}), 2), Error);
  EXPECT_THROW(avg_pool2d(x, 0), Error);
  EXPECT_THROW(global_avg_pool2d(Tensor::zeros({2, 3})), Error);
}

}  // namespace
}  // namespace trine
