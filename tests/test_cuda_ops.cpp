// CPU-vs-CUDA parity of every op in engine/ops.h, forward and backward: the same inputs go
// through the op on the CPU and on the GPU, and the outputs and input gradients are compared
// with |cuda - cpu| <= atol + rtol * |cpu| (stated per op below). Before each GPU run the
// device's allocator cache is filled with NaN-poisoned blocks, so an output the GPU fails to
// write shows up as garbage. Also: Tensor::to and Module::to round trips, and optimizer steps.
//
// Skipped (GTEST_SKIP, with the reason) unless trine is built with CUDA and a GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "layers/linear.h"
#include "support/test_util.h"

namespace trine {
namespace {

const Device kCuda = Device::cuda(0);

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

uint32_t next_seed() {
  static uint32_t seed = 1000;
  return ++seed;
}

// A CPU tensor of `shape`, uniform in [lo, hi).
Tensor rnd(const Shape& shape, float lo = -1.f, float hi = 1.f) {
  return Tensor::from_vector(uniform(static_cast<size_t>(numel_of(shape)), next_seed(), lo, hi),
                             shape);
}

// Magnitudes in [lo, hi) with random signs: away from kinks and poles at 0.
Tensor away_from_zero(const Shape& shape, float lo = 0.2f, float hi = 1.5f) {
  std::vector<float> v = uniform(static_cast<size_t>(numel_of(shape)), next_seed(), lo, hi);
  std::vector<float> s = uniform(v.size(), next_seed(), -1.f, 1.f);
  for (size_t i = 0; i < v.size(); ++i) v[i] = s[i] < 0 ? -v[i] : v[i];
  return Tensor::from_vector(v, shape);
}

// Values from a few levels: ties for comparisons.
Tensor tied(const Shape& shape) {
  std::vector<float> v = uniform(static_cast<size_t>(numel_of(shape)), next_seed(), 0.f, 4.f);
  for (float& x : v) x = std::floor(x) * 0.5f;
  return Tensor::from_vector(v, shape);
}

Tensor ints(const std::vector<int32_t>& v, const Shape& shape) {
  Tensor t = Tensor::from_ints(v);
  return t.reshape(shape);
}

// Fills the GPU allocator's cache with NaN, so that the next allocations hand out memory full of
// garbage: a whole block of every size class up to 8 MiB (the small ones take the free pieces
// that fit them best first), then 16 small-pool segments, each wholly covered by two 1 MiB blocks.
void poison_gpu_cache() {
  Backend& be = backend_for(kCuda);
  std::vector<std::pair<void*, size_t>> blocks;
  auto take = [&](size_t bytes) {
    bytes = CachingAllocator::block_size(bytes);  // all of the block it gets
    void* ptr = be.allocate(bytes);
    be.fill(static_cast<float*>(ptr), static_cast<int64_t>(bytes / 4),
            std::numeric_limits<float>::quiet_NaN());
    blocks.emplace_back(ptr, bytes);
  };
  for (size_t p = 512; p <= (size_t{8} << 20); p *= 2)
    for (size_t k = 8; k < 16; ++k) take(p * k / 8);
  for (int i = 0; i < 32; ++i) take(CachingAllocator::kSmallRequest);
  for (auto& [ptr, bytes] : blocks) be.deallocate(ptr, bytes);
}

::testing::AssertionResult close(const Tensor& got_t, const Tensor& want_t, double atol,
                                 double rtol) {
  if (got_t.shape() != want_t.shape())
    return ::testing::AssertionFailure()
           << "shapes differ: cuda " << got_t.shape_str() << ", cpu " << want_t.shape_str();
  if (got_t.dtype() != want_t.dtype()) return ::testing::AssertionFailure() << "dtypes differ";
  std::vector<double> got, want;
  if (got_t.dtype() == DType::I32) {
    for (int32_t v : got_t.to_int_vector()) got.push_back(v);
    for (int32_t v : want_t.to_int_vector()) want.push_back(v);
  } else {
    for (float v : got_t.to_vector()) got.push_back(v);
    for (float v : want_t.to_vector()) want.push_back(v);
  }
  size_t bad = 0, worst = 0;
  double worst_err = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool ok = (std::isnan(g) || std::isnan(w))
                        ? (std::isnan(g) && std::isnan(w))
                        : std::fabs(g - w) <= atol + rtol * std::fabs(w) || g == w;
    if (ok) continue;
    ++bad;
    const double err = std::isfinite(g - w) ? std::fabs(g - w) : INFINITY;
    if (err > worst_err) worst_err = err, worst = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements differ (atol " << atol << ", rtol " << rtol
         << "); worst at " << worst << ": cuda " << got[worst] << ", cpu " << want[worst];
}

// One input of an op: float inputs with grad = true get their gradient compared.
struct In {
  Tensor t;
  bool grad = true;
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs fn on CPU copies and on GPU copies of the inputs; compares the output, and (when the
// output is float and some input wants a gradient) each gradient after backward from the same
// random upstream gradient. Returns the two outputs for further checks.
std::pair<Tensor, Tensor> check_op(const std::string& name, const std::vector<In>& inputs,
                                   const OpFn& fn, double atol, double rtol) {
  SCOPED_TRACE(name);
  std::vector<Tensor> ci, gi;
  for (const In& in : inputs) {
    Tensor c = in.t.detach().clone(), g = in.t.detach().to(kCuda);
    if (in.grad && in.t.dtype() == DType::F32) c.set_requires_grad(true), g.set_requires_grad(true);
    ci.push_back(c);
    gi.push_back(g);
  }
  Tensor yc = fn(ci);
  poison_gpu_cache();
  Tensor yg = fn(gi);
  EXPECT_TRUE(yg.device().is_cuda()) << name << ": the output is not on the GPU";
  EXPECT_TRUE(close(yg, yc, atol, rtol)) << name << ": forward";
  if (yc.dtype() != DType::F32 || !yc.requires_grad()) return {yc, yg};
  Tensor gy = rnd(yc.shape());
  yc.backward(gy);
  poison_gpu_cache();
  yg.backward(gy.to(kCuda));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!ci[i].requires_grad()) continue;
    EXPECT_TRUE(ci[i].grad().defined()) << name << ": no CPU gradient for input " << i;
    EXPECT_TRUE(gi[i].grad().defined()) << name << ": no CUDA gradient for input " << i;
    if (!ci[i].grad().defined() || !gi[i].grad().defined()) continue;
    EXPECT_TRUE(gi[i].grad().device().is_cuda());
    EXPECT_TRUE(close(gi[i].grad(), ci[i].grad(), atol, rtol))
        << name << ": gradient of input " << i;
  }
  return {yc, yg};
}

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  }
};

// ---------------------------------------------------------------------------- elementwise

// Binary arithmetic is correctly rounded on both devices, and the broadcast gradients are sums
// (sum_to) in another order: atol 1e-6, rtol 1e-5.
TEST_F(CudaOps, BinaryElementwise) {
  const Shape sa{3, 1, 5}, sb{4, 1};
  check_op(
      "add", {{rnd(sa)}, {rnd(sb)}}, [](auto& v) { return add(v[0], v[1]); }, 1e-6, 1e-5);
  check_op(
      "sub", {{rnd(sa)}, {rnd(sb)}}, [](auto& v) { return sub(v[0], v[1]); }, 1e-6, 1e-5);
  check_op(
      "mul", {{rnd(sa)}, {rnd(sb)}}, [](auto& v) { return mul(v[0], v[1]); }, 1e-6, 1e-5);
  check_op(
      "div", {{rnd(sa)}, {away_from_zero(sb)}}, [](auto& v) { return div(v[0], v[1]); }, 1e-6,
      1e-5);
  check_op(
      "maximum", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return maximum(v[0], v[1]); }, 1e-6, 1e-5);
  check_op(
      "minimum", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return minimum(v[0], v[1]); }, 1e-6, 1e-5);
  check_op(
      "operators", {{rnd({2, 7})}, {rnd({7})}},
      [](auto& v) { return (v[0] + v[1]) * 2.f - v[1] / 3.f + (1.f - v[0]) * v[0]; }, 1e-6, 1e-5);
}

// Unary ops: a few ulp between glibc and CUDA's math library: atol 1e-6, rtol 1e-5.
TEST_F(CudaOps, UnaryElementwise) {
  const Shape s{5, 7, 3};
  struct Case {
    const char* name;
    Tensor x;
    OpFn fn;
  };
  const Case cases[] = {
      {"add_scalar", rnd(s), [](auto& v) { return add_scalar(v[0], 0.3f); }},
      {"mul_scalar", rnd(s), [](auto& v) { return mul_scalar(v[0], -1.7f); }},
      {"neg", rnd(s), [](auto& v) { return neg(v[0]); }},
      {"exp", rnd(s, -3, 3), [](auto& v) { return exp(v[0]); }},
      {"log", rnd(s, 0.05f, 5), [](auto& v) { return log(v[0]); }},
      {"sqrt", rnd(s, 0.05f, 5), [](auto& v) { return sqrt(v[0]); }},
      {"abs", away_from_zero(s), [](auto& v) { return abs(v[0]); }},
      {"square", rnd(s), [](auto& v) { return square(v[0]); }},
      {"reciprocal", away_from_zero(s), [](auto& v) { return reciprocal(v[0]); }},
      {"pow", rnd(s, 0.1f, 3), [](auto& v) { return pow(v[0], 2.5f); }},
      {"clamp", rnd(s), [](auto& v) { return clamp(v[0], -0.4f, 0.6f); }},
      {"clamp_min", rnd(s), [](auto& v) { return clamp_min(v[0], 0.1f); }},
      {"relu", away_from_zero(s), [](auto& v) { return relu(v[0]); }},
      {"leaky_relu", away_from_zero(s), [](auto& v) { return leaky_relu(v[0], 0.1f); }},
      {"sigmoid", rnd(s, -6, 6), [](auto& v) { return sigmoid(v[0]); }},
      {"tanh", rnd(s, -3, 3), [](auto& v) { return tanh(v[0]); }},
      {"softplus", rnd(s, -6, 6), [](auto& v) { return softplus(v[0]); }},
  };
  for (const Case& c : cases) check_op(c.name, {{c.x}}, c.fn, 1e-6, 1e-5);
}

// Comparisons, where and masked_fill: exact.
TEST_F(CudaOps, ComparisonsAndSelection) {
  const Shape sa{4, 6}, sb{6};
  check_op(
      "eq", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return eq(v[0], v[1]); }, 0, 0);
  check_op(
      "ne", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return ne(v[0], v[1]); }, 0, 0);
  check_op(
      "lt", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return lt(v[0], v[1]); }, 0, 0);
  check_op(
      "le", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return le(v[0], v[1]); }, 0, 0);
  check_op(
      "gt", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return gt(v[0], v[1]); }, 0, 0);
  check_op(
      "ge", {{tied(sa)}, {tied(sb)}}, [](auto& v) { return ge(v[0], v[1]); }, 0, 0);
  Tensor cond = tied(sa);
  check_op(
      "where", {{cond, false}, {rnd(sa)}, {rnd(sa)}},
      [](auto& v) { return where(v[0], v[1], v[2]); }, 0, 0);
  check_op(
      "masked_fill", {{rnd(sa)}, {tied(sa), false}},
      [](auto& v) { return masked_fill(v[0], v[1], -9.f); }, 0, 0);
}

// ---------------------------------------------------------------------------- reductions

// Sums accumulate in double on the GPU, in float or double on the CPU: atol 1e-5, rtol 1e-5.
// Max/min: exact, gradient to the same arg-max.
TEST_F(CudaOps, Reductions) {
  const Shape s{6, 5, 7};
  check_op(
      "sum", {{rnd(s)}}, [](auto& v) { return sum(v[0]); }, 1e-5, 1e-5);
  check_op(
      "sum dims", {{rnd(s)}},
      [](auto& v) {
        return sum(v[0], {0, 2});
      },
      1e-5, 1e-5);
  check_op(
      "sum keepdim", {{rnd(s)}}, [](auto& v) { return sum(v[0], {1}, true); }, 1e-5, 1e-5);
  check_op(
      "mean", {{rnd(s)}}, [](auto& v) { return mean(v[0]); }, 1e-6, 1e-5);
  check_op(
      "mean dims", {{rnd(s)}}, [](auto& v) { return mean(v[0], {-1}); }, 1e-6, 1e-5);
  check_op(
      "max dim", {{tied(s)}}, [](auto& v) { return max(v[0], 1); }, 0, 0);
  check_op(
      "min dim keepdim", {{tied(s)}}, [](auto& v) { return min(v[0], 2, true); }, 0, 0);
  check_op(
      "max all", {{rnd(s)}}, [](auto& v) { return max(v[0]); }, 0, 0);
  check_op(
      "min all", {{rnd(s)}}, [](auto& v) { return min(v[0]); }, 0, 0);
  check_op(
      "argmax", {{tied(s)}}, [](auto& v) { return argmax(v[0], 0); }, 0, 0);
  check_op(
      "argmin", {{tied(s)}}, [](auto& v) { return argmin(v[0], 2, true); }, 0, 0);
  check_op(
      "sum_to", {{rnd(s)}},
      [](auto& v) {
        return sum_to(v[0], {5, 1});
      },
      1e-5, 1e-5);
  check_op(
      "big sum", {{rnd({300001})}}, [](auto& v) { return sum(v[0]); }, 1e-3, 1e-5);
  check_op(
      "Tensor::mean", {{rnd(s)}}, [](auto& v) { return v[0].mean(); }, 1e-6, 1e-5);
  // The trainer's finite check: exact, with a NaN, an inf, and a view at an offset (rows 1-3).
  check_op(
      "max_abs_each",
      {{rnd(s), false},
       {Tensor::from_vector({0.5f, -2.f, NAN, 1.f}, {2, 2}), false},
       {Tensor::from_vector({1.f, -INFINITY, 3.f}, {3}), false},
       {rnd({5, 6}), false}},
      [](auto& v) {
        return max_abs_each({v[0], v[1], v[2], v[3].slice(0, 1, 4)});
      },
      0, 0);
}

// ---------------------------------------------------------------------------- shape ops

// Copies and index arithmetic: exact (gradients of repeated indices accumulate in another order:
// atol 1e-6).
TEST_F(CudaOps, ShapeOps) {
  const Shape s{3, 4, 5};
  check_op(
      "reshape", {{rnd(s)}},
      [](auto& v) {
        return reshape(v[0], {4, -1});
      },
      0, 0);
  check_op(
      "flatten", {{rnd(s)}}, [](auto& v) { return flatten(v[0], 1); }, 0, 0);
  check_op(
      "unsqueeze", {{rnd(s)}}, [](auto& v) { return unsqueeze(v[0], 1); }, 0, 0);
  check_op(
      "squeeze", {{rnd({3, 1, 5})}}, [](auto& v) { return squeeze(v[0], 1); }, 0, 0);
  check_op(
      "transpose", {{rnd(s)}}, [](auto& v) { return transpose(v[0], 0, 2); }, 0, 0);
  check_op(
      "permute", {{rnd({2, 3, 4, 5})}},
      [](auto& v) {
        return permute(v[0], {2, 0, 3, 1});
      },
      0, 0);
  check_op(
      "t", {{rnd({7, 3})}}, [](auto& v) { return v[0].t(); }, 0, 0);
  check_op(
      "expand", {{rnd({3, 1, 5})}},
      [](auto& v) {
        return expand(v[0], {2, 3, 4, 5});
      },
      1e-6, 1e-6);
  check_op(
      "concat", {{rnd({2, 3})}, {rnd({2, 5})}, {rnd({2, 1})}},
      [](auto& v) {
        return concat({v[0], v[1], v[2]}, 1);
      },
      0, 0);
  check_op(
      "slice step", {{rnd({11, 4})}}, [](auto& v) { return slice(v[0], 0, 1, -1, 3); }, 0, 0);
  check_op(
      "Tensor::slice", {{rnd({9, 4})}}, [](auto& v) { return v[0].slice(0, 2, 7); }, 0, 0);
  check_op(
      "index_select", {{rnd(s)}, {ints({2, 0, 2, 1, 2, 3}, {6}), false}},
      [](auto& v) { return index_select(v[0], 1, v[1]); }, 1e-6, 1e-6);
  std::vector<int32_t> gidx(3 * 2 * 5);
  for (size_t i = 0; i < gidx.size(); ++i) gidx[i] = static_cast<int32_t>((i * 7 + 3) % 4);
  check_op(
      "gather", {{rnd(s)}, {ints(gidx, {3, 2, 5}), false}},
      [](auto& v) { return gather(v[0], 1, v[1]); }, 1e-6, 1e-6);
  check_op(
      "to and back", {{rnd(s)}},
      [](auto& v) { return v[0].to(Device::cpu()).to(v[0].device()) * 2.f; }, 0, 0);
  check_op(
      "clone", {{rnd(s)}}, [](auto& v) { return v[0].clone() * v[0]; }, 0, 1e-7);
}

// ---------------------------------------------------------------------------- linear algebra

// cuBLAS and OpenBLAS sum products in different orders: atol 1e-5, rtol 1e-4.
TEST_F(CudaOps, LinearAlgebra) {
  check_op(
      "matmul", {{rnd({13, 17})}, {rnd({17, 9})}}, [](auto& v) { return matmul(v[0], v[1]); }, 1e-5,
      1e-4);
  check_op(
      "matmul batched", {{rnd({3, 5, 7})}, {rnd({3, 7, 4})}},
      [](auto& v) { return matmul(v[0], v[1]); }, 1e-5, 1e-4);
  check_op(
      "matmul batched x 2-D", {{rnd({3, 5, 7})}, {rnd({7, 4})}},
      [](auto& v) { return matmul(v[0], v[1]); }, 1e-5, 1e-4);
  check_op(
      "linear", {{rnd({6, 11})}, {rnd({5, 11})}, {rnd({5})}},
      [](auto& v) { return linear(v[0], v[1], v[2]); }, 1e-5, 1e-4);
  check_op(
      "linear without bias", {{rnd({6, 11})}, {rnd({5, 11})}},
      [](auto& v) { return linear(v[0], v[1], Tensor()); }, 1e-5, 1e-4);
  check_op(
      "l2_normalize", {{rnd({7, 9})}}, [](auto& v) { return l2_normalize(v[0]); }, 1e-6, 1e-5);
  check_op(
      "pairwise_distance", {{rnd({8, 6})}, {rnd({5, 6})}},
      [](auto& v) { return pairwise_distance(v[0], v[1]); }, 1e-5, 1e-4);
  check_op(
      "pairwise_distance squared", {{rnd({8, 6})}, {rnd({5, 6})}},
      [](auto& v) { return pairwise_distance(v[0], v[1], true); }, 1e-5, 1e-4);
  check_op(
      "pairwise_distance self", {{rnd({9, 4})}},
      [](auto& v) { return pairwise_distance(v[0], v[0]); }, 1e-5, 1e-4);
}

// ---------------------------------------------------------------------------- nn ops

// conv2d: im2col + cuBLAS vs im2col + OpenBLAS: atol 1e-5, rtol 1e-4. Pooling: exact forward,
// gradients in the CPU's order. batch_norm (and batch_norm_relu, its ReLU fused): means and
// variances in double vs float: atol 1e-5, rtol 1e-4.
TEST_F(CudaOps, NeuralNetworkOps) {
  check_op(
      "conv2d", {{rnd({2, 3, 9, 8})}, {rnd({4, 3, 3, 2})}, {rnd({4})}},
      [](auto& v) {
        return conv2d(v[0], v[1], v[2], {2, 1, 1, 0});
      },
      1e-5, 1e-4);
  check_op(
      "conv2d same", {{rnd({3, 2, 7, 7})}, {rnd({5, 2, 3, 3})}},
      [](auto& v) {
        return conv2d(v[0], v[1], Tensor(), {1, 1, 1, 1});
      },
      1e-5, 1e-4);
  check_op(
      "max_pool2d", {{rnd({2, 3, 9, 7})}}, [](auto& v) { return max_pool2d(v[0], 3, 2, 1); }, 1e-6,
      1e-6);
  check_op(
      "max_pool2d ties", {{tied({2, 2, 6, 6})}}, [](auto& v) { return max_pool2d(v[0], 2); }, 1e-6,
      1e-6);
  check_op(
      "max_pool2d_relu", {{rnd({2, 3, 9, 7})}},
      [](auto& v) { return max_pool2d_relu(v[0], 3, 2, 1); }, 1e-6, 1e-6);
  check_op(
      "max_pool2d_relu 2x2", {{rnd({2, 3, 6, 5})}},
      [](auto& v) { return max_pool2d_relu(v[0], 2); }, 1e-6, 1e-6);
  check_op(
      "avg_pool2d", {{rnd({2, 3, 8, 7})}}, [](auto& v) { return avg_pool2d(v[0], 3, 2, 1); }, 1e-6,
      1e-6);
  check_op(
      "global_avg_pool2d", {{rnd({3, 4, 5, 6})}}, [](auto& v) { return global_avg_pool2d(v[0]); },
      1e-6, 1e-5);
  check_op(
      "batch_norm inference",
      {{rnd({4, 3, 5, 5})},
       {rnd({3})},
       {rnd({3})},
       {rnd({3}), false},
       {rnd({3}, 0.5f, 2.f), false}},
      [](auto& v) { return batch_norm(v[0], v[1], v[2], v[3], v[4], false); }, 1e-5, 1e-4);
  check_op(
      "batch_norm 2-D", {{rnd({9, 5})}, {rnd({5})}, {rnd({5})}},
      [](auto& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true); }, 1e-5, 1e-4);
  check_op(
      "batch_norm_relu", {{rnd({4, 3, 5, 5})}, {rnd({3})}, {rnd({3})}},
      [](auto& v) { return batch_norm_relu(v[0], v[1], v[2], Tensor(), Tensor(), true); }, 1e-5,
      1e-4);
}

TEST_F(CudaOps, BatchNormTrainingUpdatesRunningStatistics) {
  Tensor x = rnd({4, 3, 5, 6}), w = rnd({3}), b = rnd({3});
  Tensor rm_c = rnd({3}), rv_c = rnd({3}, 0.5f, 2.f);
  Tensor rm_g = rm_c.to(kCuda), rv_g = rv_c.to(kCuda);
  rm_c = rm_c.clone(), rv_c = rv_c.clone();
  check_op(
      "batch_norm training", {{x}, {w}, {b}},
      [&](auto& v) {
        const bool gpu = v[0].device().is_cuda();
        return batch_norm(v[0], v[1], v[2], gpu ? rm_g : rm_c, gpu ? rv_g : rv_c, true, 0.2f);
      },
      1e-5, 1e-4);
  EXPECT_TRUE(close(rm_g, rm_c, 1e-6, 1e-5)) << "running mean";
  EXPECT_TRUE(close(rv_g, rv_c, 1e-6, 1e-5)) << "running var";
}

// The mask comes from random_uniform, bit-identical on both devices for the same seed: exact.
TEST_F(CudaOps, DropoutDrawsTheSameMask) {
  check_op(
      "dropout", {{rnd({17, 13})}},
      [](auto& v) {
        manual_seed(77);
        return dropout(v[0], 0.3f, true);
      },
      0, 1e-7);
}

TEST_F(CudaOps, RandomTensorsMatchTheCpu) {
  manual_seed(5);
  Tensor uc = Tensor::rand({1001}, -2.f, 3.f), nc = Tensor::randn({999}, 0.5f, 2.f);
  manual_seed(5);
  Tensor ug = Tensor::rand({1001}, -2.f, 3.f, kCuda), ng = Tensor::randn({999}, 0.5f, 2.f, kCuda);
  EXPECT_TRUE(close(ug, uc, 0, 0)) << "rand: bit-identical";
  EXPECT_TRUE(close(ng, nc, 1e-5, 1e-5)) << "randn: Box-Muller through the device math library";
}

// ---------------------------------------------------------------------------- modules, optimizers

TEST_F(CudaOps, ModuleToMovesParametersInPlace) {
  manual_seed(3);
  Linear cpu_layer(11, 7);
  manual_seed(3);
  Linear gpu_layer(11, 7);
  Tensor w_handle = gpu_layer.weight;
  gpu_layer.to(kCuda);
  EXPECT_TRUE(w_handle.device().is_cuda()) << "handles taken before to() see the move";
  for (const Tensor& p : gpu_layer.parameters()) EXPECT_TRUE(p.device().is_cuda());
  Tensor x = rnd({5, 11});
  Tensor yc = cpu_layer(x), yg = gpu_layer(x.to(kCuda));
  EXPECT_TRUE(yg.device().is_cuda());
  EXPECT_TRUE(close(yg, yc, 1e-5, 1e-4));  // cuBLAS vs OpenBLAS
  gpu_layer.to(Device::cpu());
  EXPECT_TRUE(gpu_layer.weight.device().is_cpu());
  EXPECT_TRUE(close(gpu_layer.weight, cpu_layer.weight, 0, 0));
}

// An op hands each operand's pointer to a kernel: a CPU bias beside a CUDA input would be a host
// pointer in a kernel, a fault that every later CUDA call reports. Each is refused, by op name.
TEST_F(CudaOps, OperandsOnAnotherDeviceAreRefused) {
  const Tensor bias = rnd({4});  // on the CPU
  const Tensor x = rnd({2, 3}).to(kCuda), w = rnd({4, 3}).to(kCuda);
  EXPECT_TRUE(test::throws_with<Error>([&] { (void)linear(x, w, bias); },
                                       {"linear", "different devices", "cuda:0", "cpu"}));
  const Tensor img = rnd({1, 2, 5, 5}).to(kCuda), k = rnd({4, 2, 3, 3}).to(kCuda);
  EXPECT_TRUE(test::throws_with<Error>([&] { (void)conv2d(img, k, bias); },
                                       {"conv2d", "different devices"}));
  const Tensor feats = rnd({3, 4}).to(kCuda);
  EXPECT_TRUE(test::throws_with<Error>(
      [&] { (void)batch_norm(feats, bias, Tensor(), Tensor(), Tensor(), true); },
      {"batch_norm", "different devices"}));
  Tensor acc = Tensor::zeros({4}, kCuda);
  EXPECT_TRUE(test::throws_with<Error>([&] { acc.add_(bias); }, {"add_", "different devices"}));
  // A gradient handed in must be on its tensor's device too.
  Tensor leaf = rnd({4}).to(kCuda).set_requires_grad(true);
  Tensor y = leaf * leaf;
  EXPECT_TRUE(test::throws_with<Error>([&] { y.backward(Tensor::ones({4})); },
                                       {"backward", "gradient on cpu", "cuda:0"}));
  EXPECT_TRUE(test::throws_with<Error>([&] { leaf.set_grad(Tensor::ones({4})); },
                                       {"set_grad", "gradient on cpu", "cuda:0"}));
}

// A few optimizer steps on the same parameters and gradients: atol 1e-6, rtol 1e-5.
TEST_F(CudaOps, OptimizerSteps) {
  for (int kind = 0; kind < 3; ++kind) {
    SCOPED_TRACE(kind == 0 ? "SGD" : kind == 1 ? "Adam" : "AdamW");
    Tensor p0 = rnd({37, 5});
    Tensor pc = p0.clone().set_requires_grad(true);
    Tensor pg = p0.to(kCuda).set_requires_grad(true);
    auto make = [&](Tensor p) -> std::unique_ptr<Optimizer> {
      if (kind == 0) return std::make_unique<SGD>(std::vector<Tensor>{p}, SgdOptions{0.1f, 0.9f});
      AdamOptions o;
      o.lr = 0.01f;
      o.weight_decay = 0.01f;
      if (kind == 1) return std::make_unique<Adam>(std::vector<Tensor>{p}, o);
      return std::make_unique<AdamW>(std::vector<Tensor>{p}, o);
    };
    auto oc = make(pc), og = make(pg);
    for (int step = 0; step < 4; ++step) {
      Tensor target = rnd({37, 5});
      oc->zero_grad();
      og->zero_grad();
      sum(square(pc - target)).backward();
      sum(square(pg - target.to(kCuda))).backward();
      oc->step();
      og->step();
    }
    EXPECT_TRUE(pg.device().is_cuda());
    EXPECT_TRUE(close(pg, pc, 1e-6, 1e-5));
  }
}

// A model moved to the GPU after some steps (Module::to) takes its optimizer state along: the
// moments made on the CPU move with the weights, and the run goes on as if it had stayed.
TEST_F(CudaOps, OptimizerStateFollowsAMovedModel) {
  manual_seed(4);
  Linear stays(6, 3);
  manual_seed(4);
  Linear moves(6, 3);
  Adam stays_opt(stays.parameters()), moves_opt(moves.parameters());
  const Tensor x = rnd({5, 6}), target = rnd({5, 3});
  auto step = [&](Linear& m, Optimizer& opt, const Device& d) {
    opt.zero_grad();
    sum(square(m(x.to(d)) - target.to(d))).backward();
    opt.step();
  };
  for (int i = 0; i < 4; ++i) {
    if (i == 2) moves.to(kCuda);
    step(stays, stays_opt, Device::cpu());
    step(moves, moves_opt, i < 2 ? Device::cpu() : kCuda);
  }
  int moments = 0;
  for (const auto& [name, t] : moves_opt.state_dict()) {
    if (name.rfind("exp_avg", 0) != 0) continue;  // step counts and lr: host numbers
    EXPECT_TRUE(t.device().is_cuda()) << name;
    ++moments;
  }
  EXPECT_EQ(moments, 4);  // exp_avg and exp_avg_sq of the weight and the bias
  EXPECT_TRUE(close(moves.weight, stays.weight, 1e-6, 1e-5));
  EXPECT_TRUE(close(moves.bias, stays.bias, 1e-6, 1e-5));
}

}  // namespace
}  // namespace trine
