// `trine pairs`: writes an identity-disjoint k-fold verification pairs file in the LFW
// `pairs.txt` format for an image folder (one sub-folder per identity) that has none.
#include <chrono>
#include <cstdio>
#include <set>

#include "apps/cli.h"
#include "datasets/image_folder.h"
#include "datasets/lfw_pairs.h"
#include "engine/error.h"

namespace trine {
namespace {

int run(cli::Args& args) {
  const auto images = args.opt_str("images", "image folder: one sub-folder of images per identity");
  const int64_t folds = args.integer("folds", 10, "number of identity-disjoint folds", 1, 1000);
  const auto out = args.opt_str("out", "pairs file to write (LFW pairs.txt format)");
  const int64_t per_fold = args.integer(
      "pairs-per-fold", 300, "same pairs per fold, and as many different pairs", 1, 10000000);
  const int64_t seed = args.integer("seed", 0, "random seed", 0);
  const bool strict = args.flag("strict", "an unreadable image file is an error, not a warning");
  cli::cpu_only_device_flag(args, "pairs", "reads an image folder and writes a text file");
  args.finish();
  TRINE_CHECK_AS(UsageError, images.has_value(), "pairs: --images DIR is required");
  TRINE_CHECK_AS(UsageError, out.has_value(), "pairs: --out FILE is required");

  // Decoding every image checks that the pairs only name images that load.
  auto t0 = std::chrono::steady_clock::now();
  ImageFolderOptions opt;
  opt.strict = strict;
  opt.width = opt.height = 8;  // any size: only which files decode matters here
  ImageFolder folder = ImageFolder::load(*images, opt);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "pairs: %lld identities, %lld images (%zu skipped) loaded in %.1f s\n",
               static_cast<long long>(folder.num_identities()),
               static_cast<long long>(folder.size()), folder.skipped_files().size(), load_s);

  PairsGeneration gen;
  gen.folds = static_cast<int32_t>(folds);
  gen.per_fold = per_fold;
  gen.seed = static_cast<uint64_t>(seed);
  PairsFile pf = generate_pairs(folder, gen);
  write_pairs(*out, pf);

  std::set<std::string> ids;
  for (const FacePair& p : pf.pairs) {
    ids.insert(p.name1);
    ids.insert(p.name2);
  }
  std::printf("pairs_written %lld\n", static_cast<long long>(pf.pairs.size()));
  std::printf("folds %d\n", pf.folds);
  std::printf("pairs_per_fold_same %lld\n", static_cast<long long>(pf.per_fold));
  std::printf("pairs_per_fold_different %lld\n", static_cast<long long>(pf.per_fold));
  std::printf("identities_used %zu\n", ids.size());
  std::printf("out %s\n", out->c_str());
  return 0;
}

cli::Register reg("pairs",
                  "write an identity-disjoint k-fold pairs.txt (LFW format) for an image folder",
                  run);

}  // namespace
}  // namespace trine
