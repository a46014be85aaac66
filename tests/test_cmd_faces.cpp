// `trine pairs`, `trine faces` and `trine embed --images` end to end on a subset of LFW
// (../shared/data/faces/lfw): identities with at least five images, identity-disjoint pairs in
// three folds, a short run at 32x32 whose fold-1 AUC must beat chance (0.5) clearly.
#include <gtest/gtest.h>

#include <filesystem>

#include "datasets/npy.h"
#include "support/run_program.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

TEST(CmdFaces, ShortRunOnAnLfwSubsetBeatsChance) {
  if (test::trine_program().empty()) GTEST_SKIP() << "the trine program is not built";
  const std::string data = test::shared_data_dir();
  const fs::path lfw = fs::path(data) / "faces" / "lfw";
  if (data.empty() || !fs::exists(lfw)) GTEST_SKIP() << "no LFW at ../shared/data/faces/lfw";
  const fs::path dir =
      fs::temp_directory_path() / ("trine_cmd_faces_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path subset = dir / "faces";
  fs::create_directories(subset);
  std::vector<fs::path> ids;
  for (const auto& e : fs::directory_iterator(lfw)) ids.push_back(e.path());
  std::sort(ids.begin(), ids.end());
  int linked = 0;
  for (const fs::path& id : ids) {
    const auto n = std::distance(fs::directory_iterator(id), fs::directory_iterator{});
    if (n >= 5 && linked < 300) {
      fs::create_directory_symlink(id, subset / id.filename());
      ++linked;
    }
  }
  ASSERT_GE(linked, 200);
  const std::string pairs = (dir / "pairs.txt").string();
  test::ProgramResult p = test::run_trine("pairs --images " + subset.string() +
                                          " --folds 3 --pairs-per-fold 100 --out " + pairs);
  ASSERT_EQ(p.status, 0) << p.err;
  const std::string run = (dir / "run").string();
  test::ProgramResult r =
      test::run_trine("faces --images " + subset.string() + " --pairs " + pairs +
                      " --size 32 --epochs 3 --threads 2 --log-every 20 --out " + run);
  ASSERT_EQ(r.status, 0) << r.err;
  auto m = test::parse_name_values(r.out);
  ASSERT_TRUE(m.count("fold1_auc")) << r.out;
  EXPECT_GT(std::stod(m["fold1_auc"]), 0.6) << r.out;
  EXPECT_GT(std::stod(m["fold1_accuracy"]), 0.55) << r.out;
  for (const char* f : {"model.trine", "checkpoint.trine", "metrics.json", "train_log.csv",
                        "pair_embeddings.npy", "pair_labels.npy", "report.html"})
    EXPECT_TRUE(fs::exists(fs::path(run) / f)) << f;
  // The model embeds any image folder with its own preprocessing (size, normalization, flips).
  test::ProgramResult e =
      test::run_trine("embed --model " + run + " --images " + subset.string() + " --out " +
                      (dir / "e.npy").string() + " --labels-out " + (dir / "l.npy").string());
  ASSERT_EQ(e.status, 0) << e.err;
  Tensor emb = read_npy_floats((dir / "e.npy").string());
  EXPECT_EQ(emb.size(1), 128);
  EXPECT_EQ(static_cast<int64_t>(read_npy_labels((dir / "l.npy").string()).size()), emb.size(0));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trine
