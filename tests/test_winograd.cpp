// Winograd convolution on the CPU (engine/cpu/winograd.h): the Toom-Cook transforms against a
// direct 1-D correlation, and the convolution and its gradients against the plain-loop
// references on odd shapes (sizes not a multiple of the tile, every padding up to r - 1, several
// chunks of images), outputs pre-filled with NaN; when CpuBackend takes the path; and results that
// do not depend on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu/winograd.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "support/test_util.h"

namespace trine {
namespace {

using test::ConvShape;

ConvGeom geom(const ConvShape& s) {
  return {s.C, s.H, s.W, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.OH(), s.OW()};
}

// y_j = sum_i AT[j, i] (G g)_i (BT d)_i equals sum_k g_k d_(j+k), for j < m.
TEST(Winograd, TransformsComputeCorrelation) {
  for (auto [m, r] :
       std::vector<std::pair<int, int>>{{2, 3}, {4, 3}, {2, 5}, {3, 3}, {1, 4}, {6, 3}}) {
    SCOPED_TRACE(::testing::Message() << "F(" << m << ", " << r << ")");
    const cpu::WinogradTransform t = cpu::make_winograd(m, r);
    ASSERT_EQ(t.a, m + r - 1);
    for (uint64_t seed = 0; seed < 5; ++seed) {
      const std::vector<float> g = test::random_values(static_cast<size_t>(r), 10 * seed + m);
      const std::vector<float> d = test::random_values(static_cast<size_t>(t.a), 10 * seed + r + 1);
      std::vector<double> prod(static_cast<size_t>(t.a));
      for (int i = 0; i < t.a; ++i) {
        double gg = 0, dd = 0;
        for (int k = 0; k < r; ++k) gg += t.G[i * r + k] * double{g[k]};
        for (int k = 0; k < t.a; ++k) dd += t.BT[i * t.a + k] * double{d[k]};
        prod[i] = gg * dd;
      }
      for (int j = 0; j < m; ++j) {
        double got = 0, want = 0;
        for (int i = 0; i < t.a; ++i) got += t.AT[j * t.a + i] * prod[i];
        for (int k = 0; k < r; ++k) want += double{g[k]} * d[j + k];
        EXPECT_NEAR(got, want, 1e-5 * (1 + std::abs(want))) << "output " << j;
      }
    }
  }
  EXPECT_THROW(cpu::make_winograd(6, 5), Error);  // a = 10: too many points
  EXPECT_THROW(cpu::make_winograd(0, 3), Error);
}

// The F(2, 3) Lavin & Gray print, up to the signs of rows (which cancel between G and BT).
TEST(Winograd, F23IsTheKnownOne) {
  const cpu::WinogradTransform t = cpu::make_winograd(2, 3);
  const float bt[4][4] = {{-1, 0, 1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(t.BT[i * 4 + j], bt[i][j]) << i << "," << j;
  const float g[4][3] = {{-1, 0, 0}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0, 0, 1}};
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(t.G[i * 3 + k], g[i][k]) << i << "," << k;
}

// Forward, input and weight gradients through the Winograd functions directly (any channel count),
// against ref_conv2d / ref_conv2d_backward in double.
void check_winograd(const ConvShape& s, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "N" << s.N << " C" << s.C << " " << s.H << "x" << s.W << " M"
                                    << s.M << " k" << s.kh << " pad " << s.ph << "x" << s.pw);
  Backend& cpu = backend_for(Device::cpu());
  const ConvGeom g = geom(s);
  const std::vector<float> x = test::random_values(s.N * s.C * s.H * s.W, seed);
  const std::vector<float> w = test::random_values(s.M * s.C * s.kh * s.kw, seed + 1);
  const std::vector<float> b = test::random_values(s.M, seed + 2);
  const std::vector<float> gy = test::random_values(s.N * s.M * s.OH() * s.OW(), seed + 3);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> y(gy.size(), nan), gx(x.size(), nan), gw(w.size(), nan);
  cpu::winograd_conv2d_forward(cpu, x.data(), w.data(), b.data(), g, s.N, s.M, y.data());
  cpu::winograd_conv2d_input_grad(cpu, w.data(), gy.data(), g, s.N, s.M, gx.data());
  cpu::winograd_conv2d_weight_grad(cpu, x.data(), gy.data(), g, s.N, s.M, gw.data());
  std::vector<double> want_gx, want_gw, want_gb;
  test::ref_conv2d_backward(s, x, w, gy, want_gx, want_gw, want_gb);
  // Inputs in [-1, 1): outputs are sums of C r r (or M r r) products. The transforms' rounding
  // grows with the tile (F(4, 3) and F(2, 5) reach 10^-6 relative to that count).
  const double k_terms = static_cast<double>(s.C * s.kh * s.kw);
  const double gx_terms = static_cast<double>(s.M * s.kh * s.kw);
  EXPECT_TRUE(test::all_close_ref(y, test::ref_conv2d(s, x, w, b), 1e-5 + 2e-6 * k_terms, 1e-4));
  EXPECT_TRUE(test::all_close_ref(gx, want_gx, 1e-5 + 2e-6 * gx_terms, 1e-4));
  const double gw_terms = static_cast<double>(s.N * s.OH() * s.OW());
  EXPECT_TRUE(test::all_close_ref(gw, want_gw, 1e-5 + 2e-6 * gw_terms, 1e-4));
  std::vector<float> y0(gy.size(), nan);  // without bias
  cpu::winograd_conv2d_forward(cpu, x.data(), w.data(), nullptr, g, s.N, s.M, y0.data());
  EXPECT_TRUE(test::all_close_ref(y0, test::ref_conv2d(s, x, w, {}), 1e-5 + 2e-6 * k_terms, 1e-4));
}

TEST(Winograd, ConvAndGradientsMatchLoopOnOddShapes) {
  // {N, C, H, W, M, kh, kw, sh, sw, ph, pw}
  check_winograd({2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1}, 600);    // "same" 3x3, 7 not a multiple of 4
  check_winograd({3, 2, 11, 13, 5, 3, 3, 1, 1, 0, 0}, 610);  // valid 3x3
  check_winograd({1, 4, 6, 10, 3, 3, 3, 1, 1, 2, 0}, 620);   // padding r - 1, asymmetric
  check_winograd({2, 3, 2, 3, 2, 3, 3, 1, 1, 1, 1}, 630);    // image smaller than a tile
  check_winograd({2, 5, 14, 14, 6, 5, 5, 1, 1, 2, 2}, 640);  // W1's conv2 geometry, few channels
  check_winograd({2, 3, 9, 8, 4, 5, 5, 1, 1, 0, 4}, 650);    // valid rows, padding 4 columns
  check_winograd({1, 2, 5, 5, 3, 5, 5, 1, 1, 1, 3}, 660);
  // Many chunks of images, the last one short, and wide channel counts.
  check_winograd({37, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2}, 670);
  check_winograd({9, 24, 33, 17, 20, 3, 3, 1, 1, 1, 1}, 680);
  check_winograd({0, 16, 5, 5, 16, 3, 3, 1, 1, 1, 1}, 690);  // empty batch: gw is zero
}

TEST(Winograd, CpuConvTakesThePathForSuitableShapes) {
  const auto suits = [](const ConvShape& s) { return cpu::winograd_suits(geom(s), s.M); };
  const bool was = cpu::winograd_enabled();
  cpu::set_winograd_enabled(true);
  EXPECT_TRUE(suits({128, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2}));   // W1 conv2
  EXPECT_TRUE(suits({128, 16, 64, 64, 16, 3, 3, 1, 1, 1, 1}));   // W2 conv2
  EXPECT_TRUE(suits({1, 16, 3, 3, 16, 3, 3, 1, 1, 2, 2}));       // padding r - 1
  EXPECT_FALSE(suits({128, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2}));   // W1 conv1: one channel in
  EXPECT_FALSE(suits({128, 32, 14, 14, 8, 5, 5, 1, 1, 2, 2}));   // few channels out
  EXPECT_FALSE(suits({128, 32, 14, 14, 64, 5, 5, 2, 2, 2, 2}));  // stride 2
  EXPECT_FALSE(suits({128, 32, 14, 14, 64, 7, 7, 1, 1, 3, 3}));  // no transform for 7x7
  EXPECT_FALSE(suits({128, 32, 14, 14, 64, 3, 5, 1, 1, 1, 2}));  // not square
  EXPECT_FALSE(suits({128, 32, 14, 14, 64, 3, 3, 1, 1, 3, 1}));  // padding beyond r - 1
  cpu::set_winograd_enabled(false);
  EXPECT_FALSE(suits({128, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2}));  // turned off
  cpu::set_winograd_enabled(was);
}

// The chunking of images depends on the geometry only: one thread and two give the same bits.
TEST(Winograd, ResultDoesNotDependOnThreads) {
  const ConvShape s{19, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2};
  Backend& cpu = backend_for(Device::cpu());
  const std::vector<float> x = test::random_values(s.N * s.C * s.H * s.W, 700);
  const std::vector<float> w = test::random_values(s.M * s.C * s.kh * s.kw, 701);
  const std::vector<float> gy = test::random_values(s.N * s.M * s.OH() * s.OW(), 702);
  const int threads = num_threads();
  std::vector<std::vector<float>> ys, gxs;
  for (int n : {1, 2, 3}) {
    set_num_threads(n);
    std::vector<float> y(gy.size()), gx(x.size());
    cpu::winograd_conv2d_forward(cpu, x.data(), w.data(), nullptr, geom(s), s.N, s.M, y.data());
    cpu::winograd_conv2d_input_grad(cpu, w.data(), gy.data(), geom(s), s.N, s.M, gx.data());
    ys.push_back(y), gxs.push_back(gx);
  }
  set_num_threads(threads);
  EXPECT_EQ(ys[0], ys[1]);
  EXPECT_EQ(ys[0], ys[2]);
  EXPECT_EQ(gxs[0], gxs[1]);
  EXPECT_EQ(gxs[0], gxs[2]);
}

}  // namespace
}  // namespace trine
