// A few training steps of workload W1 on the GPU match the same steps on the CPU: the mnist-w1
// net built twice from the same seed (so the same weights), one copy moved to the GPU, then the
// same P x K batches through forward, batch-hard triplet loss (Euclidean, margin 0.2), backward
// and Adam (lr 1e-3) on each device.
//
// Tolerance: each step's loss within 2e-4 + 2e-3 |cpu|, the same number of active triplets, and
// the first step's gradients (same weights on both devices) within 1% in norm per parameter
// tensor, |g_gpu - g_cpu| <= 0.01 |g_cpu|. The devices add in different orders (cuBLAS blocking,
// atomic gradient sums; the CPU's 5x5 and 3x3 convolutions by Winograd, 10x the rounding of
// im2col), so the runs drift apart by float rounding, step after step; six steps keep that drift
// well inside the bound while a wrong kernel (a missing gradient term, another miner choice)
// moves the loss by far more. The gradient bound is in norm, not per element, because rounding
// decides a max-pool window whose two largest inputs differ by less than it: the batch's first
// step has one such window against the CPU's Winograd path, and routing its gradient to the other
// pixel moves the conv weights' gradients by 0.2-0.3% in norm and single elements by 1% of the
// largest (measured on the CPU, Winograd against im2col). (Weights are not compared after the
// steps: Adam moves each weight by about lr whatever its gradient's size, so a gradient that is
// zero up to rounding may move the two copies in opposite directions.)
//
// The inputs are synthetic (each class a random 28 x 28 pattern plus noise), so the test needs no
// data files. Skipped (GTEST_SKIP, with the reason) unless trine is built with CUDA and a GPU is
// visible.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "layers/models.h"
#include "losses/triplet_loss.h"
#include "support/test_util.h"

namespace trine {
namespace {

constexpr int64_t kP = 8, kK = 16, kSteps = 6;

TEST(CudaTraining, W1StepsMatchTheCpuRun) {
  if (const std::string why = test::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  const Device gpu = Device::cuda(0);
  manual_seed(3);
  std::shared_ptr<Sequential> cpu_net = make_mnist_w1(64);
  manual_seed(3);
  std::shared_ptr<Sequential> gpu_net = make_mnist_w1(64);
  gpu_net->to(gpu);
  TripletLossOptions lo;
  lo.margin = 0.2f;
  TripletMarginLoss cpu_loss(parse_distance("euclidean"), parse_miner("batch-hard"), lo);
  TripletMarginLoss gpu_loss(parse_distance("euclidean"), parse_miner("batch-hard"), lo);
  Adam cpu_opt(cpu_net->parameters(), {.lr = 1e-3f});
  Adam gpu_opt(gpu_net->parameters(), {.lr = 1e-3f});

  for (int step = 0; step < kSteps; ++step) {
    auto [x, labels] = test::pattern_batch(step, kP, kK);
    Tensor lc = cpu_loss.forward((*cpu_net)(x), labels);
    Tensor lg = gpu_loss.forward((*gpu_net)(x.to(gpu)), labels);
    const double c = lc.item(), g = lg.item();
    EXPECT_TRUE(std::isfinite(c) && c > 0) << "step " << step << ": cpu loss " << c;
    EXPECT_NEAR(g, c, 2e-4 + 2e-3 * std::fabs(c)) << "loss at step " << step;
    EXPECT_EQ(gpu_loss.stats().active, cpu_loss.stats().active) << "active triplets, step " << step;
    cpu_opt.zero_grad();
    gpu_opt.zero_grad();
    lc.backward();
    lg.backward();
    if (step == 0) {
      const auto cp = cpu_net->named_parameters(), gp = gpu_net->named_parameters();
      ASSERT_EQ(cp.size(), gp.size());
      for (size_t i = 0; i < cp.size(); ++i) {
        const std::vector<float> a = cp[i].second.grad().to_vector();
        const std::vector<float> b = gp[i].second.grad().to_vector();
        EXPECT_TRUE(test::close_in_norm(b, a, 0.01))
            << "gradient of " << cp[i].first << " (got: gpu, want: cpu)";
      }
    }
    cpu_opt.step();
    gpu_opt.step();
  }
}

}  // namespace
}  // namespace trine
