// Random numbers: Philox known answers, seeding and reproducibility, the counter stream shared by
// host and backend draws, rand/randn statistics, unbiased randint, shuffles and dropout masks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "engine/error.h"
#include "engine/ops.h"
#include "engine/philox.h"
#include "engine/random.h"

namespace trine {
namespace {

struct Moments {
  double mean, std, min, max;
};
Moments moments(const std::vector<float>& v) {
  double s = 0, ss = 0, lo = INFINITY, hi = -INFINITY;
  for (float x : v) s += x, lo = std::min<double>(lo, x), hi = std::max<double>(hi, x);
  const double mean = s / v.size();
  for (float x : v) ss += (x - mean) * (x - mean);
  return {mean, std::sqrt(ss / v.size()), lo, hi};
}

TEST(Philox, KnownAnswer) {
  // Random123's kat_vectors: philox4x32-10, counter 0 and key 0.
  philox::U4 w = philox::draw(0, 0);
  EXPECT_EQ(w.x[0], 0x6627e8d5u);
  EXPECT_EQ(w.x[1], 0xe169c58du);
  EXPECT_EQ(w.x[2], 0xbc57ac4cu);
  EXPECT_EQ(w.x[3], 0x9b00dbd8u);
  // to_unit keeps 24 bits: [0, 1).
  EXPECT_EQ(philox::to_unit(0), 0.f);
  EXPECT_LT(philox::to_unit(0xFFFFFFFFu), 1.f);
  EXPECT_GT(philox::to_unit(0xFFFFFFFFu), 0.9999f);
}

TEST(Random, ManualSeedReproduces) {
  manual_seed(42);
  std::vector<float> a = Tensor::rand({100}).to_vector();
  std::vector<float> an = Tensor::randn({50}).to_vector();
  manual_seed(42);
  EXPECT_EQ(Tensor::rand({100}).to_vector(), a);
  EXPECT_EQ(Tensor::randn({50}).to_vector(), an);
  manual_seed(43);
  EXPECT_NE(Tensor::rand({100}).to_vector(), a);
  // Consecutive draws differ (the generator advances).
  manual_seed(42);
  Tensor::rand({100});
  EXPECT_NE(Tensor::rand({100}).to_vector(), a);
  EXPECT_EQ(default_generator().seed(), 42u);
  EXPECT_EQ(default_generator().offset(), 200u);
}

TEST(Random, DrawsTakeConsecutiveCounters) {
  // rand(10) then rand(5) is rand(15) split in two, and the host draws use the same stream.
  manual_seed(7);
  std::vector<float> a = Tensor::rand({10}).to_vector(), b = Tensor::rand({5}).to_vector();
  manual_seed(7);
  std::vector<float> whole = Tensor::rand({15}).to_vector();
  a.insert(a.end(), b.begin(), b.end());
  EXPECT_EQ(a, whole);
  manual_seed(7);
  Generator& g = default_generator();
  for (int i = 0; i < 15; ++i) EXPECT_EQ(g.uniform(), whole[i]) << i;
  // set_state restores a saved position.
  g.set_state(7, 10);
  EXPECT_EQ(Tensor::rand({5}).to_vector(), b);
  // A private generator is independent of the global one.
  Generator mine(7);
  EXPECT_EQ(mine.uniform(), whole[0]);
  EXPECT_EQ(mine.offset(), 1u);
}

TEST(Random, UniformStatistics) {
  manual_seed(1);
  const int n = 200000;
  Moments m = moments(Tensor::rand({n}).to_vector());
  EXPECT_NEAR(m.mean, 0.5, 0.005);
  EXPECT_NEAR(m.std, 1 / std::sqrt(12.0), 0.005);
  EXPECT_GE(m.min, 0.0);
  EXPECT_LT(m.max, 1.0);
  EXPECT_LT(m.min, 1e-3);
  EXPECT_GT(m.max, 1 - 1e-3);
  Moments r = moments(Tensor::rand({n}, -2.f, 3.f).to_vector());
  EXPECT_NEAR(r.mean, 0.5, 0.03);
  EXPECT_NEAR(r.std, 5 / std::sqrt(12.0), 0.03);
  EXPECT_GE(r.min, -2.0);
  EXPECT_LT(r.max, 3.0);
  // Ten equal bins hold about a tenth each.
  std::vector<float> v = Tensor::rand({n}).to_vector();
  std::vector<int> bins(10, 0);
  for (float x : v) ++bins[std::min(9, static_cast<int>(x * 10))];
  for (int b : bins) EXPECT_NEAR(b, n / 10, 5 * std::sqrt(n * 0.1 * 0.9)) << "bin count";
}

TEST(Random, NormalStatistics) {
  manual_seed(2);
  const int n = 200000;
  std::vector<float> v = Tensor::randn({n}).to_vector();
  Moments m = moments(v);
  EXPECT_NEAR(m.mean, 0.0, 0.01);
  EXPECT_NEAR(m.std, 1.0, 0.01);
  const double within1 =
      std::count_if(v.begin(), v.end(), [](float x) { return std::fabs(x) < 1.f; }) / double(n);
  const double within2 =
      std::count_if(v.begin(), v.end(), [](float x) { return std::fabs(x) < 2.f; }) / double(n);
  EXPECT_NEAR(within1, 0.6827, 0.01);
  EXPECT_NEAR(within2, 0.9545, 0.005);
  for (float x : v) ASSERT_TRUE(std::isfinite(x));
  Moments s = moments(Tensor::randn({n}, 3.f, 2.f).to_vector());
  EXPECT_NEAR(s.mean, 3.0, 0.02);
  EXPECT_NEAR(s.std, 2.0, 0.02);
  // Host draws agree in distribution.
  Generator g(3);
  double sum = 0, sq = 0;
  for (int i = 0; i < 50000; ++i) {
    const double x = g.normal();
    sum += x, sq += x * x;
  }
  EXPECT_NEAR(sum / 50000, 0.0, 0.02);
  EXPECT_NEAR(sq / 50000, 1.0, 0.03);
}

TEST(Random, RandintIsUnbiasedAndInRange) {
  Generator g(4);
  const int bound = 7, n = 70000;
  std::vector<int> counts(bound, 0);
  for (int i = 0; i < n; ++i) {
    const int64_t r = g.randint(bound);
    ASSERT_GE(r, 0);
    ASSERT_LT(r, bound);
    ++counts[r];
  }
  const double sigma = std::sqrt(n * (1.0 / bound) * (1 - 1.0 / bound));
  for (int c : counts) EXPECT_NEAR(c, n / bound, 5 * sigma);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(g.randint(1), 0);
  // A bound near 2^63: a plain `x % bound` would put ~40% (not 50%) of the draws in the upper
  // half, since 2^64 is not a multiple of the bound.
  const int64_t big = int64_t{3} << 61;
  int upper = 0;
  for (int i = 0; i < 20000; ++i) {
    const int64_t r = g.randint(big);
    ASSERT_GE(r, 0);
    ASSERT_LT(r, big);
    upper += r >= big / 2;
  }
  EXPECT_NEAR(upper / 20000.0, 0.5, 0.02);
  EXPECT_THROW(g.randint(0), Error);
  EXPECT_THROW(g.randint(-3), Error);
}

TEST(Random, ShuffleIsAUniformPermutation) {
  Generator g(5);
  std::vector<int> v(1000);
  std::iota(v.begin(), v.end(), 0);
  std::vector<int> s = v;
  g.shuffle(s);
  EXPECT_NE(s, v);
  std::vector<int> sorted = s;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, v);
  // Same seed, same order.
  Generator g2(5);
  std::vector<int> s2 = v;
  g2.shuffle(s2);
  EXPECT_EQ(s2, s);
  // All 24 orders of 4 elements are about equally likely (an off-by-one in Fisher-Yates is not).
  std::map<std::vector<int>, int> seen;
  const int trials = 24000;
  for (int t = 0; t < trials; ++t) {
    std::vector<int> p{0, 1, 2, 3};
    g.shuffle(p);
    ++seen[p];
  }
  EXPECT_EQ(seen.size(), 24u);
  const double sigma = std::sqrt(trials / 24.0 * (1 - 1 / 24.0));
  for (const auto& [perm, count] : seen) EXPECT_NEAR(count, trials / 24, 5 * sigma);
  std::vector<int> empty, one{9};
  g.shuffle(empty);
  g.shuffle(one);
  EXPECT_EQ(one, std::vector<int>{9});
}

TEST(Random, DropoutMaskRateAndScale) {
  manual_seed(6);
  Tensor x = Tensor::ones({100000});
  std::vector<float> y = dropout(x, 0.3f, true).to_vector();
  int64_t zeros = 0;
  for (float v : y) {
    if (v == 0.f)
      ++zeros;
    else
      ASSERT_FLOAT_EQ(v, 1.f / 0.7f);
  }
  EXPECT_NEAR(zeros / 100000.0, 0.3, 0.01);
  // The mask comes from the global generator: reseeding reproduces it.
  manual_seed(6);
  EXPECT_EQ(dropout(x, 0.3f, true).to_vector(), y);
  EXPECT_TRUE(dropout(x, 0.f, true).same(x));
}

}  // namespace
}  // namespace trine
