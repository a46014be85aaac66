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

  // What the last forward() saw. A forward leaves its figures on the embeddings' device; the
  // first call after it reads them (one small transfer, a wait for the device), unless a caller
  // has read them with other values already (pending_stats, then resolve_stats).
  const LossStats& stats() const;
  // The last forward's figures not yet read, as a float tensor [kStatsSize] on its device
  // (undefined when there are none): for a caller that reads them in one transfer with other
  // values and hands them to resolve_stats.
  const Tensor& pending_stats() const { return pending_; }
  void resolve_stats(const float* figures) const;
  // Batches that had nothing to learn from (no valid triplet or pair): counted, and warned
  // about once on stderr, instead of producing NaN.
  int64_t empty_batches() const;

  // The figures' layout: considered, active, positives, sum of their distances, negatives, sum
  // of theirs (positives and negatives: the d(a,p) and d(a,n) of the considered triplets, or
  // the positive and negative pairs).
  static constexpr int64_t kStatsSize = 6;

 protected:
  // For forward(): `figures` [kStatsSize] on the device, read when first needed; `unit` is
  // "triplets" or "pairs"; `if_empty` says what a batch lacked when considered is 0.
  // Figures still pending from an earlier forward are read first, so every batch counts.
  void defer_stats(Tensor figures, std::string unit, std::string if_empty);

 private:
  void note_empty_batch(const std::string& why) const;
  mutable LossStats stats_;
  mutable Tensor pending_;
  std::string unit_ = "triplets", if_empty_;
  mutable int64_t empty_batches_ = 0;
};

// Checks embeddings [B, D] and labels [B] (int32, same device); throws naming the shapes.
void check_embeddings_labels(const Tensor& embeddings, const Tensor& labels, const char* who);

}  // namespace trine
