// End to end: small networks must actually learn. A Linear-Tanh-Linear MLP fits a smooth 1-D
// function with Adam and with SGD + momentum; a small conv net separates two image classes.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "layers/layers.h"
#include "support/test_util.h"

namespace trine {
namespace {

// 64 points of y = sin(2x) on [-2, 2] as [64, 1] inputs and targets.
void sine_data(Tensor& x, Tensor& y) {
  std::vector<float> xs(64), ys(64);
  for (int i = 0; i < 64; ++i) {
    xs[i] = -2.f + 4.f * static_cast<float>(i) / 63.f;
    ys[i] = std::sin(2.f * xs[i]);
  }
  x = Tensor::from_vector(xs, {64, 1});
  y = Tensor::from_vector(ys, {64, 1});
}

std::shared_ptr<Sequential> mlp() {
  return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Linear>(1, 32), std::make_shared<Tanh>(), std::make_shared<Linear>(32, 1)});
}

// Full-batch training for `steps` steps; returns the MSE before and after.
std::pair<float, float> fit(Module& model, Optimizer& opt, const Tensor& x, const Tensor& y,
                            int steps) {
  auto loss_of = [&] { return mean(square(model(x) - y)); };
  const float before = loss_of().item();
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    Tensor loss = loss_of();
    EXPECT_TRUE(std::isfinite(loss.item())) << "step " << i;
    loss.backward();
    opt.step();
  }
  return {before, loss_of().item()};
}

TEST(Fit, MlpLearnsSineWithAdam) {
  manual_seed(1);
  Tensor x, y;
  sine_data(x, y);
  auto model = mlp();
  AdamOptions o;
  o.lr = 0.02f;
  Adam opt(model->parameters(), o);
  auto [before, after] = fit(*model, opt, x, y, 600);
  // sin(2x) has variance ~0.5 on this interval; an untrained net is at least that far off.
  EXPECT_GT(before, 0.1f);
  EXPECT_LT(after, before / 500.f) << "MSE " << before << " -> " << after;
  EXPECT_LT(after, 1e-3f);
}

TEST(Fit, MlpLearnsSineWithSgdMomentum) {
  manual_seed(2);
  Tensor x, y;
  sine_data(x, y);
  auto model = mlp();
  SgdOptions o;
  o.lr = 0.1f;
  o.momentum = 0.9f;
  SGD opt(model->parameters(), o);
  auto [before, after] = fit(*model, opt, x, y, 1000);
  EXPECT_GT(before, 0.1f);
  EXPECT_LT(after, before / 100.f) << "MSE " << before << " -> " << after;
}

TEST(Fit, SeededTrainingIsReproducible) {
  Tensor x, y;
  sine_data(x, y);
  std::vector<float> runs[2];
  for (auto& out : runs) {
    manual_seed(3);
    auto model = mlp();
    Adam opt(model->parameters());
    fit(*model, opt, x, y, 20);
    out = (*model)(x).to_vector();
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(Fit, ConvNetSeparatesTwoPatterns) {
  // Class 0: a bright left half; class 1: a bright top half; both with noise.
  manual_seed(4);
  const int64_t n = 32;
  Tensor noise = Tensor::randn({n, 1, 8, 8}, 0.f, 0.3f);
  std::vector<float> imgs = noise.to_vector(), labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = static_cast<float>(i % 2);
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c)
        if (i % 2 == 0 ? c < 4 : r < 4) imgs[(i * 8 + r) * 8 + c] += 1.f;
  }
  Tensor x = Tensor::from_vector(imgs, {n, 1, 8, 8});
  Tensor t = Tensor::from_vector(labels, {n, 1});
  Sequential net{std::make_shared<Conv2d>(1, 4, 3, 1, 1),
                 std::make_shared<BatchNorm2d>(4),
                 std::make_shared<ReLU>(),
                 std::make_shared<MaxPool2d>(2),
                 std::make_shared<Flatten>(),
                 std::make_shared<Linear>(64, 1)};
  AdamOptions o;
  o.lr = 0.01f;
  Adam opt(net.parameters(), o);
  // Logistic loss: softplus(z) - t z.
  auto loss_of = [&] {
    Tensor z = net(x);
    return mean(softplus(z) - t * z);
  };
  const float before = loss_of().item();
  for (int i = 0; i < 60; ++i) {
    opt.zero_grad();
    loss_of().backward();
    opt.step();
  }
  net.eval();
  const float after = loss_of().item();
  EXPECT_LT(after, before / 50.f) << before << " -> " << after;
  std::vector<float> z = net(x).to_vector();
  int correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += (z[i] > 0) == (labels[i] > 0.5f);
  EXPECT_EQ(correct, n);
}

}  // namespace
}  // namespace trine
