// Triplet margin loss: explicit triplets through gathers from the distance matrix, window
// triplet sets through the fused Backend::triplet_set_loss loop.
#include "losses/triplet_loss.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace trine {

TripletMarginLoss::TripletMarginLoss(std::shared_ptr<Distance> distance,
                                     std::shared_ptr<Miner> miner, TripletLossOptions options)
    : distance_(std::move(distance)), miner_(std::move(miner)), o_(options) {
  TRINE_CHECK_AS(UsageError, distance_, "TripletMarginLoss: no distance");
  TRINE_CHECK_AS(UsageError, miner_, "TripletMarginLoss: no miner");
  TRINE_CHECK_AS(UsageError, std::isfinite(o_.margin) && o_.margin >= 0.f,
                 "TripletMarginLoss: margin must be a finite value >= 0, got ", o_.margin);
}

std::string TripletMarginLoss::describe() const {
  std::ostringstream os;
  os << "TripletMarginLoss(" << distance_->name() << ", " << miner_->name() << ", ";
  if (o_.soft_margin)
    os << "soft margin";
  else
    os << "margin " << o_.margin;
  os << (o_.swap ? ", swap" : "") << ", " << reduction_name(o_.reduction) << ")";
  return os.str();
}

Tensor TripletMarginLoss::reduce(const Tensor& dap, const Tensor& dan, const Tensor& valid) {
  Tensor z = dap - dan;
  Tensor per = o_.soft_margin ? softplus(z) : relu(z + o_.margin);
  Tensor zero = Tensor::scalar(0.f, dap.device());
  Tensor numer = sum(per * valid);
  Tensor active, count, stats;  // active: how many triplets have a non-zero loss
  {
    NoGradGuard ng;
    active = sum(o_.soft_margin ? valid : gt(per.detach(), zero) * valid);
    count = sum(valid);
    // The logging statistics stay on the device until read (MetricLoss::stats).
    Tensor n = count.reshape({1});
    stats = concat({n, active.reshape({1}), n, sum(dap.detach() * valid).reshape({1}), n,
                    sum(dan.detach() * valid).reshape({1})},
                   0);
  }
  defer_stats(stats, "triplets", "a batch had no valid triplet");
  Tensor one = Tensor::scalar(1.f, dap.device());
  switch (o_.reduction) {
    case Reduction::Sum:
      return numer;
    case Reduction::Mean:
      return numer / maximum(count, one);
    case Reduction::MeanNonzero:
      return numer / maximum(active, one);
  }
  return numer;
}

Tensor TripletMarginLoss::forward(const Tensor& anchor, const Tensor& positive,
                                  const Tensor& negative) {
  TRINE_CHECK(anchor.defined() && anchor.dim() == 2 && positive.shape() == anchor.shape() &&
                  negative.shape() == anchor.shape(),
              "TripletMarginLoss: anchor, positive and negative must be [N, D] of one shape, got ",
              anchor.defined() ? anchor.shape_str() : "undefined", ", ",
              positive.defined() ? positive.shape_str() : "undefined", ", ",
              negative.defined() ? negative.shape_str() : "undefined");
  Tensor dap = distance_->paired(anchor, positive);
  Tensor dan = distance_->paired(anchor, negative);
  if (o_.swap) dan = minimum(dan, distance_->paired(positive, negative));
  return reduce(dap, dan, Tensor::ones(dap.shape(), dap.device()));
}

Tensor TripletMarginLoss::forward(const Tensor& embeddings, const Tensor& labels) {
  check_embeddings_labels(embeddings, labels, "TripletMarginLoss");
  return forward_distances(distance_->pairwise(embeddings, embeddings), labels);
}

Tensor TripletMarginLoss::forward_distances(const Tensor& D, const Tensor& labels) {
  TRINE_CHECK(D.dim() == 2 && D.size(0) == D.size(1), "TripletMarginLoss: distances must be ",
              "[B, B], got ", D.shape_str());
  MinerOutput mined = miner_->mine(D.detach(), labels, o_.margin);
  if (mined.kind == MinerOutput::Kind::Window) return fused(D, labels, mined.window);

  const MinedTriplets& t = mined.triplets;
  const int64_t B = D.size(0);
  Tensor rows = t.anchor.defined() ? index_select(D, 0, t.anchor) : D;  // [R, B]
  Tensor dap = t.positive.defined() ? gather(rows, 1, t.positive) : rows;
  Tensor dan = gather(rows, 1, t.negative);
  if (o_.swap) {
    // d(p, n) from the flat matrix; indices are exact in float for B <= 4096.
    TRINE_CHECK(B <= 4096, "TripletMarginLoss: distance swap supports batches up to 4096, got ", B);
    Tensor pos_f;
    {
      NoGradGuard ng;
      if (t.positive.defined()) {
        pos_f = t.positive.to_float();
      } else {
        pos_f = expand(Tensor::arange(B, D.device()).reshape({1, B}), t.negative.shape());
      }
    }
    Tensor flat = (pos_f * static_cast<float>(B) + t.negative.to_float()).to_int();
    Tensor dpn = index_select(D.reshape({-1}), 0, flat.reshape({-1})).reshape(dan.shape());
    dan = minimum(dan, dpn);
  }
  return reduce(dap, dan, t.valid);
}

Tensor TripletMarginLoss::fused(const Tensor& D, const Tensor& labels, const TripletWindow& w) {
  const int64_t B = D.size(0);
  Backend& be = D.backend();
  Tensor grad = Tensor::empty({B, B}, D.device());
  // [loss, gradient scale, the 6 statistics], computed on the device: no trip to the host.
  Tensor totals = Tensor::empty({8}, D.device());
  {
    // Per-anchor double statistics in raw device memory (tensors are float32/int32); work
    // queued later on the device may reuse it once the totals have read it.
    Scratch rows(be, B * 5 * 2);
    TripletSetParams p{o_.margin,      w.lo,           w.hi,   w.lo_inclusive,
                       w.hi_inclusive, o_.soft_margin, o_.swap};
    double* row_stats = reinterpret_cast<double*>(rows.get());
    be.triplet_set_loss(D.data(), labels.int_data(), B, p, row_stats, grad.data());
    const int denom_stat = o_.reduction == Reduction::Mean          ? 1
                           : o_.reduction == Reduction::MeanNonzero ? 2
                                                                    : -1;
    be.triplet_set_totals(row_stats, B, denom_stat, totals.data());
  }
  defer_stats(totals.slice(0, 2, 8), "triplets", "a batch had no valid triplet in the miner's set");
  Tensor scale = totals.slice(0, 1, 2);
  return record(totals.slice(0, 0, 1).reshape({}), "triplet_set_loss", {D},
                [grad, scale](const Tensor& g) -> Grads { return {grad * (g * scale)}; });
}

}  // namespace trine
