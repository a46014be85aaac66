// Determinism on the CPU: the same `trine mnist` run twice, same seed and the same thread count
// (2), gives the same step log, the same metrics and the same embeddings, bit for bit (timing
// figures aside). README.md, "Determinism", says what is and is not deterministic.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "support/child_process.h"
#include "support/run_folder.h"
#include "support/run_program.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

TEST(Determinism, SameSeedAndThreadsGiveIdenticalRuns) {
  const std::string program = test::trine_program();
  if (program.empty()) GTEST_SKIP() << "the trine program is not built";
  const std::string mnist = test::shared_mnist_dir();
  if (mnist.empty()) GTEST_SKIP() << "no MNIST at ../shared/data/mnist";
  const fs::path dir =
      fs::temp_directory_path() / ("trine_determinism_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::vector<std::string> runs;
  for (int i = 0; i < 2; ++i) {
    runs.push_back((dir / ("run" + std::to_string(i))).string());
    const test::RunResult r = test::run_program(
        {program, "mnist", "--data", mnist, "--limit", "1500", "--test-limit", "500", "--epochs",
         "1", "--threads", "2", "--seed", "3", "--out", runs.back()},
        900);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  const auto log0 = test::step_log_without_timing(runs[0]);
  ASSERT_GT(log0.size(), 5u);
  EXPECT_EQ(log0, test::step_log_without_timing(runs[1]));
  const auto m0 = test::metrics_numbers(runs[0]), m1 = test::metrics_numbers(runs[1]);
  ASSERT_TRUE(m0.count("test_precision_at_1") && m0.count("test_1nn_train_gallery"));
  int compared = 0;
  for (const auto& [key, value] : m0) {
    if (test::is_timing_metric(key)) continue;
    ASSERT_TRUE(m1.count(key)) << key;
    EXPECT_EQ(value, m1.at(key)) << key;
    ++compared;
  }
  EXPECT_GE(compared, 8);
  EXPECT_EQ(test::read_text(runs[0] + "/test_embeddings.npy"),
            test::read_text(runs[1] + "/test_embeddings.npy"));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace trine
