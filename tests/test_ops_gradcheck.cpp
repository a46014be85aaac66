// Finite-difference gradient checks for every differentiable op in engine/ops.h.
//
// Tolerances: gradcheck's defaults (eps 1e-3, |analytic - numeric| <= 1e-3 + 1e-2 |numeric|).
// The functions run in float32, so a central difference carries ~1e-7 |out| / eps of rounding
// noise: ~1e-4 for the outputs of order 1 used here, well inside atol. Inputs stay at least
// 20 eps away from every kink (relu/abs at 0, clamp bounds, max/min ties, pooling arg-max
// switches), so no finite difference straddles one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "support/test_util.h"

namespace trine {
namespace {

using test::away_from_zero;
using test::distinct_tensor;
using test::gradcheck_ok;
using test::random_tensor;

using Unary = std::function<Tensor(const Tensor&)>;
using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;

GradcheckFn f1(Unary op) {
  return [op](const std::vector<Tensor>& in) { return op(in[0]); };
}
GradcheckFn f2(Binary op) {
  return [op](const std::vector<Tensor>& in) { return op(in[0], in[1]); };
}

Tensor leaf(const Shape& s, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  return random_tensor(s, seed, lo, hi, true);
}

Tensor leaf_values(const std::vector<float>& v) {
  return Tensor::from_vector(v).set_requires_grad(true);
}

// ------------------------------------------------------------------------------ binary

struct ShapePair {
  Shape a, b;
};
const std::vector<ShapePair> kBroadcastCases = {
    {{2, 3}, {2, 3}}, {{2, 3}, {3}},    {{3}, {2, 3}}, {{2, 1, 4}, {3, 1}},
    {{}, {2, 3}},     {{4, 1}, {1, 5}}, {{2, 3}, {}},
};

TEST(GradcheckBinary, AddSubMulDivBroadcast) {
  for (const ShapePair& c : kBroadcastCases) {
    SCOPED_TRACE(shape_str(c.a) + " with " + shape_str(c.b));
    Tensor a = leaf(c.a, 1), b = leaf(c.b, 2);
    Tensor pos = leaf(c.b, 3, 0.5f, 2.f);  // divisors away from 0
    EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return add(x, y); }), {a, b}));
    EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return sub(x, y); }), {a, b}));
    EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return mul(x, y); }), {a, b}));
    EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return div(x, y); }), {a, pos}));
  }
}

TEST(GradcheckBinary, OneSideConstant) {
  Tensor a = leaf({2, 3}, 4);
  Tensor k = random_tensor({3}, 5, 0.5f, 2.f);  // no grad
  EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return div(x, y); }), {a, k}));
  EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return div(y, x * x + 1.f); }), {a, k}));
  EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return mul(y, x); }), {a, k}));
}

TEST(GradcheckBinary, MaximumMinimumAwayFromTies) {
  for (const ShapePair& c : kBroadcastCases) {
    SCOPED_TRACE(shape_str(c.a) + " with " + shape_str(c.b));
    // a on a grid of 0.1, b on the grid shifted by 0.05: every pair differs by >= 0.05.
    Tensor a = distinct_tensor(c.a, 6, 0.1f, true);
    Tensor b = (distinct_tensor(c.b, 7, 0.1f) + 0.05f).set_requires_grad(true);
    EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return maximum(x, y); }), {a, b}));
    EXPECT_TRUE(gradcheck_ok(f2([](auto& x, auto& y) { return minimum(x, y); }), {a, b}));
  }
}

TEST(GradcheckBinary, MaximumMinimumTiesGoToFirst) {
  Tensor a = leaf_values({1, 2, 5});
  Tensor b = leaf_values({1, 3, 4});
  sum(maximum(a, b)).backward();
  EXPECT_EQ(a.grad().to_vector(), (std::vector<float>{1, 0, 1}));
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{0, 1, 0}));
  a.zero_grad(), b.zero_grad();
  sum(minimum(a, b)).backward();
  EXPECT_EQ(a.grad().to_vector(), (std::vector<float>{1, 1, 0}));
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{0, 0, 1}));
}

// ------------------------------------------------------------------------------ unary

TEST(GradcheckUnary, SmoothOps) {
  Tensor x = leaf({3, 4}, 10, -2.f, 2.f);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return add_scalar(t, 1.5f); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return mul_scalar(t, -2.5f); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return neg(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return exp(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return square(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return sigmoid(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return tanh(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return softplus(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return pow(t, 3.f); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return pow(t, 2.f); }), {x}));
  // Operators map to the same ops.
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return 1.f - t * 2.f + t / 4.f - 3.f; }), {x}));
}

TEST(GradcheckUnary, SoftplusAndSigmoidSaturated) {
  Tensor x = leaf_values({-30.f, -12.f, 12.f, 30.f});
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return softplus(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return sigmoid(t); }), {x}));
  EXPECT_TRUE(test::all_finite(x.grad().to_vector()));
}

TEST(GradcheckUnary, PositiveDomainOps) {
  Tensor x = leaf({3, 4}, 11, 0.5f, 2.f);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return log(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return sqrt(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return reciprocal(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return pow(t, 2.5f); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return pow(t, -1.5f); }), {x}));
}

TEST(GradcheckUnary, KinkedOpsAwayFromKinks) {
  Tensor x = away_from_zero({3, 4}, 12, 0.2f, 1.5f, true);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return abs(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return relu(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return leaky_relu(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return leaky_relu(t, 0.3f); }), {x}));
  // Both sides of each clamp bound, >= 0.05 away from it.
  Tensor c = leaf_values({-0.9f, -0.55f, -0.45f, -0.1f, 0.15f, 0.3f, 0.45f, 0.55f, 0.8f, 1.2f});
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return clamp(t, -0.5f, 0.5f); }), {c}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return clamp_min(t, 0.2f); }), {c}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return clamp_min(t, 1.f); }), {c}));
}

TEST(GradcheckUnary, WhereAndMaskedFill) {
  Tensor cond = gt(random_tensor({2, 3}, 13), Tensor::scalar(0.f));
  ASSERT_GT(sum(cond).item(), 0.f);
  ASSERT_LT(sum(cond).item(), 6.f);
  Tensor a = leaf({2, 3}, 14), b = leaf({3}, 15);
  EXPECT_TRUE(gradcheck_ok(
      [cond](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); }, {a, b}));
  Tensor row_cond = Tensor::from_vector({1, 0}, {2, 1});  // broadcast condition
  EXPECT_TRUE(gradcheck_ok(
      [row_cond](const std::vector<Tensor>& in) { return where(row_cond, in[0], in[1]); }, {a, b}));
  EXPECT_TRUE(gradcheck_ok(
      [cond](const std::vector<Tensor>& in) { return masked_fill(in[0], cond, -3.f); }, {a}));
}

// ------------------------------------------------------------------------------ reductions

TEST(GradcheckReduce, SumAndMean) {
  Tensor x = leaf({2, 3, 4}, 20);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return sum(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return mean(t); }), {x}));
  const std::vector<std::vector<int64_t>> dim_sets = {{0}, {1}, {-1}, {0, 2}, {2, 0, 1}};
  for (const auto& dims : dim_sets)
    for (bool keep : {false, true}) {
      SCOPED_TRACE("dims " + shape_str(dims) + (keep ? " keepdim" : ""));
      EXPECT_TRUE(gradcheck_ok(f1([dims, keep](auto& t) { return sum(t, dims, keep); }), {x}));
      EXPECT_TRUE(gradcheck_ok(f1([dims, keep](auto& t) { return mean(t, dims, keep); }), {x}));
    }
}

TEST(GradcheckReduce, MaxMinOverDimNoTies) {
  Tensor x = distinct_tensor({3, 4, 2}, 21, 0.05f, true);
  for (int64_t d : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      SCOPED_TRACE("dim " + std::to_string(d) + (keep ? " keepdim" : ""));
      EXPECT_TRUE(gradcheck_ok(f1([d, keep](auto& t) { return max(t, d, keep); }), {x}));
      EXPECT_TRUE(gradcheck_ok(f1([d, keep](auto& t) { return min(t, d, keep); }), {x}));
    }
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return max(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return min(t); }), {x}));
}

TEST(GradcheckReduce, MaxGradientGoesToFirstOnTies) {
  Tensor x = leaf_values({1, 3, 3, 2});
  max(x, 0).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 1, 0, 0}));
}

TEST(GradcheckReduce, SumTo) {
  Tensor x = leaf({2, 3, 4}, 22);
  for (const Shape& s : std::vector<Shape>{{3, 1}, {4}, {1, 1, 4}, {2, 1, 1}, {}, {2, 3, 4}}) {
    SCOPED_TRACE(shape_str(s));
    EXPECT_TRUE(gradcheck_ok(f1([s](auto& t) { return sum_to(t, s); }), {x}));
  }
  EXPECT_THROW(sum_to(x, {5}), Error);
}

// ------------------------------------------------------------------------------ shape ops

TEST(GradcheckShape, Views) {
  Tensor x = leaf({2, 3, 4}, 30);
  // Each is followed by a multiply so the output is not the input's storage viewed again.
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return reshape(t, {4, -1}) * 2.f; }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return flatten(t) * 2.f; }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return flatten(t, 1) * 2.f; }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return flatten(t, 0, 1) * 2.f; }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return unsqueeze(t, 1) * 2.f; }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return unsqueeze(t, -1) * 2.f; }), {x}));
  Tensor y = leaf({2, 1, 3}, 31);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return squeeze(t, 1) * 2.f; }), {y}));
}

TEST(GradcheckShape, TransposePermuteExpand) {
  Tensor x = leaf({2, 3, 4}, 32);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return transpose(t, 0, 2); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return transpose(t, -1, 1); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return permute(t, {2, 0, 1}); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return t.t(); }), {leaf({3, 5}, 33)}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return expand(t, {2, 3, 4}); }), {leaf({3, 1}, 34)}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return expand(t, {3, 2}); }), {leaf({}, 35)}));
}

TEST(GradcheckShape, Concat) {
  Tensor a = leaf({2, 1, 3}, 36), b = leaf({2, 2, 3}, 37), c = leaf({2, 3, 3}, 38);
  EXPECT_TRUE(gradcheck_ok([](const std::vector<Tensor>& in) { return concat(in, 1); }, {a, b, c}));
  Tensor d = leaf({1, 2, 3}, 39);
  EXPECT_TRUE(gradcheck_ok([](const std::vector<Tensor>& in) { return concat(in, 0); }, {b, d}));
  EXPECT_TRUE(gradcheck_ok([](const std::vector<Tensor>& in) { return concat(in, -1); },
                           {leaf({2, 2}, 40), leaf({2, 5}, 41)}));
  // A constant among the inputs.
  Tensor k = random_tensor({2, 2, 3}, 42);
  EXPECT_TRUE(gradcheck_ok([](const std::vector<Tensor>& in) { return concat(in, 1); }, {a, k}));
  EXPECT_THROW(concat({a, leaf({3, 1, 3}, 43)}, 1), Error);
}

TEST(GradcheckShape, Slice) {
  Tensor x = leaf({4, 7}, 44);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return slice(t, 0, 1, 3) * 2.f; }), {x}));  // view
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return slice(t, 1, 1, 6, 2); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return slice(t, 1, -5, -1, 3); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return slice(t, -2, 0, 100, 2); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return slice(t, 0, -1, 4) * 2.f; }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return slice(t, 1, 2, 5); }), {leaf({2, 3, 6}, 45)}));
}

TEST(GradcheckShape, IndexSelectWithRepeats) {
  Tensor x = leaf({4, 3}, 46);
  Tensor idx = Tensor::from_ints({2, 0, 2, 3, 2});
  EXPECT_TRUE(gradcheck_ok(f1([idx](auto& t) { return index_select(t, 0, idx); }), {x}));
  Tensor idx1 = Tensor::from_ints({1, 1, 0});
  EXPECT_TRUE(gradcheck_ok(f1([idx1](auto& t) { return index_select(t, 1, idx1); }), {x}));
  Tensor y = leaf({2, 3, 4}, 47);
  EXPECT_TRUE(gradcheck_ok(f1([idx1](auto& t) { return index_select(t, -2, idx1); }), {y}));
  // The repeated row collects three times the gradient.
  Tensor z = leaf({4, 3}, 48);
  sum(index_select(z, 0, idx)).backward();
  EXPECT_EQ(z.grad().to_vector(), (std::vector<float>{1, 1, 1, 0, 0, 0, 3, 3, 3, 1, 1, 1}));
}

TEST(GradcheckShape, Gather) {
  Tensor x = leaf({3, 4}, 49);
  Tensor idx = Tensor::from_ints({3, 0, 0, 1, 2, 2, 2, 0, 1}).reshape({3, 3});
  EXPECT_TRUE(gradcheck_ok(f1([idx](auto& t) { return gather(t, 1, idx); }), {x}));
  Tensor idx0 = Tensor::from_ints({2, 0, 1, 1, 0, 0, 2, 2}).reshape({2, 4});
  EXPECT_TRUE(gradcheck_ok(f1([idx0](auto& t) { return gather(t, 0, idx0); }), {x}));
  EXPECT_THROW(gather(x, 1, Tensor::from_ints({4, 0, 0}).reshape({3, 1})), Error);
}

// ------------------------------------------------------------------------------ linalg

TEST(GradcheckLinalg, Matmul) {
  EXPECT_TRUE(gradcheck_ok(f2([](auto& a, auto& b) { return matmul(a, b); }),
                           {leaf({3, 4}, 50), leaf({4, 5}, 51)}));
  EXPECT_TRUE(gradcheck_ok(f2([](auto& a, auto& b) { return matmul(a, b); }),
                           {leaf({2, 3, 4}, 52), leaf({4, 5}, 53)}));
  EXPECT_TRUE(gradcheck_ok(f2([](auto& a, auto& b) { return matmul(a, b); }),
                           {leaf({2, 3, 4}, 54), leaf({2, 4, 5}, 55)}));
  // One operand constant.
  EXPECT_TRUE(gradcheck_ok(f2([](auto& a, auto& b) { return matmul(a, b); }),
                           {leaf({3, 4}, 56), random_tensor({4, 2}, 57)}));
  EXPECT_TRUE(gradcheck_ok(f2([](auto& a, auto& b) { return matmul(a, b); }),
                           {random_tensor({2, 3, 4}, 58), leaf({2, 4, 5}, 59)}));
}

TEST(GradcheckLinalg, Linear) {
  Tensor x = leaf({3, 4}, 60), w = leaf({5, 4}, 61), b = leaf({5}, 62);
  EXPECT_TRUE(gradcheck_ok(
      [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b}));
  EXPECT_TRUE(gradcheck_ok(
      [](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor()); }, {x, w}));
  // Frozen weight, trainable bias.
  Tensor wc = random_tensor({5, 4}, 63);
  EXPECT_TRUE(gradcheck_ok(
      [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, wc, b}));
}

TEST(GradcheckLinalg, L2Normalize) {
  Tensor x = leaf({3, 4}, 64);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return l2_normalize(t); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return l2_normalize(t, 0); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return l2_normalize(t, -1); }), {leaf({2, 3, 2}, 65)}));
  // A zero row stays finite (divided by eps instead of 0).
  Tensor z = Tensor::from_vector({0, 0, 0, 1, 2, 2}, {2, 3}).set_requires_grad(true);
  Tensor y = l2_normalize(z);
  EXPECT_TRUE(test::all_close(y.to_vector(), {0, 0, 0, 1.f / 3, 2.f / 3, 2.f / 3}, 1e-6));
  sum(y * y).backward();
  EXPECT_TRUE(test::all_finite(z.grad().to_vector()));
}

TEST(GradcheckLinalg, PairwiseDistance) {
  Tensor a = leaf({4, 3}, 66), b = leaf({5, 3}, 67);
  for (bool squared : {true, false}) {
    SCOPED_TRACE(squared ? "squared" : "euclidean");
    EXPECT_TRUE(gradcheck_ok(
        [squared](const std::vector<Tensor>& in) {
          return pairwise_distance(in[0], in[1], squared);
        },
        {a, b}));
    // a against itself: the diagonal is exactly 0 and contributes no gradient.
    EXPECT_TRUE(gradcheck_ok(
        [squared](const std::vector<Tensor>& in) {
          return pairwise_distance(in[0], in[0], squared);
        },
        {a}));
    EXPECT_TRUE(gradcheck_ok(  // centred first: the same function
        [squared](const std::vector<Tensor>& in) {
          return pairwise_distance(in[0], in[1], squared, true);
        },
        {a, b}));
  }
}

// Close points far from the origin (embeddings collapsing toward one point of the unit sphere):
// the centred form keeps the distances' digits; the plain one (as torch.cdist) keeps about one.
TEST(GradcheckLinalg, PairwiseDistanceCentredKeepsClosePointsApart) {
  const int n = 6, m = 5, dim = 8;
  std::vector<float> va = test::random_values(n * dim, 69, -1e-3f, 1e-3f);
  std::vector<float> vb = test::random_values(m * dim, 70, -1e-3f, 1e-3f);
  for (int i = 0; i < n; ++i) va[i * dim] += 1.f;  // all near (1, 0, ..., 0)
  for (int i = 0; i < m; ++i) vb[i * dim] += 1.f;
  std::vector<double> want;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) {
      double d2 = 0;
      for (int k = 0; k < dim; ++k) d2 += std::pow(double(va[i * dim + k]) - vb[j * dim + k], 2);
      want.push_back(std::sqrt(d2));
    }
  Tensor a = Tensor::from_vector(va, {n, dim}), b = Tensor::from_vector(vb, {m, dim});
  EXPECT_TRUE(
      test::all_close_ref(pairwise_distance(a, b, false, true).to_vector(), want, 1e-6, 1e-3));
  // The plain form is still within its rounding: |error of d^2| <= a few 1e-7 (|a|^2 + |b|^2).
  const std::vector<float> plain = pairwise_distance(a, b).to_vector();
  for (size_t k = 0; k < want.size(); ++k)
    EXPECT_NEAR(double(plain[k]) * plain[k], want[k] * want[k], 2e-6) << "pair " << k;
}

TEST(GradcheckLinalg, PairwiseDistanceForwardValues) {
  Tensor a = Tensor::from_vector({0, 0, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector({0, 0, 6, 8, 3, 4}, {3, 2});
  EXPECT_TRUE(test::all_close(pairwise_distance(a, b).to_vector(), {0, 10, 5, 5, 5, 0}, 1e-5));
  EXPECT_TRUE(
      test::all_close(pairwise_distance(a, b, true).to_vector(), {0, 100, 25, 25, 25, 0}, 1e-4));
  Tensor self = pairwise_distance(b, b);
  std::vector<float> d = self.to_vector();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(d[i * 3 + i], 0.f);
}

// d/da_i of sum_ij d(a_i, a_j) in double, skipping pairs at distance 0 (subgradient 0 there).
std::vector<double> ref_self_distance_grad(const std::vector<float>& v, int n, int d,
                                           bool squared) {
  std::vector<double> g(v.size(), 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double dist2 = 0;
      for (int k = 0; k < d; ++k) dist2 += std::pow(double(v[i * d + k]) - v[j * d + k], 2);
      if (dist2 == 0) continue;
      const double w = squared ? 1.0 : 0.5 / std::sqrt(dist2);  // d(dist)/d(dist^2)
      for (int k = 0; k < d; ++k) {  // both the (i, j) and the (j, i) entry depend on a_i
        g[i * d + k] += 2 * 2 * w * (double(v[i * d + k]) - v[j * d + k]);
      }
    }
  return g;
}

TEST(GradcheckLinalg, PairwiseDistanceEqualRowsHaveFiniteGradient) {
  // Rows 1 and 2 coincide: their distance is 0, where sqrt has no finite derivative. The
  // three-term formula leaves a rounding residue (~1e-3 after the sqrt) instead of an exact 0,
  // so the gradient is only close to the subgradient (which is 0 for that pair).
  const int n = 4, dim = 16;
  std::vector<float> v = test::random_values(n * dim, 68);
  for (int j = 0; j < dim; ++j) v[2 * dim + j] = v[dim + j];
  for (bool squared : {true, false}) {
    SCOPED_TRACE(squared ? "squared" : "euclidean");
    Tensor a = Tensor::from_vector(v, {n, dim}).set_requires_grad(true);
    Tensor d = pairwise_distance(a, a, squared);
    EXPECT_TRUE(test::all_finite(d.to_vector()));
    EXPECT_NEAR(d.to_vector()[1 * n + 2], 0.f, 1e-2);
    sum(d).backward();
    EXPECT_TRUE(test::all_finite(a.grad().to_vector())) << a.grad();
    EXPECT_TRUE(test::all_close_ref(a.grad().to_vector(),
                                    ref_self_distance_grad(v, n, dim, squared), 1e-2, 1e-3));
    // The same with two separate (equal-valued) operands.
    Tensor a1 = Tensor::from_vector(v, {n, dim}).set_requires_grad(true);
    Tensor a2 = Tensor::from_vector(v, {n, dim}).set_requires_grad(true);
    sum(pairwise_distance(a1, a2, squared)).backward();
    EXPECT_TRUE(test::all_finite(a1.grad().to_vector())) << a1.grad();
    EXPECT_TRUE(test::all_finite(a2.grad().to_vector())) << a2.grad();
  }
}

// ------------------------------------------------------------------------------ nn

struct ConvCase {
  Shape x, w;
  Conv2dOptions o;
  bool bias;
  // conv2d is linear in each input, so a large step has no truncation error; Winograd's rounding
  // (about 10 times direct summation's) needs one to keep the numeric gradient's noise down.
  double eps = 1e-3;
};

TEST(GradcheckNN, Conv2d) {
  const std::vector<ConvCase> cases = {
      {{2, 2, 5, 6}, {3, 2, 3, 3}, {1, 1, 1, 1}, true},          // padding, non-square input
      {{1, 3, 7, 5}, {2, 3, 3, 3}, {2, 2, 0, 0}, true},          // stride 2
      {{2, 3, 4, 5}, {4, 3, 1, 1}, {1, 1, 0, 0}, true},          // 1x1 kernel
      {{1, 2, 6, 7}, {2, 2, 2, 3}, {2, 3, 1, 0}, false},         // non-square kernel/stride/padding
      {{1, 1, 5, 5}, {2, 1, 3, 3}, {3, 3, 2, 2}, true},          // stride 3, more padding
      {{1, 16, 4, 5}, {16, 16, 3, 3}, {1, 1, 1, 1}, true, 0.1},  // Winograd F(4, 3) on the CPU
  };
  uint64_t seed = 70;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE("x " + shape_str(c.x) + " w " + shape_str(c.w));
    Tensor x = leaf(c.x, seed++), w = leaf(c.w, seed++);
    Tensor b = c.bias ? leaf({c.w[0]}, seed++) : Tensor();
    const Conv2dOptions o = c.o;
    EXPECT_TRUE(gradcheck_ok(
        [o](const std::vector<Tensor>& in) {
          return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), o);
        },
        c.bias ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w}, {c.eps}));
  }
}

TEST(GradcheckNN, Pooling) {
  Tensor x = distinct_tensor({1, 2, 5, 5}, 80, 0.05f, true);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return max_pool2d(t, 2); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return max_pool2d(t, 3, 2, 1); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return max_pool2d(t, 3, 1); }), {x}));
  // Values -1.725 .. 0.725, 0.05 apart and none within 0.025 of the ReLU's kink at 0: windows
  // whose maximum is negative (some, asserted) take no gradient, the others their maximum's.
  Tensor xr = (distinct_tensor({1, 2, 5, 5}, 82, 0.05f) - 0.475f).set_requires_grad(true);
  for (int64_t k : {2, 3}) {
    const std::vector<float> y = max_pool2d_relu(xr.detach(), k, 2, k - 2).to_vector();
    EXPECT_GT(std::count(y.begin(), y.end(), 0.f), 0) << k << "x" << k;
    EXPECT_LT(std::count(y.begin(), y.end(), 0.f), static_cast<long>(y.size())) << k << "x" << k;
  }
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return max_pool2d_relu(t, 2); }), {xr}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return max_pool2d_relu(t, 3, 2, 1); }), {xr}));
  Tensor y = leaf({2, 2, 6, 5}, 81);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return avg_pool2d(t, 2); }), {y}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return avg_pool2d(t, 3, 2, 1); }), {y}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return avg_pool2d(t, 2, 1, 1); }), {y}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return global_avg_pool2d(t); }), {y}));
}

TEST(GradcheckNN, BatchNormTraining) {
  for (const Shape& s : std::vector<Shape>{{6, 3}, {2, 3, 3, 3}}) {
    SCOPED_TRACE(shape_str(s));
    Tensor x = leaf(s, 90, -2.f, 2.f), w = leaf({3}, 91, 0.5f, 1.5f), b = leaf({3}, 92);
    Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
    EXPECT_TRUE(gradcheck_ok(
        [rm, rv](const std::vector<Tensor>& in) {
          return batch_norm(in[0], in[1], in[2], rm, rv, true);
        },
        {x, w, b}));
    // Without affine parameters or running statistics.
    EXPECT_TRUE(gradcheck_ok(
        [](const std::vector<Tensor>& in) {
          return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
        },
        {x}));
  }
}

TEST(GradcheckNN, BatchNormInference) {
  for (const Shape& s : std::vector<Shape>{{4, 3}, {2, 3, 2, 3}}) {
    SCOPED_TRACE(shape_str(s));
    Tensor x = leaf(s, 93), w = leaf({3}, 94), b = leaf({3}, 95);
    Tensor rm = random_tensor({3}, 96), rv = random_tensor({3}, 97, 0.5f, 2.f);
    EXPECT_TRUE(gradcheck_ok(
        [rm, rv](const std::vector<Tensor>& in) {
          return batch_norm(in[0], in[1], in[2], rm, rv, false);
        },
        {x, w, b}));
  }
}

// The fused ReLU: the pre-activations (batch_norm's output) are checked to keep 20 eps from the
// kink, so no central difference straddles it, and some are negative, so the mask matters.
TEST(GradcheckNN, BatchNormReluTrainingAndInference) {
  auto min_distance_and_negatives = [](const Tensor& v) {
    float least = INFINITY;
    int negatives = 0;
    for (float e : v.to_vector()) least = std::min(least, std::fabs(e)), negatives += e < 0.f;
    return std::pair(least, negatives);
  };
  for (const Shape& s : std::vector<Shape>{{6, 3}, {2, 3, 3, 3}}) {
    SCOPED_TRACE(shape_str(s));
    Tensor x = leaf(s, 220, -2.f, 2.f), w = leaf({3}, 191, 0.5f, 1.5f), b = leaf({3}, 192);
    Tensor rm = random_tensor({3}, 193), rv = random_tensor({3}, 194, 0.5f, 2.f);
    for (bool training : {true, false}) {
      SCOPED_TRACE(training ? "training" : "inference");
      Tensor pre;
      {
        NoGradGuard ng;
        pre = training ? batch_norm(x, w, b, Tensor(), Tensor(), true)
                       : batch_norm(x, w, b, rm, rv, false);
      }
      auto [least, negatives] = min_distance_and_negatives(pre);
      ASSERT_GT(least, 0.02f);
      ASSERT_GT(negatives, 0);
      EXPECT_TRUE(gradcheck_ok(
          [rm, rv, training](const std::vector<Tensor>& in) {
            // Running statistics only in inference: training would update them on every call.
            return training ? batch_norm_relu(in[0], in[1], in[2], Tensor(), Tensor(), true)
                            : batch_norm_relu(in[0], in[1], in[2], rm, rv, false);
          },
          {x, w, b}));
    }
  }
}

TEST(GradcheckNN, DropoutWithFixedMask) {
  Tensor x = leaf({4, 5}, 98);
  // gradcheck re-evaluates fn for every perturbation: reseeding inside keeps the mask fixed.
  EXPECT_TRUE(gradcheck_ok(
      [](const std::vector<Tensor>& in) {
        manual_seed(7);
        return dropout(in[0], 0.3f, true);
      },
      {x}));
  // The gradient is the mask: 0 or 1/(1-p), the same mask as the forward's.
  x.zero_grad();
  manual_seed(7);
  Tensor y = dropout(x, 0.3f, true);
  sum(y).backward();
  std::vector<float> xv = x.to_vector(), yv = y.to_vector(), gv = x.grad().to_vector();
  int dropped = 0;
  for (size_t i = 0; i < gv.size(); ++i) {
    EXPECT_TRUE(gv[i] == 0.f || std::fabs(gv[i] - 1.f / 0.7f) < 1e-5f) << gv[i];
    EXPECT_NEAR(yv[i], xv[i] * gv[i], 1e-6);
    dropped += gv[i] == 0.f;
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, 20);
  // Inference is the identity.
  EXPECT_TRUE(dropout(x, 0.3f, false).same(x));
  EXPECT_THROW(dropout(x, 1.f, true), Error);
}

TEST(GradcheckNN, ToAndClone) {
  Tensor x = leaf({2, 3}, 99);
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return square(t.to(Device::cpu())); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return square(t.clone()); }), {x}));
  EXPECT_TRUE(gradcheck_ok(f1([](auto& t) { return t.clone() * t; }), {x}));
}

// A deliberately wrong backward must be caught: gradcheck is itself under test here.
TEST(GradcheckSelf, DetectsAWrongGradient) {
  Tensor x = leaf({3}, 100);
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor xd = in[0].detach();
    Tensor y;
    {
      NoGradGuard ng;
      y = square(in[0]);
    }
    return record(y, "wrong_square", {in[0]},
                  [xd](const Tensor& g) -> Grads { return {g * xd * 3.f}; });  // should be 2x
  };
  GradcheckResult r = gradcheck(wrong, {x});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("element"), std::string::npos) << r.message;
}

TEST(GradcheckSelf, FailsWhereTheFunctionIsUndefinedNearby) {
  // sqrt(5e-4 - eps) is NaN: the numeric derivative cannot confirm the analytic one.
  Tensor x = leaf_values({5e-4f, 1.f});
  GradcheckResult r = gradcheck(f1([](auto& t) { return sqrt(t); }), {x});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("element 0"), std::string::npos) << r.message;
  EXPECT_TRUE(std::isinf(r.max_abs_error));
  // The inputs are restored afterwards.
  EXPECT_EQ(x.to_vector(), (std::vector<float>{5e-4f, 1.f}));
}

}  // namespace
}  // namespace trine
