// Training survives interruption: a `trine mnist` run killed with SIGKILL mid-epoch, then
// interrupted with SIGINT and with SIGTERM after resuming, ends with the same step log (every
// column but the timing one), the same metrics and the same embeddings, bit for bit, as an
// uninterrupted run with the same seed on one thread. And a process killed while it writes a
// checkpoint leaves the previous checkpoint intact.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "support/child_process.h"
#include "support/run_folder.h"
#include "support/run_program.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

// The step of the checkpoint in `run_dir`, or -1 when there is none (yet).
int64_t checkpoint_step(const std::string& run_dir) {
  try {
    const Checkpoint ck = load_checkpoint(run_dir + "/checkpoint.trine");
    return std::stoll(ck.meta.at("trainer.step"));
  } catch (const std::exception&) {
    return -1;
  }
}

class Resume : public ::testing::Test {
 protected:
  void SetUp() override {
    program_ = test::trine_program();
    if (program_.empty()) GTEST_SKIP() << "the trine program is not built";
    mnist_ = test::shared_mnist_dir();
    if (mnist_.empty()) GTEST_SKIP() << "no MNIST at ../shared/data/mnist";
    dir_ = fs::temp_directory_path() / ("trine_resume_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // 1000 training images: 3 epochs of 8 P x K batches; a checkpoint every 3 steps.
  std::vector<std::string> run_args(const std::string& out) const {
    return {program_,
            "mnist",
            "--data",
            mnist_,
            "--limit",
            "1000",
            "--test-limit",
            "500",
            "--epochs",
            "3",
            "--threads",
            "1",
            "--seed",
            "7",
            "--checkpoint-every",
            "3",
            "--log-every",
            "1",
            "--no-train-gallery",
            "--out",
            out};
  }
  std::vector<std::string> resume_args(const std::string& run) const {
    return {program_, "mnist", "--resume", run};
  }

  // Starts argv and waits until the checkpoint in run_dir is at step >= `step`. Fails (and
  // returns false) when the run ends first or takes more than `timeout_s`.
  bool start_until(test::Child* child, int64_t step, const std::string& run_dir,
                   double timeout_s = 300) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < end) {
      if (checkpoint_step(run_dir) >= step) return true;
      if (!child->running()) {
        ADD_FAILURE() << "the run ended (status " << child->status() << ") before step " << step
                      << ":\n"
                      << test::read_text(err_);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "no checkpoint at step " << step << " after " << timeout_s << " s";
    return false;
  }

  std::string program_, mnist_;
  fs::path dir_;
  std::string out_, err_;
};

TEST_F(Resume, KilledAndInterruptedRunEndsBitIdenticalToAnUninterruptedOne) {
  const std::string a = (dir_ / "uninterrupted").string(), b = (dir_ / "interrupted").string();
  out_ = (dir_ / "out.txt").string();
  err_ = (dir_ / "err.txt").string();

  // A: uninterrupted.
  const test::RunResult ra = test::run_program(run_args(a), 900);
  ASSERT_EQ(ra.status, 0) << ra.err;
  const auto log_a = test::step_log_without_timing(a);
  const int64_t steps = static_cast<int64_t>(log_a.size()) - 1;
  ASSERT_GE(steps, 18) << "expected 3 epochs of several steps";

  // B: killed with SIGKILL mid-epoch, after its first checkpoint.
  {
    test::Child c = test::Child::start(run_args(b), out_, err_);
    ASSERT_TRUE(start_until(&c, 3, b));
    c.signal(SIGKILL);
    ASSERT_TRUE(c.wait(60));
    EXPECT_TRUE(c.killed_by_signal());
    const int64_t at = checkpoint_step(b);
    EXPECT_GE(at, 3) << "the checkpoint written before the kill is intact";
    EXPECT_LT(at, steps);
    std::printf("SIGKILL: the last checkpoint was at step %lld of %lld\n",
                static_cast<long long>(at), static_cast<long long>(steps));
  }
  // Resumed, then SIGINT, resumed, then SIGTERM: each time the step finishes, a checkpoint is
  // written, and the process exits with status 130 and the resume command.
  // Targets well before the end (2/5 and 2/3 of the way), so a fast machine cannot finish first.
  for (const auto& [signo, target] :
       {std::pair{SIGINT, steps * 2 / 5}, std::pair{SIGTERM, steps * 2 / 3}}) {
    test::Child c = test::Child::start(resume_args(b), out_, err_);
    ASSERT_TRUE(start_until(&c, target, b));
    c.signal(signo);
    ASSERT_TRUE(c.wait(120)) << "did not stop after " << strsignal(signo);
    const std::string err = test::read_text(err_);
    EXPECT_FALSE(c.killed_by_signal()) << err;
    EXPECT_EQ(c.status(), 130) << err;
    EXPECT_NE(err.find("resuming " + b + " at step"), std::string::npos) << err;
    EXPECT_NE(err.find("resume with: trine mnist --resume " + b), std::string::npos) << err;
    const int64_t at = checkpoint_step(b);
    EXPECT_GE(at, target);
    EXPECT_NE(err.find("interrupted at step " + std::to_string(at)), std::string::npos) << err;
    std::printf("%s: stopped cleanly at step %lld\n", strsignal(signo), static_cast<long long>(at));
  }
  // Resumed to the end.
  const test::RunResult rb = test::run_program(resume_args(b), 900);
  ASSERT_EQ(rb.status, 0) << rb.err;

  // The whole step log, bit for bit (the loss column above all), but the timing column.
  const auto log_b = test::step_log_without_timing(b);
  ASSERT_EQ(log_b.size(), log_a.size());
  for (size_t i = 0; i < log_a.size(); ++i) EXPECT_EQ(log_a[i], log_b[i]) << "log row " << i;
  EXPECT_EQ(test::step_log_column(a, "loss"), test::step_log_column(b, "loss"));
  // The metrics, but timing and memory.
  const auto ma = test::metrics_numbers(a), mb = test::metrics_numbers(b);
  ASSERT_TRUE(ma.count("test_precision_at_1"));
  for (const auto& [key, value] : ma) {
    if (test::is_timing_metric(key)) continue;
    ASSERT_TRUE(mb.count(key)) << key;
    EXPECT_EQ(value, mb.at(key)) << key;
  }
  // The final model's embeddings, byte for byte.
  EXPECT_EQ(test::read_text(a + "/test_embeddings.npy"),
            test::read_text(b + "/test_embeddings.npy"));
  std::printf(
      "uninterrupted and resumed: %lld steps, identical logs; final loss %s, "
      "test_precision_at_1 %s / %s\n",
      static_cast<long long>(steps), ma.at("final_loss").c_str(),
      ma.at("test_precision_at_1").c_str(), mb.at("test_precision_at_1").c_str());
}

// A process SIGKILLed at random moments while it rewrites a checkpoint: the file on disk is
// always a complete checkpoint, the old one or the new one.
TEST(AtomicCheckpoint, KilledMidWriteLeavesTheOldOrTheNewFile) {
  const fs::path dir =
      fs::temp_directory_path() / ("trine_atomic_ckpt_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "checkpoint.trine").string();
  auto make = [](float value) {
    Checkpoint ck;
    ck.meta["value"] = std::to_string(value);
    ck.tensors["big"] = Tensor::full({1 << 21}, value);  // 8 MiB: the write takes a while
    return ck;
  };
  save_checkpoint(path, make(0.f));
  std::mt19937 rng(1);
  int kills = 0;
  for (int round = 0; round < 15; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 1;; ++i) save_checkpoint(path, make(static_cast<float>(i)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 60));
    ::kill(pid, SIGKILL);
    int raw = 0;
    ::waitpid(pid, &raw, 0);
    kills += WIFSIGNALED(raw) ? 1 : 0;
    Checkpoint ck;
    ASSERT_NO_THROW(ck = load_checkpoint(path)) << "round " << round;
    const float value = std::stof(ck.meta.at("value"));
    const std::vector<float> big = ck.tensors.at("big").to_vector();
    EXPECT_EQ(big.front(), value);
    EXPECT_EQ(big.back(), value);
  }
  EXPECT_EQ(kills, 15);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trine
