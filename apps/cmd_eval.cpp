// `trine eval`: retrieval metrics of saved embeddings (.npy), leave-one-out within one set or
// queries against a gallery, printed as `name value` lines (precision_at_1, map_at_r, ...).
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "datasets/npy.h"
#include "engine/error.h"
#include "engine/eval/retrieval.h"

namespace trine {
namespace {

// "1,2,4,8" -> {1, 2, 4, 8}; throws UsageError for anything but positive integers.
std::vector<int64_t> parse_ks(const std::string& text) {
  std::vector<int64_t> ks;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 1)
      throw UsageError("eval: --recall-k expects positive integers separated by commas, got '" +
                       text + "'");
    ks.push_back(v);
  }
  if (ks.empty()) throw UsageError("eval: --recall-k is empty");
  return ks;
}

// Embeddings [N, D] and their labels, checked against each other.
struct LabelledSet {
  Tensor x;
  std::vector<int32_t> y;
};

LabelledSet load_set(const std::string& emb_path, const std::string& label_path) {
  LabelledSet s;
  s.x = read_npy_floats(emb_path);
  TRINE_CHECK_AS(DataError, s.x.dim() == 2, emb_path,
                 ": embeddings must be a 2-D array [N, D], got shape ", s.x.shape_str());
  s.y = read_npy_labels(label_path);
  TRINE_CHECK_AS(DataError, static_cast<int64_t>(s.y.size()) == s.x.size(0), emb_path, " holds ",
                 s.x.size(0), " embeddings but ", label_path, " holds ", s.y.size(), " labels");
  return s;
}

int run(cli::Args& args) {
  const auto emb = args.opt_str("embeddings", "query embeddings, float32 .npy [N, D] (required)");
  const auto lab = args.opt_str("labels", "query labels, integer .npy [N] (required)");
  const auto gal = args.opt_str("gallery",
                                "gallery embeddings .npy [M, D] (default: leave-one-out "
                                "within --embeddings)");
  const auto gal_lab = args.opt_str("gallery-labels", "gallery labels .npy [M]");
  const std::string metric =
      args.choice("metric", "euclidean", {"euclidean", "cosine"}, "distance");
  const std::string ks = args.str("recall-k", "1,2,4,8", "K values for recall_at_K");
  const int64_t chunk =
      args.integer("chunk-rows", 0, "query rows per distance chunk (0: automatic)", 0, 1 << 30);
  const bool no_map = args.flag("no-map", "skip r_precision and map_at_r (faster 1-NN figures)");
  cli::cpu_only_device_flag(args, "eval", "nearest neighbours by chunked OpenBLAS GEMM");
  cli::common_flags(args);
  args.finish();
  if (!emb || !lab) throw UsageError("eval: --embeddings and --labels are required");
  if (gal.has_value() != gal_lab.has_value())
    throw UsageError("eval: --gallery and --gallery-labels go together");

  RetrievalOptions opt;
  opt.metric = parse_distance_metric(metric);
  opt.recall_ks = parse_ks(ks);
  opt.map_at_r = !no_map;
  opt.chunk_rows = chunk;

  const LabelledSet q = load_set(*emb, *lab);
  RetrievalMetrics m;
  if (gal) {
    const LabelledSet g = load_set(*gal, *gal_lab);
    TRINE_CHECK_AS(DataError, q.x.size(1) == g.x.size(1), *emb, " has dimension ", q.x.size(1),
                   " but ", *gal, " has ", g.x.size(1));
    TRINE_CHECK_AS(DataError, q.x.size(0) >= 1 && g.x.size(0) >= 1, "eval: ", *emb, " and ", *gal,
                   " must each hold at least one embedding");
    std::cerr << "eval: " << q.x.size(0) << " queries against a gallery of " << g.x.size(0) << ", "
              << metric << "\n";
    m = evaluate_against_gallery(q.x, q.y, g.x, g.y, opt);
  } else {
    TRINE_CHECK_AS(DataError, q.x.size(0) >= 2, "eval: ", *emb,
                   " must hold at least 2 embeddings for leave-one-out, got ", q.x.size(0));
    std::cerr << "eval: " << q.x.size(0) << " embeddings, leave-one-out, " << metric << "\n";
    m = evaluate_leave_one_out(q.x, q.y, opt);
  }
  std::fputs(format_metrics(m).c_str(), stdout);
  return 0;
}

cli::Register reg("eval", "retrieval metrics (P@1, MAP@R, Recall@K) of saved embeddings", run);

}  // namespace
}  // namespace trine
