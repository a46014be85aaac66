// `trine loss` against the library: the printed value and counts, and --grad-out against the
// gradient autograd gives, for a few losses and miners.
#include <gtest/gtest.h>

#include <filesystem>

#include "datasets/npy.h"
#include "engine/random.h"
#include "losses/contrastive_loss.h"
#include "losses/triplet_loss.h"
#include "support/run_program.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

TEST(CmdLoss, MatchesTheLibraryValueAndGradient) {
  if (test::trine_program().empty()) GTEST_SKIP() << "the trine program is not built";
  const fs::path dir = fs::temp_directory_path() / ("trine_cmd_loss_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(3);
  Tensor emb = Tensor::randn({24, 5});
  std::vector<int32_t> labels;
  for (int i = 0; i < 24; ++i) labels.push_back(i % 4);
  write_npy((dir / "e.npy").string(), emb);
  write_npy_labels((dir / "l.npy").string(), labels);
  struct Case {
    std::string flags, miner;
    bool swap;
  };
  for (const Case& c : {Case{"--miner batch-hard", "batch-hard", false},
                        Case{"--miner semi-hard:tfa --swap", "semi-hard:tfa", true},
                        Case{"--miner batch-all --reduction mean", "batch-all", false}}) {
    test::ProgramResult r = test::run_trine(
        "loss --embeddings " + (dir / "e.npy").string() + " --labels " + (dir / "l.npy").string() +
        " --margin 0.3 " + c.flags + " --grad-out " + (dir / "g.npy").string());
    ASSERT_EQ(r.status, 0) << r.err;
    auto m = test::parse_name_values(r.out);
    TripletLossOptions o;
    o.margin = 0.3f;
    o.swap = c.swap;
    TripletMarginLoss loss(parse_distance("euclidean"), parse_miner(c.miner), o);
    Tensor x = emb.detach().clone().set_requires_grad(true);
    Tensor v = loss.forward(x, labels);
    v.backward();
    EXPECT_NEAR(std::stod(m["loss"]), v.item(), 1e-6) << c.flags;
    EXPECT_EQ(std::stoll(m["triplets"]), loss.stats().considered) << c.flags;
    EXPECT_EQ(std::stoll(m["active"]), loss.stats().active) << c.flags;
    std::vector<float> g = read_npy_floats((dir / "g.npy").string()).to_vector();
    std::vector<float> want = x.grad().to_vector();
    ASSERT_EQ(g.size(), want.size());
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-6) << c.flags;
  }
  test::ProgramResult r =
      test::run_trine("loss --embeddings " + (dir / "e.npy").string() + " --labels " +
                      (dir / "l.npy").string() + " --loss contrastive");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::parse_name_values(r.out)["pairs"], "276");  // 24 * 23 / 2
  // Errors: missing flags (usage), mismatched labels (data).
  EXPECT_EQ(test::run_trine("loss --embeddings " + (dir / "e.npy").string()).status, 2);
  write_npy_labels((dir / "short.npy").string(), {0, 1});
  r = test::run_trine("loss --embeddings " + (dir / "e.npy").string() + " --labels " +
                      (dir / "short.npy").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("2 labels"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trine
