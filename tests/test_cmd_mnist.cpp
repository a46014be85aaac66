// `trine mnist` end to end on a subset of the real MNIST (../shared/data/mnist): a short run
// must beat chance by a wide margin and leave a complete run folder; `trine embed` and
// `trine eval` must reproduce its test metrics from the saved model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "datasets/npy.h"
#include "engine/checkpoint.h"
#include "support/run_folder.h"
#include "support/run_program.h"

namespace trine {
namespace {

namespace fs = std::filesystem;
using test::parse_name_values;
using test::run_trine;

class CmdMnist : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::trine_program().empty()) GTEST_SKIP() << "the trine program is not built";
    mnist_ = test::shared_mnist_dir();
    if (mnist_.empty()) GTEST_SKIP() << "no MNIST at ../shared/data/mnist";
    dir_ = fs::temp_directory_path() / ("trine_cmd_mnist_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string mnist_;
  fs::path dir_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(CmdMnist, ShortRunBeatsChanceAndWritesTheRunFolder) {
  const std::string run = (dir_ / "run").string();
  test::ProgramResult r = run_trine("mnist --data " + mnist_ + " --limit 2000 --test-limit 1000 " +
                                    "--epochs 3 --threads 2 --log-every 10 --out " + run);
  ASSERT_EQ(r.status, 0) << r.err;
  auto m = parse_name_values(r.out);
  ASSERT_TRUE(m.count("test_precision_at_1")) << r.out;
  // Chance is 0.1 with ten classes.
  EXPECT_GT(std::stod(m["test_precision_at_1"]), 0.6) << r.out;
  EXPECT_GT(std::stod(m["test_map_at_r"]), 0.2) << r.out;
  EXPECT_GT(std::stod(m["test_1nn_train_gallery"]), 0.6) << r.out;
  for (const char* f : {"model.trine", "checkpoint.trine", "metrics.json", "train_log.csv",
                        "test_embeddings.npy", "test_labels.npy", "report.html"})
    EXPECT_TRUE(fs::exists(fs::path(run) / f)) << f;
  // The log has one row per step; three epochs of 2000 images in batches of 128.
  const std::string log = slurp(fs::path(run) / "train_log.csv");
  const auto rows = std::count(log.begin(), log.end(), '\n') - 1;
  EXPECT_GE(rows, 3 * 14);
  EXPECT_EQ(log.rfind("step,epoch,loss,active_fraction,mean_pos,mean_neg,lr,images_per_s", 0), 0u);
  const std::string metrics = slurp(fs::path(run) / "metrics.json");
  EXPECT_NE(metrics.find("\"test_precision_at_1\""), std::string::npos);
  EXPECT_NE(metrics.find("\"blas\""), std::string::npos);
  Tensor emb = read_npy_floats((fs::path(run) / "test_embeddings.npy").string());
  EXPECT_EQ(emb.shape(), (Shape{1000, 64}));
  EXPECT_EQ(read_npy_labels((fs::path(run) / "test_labels.npy").string()).size(), 1000u);
  EXPECT_NE(r.err.find("kernel"), std::string::npos) << "the banner names the BLAS kernel";

  // embed + eval from the saved model reproduce the run's own figure (same test images: the
  // first 1000 of the test split are embedded by `embed` as part of all 10 000, so compare
  // the saved embeddings instead).
  const std::string e2 = (dir_ / "e.npy").string(), l2 = (dir_ / "l.npy").string();
  test::ProgramResult ev = run_trine("eval --embeddings " + run + "/test_embeddings.npy --labels " +
                                     run + "/test_labels.npy");
  ASSERT_EQ(ev.status, 0) << ev.err;
  EXPECT_EQ(parse_name_values(ev.out)["precision_at_1"].substr(0, 6),
            m["test_precision_at_1"].substr(0, 6));
  test::ProgramResult em = run_trine("embed --model " + run + " --mnist " + mnist_ + " --out " +
                                     e2 + " --labels-out " + l2);
  ASSERT_EQ(em.status, 0) << em.err;
  Tensor all = read_npy_floats(e2);
  ASSERT_EQ(all.shape(), (Shape{10000, 64}));
  std::vector<float> a = all.slice(0, 0, 1000).to_vector(), b = emb.to_vector();
  for (size_t i = 0; i < b.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << i;
}

TEST_F(CmdMnist, ShiftAugmentationChangesTrainingReproducibly) {
  const std::string common = "mnist --data " + mnist_ +
                             " --limit 1000 --test-limit 200 --steps 4 --threads 2 --log-every 1"
                             " --no-train-gallery --out ";
  const fs::path a = dir_ / "shift_a", b = dir_ / "shift_b", plain = dir_ / "plain";
  for (const auto& [run, shift] : {std::pair{a, " --shift 3"}, {b, " --shift 3"}, {plain, ""}}) {
    test::ProgramResult r = run_trine(common + run.string() + shift);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  const std::vector<std::string> la = test::step_log_column(a.string(), "loss");
  ASSERT_EQ(la.size(), 4u);
  EXPECT_EQ(la, test::step_log_column(b.string(), "loss")) << "same seed, same shifts";
  // The first step's batch is the same images; shifted, the loss differs.
  EXPECT_NE(la[0], test::step_log_column(plain.string(), "loss")[0]);
}

// `trine bench w1` prints the peer's figure names and its own: the convolutions' arithmetic and
// the share of the training time spent waiting for the loader (a fraction); on the CPU there is
// no device to wait for, so no `train_device_wait_share` or `train_device_waits_per_step`.
TEST_F(CmdMnist, BenchPrintsItsFigures) {
  test::ProgramResult r =
      run_trine("bench w1 --data " + mnist_ + " --limit 1000 --test-limit 200 --steps 5 " +
                "--no-train-gallery --threads 2");
  ASSERT_EQ(r.status, 0) << r.err;
  auto m = parse_name_values(r.out);
  for (const char* f : {"train_img_per_s", "embed_img_per_s", "test_precision_at_1", "peak_rss_mb",
                        "conv_math", "train_loader_wait_share"})
    EXPECT_TRUE(m.count(f)) << f << " missing from\n" << r.out;
  EXPECT_EQ(m["conv_math"], "fp32");
  EXPECT_EQ(m["steps"], "5");
  const double share = std::stod(m["train_loader_wait_share"]);
  EXPECT_GE(share, 0.0);
  EXPECT_LE(share, 1.0);
  EXPECT_FALSE(m.count("train_device_wait_share")) << r.out;
  EXPECT_FALSE(m.count("train_device_waits_per_step")) << r.out;
}

TEST_F(CmdMnist, BadFlagsAreUsageErrors) {
  EXPECT_EQ(run_trine("mnist --epochs 0").status, 2);
  EXPECT_EQ(run_trine("mnist --miner nonsense").status, 2);
  EXPECT_EQ(run_trine("mnist --shift 28").status, 2);
  EXPECT_EQ(run_trine("mnist --p 20 --data " + mnist_ + " --out " + (dir_ / "x").string()).status,
            2);  // more classes per batch than MNIST has
  test::ProgramResult r = run_trine("mnist --data " + (dir_ / "missing").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  EXPECT_EQ(run_trine("mnist --conv-math fp16").status, 2);
  r = run_trine("mnist --conv-math tf32");  // TF32 is for CUDA devices only
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--device cuda"), std::string::npos) << r.err;
  r = run_trine("bench w2 --conv-math tf32 --device cpu");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--conv-math tf32"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace trine
