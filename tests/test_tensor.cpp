// Tensor basics: creation, shape errors, data access, printing, views vs copies, in-place updates,
// elementwise values and comparisons, reductions' forward values, the coalescing of strided loops.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/shape.h"
#include "engine/tensor.h"
#include "support/test_util.h"

namespace trine {
namespace {

using test::throws_with;

TEST(TensorCreate, ConstantsAndShapes) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.dim(), 2);
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.size(-1), 3);
  EXPECT_EQ(z.size(0), 2);
  EXPECT_EQ(z.shape_str(), "[2, 3]");
  EXPECT_EQ(z.dtype(), DType::F32);
  EXPECT_TRUE(z.device().is_cpu());
  EXPECT_EQ(z.to_vector(), std::vector<float>(6, 0.f));
  EXPECT_EQ(Tensor::ones({4}).to_vector(), std::vector<float>(4, 1.f));
  EXPECT_EQ(Tensor::full({2, 2}, -2.5f).to_vector(), std::vector<float>(4, -2.5f));
  Tensor s = Tensor::scalar(3.5f);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 3.5f);
  EXPECT_EQ(Tensor::arange(4).to_vector(), (std::vector<float>{0, 1, 2, 3}));
  Tensor e = Tensor::zeros({0, 5});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector().empty());
  EXPECT_THROW(z.size(2), Error);
  EXPECT_THROW(Tensor::empty({2, -1}), Error);
}

TEST(TensorCreate, Devices) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(2).str(), "cuda:2");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", "", "cuda:99999"})
    EXPECT_TRUE(throws_with<UsageError>([&] { Device::parse(bad); }, {bad})) << bad;
}

TEST(TensorCreate, FromVectorChecksSize) {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.to_vector(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(Tensor::from_vector({7, 8}).shape(), (Shape{2}));
  EXPECT_TRUE(throws_with<Error>(
      [] {
        Tensor::from_vector({1, 2, 3}, {2, 2});
      },
      {"from_vector", "3 values", "[2, 2]"}));
}

TEST(TensorCreate, IntTensors) {
  Tensor i = Tensor::from_ints({3, -1, 7});
  EXPECT_EQ(i.dtype(), DType::I32);
  EXPECT_EQ(i.to_int_vector(), (std::vector<int32_t>{3, -1, 7}));
  EXPECT_EQ(i.to_float().to_vector(), (std::vector<float>{3, -1, 7}));
  // to_int truncates toward zero, saturates beyond int32's range, and maps NaN to 0.
  EXPECT_EQ(Tensor::from_vector({-1.7f, 2.9f, 0.2f}).to_int().to_int_vector(),
            (std::vector<int32_t>{-1, 2, 0}));
  const int32_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  EXPECT_EQ(Tensor::from_vector({NAN, INFINITY, -INFINITY, 3e9f, -3e9f, 2147483520.f, -2147483648.f,
                                 2147483648.f, -0.99f})
                .to_int()
                .to_int_vector(),
            (std::vector<int32_t>{0, hi, lo, hi, lo, 2147483520, lo, hi, 0}));
  EXPECT_THROW(i.data(), Error);
  EXPECT_THROW(Tensor::zeros({2}).int_data(), Error);
  EXPECT_THROW(i.set_requires_grad(true), Error);
  EXPECT_THROW(Tensor::zeros({2}).to_float(), Error);
}

TEST(TensorData, ItemNeedsOneElement) {
  EXPECT_EQ(Tensor::from_vector({4.f}, {1, 1}).item(), 4.f);
  EXPECT_TRUE(throws_with<Error>([] { Tensor::zeros({2, 2}).item(); }, {"item()", "[2, 2]", "4"}));
  EXPECT_THROW(Tensor::zeros({0}).item(), Error);
}

TEST(TensorData, UndefinedTensor) {
  Tensor u;
  EXPECT_FALSE(u.defined());
  EXPECT_THROW(u.shape(), Error);
  EXPECT_EQ(u.str(), "tensor(undefined)");
}

TEST(TensorPrint, ShowsValuesShapeAndGradFn) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  std::string s = a.str();
  EXPECT_NE(s.find("shape=[2, 3]"), std::string::npos) << s;
  EXPECT_NE(s.find("6.0000"), std::string::npos) << s;
  EXPECT_EQ(s.find("grad_fn"), std::string::npos) << s;

  Tensor x = Tensor::ones({3}).set_requires_grad(true);
  EXPECT_NE(x.str().find("requires_grad"), std::string::npos) << x.str();
  Tensor y = x * x;
  EXPECT_NE(y.str().find("grad_fn=mul"), std::string::npos) << y.str();
  std::ostringstream os;
  os << y;
  EXPECT_EQ(os.str(), y.str());

  // Long dims are elided; the end values still show.
  std::string long_str = Tensor::arange(100).str();
  EXPECT_NE(long_str.find("..."), std::string::npos) << long_str;
  EXPECT_NE(long_str.find("99.0000"), std::string::npos) << long_str;
  EXPECT_EQ(long_str.find("50.0000"), std::string::npos) << long_str;

  EXPECT_NE(Tensor::from_ints({1, 2}).str().find("int32"), std::string::npos);
  EXPECT_NE(Tensor::scalar(2.f).str().find("shape=[]"), std::string::npos);
}

TEST(TensorMemory, DetachSharesStorage) {
  Tensor a = Tensor::ones({2, 2}).set_requires_grad(true);
  Tensor b = (a * 2.f);
  Tensor d = b.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.data(), b.data());
  d.fill_(5.f);
  EXPECT_EQ(b.to_vector(), std::vector<float>(4, 5.f));
}

TEST(TensorMemory, CloneCopies) {
  Tensor a = Tensor::from_vector({1, 2, 3});
  Tensor c = a.clone();
  EXPECT_NE(c.data(), a.data());
  c.fill_(0.f);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1, 2, 3}));
  // Clone keeps the graph.
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  Tensor xc = x.clone();
  ASSERT_TRUE(xc.grad_fn());
  EXPECT_EQ(xc.grad_fn()->op(), "clone");
  // to() on the same device is the tensor itself.
  EXPECT_TRUE(x.to(Device::cpu()).same(x));
}

TEST(TensorMemory, ReshapeAndLeadingSliceAreViews) {
  Tensor a = Tensor::arange(12).reshape({3, 4});
  Tensor flat = a.reshape({-1});
  EXPECT_EQ(flat.shape(), (Shape{12}));
  EXPECT_EQ(flat.data(), a.data());
  flat.fill_(1.f);
  EXPECT_EQ(a.to_vector(), std::vector<float>(12, 1.f));

  Tensor b = Tensor::arange(12).reshape({3, 4});
  Tensor row = b.slice(0, 1, 2);
  EXPECT_EQ(row.shape(), (Shape{1, 4}));
  EXPECT_EQ(row.data(), b.data() + 4);
  row.fill_(-1.f);
  EXPECT_EQ(b.to_vector(), (std::vector<float>{0, 1, 2, 3, -1, -1, -1, -1, 8, 9, 10, 11}));
  // In-place updates on a view with an offset touch only the view.
  Tensor last = b.slice(0, 2, 3);
  last.add_(Tensor::ones({1, 4}), 2.f);
  last.mul_(0.5f);
  EXPECT_EQ(b.to_vector(), (std::vector<float>{0, 1, 2, 3, -1, -1, -1, -1, 5, 5.5, 6, 6.5}));
  Tensor first = b.slice(0, 0, 1);
  first.copy_(Tensor::full({1, 4}, 9.f));
  EXPECT_EQ(b.to_vector(), (std::vector<float>{9, 9, 9, 9, -1, -1, -1, -1, 5, 5.5, 6, 6.5}));
  // A non-leading slice is a copy, not a view.
  Tensor col = b.slice(1, 0, 1);
  col.fill_(100.f);
  EXPECT_EQ(b.to_vector()[0], 9.f);
}

TEST(TensorOps, ScalarsHaveNoDims) {
  // A rank-0 tensor has no dim 0: every dim argument is an error, not an out-of-bounds read.
  Tensor s = Tensor::scalar(2.f);
  EXPECT_TRUE(throws_with<Error>([&] { s.size(0); }, {"dim 0", "rank 0"}));
  EXPECT_THROW(s.size(-1), Error);
  EXPECT_THROW(sum(s, {0}), Error);
  EXPECT_THROW(mean(s, {-1}), Error);
  EXPECT_THROW(max(s, 0), Error);
  EXPECT_THROW(squeeze(s, 0), Error);
  EXPECT_THROW(transpose(s, 0, 0), Error);
  EXPECT_THROW(slice(s, 0, 0, 1), Error);
  EXPECT_THROW(concat({s, s}, 0), Error);
  EXPECT_THROW(index_select(s, 0, Tensor::from_ints({0})), Error);
  EXPECT_THROW(l2_normalize(s, 0), Error);
  // What does work on scalars.
  EXPECT_EQ(sum(s).item(), 2.f);
  EXPECT_EQ(max(s).item(), 2.f);
  EXPECT_EQ(unsqueeze(s, 0).shape(), (Shape{1}));
  EXPECT_EQ(flatten(s).shape(), (Shape{1}));
  EXPECT_EQ(s.reshape({1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(permute(s, {}).item(), 2.f);
  EXPECT_THROW(Tensor::arange(-1), Error);
}

TEST(TensorMemory, CopyBetweenOverlappingViews) {
  // Large enough (2.4 MB) for the CPU copy to be split across threads.
  const int64_t n = 600000;
  for (int64_t shift : {1, 1000, -1000}) {
    SCOPED_TRACE("shift " + std::to_string(shift));
    Tensor t = Tensor::arange(n);
    std::vector<float> want = t.to_vector();
    const int64_t k = shift > 0 ? shift : -shift;
    if (shift > 0) {  // t[k:] = t[:-k]
      t.slice(0, k, n).copy_(t.slice(0, 0, n - k));
      for (int64_t i = n - 1; i >= k; --i) want[i] = want[i - k];
    } else {  // t[:-k] = t[k:]
      t.slice(0, 0, n - k).copy_(t.slice(0, k, n));
      for (int64_t i = 0; i < n - k; ++i) want[i] = want[i + k];
    }
    EXPECT_TRUE(test::all_close(t.to_vector(), want, 0));
  }
}

TEST(TensorMemory, ReshapeErrors) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_EQ(a.reshape({3, -1}).shape(), (Shape{3, 2}));
  EXPECT_TRUE(throws_with<Error>([&] { a.reshape({4, 2}); }, {"reshape", "[2, 3]", "[4, 2]"}));
  EXPECT_THROW(a.reshape({-1, -1}), Error);
  EXPECT_THROW(a.reshape({4, -1}), Error);
}

TEST(TensorInPlace, FillCopyAddMul) {
  Tensor a = Tensor::zeros({2, 2});
  a.fill_(3.f);
  EXPECT_EQ(a.to_vector(), std::vector<float>(4, 3.f));
  a.copy_(Tensor::from_vector({1, 2, 3, 4}, {2, 2}));
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1, 2, 3, 4}));
  a.add_(Tensor::from_vector({1, 1, 1, 1}, {2, 2}));
  EXPECT_EQ(a.to_vector(), (std::vector<float>{2, 3, 4, 5}));
  a.add_(Tensor::from_vector({1, 2, 3, 4}, {2, 2}), -0.5f);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1.5, 2, 2.5, 3}));
  a.mul_(2.f);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{3, 4, 5, 6}));
  a.zero_();
  EXPECT_EQ(a.to_vector(), std::vector<float>(4, 0.f));
  EXPECT_TRUE(throws_with<Error>([&] { a.copy_(Tensor::zeros({4})); }, {"copy_", "[4]", "[2, 2]"}));
  EXPECT_THROW(a.copy_(Tensor::from_ints({1, 2, 3, 4}).reshape({2, 2})), Error);
  EXPECT_THROW(a.add_(Tensor::zeros({2})), Error);
  // In-place updates are not recorded.
  Tensor w = Tensor::ones({2}).set_requires_grad(true);
  w.mul_(3.f);
  EXPECT_TRUE(w.is_leaf());
}

TEST(TensorOps, ElementwiseValues) {
  Tensor a = Tensor::from_vector({1, -2, 3, -4}, {2, 2});
  Tensor b = Tensor::from_vector({10, 20}, {2});
  EXPECT_EQ((a + b).to_vector(), (std::vector<float>{11, 18, 13, 16}));
  EXPECT_EQ((a - b).to_vector(), (std::vector<float>{-9, -22, -7, -24}));
  EXPECT_EQ((a * b).to_vector(), (std::vector<float>{10, -40, 30, -80}));
  EXPECT_EQ((b / Tensor::from_vector({2, 4})).to_vector(), (std::vector<float>{5, 5}));
  EXPECT_EQ((-a).to_vector(), (std::vector<float>{-1, 2, -3, 4}));
  EXPECT_EQ((a + 1.f).to_vector(), (std::vector<float>{2, -1, 4, -3}));
  EXPECT_EQ((a - 1.f).to_vector(), (std::vector<float>{0, -3, 2, -5}));
  EXPECT_EQ((1.f - a).to_vector(), (std::vector<float>{0, 3, -2, 5}));
  EXPECT_EQ((2.f * a).to_vector(), (std::vector<float>{2, -4, 6, -8}));
  EXPECT_EQ((a / 2.f).to_vector(), (std::vector<float>{0.5, -1, 1.5, -2}));
  EXPECT_EQ(relu(a).to_vector(), (std::vector<float>{1, 0, 3, 0}));
  EXPECT_EQ(abs(a).to_vector(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(clamp(a, -2.f, 2.f).to_vector(), (std::vector<float>{1, -2, 2, -2}));
  EXPECT_EQ(clamp_min(a, 0.5f).to_vector(), (std::vector<float>{1, 0.5, 3, 0.5}));
  EXPECT_EQ(maximum(a, Tensor::scalar(0.f)).to_vector(), (std::vector<float>{1, 0, 3, 0}));
  EXPECT_EQ(minimum(a, Tensor::scalar(0.f)).to_vector(), (std::vector<float>{0, -2, 0, -4}));
  EXPECT_TRUE(test::all_close(leaky_relu(a, 0.1f).to_vector(), {1, -0.2f, 3, -0.4f}, 1e-7));
  EXPECT_TRUE(test::all_close(softplus(Tensor::from_vector({-100, 0, 100})).to_vector(),
                              {0, std::log(2.f), 100}, 1e-6, 1e-6));
  EXPECT_TRUE(
      test::all_close(sigmoid(Tensor::from_vector({-100, 0, 100})).to_vector(), {0, 0.5, 1}, 1e-7));
  EXPECT_TRUE(
      test::all_close(pow(Tensor::from_vector({4, 9}), 0.5f).to_vector(), {2, 3}, 1e-6, 1e-6));
  EXPECT_THROW(clamp(a, 1.f, 0.f), Error);
  EXPECT_TRUE(throws_with<Error>([&] { a + Tensor::zeros({3}); }, {"add", "[2, 2]", "[3]"}));
}

TEST(TensorOps, ComparisonsWhereMaskedFill) {
  Tensor a = Tensor::from_vector({1, 2, 3});
  Tensor b = Tensor::from_vector({3, 2, 1});
  EXPECT_EQ(eq(a, b).to_vector(), (std::vector<float>{0, 1, 0}));
  EXPECT_EQ(ne(a, b).to_vector(), (std::vector<float>{1, 0, 1}));
  EXPECT_EQ(lt(a, b).to_vector(), (std::vector<float>{1, 0, 0}));
  EXPECT_EQ(le(a, b).to_vector(), (std::vector<float>{1, 1, 0}));
  EXPECT_EQ(gt(a, b).to_vector(), (std::vector<float>{0, 0, 1}));
  EXPECT_EQ(ge(a, b).to_vector(), (std::vector<float>{0, 1, 1}));
  EXPECT_EQ(where(gt(a, b), a, b).to_vector(), (std::vector<float>{3, 2, 3}));
  EXPECT_EQ(masked_fill(a, eq(a, b), -9.f).to_vector(), (std::vector<float>{1, -9, 3}));
  // Comparisons never require grad.
  Tensor x = Tensor::ones({3}).set_requires_grad(true);
  EXPECT_FALSE(gt(x, a).requires_grad());
}

TEST(TensorOps, ReductionValues) {
  Tensor a = Tensor::from_vector({1, 5, 3, 4, 2, 6}, {2, 3});
  EXPECT_EQ(sum(a).item(), 21.f);
  EXPECT_EQ(a.sum().dim(), 0);
  EXPECT_FLOAT_EQ(a.mean().item(), 3.5f);
  EXPECT_EQ(sum(a, {0}).to_vector(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(sum(a, {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(sum(a, {-1}).to_vector(), (std::vector<float>{9, 12}));
  EXPECT_EQ(sum(a, {0, 1}).item(), 21.f);
  EXPECT_EQ(mean(a, {1}).to_vector(), (std::vector<float>{3, 4}));
  EXPECT_EQ(max(a, 1).to_vector(), (std::vector<float>{5, 6}));
  EXPECT_EQ(min(a, 0).to_vector(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(max(a).item(), 6.f);
  EXPECT_EQ(min(a).item(), 1.f);
  EXPECT_EQ(argmax(a, 1).to_int_vector(), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(argmin(a, 0, true).shape(), (Shape{1, 3}));
  // Ties resolve to the lowest index.
  Tensor t = Tensor::from_vector({2, 7, 7, 1, 1, 0}, {2, 3});
  EXPECT_EQ(argmax(t, 1).to_int_vector(), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(argmin(t, 1).to_int_vector(), (std::vector<int32_t>{0, 2}));
  // Empty reductions: sums are 0, means and max throw.
  Tensor e = Tensor::zeros({0, 3});
  EXPECT_EQ(sum(e, {0}).to_vector(), std::vector<float>(3, 0.f));
  EXPECT_EQ(sum(e).item(), 0.f);
  EXPECT_THROW(mean(e), Error);
  EXPECT_THROW(max(e, 0), Error);
  EXPECT_THROW(sum(a, {2}), Error);
  // A long single run is summed in double: no float drift.
  Tensor many = Tensor::full({1 << 18}, 0.1f);
  EXPECT_NEAR(sum(many).item(), 0.1 * (1 << 18), 1e-2);
}

// Against a loop over each tensor; long ones span the CPU's parallel chunks, with the NaN or inf
// in the last chunk; -0 counts as 0.
TEST(TensorOps, MaxAbsEachAgainstALoop) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-3.f, 3.f);
  auto random = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    return v;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = INFINITY;
  std::vector<std::vector<float>> values = {random(1),      random(7),      random(300001),
                                            random(300001), random(300001), {},
                                            {-0.f, -0.f},   {-5.f, 2.f},    random(100)};
  values[2].back() = nan;  // far from the first chunk
  values[3][299990] = -inf;
  values[4][7] = inf, values[4][299999] = nan;  // NaN beats inf
  values[8][50] = -1e30f;
  std::vector<Tensor> xs;
  for (const auto& v : values)
    xs.push_back(Tensor::from_vector(v, {static_cast<int64_t>(v.size())}));
  const std::vector<float> got = max_abs_each(xs).to_vector();
  ASSERT_EQ(got.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    bool any_nan = false;
    float want = 0.f;
    for (float x : values[i]) {
      any_nan = any_nan || std::isnan(x);
      if (std::fabs(x) > want) want = std::fabs(x);
    }
    if (any_nan)
      EXPECT_TRUE(std::isnan(got[i])) << "tensor " << i << ": " << got[i];
    else
      EXPECT_EQ(got[i], want) << "tensor " << i;
  }
  EXPECT_EQ(max_abs_each({Tensor::from_vector({-0.f}, {1})}).to_vector()[0], 0.f);
  EXPECT_FALSE(std::signbit(max_abs_each({Tensor::from_vector({-0.f}, {1})}).to_vector()[0]));
  // Errors name the tensor at fault.
  EXPECT_THROW(max_abs_each({}), Error);
  try {
    max_abs_each({xs[0], Tensor::from_ints({1, 2}, Device::cpu())});
    ADD_FAILURE() << "an int tensor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 1"), std::string::npos) << e.what();
  }
}

TEST(TensorOps, ShapeOpValues) {
  Tensor a = Tensor::arange(6).reshape({2, 3});
  EXPECT_EQ(a.t().to_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(unsqueeze(a, 0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(unsqueeze(a, -1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(squeeze(unsqueeze(a, 1), 1).shape(), (Shape{2, 3}));
  EXPECT_THROW(squeeze(a, 0), Error);
  EXPECT_EQ(expand(Tensor::from_vector({1, 2}, {2, 1}), {2, 3}).to_vector(),
            (std::vector<float>{1, 1, 1, 2, 2, 2}));
  EXPECT_THROW(expand(a, {3, 3}), Error);
  EXPECT_EQ(concat({a, Tensor::full({2, 1}, 9.f)}, 1).to_vector(),
            (std::vector<float>{0, 1, 2, 9, 3, 4, 5, 9}));
  EXPECT_EQ(slice(Tensor::arange(10), 0, -7, -1, 3).to_vector(), (std::vector<float>{3, 6}));
  EXPECT_EQ(slice(Tensor::arange(5), 0, 3, 100).to_vector(), (std::vector<float>{3, 4}));
  EXPECT_EQ(slice(Tensor::arange(5), 0, 4, 2).numel(), 0);
  EXPECT_EQ(index_select(a, 1, Tensor::from_ints({2, 0, 2})).to_vector(),
            (std::vector<float>{2, 0, 2, 5, 3, 5}));
  EXPECT_TRUE(throws_with<Error>([&] { index_select(a, 0, Tensor::from_ints({2})); },
                                 {"index_select", "out of range"}));
  Tensor idx = Tensor::from_ints({1, 1, 0, 2}).reshape({2, 2});
  EXPECT_EQ(gather(a, 1, idx).to_vector(), (std::vector<float>{1, 1, 3, 5}));
  EXPECT_EQ(permute(Tensor::arange(24).reshape({2, 3, 4}), {2, 0, 1}).shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(flatten(Tensor::zeros({2, 3, 4, 5}), 1).shape(), (Shape{2, 60}));
  EXPECT_EQ(flatten(Tensor::zeros({2, 3, 4, 5}), 1, 2).shape(), (Shape{2, 12, 5}));
  EXPECT_THROW(permute(a, {0, 0}), Error);
}

// Every operand's offsets, in the loop's row-major order.
std::vector<std::vector<int64_t>> offsets_in_order(const Shape& shape,
                                                   const std::vector<Shape>& strides) {
  std::vector<std::vector<int64_t>> out(strides.size());
  const int64_t n = numel_of(shape);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i;
    std::vector<int64_t> off(strides.size(), 0);
    for (size_t d = shape.size(); d-- > 0;) {
      const int64_t at = rest % shape[d];
      rest /= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) off[k] += at * strides[k][d];
    }
    for (size_t k = 0; k < strides.size(); ++k) out[k].push_back(off[k]);
  }
  return out;
}

TEST(Shapes, CoalesceKeepsTheLoopAndMergesWhatItCan) {
  const Shape s = {2, 1, 3, 4};
  // Both operands contiguous: one dim.
  Coalesced c = coalesce(s, {contiguous_strides(s), contiguous_strides(s)});
  EXPECT_EQ(c.shape, (Shape{24}));
  EXPECT_EQ(c.strides, (std::vector<Shape>{{1}, {1}}));
  // A broadcast operand ([2, 1, 3, 1] read as [2, 1, 3, 4]) keeps its last dim apart.
  c = coalesce(s, {contiguous_strides(s), broadcast_strides({2, 1, 3, 1}, s)});
  EXPECT_EQ(c.shape, (Shape{6, 4}));
  EXPECT_EQ(c.strides, (std::vector<Shape>{{4, 1}, {1, 0}}));
  // Only size-1 dims: one dim of size 1.
  c = coalesce({1, 1}, {{5, 7}});
  EXPECT_EQ(c.shape, (Shape{1}));
  EXPECT_EQ(c.strides, (std::vector<Shape>{{0}}));

  // Against the plain loop, on transposed, broadcast, sliced and size-1 layouts.
  const std::vector<std::pair<Shape, std::vector<Shape>>> cases = {
      {{2, 3, 4}, {{12, 4, 1}, {1, 2, 6}}},             // one operand transposed
      {{2, 3, 4}, {{12, 4, 1}, {0, 4, 1}, {4, 0, 1}}},  // broadcasts
      {{3, 1, 5}, {{10, 99, 2}, {5, 5, 1}}},            // every other element; a size-1 dim
      {{4, 2, 2, 3}, {{12, 6, 3, 1}, {24, 12, 6, 1}}},  // the first 3 of every 6 columns
      {{2, 2, 2}, {{0, 0, 0}, {4, 2, 1}}},              // a scalar read everywhere
  };
  for (const auto& [shape, strides] : cases) {
    c = coalesce(shape, strides);
    ASSERT_EQ(c.strides.size(), strides.size());
    for (const Shape& st : c.strides) EXPECT_EQ(st.size(), c.shape.size());
    EXPECT_EQ(numel_of(c.shape), numel_of(shape)) << shape_str(shape);
    EXPECT_LE(c.shape.size(), shape.size());
    EXPECT_EQ(offsets_in_order(c.shape, c.strides), offsets_in_order(shape, strides))
        << shape_str(shape);
  }
}

}  // namespace
}  // namespace trine
