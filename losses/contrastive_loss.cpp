// Contrastive loss over pairs.
#include "losses/contrastive_loss.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "losses/pair_masks.h"

namespace trine {

ContrastiveLoss::ContrastiveLoss(std::shared_ptr<Distance> distance, ContrastiveLossOptions options)
    : distance_(std::move(distance)), o_(options) {
  TRINE_CHECK_AS(UsageError, distance_, "ContrastiveLoss: no distance");
  TRINE_CHECK_AS(UsageError, std::isfinite(o_.pos_margin) && std::isfinite(o_.neg_margin),
                 "ContrastiveLoss: margins must be finite");
}

std::string ContrastiveLoss::describe() const {
  std::ostringstream os;
  os << "ContrastiveLoss(" << distance_->name() << ", pos margin " << o_.pos_margin
     << ", neg margin " << o_.neg_margin << (o_.squared ? ", squared" : "") << ", "
     << reduction_name(o_.reduction) << ")";
  return os.str();
}

Tensor ContrastiveLoss::reduce(const Tensor& d, const Tensor& pos, const Tensor& neg) {
  Tensor lp = relu(d - o_.pos_margin), ln = relu(o_.neg_margin - d);
  if (o_.squared) lp = square(lp), ln = square(ln);
  Tensor per = lp * pos + ln * neg;
  Tensor zero = Tensor::scalar(0.f, d.device()), one = Tensor::scalar(1.f, d.device());
  Tensor count, active, stats;
  {
    NoGradGuard ng;
    Tensor npos = sum(pos), nneg = sum(neg);
    count = npos + nneg;
    active = sum(gt(per.detach(), zero));
    Tensor dd = d.detach();
    stats = concat({count.reshape({1}), active.reshape({1}), npos.reshape({1}),
                    sum(dd * pos).reshape({1}), nneg.reshape({1}), sum(dd * neg).reshape({1})},
                   0);
  }
  defer_stats(stats, "pairs", "a batch had no pair");
  Tensor total = sum(per);
  switch (o_.reduction) {
    case Reduction::Sum:
      return total;
    case Reduction::Mean:
      return total / maximum(count, one);
    case Reduction::MeanNonzero:
      return total / maximum(active, one);
  }
  return total;
}

Tensor ContrastiveLoss::forward(const Tensor& embeddings, const Tensor& labels) {
  check_embeddings_labels(embeddings, labels, "ContrastiveLoss");
  Tensor D = distance_->pairwise(embeddings, embeddings);
  PairMasks m = pair_masks(labels);
  return reduce(D, m.positive * m.upper, m.negative * m.upper);
}

Tensor ContrastiveLoss::forward_pairs(const Tensor& x1, const Tensor& x2, const Tensor& same) {
  TRINE_CHECK(x1.defined() && x1.dim() == 2 && x2.shape() == x1.shape() && same.dim() == 1 &&
                  same.size(0) == x1.size(0) && same.dtype() == DType::F32,
              "ContrastiveLoss: pairs must be x1, x2 [N, D] and same [N] (float 0/1)");
  Tensor d = distance_->paired(x1, x2);
  Tensor s = same.detach();
  return reduce(d, s, 1.f - s);
}

}  // namespace trine
