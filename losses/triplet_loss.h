// TripletMarginLoss: max(0, d(a,p) - d(a,n) + margin) (Schroff et al. 2015), or the soft margin
// log(1 + exp(d(a,p) - d(a,n))) (Hermans et al. 2017; no margin), with any Distance, an optional
// distance swap (d(a,n) replaced by min(d(a,n), d(p,n)); Balntas et al. 2016) and a Reduction.
//
// Two forms:
//  - textbook: forward(anchor, positive, negative), three [N, D] tensors, one triplet per row;
//  - batch: forward(embeddings, labels): one distance matrix over the batch, a Miner picks the
//    triplets from it, and the loss gathers d(a,p) and d(a,n) from that same matrix. Window
//    miners (batch-all, band, easy, hard) are evaluated in one fused loop over the matrix, so
//    memory stays O(B^2).
// A batch with no valid triplet gives a loss of 0 (with a counted warning), never NaN.
#pragma once

#include <memory>

#include "losses/distance.h"
#include "losses/loss.h"
#include "mining/miner.h"

namespace trine {

struct TripletLossOptions {
  float margin = 0.2f;
  bool soft_margin = false;
  bool swap = false;
  Reduction reduction = Reduction::Mean;
};

class TripletMarginLoss : public MetricLoss {
 public:
  TripletMarginLoss(std::shared_ptr<Distance> distance, std::shared_ptr<Miner> miner,
                    TripletLossOptions options = {});
  using MetricLoss::forward;
  Tensor forward(const Tensor& embeddings, const Tensor& labels) override;
  // The textbook form over explicit [N, D] anchor, positive and negative embeddings.
  Tensor forward(const Tensor& anchor, const Tensor& positive, const Tensor& negative);
  // The batch form with a precomputed distance matrix D [B, B] (must come from the embeddings
  // being trained, so gradients flow through it).
  Tensor forward_distances(const Tensor& D, const Tensor& labels);
  std::string describe() const override;
  std::vector<Tensor> parameters() const override { return distance_->parameters(); }

  void set_miner(std::shared_ptr<Miner> miner) { miner_ = std::move(miner); }
  const Miner& miner() const { return *miner_; }
  const Distance& distance() const { return *distance_; }
  const TripletLossOptions& options() const { return o_; }

 private:
  // Reduces per-triplet distances (same shapes) under a validity mask.
  Tensor reduce(const Tensor& dap, const Tensor& dan, const Tensor& valid);
  Tensor fused(const Tensor& D, const Tensor& labels, const TripletWindow& w);

  std::shared_ptr<Distance> distance_;
  std::shared_ptr<Miner> miner_;
  TripletLossOptions o_;
};

}  // namespace trine
