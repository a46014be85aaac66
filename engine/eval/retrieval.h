// Retrieval evaluation of embeddings: exact k-nearest neighbours by chunked GEMM, and the metrics
// of metric learning (Precision@1, R-Precision, MAP@R, Recall@K), leave-one-out or against a
// separate gallery.
//
// Definitions (Musgrave et al., "A Metric Learning Reality Check", ECCV 2020), per query q with
// label y and neighbours n_1, n_2, ... sorted by distance, rel(i) = [label(n_i) == y]:
//   R           = number of gallery items with label y, other than q itself (leave-one-out)
//   P(i)        = (1/i) * sum_{j<=i} rel(j)
//   Precision@1 = rel(1)
//   R-Precision = P(R)
//   MAP@R       = (1/R) * sum_{i<=R} P(i) * rel(i)
//   Recall@K    = [some rel(i) == 1 for i <= K]       (so Recall@1 == Precision@1)
// Each is averaged over queries. Conventions:
//   - Ties in distance resolve to the lower gallery index (a stable order, so results do not
//     depend on chunking or threads).
//   - A query with R = 0 (its class has no other member in the gallery) is excluded from
//     R-Precision and MAP@R, and counted in RetrievalMetrics::num_r_zero; it still counts, as a
//     miss, in Precision@1 and Recall@K. (The PyTorch peer divides by R = 0 there and gets NaN.)
//   - Leave-one-out: a query is never its own neighbour; every other item, including exact
//     duplicates of it, is.
// Distances: Euclidean ||q - g|| computed as sqrt(max(0, ||q||^2 + ||g||^2 - 2 q.g)) and ranked
// by the squared value; or cosine distance 1 - q.g / (||q|| ||g||) (a zero vector has cosine 0 to
// everything), computed as ||q' - g'||^2 / 2 of the unit-normalized rows q', g'. When the
// gallery (the set itself in leave-one-out) lies farther from the origin than it spreads, both
// sets are first moved by the gallery's mean: no distance changes, but their digits are kept.
// Embeddings cluster far from the origin (a class's unit-norm embeddings often lie within 0.01 of
// each other), where the unmoved float32 form rounds d^2 by up to 1e-7 and reorders close
// neighbours. The q.g products come from the CPU backend's GEMM over chunks of query rows, so
// the memory used is chunk_rows x gallery floats, never queries x gallery.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace trine {

enum class DistanceMetric { Euclidean, Cosine };

// "euclidean" or "cosine"; throws UsageError otherwise.
DistanceMetric parse_distance_metric(const std::string& name);
const char* distance_metric_name(DistanceMetric m);

struct KnnOptions {
  DistanceMetric metric = DistanceMetric::Euclidean;
  int64_t chunk_rows = 0;  // query rows per GEMM chunk; 0: about 64 MB of distances per chunk
};

// The k nearest gallery items of each query: row-major [num_queries, k], nearest first.
struct KnnResult {
  int64_t num_queries = 0, k = 0;
  std::vector<int32_t> indices;  // gallery row indices
  std::vector<float> distances;  // Euclidean (not squared) or cosine distance
};

// k nearest rows of `gallery` [M, D] for each row of `queries` [N, D] (float32, any device;
// copied to the CPU). Requires 1 <= k <= M, equal D, finite values (throws UsageError for shapes
// and k, DataError naming the row and column of a NaN/Inf).
KnnResult knn(const Tensor& queries, const Tensor& gallery, int64_t k, const KnnOptions& opt = {});
// Leave-one-out within `x` [N, D]: each row's k nearest other rows. Requires 1 <= k <= N - 1.
KnnResult knn_leave_one_out(const Tensor& x, int64_t k, const KnnOptions& opt = {});

// {1, 2, 4, 8}. (A function, not a braced default: GCC 12 warns falsely about the latter.)
std::vector<int64_t> default_recall_ks();

struct RetrievalOptions {
  DistanceMetric metric = DistanceMetric::Euclidean;
  std::vector<int64_t> recall_ks = default_recall_ks();  // each >= 1; may exceed the gallery size
  // R-Precision and MAP@R need each query's R nearest items (R up to a class's size); false
  // skips them and selects only max(recall_ks) neighbours per query (e.g. for 1-NN accuracy).
  bool map_at_r = true;
  int64_t chunk_rows = 0;  // as KnnOptions::chunk_rows
};

struct RetrievalMetrics {
  bool leave_one_out = false;
  int64_t num_queries = 0;
  int64_t num_gallery = 0;  // gallery rows (leave-one-out: the set's size)
  double precision_at_1 = 0;
  double r_precision = 0;  // over queries with R > 0; NaN when !map_at_r or no such query
  double map_at_r = 0;     // likewise
  bool has_map_at_r = false;
  int64_t num_r_zero = 0;  // queries with R = 0 (excluded from r_precision and map_at_r)
  std::vector<int64_t> recall_ks;
  std::vector<double> recall_at_k;  // [recall_ks.size()]
};

// Leave-one-out over one labelled set: embeddings [N, D], labels [N]. Requires N >= 2.
// Throws UsageError for mismatched sizes or options, DataError for NaN/Inf values.
RetrievalMetrics evaluate_leave_one_out(const Tensor& embeddings,
                                        const std::vector<int32_t>& labels,
                                        const RetrievalOptions& opt = {});

// Queries [N, D] against a separate gallery [M, D] (no item is excluded). Requires N, M >= 1.
RetrievalMetrics evaluate_against_gallery(const Tensor& queries,
                                          const std::vector<int32_t>& query_labels,
                                          const Tensor& gallery,
                                          const std::vector<int32_t>& gallery_labels,
                                          const RetrievalOptions& opt = {});

// `name value` lines, each name preceded by `prefix`: precision_at_1, r_precision, map_at_r
// (when computed), recall_at_K for each K, num_queries, num_gallery, num_r_zero.
std::string format_metrics(const RetrievalMetrics& m, const std::string& prefix = "");

}  // namespace trine
