// Modules and layers: naming and counting, train/eval, batch-norm statistics against a hand
// computation, PyTorch's default init bounds, device moves, and gradchecks of every layer.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "layers/layers.h"
#include "support/test_util.h"

namespace trine {
namespace {

using test::gradcheck_ok;
using test::random_tensor;

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

TEST(Module, ParameterNamesAndCounts) {
  Sequential s{std::make_shared<Linear>(3, 4), std::make_shared<ReLU>(),
               std::make_shared<Linear>(4, 2)};
  EXPECT_EQ(names_of(s.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(s.num_parameters(), 3 * 4 + 4 + 4 * 2 + 2);
  EXPECT_EQ(s.parameters().size(), 4u);
  EXPECT_TRUE(s.parameters()[2].same(s.named_parameters()[2].second));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].describe(), "ReLU");
  for (const Tensor& p : s.parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_TRUE(p.is_leaf());
  }

  // Nested containers and buffers.
  auto inner = std::make_shared<Sequential>();
  inner->add(std::make_shared<Linear>(2, 3, false));
  Sequential outer{inner, std::make_shared<BatchNorm1d>(3)};
  EXPECT_EQ(names_of(outer.named_parameters()),
            (std::vector<std::string>{"0.0.weight", "1.weight", "1.bias"}));
  EXPECT_EQ(names_of(outer.named_buffers()),
            (std::vector<std::string>{"1.running_mean", "1.running_var"}));
  std::map<std::string, Tensor> sd = outer.state_dict();
  EXPECT_EQ(sd.size(), 5u);
  EXPECT_TRUE(sd.count("1.running_var"));
  EXPECT_EQ(outer.num_parameters(), 6 + 3 + 3);  // buffers are not parameters
  std::string summary = outer.summary();
  EXPECT_NE(summary.find("total parameters: 12"), std::string::npos) << summary;
  EXPECT_NE(summary.find("BatchNorm1d(3)"), std::string::npos) << summary;

  BasicBlock same(3, 3, 1), down(2, 4, 2);
  EXPECT_EQ(names_of(same.named_parameters()),
            (std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight",
                                      "bn2.weight", "bn2.bias"}));
  EXPECT_EQ(names_of(down.named_parameters()),
            (std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight",
                                      "bn2.weight", "bn2.bias", "down_conv.weight",
                                      "down_bn.weight", "down_bn.bias"}));
  EXPECT_EQ(down.num_parameters(), 4 * 2 * 9 + 8 + 4 * 4 * 9 + 8 + 4 * 2 + 8);
  EXPECT_EQ(names_of(down.named_buffers()).size(), 6u);
}

TEST(Module, TrainEvalPropagates) {
  auto block = std::make_shared<BasicBlock>(2, 2);
  auto inner = std::make_shared<Sequential>();
  inner->add(std::make_shared<Dropout>(0.5f)).add(block);
  Sequential s{inner, std::make_shared<BatchNorm1d>(2)};
  EXPECT_TRUE(s.is_training());
  s.eval();
  EXPECT_FALSE(s.is_training());
  EXPECT_FALSE(inner->is_training());
  EXPECT_FALSE((*inner)[0].is_training());
  EXPECT_FALSE(block->is_training());
  s.train();
  EXPECT_TRUE((*inner)[0].is_training());
  EXPECT_TRUE(block->is_training());
  s.train(false);
  EXPECT_FALSE(s[1].is_training());
}

TEST(Module, ZeroGradAndToCpuIsANoOp) {
  Linear l(3, 2);
  Tensor x = random_tensor({4, 3}, 1);
  sum(l(x)).backward();
  ASSERT_TRUE(l.weight.grad().defined());
  const float* before = l.weight.data();
  const std::vector<float> values = l.weight.to_vector();
  l.to(Device::cpu());
  EXPECT_EQ(l.weight.data(), before);
  EXPECT_EQ(l.weight.to_vector(), values);
  EXPECT_TRUE(l.weight.grad().defined());  // nothing moved, nothing dropped
  l.zero_grad();
  EXPECT_FALSE(l.weight.grad().defined());
  EXPECT_FALSE(l.bias.grad().defined());
}

TEST(Module, DefaultInitWithinPyTorchBounds) {
  manual_seed(3);
  Linear lin(50, 7);
  Conv2d conv(3, 8, 5);
  const float lin_bound = 1.f / std::sqrt(50.f), conv_bound = 1.f / std::sqrt(75.f);
  auto check = [](const Tensor& t, float bound) {
    std::vector<float> v = t.to_vector();
    float lo = 0, hi = 0;
    for (float x : v) {
      EXPECT_LE(std::fabs(x), bound);
      lo = std::min(lo, x), hi = std::max(hi, x);
    }
    // Spread over the whole interval, not a constant or a narrower distribution (checked
    // where there are enough values for the extremes to be near the bounds).
    if (v.size() >= 100) {
      EXPECT_LT(lo, -0.8f * bound);
      EXPECT_GT(hi, 0.8f * bound);
    }
  };
  check(lin.weight, lin_bound);
  check(lin.bias, lin_bound);
  check(conv.weight, conv_bound);
  check(conv.bias, conv_bound);
  EXPECT_EQ(init::fan_in(conv.weight), 75);
  EXPECT_EQ(init::fan_out(conv.weight), 8 * 25);
  // Seeding reproduces the initialisation.
  manual_seed(3);
  Linear again(50, 7);
  EXPECT_EQ(again.weight.to_vector(), lin.weight.to_vector());
  Linear other(50, 7);
  EXPECT_NE(other.weight.to_vector(), lin.weight.to_vector());
  // BatchNorm and PReLU start at PyTorch's constants.
  BatchNorm2d bn(4);
  EXPECT_EQ(bn.weight.to_vector(), std::vector<float>(4, 1.f));
  EXPECT_EQ(bn.bias.to_vector(), std::vector<float>(4, 0.f));
  EXPECT_EQ(bn.running_mean.to_vector(), std::vector<float>(4, 0.f));
  EXPECT_EQ(bn.running_var.to_vector(), std::vector<float>(4, 1.f));
  EXPECT_EQ(PReLU(3).weight.to_vector(), std::vector<float>(3, 0.25f));
}

TEST(Module, InitHelpersBounds) {
  manual_seed(4);
  Tensor w = Tensor::empty({64, 32});
  init::kaiming_uniform_(w);
  const float kb = std::sqrt(2.f) * std::sqrt(3.f / 32.f);
  for (float x : w.to_vector()) EXPECT_LE(std::fabs(x), kb);
  init::xavier_uniform_(w);
  const float xb = std::sqrt(6.f / 96.f);
  for (float x : w.to_vector()) EXPECT_LE(std::fabs(x), xb);
  init::kaiming_normal_(w);
  std::vector<float> v = w.to_vector();
  double ss = 0;
  for (float x : v) ss += double(x) * x;
  EXPECT_NEAR(std::sqrt(ss / v.size()), std::sqrt(2.0 / 32), 0.02);
  EXPECT_THROW(init::fan_in(Tensor::zeros({3})), Error);
}

// ------------------------------------------------------------------------------ batch norm

// Per-channel mean and (biased, unbiased) variance of x [N, C, (HW)] given as flat values.
struct ChannelStats {
  std::vector<double> mean, var_biased, var_unbiased;
};
ChannelStats channel_stats(const std::vector<float>& x, int64_t N, int64_t C, int64_t HW) {
  ChannelStats s{std::vector<double>(C), std::vector<double>(C), std::vector<double>(C)};
  const double count = static_cast<double>(N * HW);
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) sum += x[(n * C + c) * HW + i];
    s.mean[c] = sum / count;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) sq += std::pow(x[(n * C + c) * HW + i] - s.mean[c], 2);
    s.var_biased[c] = sq / count;
    s.var_unbiased[c] = sq / (count - 1);
  }
  return s;
}

void check_batch_norm_training(BatchNorm& bn, const Shape& shape, float momentum, uint64_t seed) {
  const int64_t N = shape[0], C = shape[1], HW = numel_of(shape) / (N * C);
  bn.weight.copy_(random_tensor({C}, seed, 0.5f, 2.f));
  bn.bias.copy_(random_tensor({C}, seed + 1));
  std::vector<double> rm(C, 0.0), rv(C, 1.0);
  const std::vector<float> w = bn.weight.to_vector(), b = bn.bias.to_vector();
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    Tensor x = random_tensor(shape, seed + 10 + step, -2.f, 3.f);
    const std::vector<float> xv = x.to_vector();
    ChannelStats st = channel_stats(xv, N, C, HW);
    Tensor y = bn(x);
    ASSERT_EQ(y.shape(), shape);
    // Output: batch statistics with the biased variance.
    std::vector<double> want(xv.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < HW; ++i) {
          const int64_t at = (n * C + c) * HW + i;
          want[at] = (xv[at] - st.mean[c]) / std::sqrt(st.var_biased[c] + 1e-5) * w[c] + b[c];
        }
    EXPECT_TRUE(test::all_close_ref(y.to_vector(), want, 1e-5, 1e-5));
    // Running statistics: momentum update with the unbiased variance.
    for (int64_t c = 0; c < C; ++c) {
      rm[c] = (1 - momentum) * rm[c] + momentum * st.mean[c];
      rv[c] = (1 - momentum) * rv[c] + momentum * st.var_unbiased[c];
    }
    EXPECT_TRUE(test::all_close_ref(bn.running_mean.to_vector(), rm, 1e-6, 1e-5));
    EXPECT_TRUE(test::all_close_ref(bn.running_var.to_vector(), rv, 1e-6, 1e-5));
  }
}

TEST(BatchNorm, TrainingMatchesHandComputation) {
  BatchNorm1d bn1(3);
  check_batch_norm_training(bn1, {5, 3}, 0.1f, 10);
  BatchNorm2d bn2(4, 1e-5f, 0.3f);
  check_batch_norm_training(bn2, {2, 4, 3, 5}, 0.3f, 20);
}

TEST(BatchNorm, EvalUsesRunningStatistics) {
  BatchNorm2d bn(2);
  bn.running_mean.copy_(Tensor::from_vector({0.5f, -1.f}));
  bn.running_var.copy_(Tensor::from_vector({4.f, 0.25f}));
  bn.weight.copy_(Tensor::from_vector({2.f, 1.f}));
  bn.bias.copy_(Tensor::from_vector({0.f, 3.f}));
  bn.eval();
  Tensor x = random_tensor({3, 2, 2, 2}, 30);
  std::vector<float> xv = x.to_vector();
  // With gradients (the composite, differentiable path) and without (one fused pass).
  Tensor with_grad = bn(x);
  EXPECT_TRUE(with_grad.requires_grad());
  Tensor no_grad;
  {
    NoGradGuard ng;
    no_grad = bn(x);
  }
  for (const Tensor& y : {with_grad, no_grad}) {
    std::vector<float> yv = y.to_vector();
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t i = 0; i < 4; ++i) {
          const int64_t at = (n * 2 + c) * 4 + i;
          const double rm = c ? -1.0 : 0.5, rv = c ? 0.25 : 4.0, w = c ? 1.0 : 2.0;
          const double b = c ? 3.0 : 0.0;
          EXPECT_NEAR(yv[at], (xv[at] - rm) / std::sqrt(rv + 1e-5) * w + b, 1e-5);
        }
  }
  // Evaluation leaves the statistics alone, and a batch of one is fine.
  EXPECT_EQ(bn.running_mean.to_vector(), (std::vector<float>{0.5f, -1.f}));
  EXPECT_EQ(bn.running_var.to_vector(), (std::vector<float>{4.f, 0.25f}));
  EXPECT_EQ(bn(random_tensor({1, 2, 1, 1}, 31)).shape(), (Shape{1, 2, 1, 1}));
  // Training needs more than one value per channel.
  bn.train();
  EXPECT_THROW(bn(random_tensor({1, 2, 1, 1}, 32)), Error);
}

// Backend::batch_norm_forward/backward directly: the CPU override and the generic default (a
// qualified call skips the override), against the formulas in double, with and without a fused
// ReLU (the backward's mask is the forward's own output > 0, as ReLU's backward reads it).
// Outputs start as NaN.
TEST(BatchNorm, BackendCompositesGenericAndCpu) {
  const int64_t N = 3, C = 4, HW = 5, n = N * C * HW;
  const std::vector<float> x = test::random_values(n, 100, -2.f, 3.f);
  const std::vector<float> gy = test::random_values(n, 101);
  const std::vector<float> w = test::random_values(C, 102, 0.5f, 2.f);
  const std::vector<float> b = test::random_values(C, 103);
  const float eps = 1e-5f;
  ChannelStats st = channel_stats(x, N, C, HW);
  std::vector<double> invstd(C);
  for (int64_t c = 0; c < C; ++c) invstd[c] = 1 / std::sqrt(st.var_biased[c] + eps);
  auto xhat = [&](int64_t at) {
    const int64_t c = (at / HW) % C;
    return (x[at] - st.mean[c]) * invstd[c];
  };
  // The reference output, and gx, gw, gb for an incoming gradient g (already masked).
  struct Grads {
    std::vector<double> gx, gw, gb;
  };
  auto reference_grads = [&](const std::vector<double>& g, bool affine) {
    Grads r{std::vector<double>(n), std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
    for (int64_t at = 0; at < n; ++at) {
      const int64_t c = (at / HW) % C;
      r.gb[c] += g[at], r.gw[c] += g[at] * xhat(at);
    }
    for (int64_t at = 0; at < n; ++at) {
      const int64_t c = (at / HW) % C;
      const double mg = r.gb[c] / (N * HW), mgx = r.gw[c] / (N * HW);
      r.gx[at] = (affine ? w[c] : 1.0) * invstd[c] * (g[at] - mg - xhat(at) * mgx);
    }
    return r;
  };
  Backend& cpu = backend_for(Device::cpu());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (bool generic : {false, true})
    for (bool relu : {false, true})
      for (bool affine : {true, false}) {
        SCOPED_TRACE(std::string(generic ? "generic default" : "CPU override") +
                     (relu ? ", fused ReLU" : "") + (affine ? ", affine" : ", no weight/bias"));
        const float* wp = affine ? w.data() : nullptr;
        const float* bp = affine ? b.data() : nullptr;
        std::vector<float> out(n, nan), mean(C, nan), var(C, nan), inv(C, nan);
        if (generic)
          cpu.Backend::batch_norm_forward(x.data(), N, C, HW, wp, bp, eps, relu, out.data(),
                                          mean.data(), var.data(), inv.data());
        else
          cpu.batch_norm_forward(x.data(), N, C, HW, wp, bp, eps, relu, out.data(), mean.data(),
                                 var.data(), inv.data());
        std::vector<double> y(n), g(gy.begin(), gy.end());
        int64_t masked = 0;
        for (int64_t at = 0; at < n; ++at) {
          const int64_t c = (at / HW) % C;
          y[at] = affine ? xhat(at) * w[c] + b[c] : xhat(at);
          if (relu) y[at] = std::max(0.0, y[at]);
          if (relu && !(out[at] > 0.f)) g[at] = 0, ++masked;
        }
        EXPECT_TRUE(!relu || masked > n / 5) << masked << " masked";  // the mask matters
        EXPECT_TRUE(test::all_close_ref(out, y, 1e-5, 1e-5));
        EXPECT_TRUE(test::all_close_ref(mean, st.mean, 1e-6, 1e-5));
        EXPECT_TRUE(test::all_close_ref(var, st.var_biased, 1e-6, 1e-5));
        EXPECT_TRUE(test::all_close_ref(inv, invstd, 1e-6, 1e-5));
        const Grads want = reference_grads(g, affine);
        const float* relu_out = relu ? out.data() : nullptr;
        for (bool all_outputs : {true, false}) {  // then gx alone, the others skipped
          std::vector<float> gxo(n, nan), gwo(C, nan), gbo(C, nan);
          float* gwp = all_outputs ? gwo.data() : nullptr;
          float* gbp = all_outputs ? gbo.data() : nullptr;
          if (generic)
            cpu.Backend::batch_norm_backward(x.data(), relu_out, gy.data(), N, C, HW, mean.data(),
                                             inv.data(), wp, gxo.data(), gwp, gbp);
          else
            cpu.batch_norm_backward(x.data(), relu_out, gy.data(), N, C, HW, mean.data(),
                                    inv.data(), wp, gxo.data(), gwp, gbp);
          EXPECT_TRUE(test::all_close_ref(gxo, want.gx, 1e-5, 1e-4));
          if (!all_outputs) continue;
          EXPECT_TRUE(test::all_close_ref(gwo, want.gw, 1e-5, 1e-4));
          EXPECT_TRUE(test::all_close_ref(gbo, want.gb, 1e-5, 1e-4));
        }
      }
}

// Backend::batch_norm_inference directly: the CPU override (one pass) and the generic default
// (composed elementwise ops), against the formula in double, with and without weight and bias,
// for [N, C] and [N, C, HW] inputs. Outputs start as NaN.
TEST(BatchNorm, BackendInferenceGenericAndCpu) {
  Backend& cpu = backend_for(Device::cpu());
  struct Case {
    int64_t N, C, HW;
  };
  for (const Case& k : {Case{3, 4, 5}, Case{7, 3, 1}, Case{2, 5, 333}, Case{1, 1, 1}}) {
    SCOPED_TRACE("N " + std::to_string(k.N) + " C " + std::to_string(k.C) + " HW " +
                 std::to_string(k.HW));
    const int64_t n = k.N * k.C * k.HW;
    const std::vector<float> x = test::random_values(n, 110, -2.f, 3.f);
    const std::vector<float> mean = test::random_values(k.C, 111, -1.f, 1.f);
    const std::vector<float> var = test::random_values(k.C, 112, 0.f, 4.f);
    const std::vector<float> w = test::random_values(k.C, 113, 0.5f, 2.f);
    const std::vector<float> b = test::random_values(k.C, 114);
    const float eps = 1e-3f;
    for (bool affine : {true, false})
      for (bool relu : {false, true}) {
        std::vector<double> want(n);
        for (int64_t at = 0; at < n; ++at) {
          const int64_t c = (at / k.HW) % k.C;
          const double xhat = (x[at] - double{mean[c]}) / std::sqrt(double{var[c]} + eps);
          want[at] = affine ? xhat * w[c] + b[c] : xhat;
          if (relu) want[at] = std::max(0.0, want[at]);
        }
        for (bool generic : {false, true}) {
          SCOPED_TRACE(std::string(generic ? "generic default" : "CPU override") +
                       (affine ? ", affine" : ", no weight/bias") + (relu ? ", fused ReLU" : ""));
          std::vector<float> y(n, std::numeric_limits<float>::quiet_NaN());
          const float* wp = affine ? w.data() : nullptr;
          const float* bp = affine ? b.data() : nullptr;
          if (generic)
            cpu.Backend::batch_norm_inference(x.data(), k.N, k.C, k.HW, mean.data(), var.data(), wp,
                                              bp, eps, relu, y.data());
          else
            cpu.batch_norm_inference(x.data(), k.N, k.C, k.HW, mean.data(), var.data(), wp, bp, eps,
                                     relu, y.data());
          EXPECT_TRUE(test::all_close_ref(y, want, 1e-5, 1e-5));
        }
      }
  }
}

TEST(BatchNorm, RejectsWrongInput) {
  BatchNorm2d bn(3);
  EXPECT_THROW(bn(Tensor::zeros({2, 3})), Error);
  EXPECT_THROW(bn(Tensor::zeros({2, 4, 2, 2})), Error);
  BatchNorm1d bn1(3);
  EXPECT_THROW(bn1(Tensor::zeros({2, 3, 2, 2})), Error);
  EXPECT_THROW(BatchNorm1d(0), UsageError);
}

// ------------------------------------------------------------------------------ layers

TEST(Layers, ForwardValues) {
  Tensor x = Tensor::from_vector({-2.f, 3.f, -0.5f, 1.f}, {2, 2});
  EXPECT_EQ(PReLU()(x).to_vector(), (std::vector<float>{-0.5f, 3.f, -0.125f, 1.f}));
  PReLU per_channel(2);
  per_channel.weight.copy_(Tensor::from_vector({0.1f, 0.5f}));
  EXPECT_TRUE(test::all_close(per_channel(x).to_vector(), {-0.2f, 3.f, -0.05f, 1.f}, 1e-7));
  EXPECT_THROW(per_channel(Tensor::zeros({2, 3})), Error);
  EXPECT_THROW(PReLU(0), UsageError);
  EXPECT_TRUE(test::all_close(LeakyReLU(0.1f)(x).to_vector(), {-0.2f, 3.f, -0.05f, 1.f}, 1e-7));
  EXPECT_EQ(ReLU()(x).to_vector(), (std::vector<float>{0.f, 3.f, 0.f, 1.f}));
  EXPECT_TRUE(test::all_close(Tanh()(x).to_vector(), tanh(x).to_vector(), 0));
  EXPECT_TRUE(test::all_close(Sigmoid()(x).to_vector(), sigmoid(x).to_vector(), 0));

  Tensor img = random_tensor({2, 3, 4, 4}, 40);
  EXPECT_EQ(Flatten()(img).shape(), (Shape{2, 48}));
  EXPECT_EQ(MaxPool2d(2)(img).shape(), (Shape{2, 3, 2, 2}));
  EXPECT_EQ(AvgPool2d(3, 1, 1)(img).shape(), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(GlobalAvgPool()(img).shape(), (Shape{2, 3}));
  Tensor rows = L2Normalize()(random_tensor({3, 5}, 41));
  for (float n : sqrt(sum(square(rows), {1})).to_vector()) EXPECT_NEAR(n, 1.f, 1e-6);

  Linear lin(3, 2, false);
  EXPECT_FALSE(lin.bias.defined());
  EXPECT_EQ(lin.num_parameters(), 6);
  EXPECT_THROW(lin(Tensor::zeros({2, 4})), Error);
  EXPECT_THROW(Linear(0, 2), UsageError);
  Conv2d conv(3, 5, 3, 2, 1, false);
  EXPECT_EQ(conv(img).shape(), (Shape{2, 5, 2, 2}));
  EXPECT_THROW(Conv2d(3, 5, 0), UsageError);
  EXPECT_EQ(BasicBlock(3, 6, 2)(img).shape(), (Shape{2, 6, 2, 2}));
}

TEST(Layers, DropoutTrainAndEval) {
  Dropout d(0.25f);
  Tensor x = Tensor::ones({4000});
  manual_seed(5);
  std::vector<float> y = d(x).to_vector();
  int zeros = 0;
  for (float v : y) {
    if (v == 0.f)
      ++zeros;
    else
      EXPECT_FLOAT_EQ(v, 1.f / 0.75f);
  }
  EXPECT_NEAR(zeros / 4000.0, 0.25, 0.03);
  d.eval();
  EXPECT_TRUE(d(x).same(x));
  EXPECT_EQ(d.describe(), "Dropout(0.25)");
}

// ------------------------------------------------------------------------------ gradchecks

// gradcheck over the input and every parameter of `m` (they are perturbed in place).
::testing::AssertionResult module_gradcheck(Module& m, const Tensor& x,
                                            const GradcheckOptions& o = {}) {
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  return gradcheck_ok([&m](const std::vector<Tensor>& in) { return m(in[0]); }, inputs, o);
}

TEST(LayerGradcheck, LinearAndConv) {
  manual_seed(50);
  Linear lin(4, 3), lin_nb(4, 3, false);
  EXPECT_TRUE(module_gradcheck(lin, random_tensor({5, 4}, 51, -1.f, 1.f, true)));
  EXPECT_TRUE(module_gradcheck(lin_nb, random_tensor({5, 4}, 52, -1.f, 1.f, true)));
  Conv2d conv(2, 3, 3, 2, 1);
  EXPECT_TRUE(module_gradcheck(conv, random_tensor({2, 2, 5, 6}, 53, -1.f, 1.f, true)));
  Conv2d pointwise(3, 2, 1);
  EXPECT_TRUE(module_gradcheck(pointwise, random_tensor({1, 3, 3, 4}, 54, -1.f, 1.f, true)));
}

TEST(LayerGradcheck, BatchNorm) {
  BatchNorm1d bn1(3);
  bn1.weight.copy_(random_tensor({3}, 60, 0.5f, 2.f));
  bn1.bias.copy_(random_tensor({3}, 61));
  Tensor x1 = random_tensor({6, 3}, 62, -2.f, 2.f, true);
  EXPECT_TRUE(module_gradcheck(bn1, x1));
  BatchNorm2d bn2(2);
  bn2.weight.copy_(random_tensor({2}, 63, 0.5f, 2.f));
  Tensor x2 = random_tensor({2, 2, 3, 3}, 64, -2.f, 2.f, true);
  EXPECT_TRUE(module_gradcheck(bn2, x2));
  bn1.eval(), bn2.eval();
  EXPECT_TRUE(module_gradcheck(bn1, x1));
  EXPECT_TRUE(module_gradcheck(bn2, x2));
}

TEST(LayerGradcheck, PReLU) {
  PReLU shared;
  EXPECT_TRUE(module_gradcheck(shared, test::away_from_zero({7}, 70, 0.2f, 1.5f, true)));
  EXPECT_TRUE(module_gradcheck(shared, test::away_from_zero({2, 3, 2, 2}, 71, 0.2f, 1.5f, true)));
  PReLU per_channel(3);
  per_channel.weight.copy_(Tensor::from_vector({0.1f, 0.25f, 0.6f}));
  EXPECT_TRUE(module_gradcheck(per_channel, test::away_from_zero({4, 3}, 72, 0.2f, 1.5f, true)));
  EXPECT_TRUE(
      module_gradcheck(per_channel, test::away_from_zero({2, 3, 2, 2}, 73, 0.2f, 1.5f, true)));
}

// The block recomputed with functional ops from its own parameters: returns the two ReLU inputs
// (after bn1, and bn2 + shortcut) and checks that relu(second) is what the block outputs.
std::vector<Tensor> block_relu_inputs(BasicBlock& b, const Tensor& x, int64_t stride) {
  NoGradGuard ng;
  std::map<std::string, Tensor> sd = b.state_dict();
  auto bn = [&](const Tensor& t, const std::string& p) {  // clones: leave the buffers alone
    return batch_norm(t, sd.at(p + ".weight"), sd.at(p + ".bias"),
                      sd.at(p + ".running_mean").clone(), sd.at(p + ".running_var").clone(),
                      b.is_training());
  };
  Tensor a1 = bn(conv2d(x, sd.at("conv1.weight"), Tensor(), {stride, stride, 1, 1}), "bn1");
  Tensor y = bn(conv2d(relu(a1), sd.at("conv2.weight"), Tensor(), {1, 1, 1, 1}), "bn2");
  Tensor shortcut =
      sd.count("down_conv.weight")
          ? bn(conv2d(x, sd.at("down_conv.weight"), Tensor(), {stride, stride, 0, 0}), "down_bn")
          : x;
  Tensor a2 = y + shortcut;
  const std::map<std::string, Tensor> saved = [&] {
    std::map<std::string, Tensor> m;
    for (const auto& [k, t] : sd) m[k] = t.clone();
    return m;
  }();
  EXPECT_TRUE(test::all_close(b(x).to_vector(), relu(a2).to_vector(), 1e-5, 1e-5));
  b.load_state_dict(saved);  // undo the running-statistics update of that training pass
  return {a1, a2};
}

// Gradcheck of a block on the first input whose ReLU inputs all lie >= `margin` from the kink
// at 0, so that no finite difference (eps 1e-3, shifting them by ~1e-3 * 3 after batch norm)
// crosses it. Random inputs otherwise land within 1e-4 of it now and then.
void check_block_gradient(BasicBlock& b, const Shape& x_shape, int64_t stride) {
  const float margin = 0.03f;
  for (uint64_t seed = 100;; ++seed) {
    ASSERT_LT(seed, 300u) << "no input with every ReLU input " << margin << " away from 0";
    Tensor x = random_tensor(x_shape, seed, -1.f, 1.f, true);
    float closest = INFINITY;
    for (const Tensor& a : block_relu_inputs(b, x, stride))
      closest = std::min(closest, min(abs(a)).item());
    if (closest < margin) continue;
    EXPECT_TRUE(module_gradcheck(b, x)) << "input seed " << seed;
    return;
  }
}

TEST(LayerGradcheck, BasicBlock) {
  manual_seed(80);
  BasicBlock identity(2, 2, 1);
  BasicBlock downsample(2, 3, 2);
  {
    SCOPED_TRACE("identity shortcut, training");
    check_block_gradient(identity, {2, 2, 3, 3}, 1);
  }
  {
    SCOPED_TRACE("downsampling shortcut, training");
    check_block_gradient(downsample, {2, 2, 4, 4}, 2);
  }
  // Evaluation mode, with running statistics away from their defaults.
  for (int i = 0; i < 3; ++i) {
    identity(random_tensor({4, 2, 3, 3}, 90 + i));
    downsample(random_tensor({4, 2, 4, 4}, 95 + i));
  }
  identity.eval(), downsample.eval();
  {
    SCOPED_TRACE("identity shortcut, eval");
    check_block_gradient(identity, {2, 2, 3, 3}, 1);
  }
  {
    SCOPED_TRACE("downsampling shortcut, eval");
    check_block_gradient(downsample, {2, 2, 4, 4}, 2);
  }
}

TEST(LayerGradcheck, L2NormalizeAndSequential) {
  L2Normalize norm;
  EXPECT_TRUE(module_gradcheck(norm, random_tensor({3, 4}, 90, -1.f, 1.f, true)));
  manual_seed(91);
  Sequential net{std::make_shared<Linear>(4, 6), std::make_shared<Tanh>(),
                 std::make_shared<Linear>(6, 3), std::make_shared<L2Normalize>()};
  EXPECT_TRUE(module_gradcheck(net, random_tensor({5, 4}, 92, -1.f, 1.f, true)));
}

// Sequential fuses BatchNorm -> ReLU (batch_norm_relu) and ReLU -> MaxPool2d (max_pool2d_relu).
// The fused forward must match the children called one by one: outputs, the input's and every
// parameter's gradient, and the running statistics, in training and in eval; and the graph
// shows the fused ops. Two nets from the same seed hold the same weights.
TEST(Sequential, FusedPairsMatchLayerByLayer) {
  auto make = [] {
    manual_seed(120);
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Conv2d>(2, 4, 3, 1, 1))
        .add(std::make_shared<BatchNorm2d>(4))
        .add(std::make_shared<ReLU>())  // fused with the batch norm
        .add(std::make_shared<Conv2d>(4, 4, 3, 1, 1))
        .add(std::make_shared<ReLU>())
        .add(std::make_shared<MaxPool2d>(2))  // fused with the ReLU
        .add(std::make_shared<Flatten>())
        .add(std::make_shared<Linear>(36, 5))
        .add(std::make_shared<BatchNorm1d>(5))
        .add(std::make_shared<ReLU>())
        .add(std::make_shared<Linear>(5, 3));
    return net;
  };
  auto fused_net = make(), plain_net = make();
  auto layer_by_layer = [&](const Tensor& x) {
    Tensor y = x;
    for (size_t i = 0; i < plain_net->size(); ++i) y = (*plain_net)[i].forward(y);
    return y;
  };
  const Tensor x = random_tensor({6, 2, 6, 6}, 121, -2.f, 2.f);
  const Tensor weights = random_tensor({6, 3}, 122);
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "eval");
    fused_net->train(training), plain_net->train(training);
    fused_net->zero_grad(), plain_net->zero_grad();
    Tensor xa = x.detach().set_requires_grad(true), xb = x.detach().set_requires_grad(true);
    Tensor ya = (*fused_net)(xa), yb = layer_by_layer(xb);
    EXPECT_TRUE(test::all_close(ya.to_vector(), yb.to_vector(), 1e-6, 1e-6));
    // Training's graph: two batch_norm_relu nodes, one max_pool2d_relu, no batch_norm, no relu.
    // (Eval with a graph takes batch_norm's composite path, then a relu.)
    std::map<std::string, int> ops;
    std::vector<std::shared_ptr<Node>> todo{ya.grad_fn()};
    while (!todo.empty()) {
      std::shared_ptr<Node> n = todo.back();
      todo.pop_back();
      ++ops[n->op()];
      for (const Node::Edge& e : n->edges())
        if (e.fn) todo.push_back(e.fn);
    }
    if (training) {
      EXPECT_EQ(ops["batch_norm_relu"], 2);
      EXPECT_EQ(ops["max_pool2d_relu"], 1);
      EXPECT_EQ(ops["batch_norm"], 0);
      EXPECT_EQ(ops["relu"], 0);
      EXPECT_EQ(ops["max_pool2d"], 0);
    }
    (ya * weights).sum().backward();
    (yb * weights).sum().backward();
    EXPECT_TRUE(test::all_close(xa.grad().to_vector(), xb.grad().to_vector(), 1e-6, 1e-6));
    const auto pa = fused_net->named_parameters(), pb = plain_net->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      SCOPED_TRACE(pa[i].first);
      EXPECT_TRUE(test::all_close(pa[i].second.grad().to_vector(), pb[i].second.grad().to_vector(),
                                  1e-6, 1e-6));
    }
    const auto ba = fused_net->named_buffers(), bb = plain_net->named_buffers();
    for (size_t i = 0; i < ba.size(); ++i) {
      SCOPED_TRACE(ba[i].first);
      EXPECT_EQ(ba[i].second.to_vector(), bb[i].second.to_vector());
    }
    // Without a graph (embedding): the fused inference pass, or training's without backward.
    NoGradGuard ng;
    EXPECT_TRUE(
        test::all_close((*fused_net)(x).to_vector(), layer_by_layer(x).to_vector(), 1e-6, 1e-6));
  }
  // ReLU then MaxPool2d where windows hold NaNs: the ReLU turns each into 0 before the pooling,
  // fused or not (the largest of the window's other values wins).
  {
    Sequential pool{std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(2)};
    std::vector<float> v = random_tensor({1, 2, 4, 6}, 125, -1.f, 1.f).to_vector();
    for (size_t i = 0; i < v.size(); i += 5) v[i] = std::numeric_limits<float>::quiet_NaN();
    const Tensor xn = Tensor::from_vector(v, {1, 2, 4, 6});
    Tensor xa = xn.detach().set_requires_grad(true), xb = xn.detach().set_requires_grad(true);
    Tensor ya = pool(xa), yb = pool[1].forward(pool[0].forward(xb));
    EXPECT_EQ(ya.to_vector(), yb.to_vector());
    ya.sum().backward(), yb.sum().backward();
    EXPECT_EQ(xa.grad().to_vector(), xb.grad().to_vector());
  }
  // A subclass may override forward(): it is called as it is, never fused.
  struct LoudReLU : ReLU {
    Tensor forward(const Tensor& x) override { return relu(x) * 2.f; }
  };
  manual_seed(123);
  Sequential custom{std::make_shared<BatchNorm1d>(3), std::make_shared<LoudReLU>()};
  const Tensor v = random_tensor({4, 3}, 124, -2.f, 2.f);
  EXPECT_TRUE(test::all_close(custom(v).to_vector(), (relu(custom[0].forward(v)) * 2.f).to_vector(),
                              1e-6, 1e-6));
}

}  // namespace
}  // namespace trine
