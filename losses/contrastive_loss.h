// ContrastiveLoss (Hadsell et al. 2006, in the form of pytorch-metric-learning): a positive pair
// costs max(0, d - pos_margin), a negative pair max(0, neg_margin - d); with `squared` each term
// is squared (Hadsell's original with pos_margin 0). Batch form: every unordered pair i < j of
// the batch; pairs form: explicit (x1, x2, same) rows. The reduction runs over the pairs.
#pragma once

#include <memory>

#include "losses/distance.h"
#include "losses/loss.h"

namespace trine {

struct ContrastiveLossOptions {
  float pos_margin = 0.f;
  float neg_margin = 1.f;
  bool squared = false;
  Reduction reduction = Reduction::Mean;
};

class ContrastiveLoss : public MetricLoss {
 public:
  ContrastiveLoss(std::shared_ptr<Distance> distance, ContrastiveLossOptions options = {});
  using MetricLoss::forward;
  Tensor forward(const Tensor& embeddings, const Tensor& labels) override;
  // Explicit pairs: x1, x2 [N, D], same [N] (float 1 for a positive pair, 0 for a negative one).
  Tensor forward_pairs(const Tensor& x1, const Tensor& x2, const Tensor& same);
  std::string describe() const override;
  std::vector<Tensor> parameters() const override { return distance_->parameters(); }

 private:
  Tensor reduce(const Tensor& d, const Tensor& pos, const Tensor& neg);
  std::shared_ptr<Distance> distance_;
  ContrastiveLossOptions o_;
};

}  // namespace trine
