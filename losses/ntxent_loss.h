// NTXentLoss: the contrastive-learning counterpart of the triplet loss, with temperature tau and
// logits s(i,j) = -d(i,j) / tau (for the cosine distance this is cos(i,j)/tau up to a constant,
// which the softmax ignores).
//  - ntxent (Chen et al. 2020, SimCLR, in pytorch-metric-learning's multi-positive form): every
//    ordered positive pair (a, p) costs -log( e^s(a,p) / (e^s(a,p) + sum_n e^s(a,n)) ) over the
//    negatives n of a; the reduction runs over the positive pairs.
//  - supcon (Khosla et al. 2020, L_out): anchor a costs -1/|P(a)| sum_p log( e^s(a,p) /
//    sum_{k != a} e^s(a,k) ); the loss is the mean over anchors with a positive (Sum: the sum).
#pragma once

#include <memory>

#include "losses/distance.h"
#include "losses/loss.h"

namespace trine {

struct NTXentOptions {
  float temperature = 0.1f;
  bool supervised_contrastive = false;  // supcon instead of ntxent
  Reduction reduction = Reduction::Mean;
};

class NTXentLoss : public MetricLoss {
 public:
  NTXentLoss(std::shared_ptr<Distance> distance, NTXentOptions options = {});
  using MetricLoss::forward;
  Tensor forward(const Tensor& embeddings, const Tensor& labels) override;
  std::string describe() const override;
  std::vector<Tensor> parameters() const override { return distance_->parameters(); }

 private:
  std::shared_ptr<Distance> distance_;
  NTXentOptions o_;
};

}  // namespace trine
