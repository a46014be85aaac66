// Metric losses: the common interface (embeddings + labels -> scalar), reductions and the
// statistics every loss reports for logging.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace trine {

// How per-triplet (or per-pair) losses become one scalar:
//   Mean        - sum over every considered triplet / their number
//   MeanNonzero - sum / the number with a non-zero loss (Hermans et al.'s "batch-all +")
//   Sum         - the sum
// With no considered triplet (or no non-zero one for MeanNonzero) the loss is 0, never NaN.
enum class Reduction { Mean, MeanNonzero, Sum };
Reduction parse_reduction(const std::string& text);  // mean | mean-nonzero | sum
const char* reduction_name(Reduction r);

// What the last forward() saw, for logs and run reports.
struct LossStats {
  std::string unit = "triplets";  // or "pairs"
  int64_t considered = 0;         // triplets (pairs) the reduction ran over
  int64_t active = 0;             // ... with a non-zero loss
  double mean_pos = 0;            // mean d(a,p) over them (pairs: positive pairs)
  double mean_neg = 0;            // mean d(a,n) (pairs: negative pairs)
  double active_fraction() const { return considered ? double(active) / double(considered) : 0; }
};

// A loss over a batch of embeddings [B, D] with integer class labels [B] (int32, on the
// embeddings' device).
class MetricLoss {
 public:
  virtual ~MetricLoss() = default;
  virtual Tensor forward(const Tensor& embeddings, const Tensor& labels) = 0;
  Tensor forward(const Tensor& embeddings, const std::vector<int32_t>& labels);
  virtual std::string describe() const = 0;
  // Learnable parameters of the loss (e.g. a Mahalanobis distance's matrix).
  virtual std::vector<Tensor> parameters() const { return {}; }

  const LossStats& stats() const { return stats_; }
  // Batches that had nothing to learn from (no valid triplet or pair): counted, and warned
  // about once on stderr, instead of producing NaN.
  int64_t empty_batches() const { return empty_batches_; }

 protected:
  void note_empty_batch(const std::string& why);
  LossStats stats_;
  int64_t empty_batches_ = 0;
};

// Checks embeddings [B, D] and labels [B] (int32, same device); throws naming the shapes.
void check_embeddings_labels(const Tensor& embeddings, const Tensor& labels, const char* who);

}  // namespace trine
