// Numerical guards of the trainer, end to end through `trine mnist` and its testing aid
// --inject-nonfinite: a NaN weight or an Inf gradient at a given step stops the run with a message
// naming the step and the first non-finite layer or parameter (--on-nonfinite stop), or reloads
// the last good checkpoint, halves the learning rate and finishes (recover). And the collapse
// watchdog warns when every embedding has moved to one point.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "engine/ops.h"
#include "losses/distance.h"
#include "losses/ntxent_loss.h"
#include "support/child_process.h"
#include "support/run_folder.h"
#include "support/run_program.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

class NonFinite : public ::testing::Test {
 protected:
  void SetUp() override {
    program_ = test::trine_program();
    if (program_.empty()) GTEST_SKIP() << "the trine program is not built";
    mnist_ = test::shared_mnist_dir();
    if (mnist_.empty()) GTEST_SKIP() << "no MNIST at ../shared/data/mnist";
    dir_ = fs::temp_directory_path() / ("trine_nonfinite_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  test::RunResult mnist(const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {program_,
                                     "mnist",
                                     "--data",
                                     mnist_,
                                     "--limit",
                                     "1000",
                                     "--test-limit",
                                     "200",
                                     "--threads",
                                     "1",
                                     "--no-train-gallery",
                                     "--out",
                                     (dir_ / out).string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return test::run_program(argv, 600);
  }
  std::string program_, mnist_;
  fs::path dir_;
};

TEST_F(NonFinite, StopNamesTheStepAndTheFirstNonFiniteLayer) {
  const test::RunResult r =
      mnist("stop", {"--inject-nonfinite", "weight:2", "--on-nonfinite", "stop"});
  EXPECT_EQ(r.status, 1) << r.err;
  // ReLU maps NaN to 0 in this engine, so a NaN weight need not reach the loss: the trainer
  // checks the parameters themselves at each step, before the update.
  EXPECT_NE(r.err.find("non-finite value in parameter 0.weight of layer 0 (Conv2d"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(" at step 2 (epoch 1); stopping"), std::string::npos) << r.err;
}

TEST_F(NonFinite, StopNamesTheParameterWhoseGradientWentNonFinite) {
  const test::RunResult r =
      mnist("grad", {"--inject-nonfinite", "grad:3", "--on-nonfinite", "stop"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("non-finite gradient in parameter "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" at step 3 (epoch 1)"), std::string::npos) << r.err;
}

TEST_F(NonFinite, RecoverReloadsTheCheckpointLowersTheLearningRateAndFinishes) {
  const test::RunResult r = mnist(
      "recover",
      {"--inject-nonfinite", "weight:5", "--checkpoint-every", "2", "--on-nonfinite", "recover"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("non-finite value in parameter 0.weight of layer 0"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("at step 5 (epoch 1); reloading the last good checkpoint"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("reloading the last good checkpoint"), std::string::npos) << r.err;
  const std::string run = (dir_ / "recover").string();
  // The checkpoint before the fault was at step 4: steps 0-3 ran at the full rate, the rest at
  // half of it; each step appears once in the log.
  const std::vector<std::string> lr = test::step_log_column(run, "lr");
  const std::vector<std::string> step = test::step_log_column(run, "step");
  ASSERT_GE(lr.size(), 6u);
  for (size_t i = 0; i < lr.size(); ++i) {
    EXPECT_EQ(step[i], std::to_string(i));
    EXPECT_DOUBLE_EQ(std::stod(lr[i]), i < 4 ? 1e-3 : 5e-4) << "step " << i;
  }
  EXPECT_TRUE(test::metrics_numbers(run).count("test_precision_at_1"));
}

TEST_F(NonFinite, AnUpdateThatBreaksAWeightIsNotCheckpointedAndIsRolledBack) {
  // Step 3's update leaves a NaN weight: its checkpoint is not written, step 4's check finds
  // the NaN and reloads the checkpoint of step 3 (written after step 2).
  const test::RunResult r = mnist("update", {"--inject-nonfinite", "update:3", "--checkpoint-every",
                                             "1", "--on-nonfinite", "recover"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("warning: step 4: not writing a checkpoint (non-finite value in parameter "
                       "0.weight"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("at step 4 (epoch 1); reloading the last good checkpoint"),
            std::string::npos)
      << r.err;
  const std::vector<std::string> lr = test::step_log_column((dir_ / "update").string(), "lr");
  ASSERT_GE(lr.size(), 6u);
  for (size_t i = 0; i < lr.size(); ++i)
    EXPECT_DOUBLE_EQ(std::stod(lr[i]), i < 3 ? 1e-3 : 5e-4) << "step " << i;
}

TEST_F(NonFinite, OverflowingActivationsNameTheFirstNonFiniteLayerOutput) {
  // Inputs scaled by 1e38: layer 0's output overflows; the loss stays finite (L2Normalize, ReLU),
  // the gradients do not.
  const test::RunResult r =
      mnist("input", {"--inject-nonfinite", "input:1", "--on-nonfinite", "stop"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("non-finite gradient in parameter "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("; the forward pass first went non-finite at the output of layer 0 (Conv2d"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(" at step 1 (epoch 1); stopping"), std::string::npos) << r.err;
}

TEST_F(NonFinite, CollapseWatchdogWarnsWhenEveryEmbeddingMeetsAtOnePoint) {
  // A margin far above what unit-length embeddings can reach, with a high learning rate: the
  // network maps every image to one point within a step or two (loss = margin, all active).
  const test::RunResult r =
      mnist("collapse", {"--margin", "5", "--lr", "0.05", "--log-every", "1", "--epochs=2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("the embeddings have collapsed to one point"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("all triplets active"), std::string::npos) << r.err;
  // The default setting learns (its embeddings shrink at first, but keep their shape), and the
  // watchdog stays quiet.
  const test::RunResult healthy = mnist("healthy", {"--log-every", "1"});
  ASSERT_EQ(healthy.status, 0) << healthy.err;
  EXPECT_EQ(healthy.err.find("collapsed"), std::string::npos) << healthy.err;
}

TEST_F(NonFinite, InjectionFlagIsCheckedBeforeTheDataIsRead) {
  const test::RunResult r = mnist("bad", {"--inject-nonfinite", "sometimes"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--inject-nonfinite expects weight:STEP, input:STEP, grad:STEP or "
                       "update:STEP"),
            std::string::npos)
      << r.err;
}

// Found through the guards above: at a small temperature NT-Xent's masked log-sum-exp took exp of
// the unmasked positive logit (1e5 above the negatives' maximum), and inf * 0 made the loss NaN.
TEST(NTXentSmallTemperature, LossAndGradientsStayFinite) {
  for (bool supcon : {false, true}) {
    NTXentOptions o;
    o.temperature = 1e-6f;
    o.supervised_contrastive = supcon;
    NTXentLoss loss(parse_distance("euclidean", 2), o);
    Tensor x = Tensor::from_vector({0.f, 0.f, 0.1f, 0.f, 1.f, 1.f, 1.f, 1.2f}, {4, 2})
                   .set_requires_grad(true);
    Tensor value = loss.forward(x, Tensor::from_ints({0, 0, 1, 1}));
    EXPECT_TRUE(std::isfinite(value.item())) << value.item();
    value.backward();
    for (float g : x.grad().to_vector()) EXPECT_TRUE(std::isfinite(g)) << g;
  }
}

}  // namespace
}  // namespace trine
