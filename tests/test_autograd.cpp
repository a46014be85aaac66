// Autograd engine: gradient accumulation, shared inputs, graph freeing and retain_graph, grad
// mode, leaf rules, and the checks on what a node's backward returns.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "support/test_util.h"

namespace trine {
namespace {

using test::all_close;
using test::throws_with;

TEST(Autograd, SimpleChain) {
  Tensor x = Tensor::from_vector({1, -2, 3}).set_requires_grad(true);
  Tensor loss = sum(x * x * 3.f + x);  // d/dx = 6x + 1
  loss.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{7, -11, 19}));
  EXPECT_TRUE(loss.grad_fn());
  EXPECT_FALSE(x.grad().requires_grad());
}

TEST(Autograd, BackwardAccumulatesIntoPrefilledGrad) {
  Tensor x = Tensor::from_vector({1, 2, 3}).set_requires_grad(true);
  x.set_grad(Tensor::from_vector({10, 20, 30}));
  sum(x * x).backward();  // + 2x
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{12, 24, 36}));
  // A second, independent graph adds again.
  sum(x * 5.f).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{17, 29, 41}));
  // The stored gradient is never the caller's tensor: mutating the source leaves grad alone.
  Tensor g = Tensor::from_vector({1, 1, 1});
  Tensor y = Tensor::zeros({3}).set_requires_grad(true);
  (y * 1.f).backward(g);
  g.fill_(100.f);
  EXPECT_EQ(y.grad().to_vector(), (std::vector<float>{1, 1, 1}));
}

TEST(Autograd, BackwardOnLeafAccumulates) {
  Tensor x = Tensor::zeros({2}).set_requires_grad(true);
  x.backward(Tensor::from_vector({1, 2}));
  x.backward(Tensor::from_vector({3, 4}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{4, 6}));
}

TEST(Autograd, InputUsedTwiceGetsTheSum) {
  Tensor x = Tensor::from_vector({2, -1}).set_requires_grad(true);
  sum(x + x).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2, 2}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(mul(x, x)).backward();  // both operands are x: 2x
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{4, -2}));
  x.zero_grad();
  // Diamond: y = 2x feeds two branches that join again. d/dx sum(y*y + y) = (2y + 1) * 2.
  Tensor y = x * 2.f;
  sum(y * y + y).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{18, -6}));
}

TEST(Autograd, SecondBackwardNeedsRetainGraph) {
  Tensor x = Tensor::from_vector({1, 2}).set_requires_grad(true);
  Tensor loss = sum(exp(x));
  loss.backward();
  EXPECT_TRUE(throws_with<Error>([&] { loss.backward(); }, {"retain_graph"}));

  Tensor z = Tensor::from_vector({1, 2}).set_requires_grad(true);
  Tensor l2 = sum(z * z);
  l2.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_FALSE(l2.grad_fn()->released());
  l2.backward();
  EXPECT_EQ(z.grad().to_vector(), (std::vector<float>{4, 8}));
  EXPECT_TRUE(l2.grad_fn()->released());
}

TEST(Autograd, BackwardErrors) {
  Tensor a = Tensor::ones({2});
  EXPECT_TRUE(throws_with<Error>([&] { sum(a).backward(); }, {"does not require grad"}));
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  Tensor y = x * 2.f;
  // A non-scalar output needs an explicit gradient of its shape.
  EXPECT_TRUE(throws_with<Error>([&] { y.backward(); }, {"one-element", "[2]"}));
  EXPECT_TRUE(throws_with<Error>([&] { y.backward(Tensor::ones({3})); }, {"[3]", "[2]"}));
  y.backward(Tensor::ones({2}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2, 2}));
  EXPECT_THROW(Tensor().backward(), Error);
}

TEST(Autograd, NoGradGuardDisablesRecording) {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard ng;
    EXPECT_FALSE(grad_enabled());
    Tensor y = x * 3.f;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_FALSE(y.grad_fn());
    EXPECT_FALSE(any_requires_grad({&x}));
    { NoGradGuard inner; }
    EXPECT_FALSE(grad_enabled());  // the inner guard restores "off", not "on"
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE((x * 3.f).requires_grad());
  EXPECT_TRUE(any_requires_grad({&x}));
}

TEST(Autograd, LeafRules) {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  EXPECT_TRUE(x.is_leaf());
  Tensor y = x * 2.f;
  EXPECT_FALSE(y.is_leaf());
  EXPECT_TRUE(throws_with<Error>([&] { y.set_requires_grad(false); }, {"leaf", "mul"}));
  // detach() gives a leaf that can be made trainable.
  Tensor d = y.detach();
  d.set_requires_grad(true);
  EXPECT_TRUE(d.requires_grad());
  EXPECT_TRUE(throws_with<Error>([&] { x.set_grad(Tensor::ones({3})); }, {"set_grad", "[3]"}));
}

TEST(Autograd, GradientsFlowOnlyWhereRequired) {
  Tensor x = Tensor::from_vector({1, 2}).set_requires_grad(true);
  Tensor c = Tensor::from_vector({3, 4});  // constant
  sum(x * c).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{3, 4}));
  EXPECT_FALSE(c.grad().defined());
  // Results of ops on constants only do not require grad.
  EXPECT_FALSE((c * c).requires_grad());
}

TEST(Autograd, WrongShapedGradientIsReported) {
  Tensor x = Tensor::ones({2, 3}).set_requires_grad(true);
  Tensor out = record(x.detach().clone(), "bad_op", {x}, [](const Tensor&) -> Grads {
    return {Tensor::zeros({3, 2})};
  });
  EXPECT_TRUE(
      throws_with<Error>([&] { sum(out).backward(); }, {"bad_op", "[3, 2]", "[2, 3]", "input 0"}));
}

TEST(Autograd, WrongNumberOfGradientsIsReported) {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  Tensor out = record(x.detach().clone(), "two_grads", {x}, [](const Tensor& g) -> Grads {
    return {g, g};
  });
  EXPECT_TRUE(throws_with<Error>([&] { sum(out).backward(); }, {"two_grads", "2 gradients"}));
}

TEST(Autograd, UndefinedGradientMeansNone) {
  Tensor a = Tensor::ones({2}).set_requires_grad(true);
  Tensor b = Tensor::ones({2}).set_requires_grad(true);
  Tensor out = record(a.detach() + b.detach(), "only_b", {a, b}, [](const Tensor& g) -> Grads {
    return {Tensor(), g * 2.f};
  });
  sum(out).backward();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{2, 2}));
}

TEST(Autograd, RecordWithoutGradInputsAttachesNothing) {
  Tensor a = Tensor::ones({2});
  bool called = false;
  Tensor out = record(a.clone(), "noop", {a}, [&](const Tensor& g) -> Grads {
    called = true;
    return {g};
  });
  EXPECT_FALSE(out.requires_grad());
  EXPECT_FALSE(out.grad_fn());
  EXPECT_FALSE(called);
}

TEST(Autograd, BackwardRunsWithoutRecording) {
  // The backward of an op may use ops; they must not build a graph of their own.
  Tensor x = Tensor::from_vector({0.5f, 1.5f}).set_requires_grad(true);
  sum(exp(x) * x).backward();
  EXPECT_FALSE(x.grad().requires_grad());
  EXPECT_FALSE(x.grad().grad_fn());
  EXPECT_TRUE(
      all_close(x.grad().to_vector(), {std::exp(0.5f) * 1.5f, std::exp(1.5f) * 2.5f}, 1e-5, 1e-6));
}

TEST(Autograd, LongChainDoesNotOverflow) {
  // backward() walks the graph iteratively; a long chain must not exhaust the stack.
  Tensor x = Tensor::from_vector({1.f}).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0001f;
  y.backward(Tensor::ones({1}));
  EXPECT_NEAR(x.grad().item(), std::pow(1.0001, 20000), 1e-2);
}

TEST(Autograd, DroppingADeepGraphDoesNotRecurse) {
  // Each node holds its input's node: freeing 200 000 of them one inside another overflowed the
  // stack under clang's AddressSanitizer.
  Tensor x = Tensor::from_vector({1.f}).set_requires_grad(true);
  {
    Tensor y = x;
    for (int i = 0; i < 200000; ++i) y = y * y;
  }  // without backward(): two edges to one input node, and the saved inputs hold it too
  Tensor y = x;
  for (int i = 0; i < 200000; ++i) y = y + 1.f;
  y.backward(Tensor::ones({1}));
  EXPECT_EQ(x.grad().item(), 1.f);
  y = Tensor();  // after backward(), which freed the backward functions
  EXPECT_FALSE(y.defined());
}

TEST(Autograd, GradThroughViewsAndCopies) {
  Tensor x = Tensor::arange(6).reshape({2, 3}).detach().set_requires_grad(true);
  // reshape, slice (view), clone and to() all pass gradients through.
  Tensor y = x.reshape({3, 2}).slice(0, 1, 3).clone().to(Device::cpu());
  sum(y * y).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 0, 4, 6, 8, 10}));
}

}  // namespace
}  // namespace trine
