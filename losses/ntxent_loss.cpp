// NT-Xent and supervised-contrastive losses from masked log-sum-exps over the logit matrix.
#include "losses/ntxent_loss.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "losses/pair_masks.h"

namespace trine {

namespace {

// Row-wise log(sum_j mask_ij e^{x_ij}) -> [B, 1]; rows with an empty mask give -1e30 and a zero
// gradient (no inf or NaN on any path).
Tensor masked_logsumexp(const Tensor& x, const Tensor& mask) {
  const Tensor big_neg = Tensor::scalar(-1e30f, x.device());
  Tensor any, c;
  {
    NoGradGuard ng;
    any = gt(sum(mask, {1}, true), Tensor::scalar(0.f, x.device()));
    c = where(any, max(where(mask, x.detach(), big_neg), 1, true), Tensor::scalar(0.f, x.device()));
  }
  // Masked before exp: an entry outside the mask may lie far above the masked maximum (the
  // positive pair at a small temperature), and exp(inf) * 0 would be NaN.
  Tensor s = sum(exp(where(mask, x - c, big_neg)), {1}, true);
  Tensor lse = log(where(any, s, Tensor::scalar(1.f, x.device()))) + c;
  return where(any, lse, big_neg);
}

}  // namespace

NTXentLoss::NTXentLoss(std::shared_ptr<Distance> distance, NTXentOptions options)
    : distance_(std::move(distance)), o_(options) {
  TRINE_CHECK_AS(UsageError, distance_, "NTXentLoss: no distance");
  TRINE_CHECK_AS(UsageError, std::isfinite(o_.temperature) && o_.temperature > 0.f,
                 "NTXentLoss: temperature must be > 0, got ", o_.temperature);
}

std::string NTXentLoss::describe() const {
  std::ostringstream os;
  os << (o_.supervised_contrastive ? "SupConLoss(" : "NTXentLoss(") << distance_->name()
     << ", temperature " << o_.temperature << ", " << reduction_name(o_.reduction) << ")";
  return os.str();
}

Tensor NTXentLoss::forward(const Tensor& embeddings, const Tensor& labels) {
  check_embeddings_labels(embeddings, labels, "NTXentLoss");
  const int64_t B = embeddings.size(0);
  Tensor D = distance_->pairwise(embeddings, embeddings);
  Tensor logits = D * (-1.f / o_.temperature);
  PairMasks m = pair_masks(labels);
  Tensor one = Tensor::scalar(1.f, D.device());
  Tensor total, count;
  if (!o_.supervised_contrastive) {
    // softplus(lse_neg(a) - s(a,p)) = -log(e^s / (e^s + sum_n e^s(a,n))).
    Tensor lse_neg = masked_logsumexp(logits, m.negative);
    Tensor per = softplus(lse_neg - logits) * m.positive;
    total = sum(per);
    count = sum(m.positive);
  } else {
    Tensor others;
    {
      NoGradGuard ng;
      others = m.positive + m.negative;  // every k != a
    }
    Tensor lse_all = masked_logsumexp(logits, others);
    Tensor per_pair = (lse_all - logits) * m.positive;
    Tensor npos = sum(m.positive, {1});
    Tensor per_anchor = sum(per_pair, {1}) / maximum(npos, one);
    total = sum(per_anchor);
    count = sum(gt(npos, Tensor::scalar(0.f, D.device())));
  }
  {
    NoGradGuard ng;
    Tensor dd = D.detach();
    // Every positive pair has a non-zero loss: considered = active = the positive pairs.
    Tensor npos = sum(m.positive).reshape({1});
    defer_stats(concat({npos, npos, npos, sum(dd * m.positive).reshape({1}),
                        sum(m.negative).reshape({1}), sum(dd * m.negative).reshape({1})},
                       0),
                "pairs", "a batch had no positive pair");
  }
  (void)B;
  if (o_.reduction == Reduction::Sum) return total;
  return total / maximum(count, one);
}

}  // namespace trine
