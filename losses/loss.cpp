// MetricLoss helpers.
#include "losses/loss.h"

#include <iostream>

#include "engine/error.h"

namespace trine {

Reduction parse_reduction(const std::string& text) {
  if (text == "mean") return Reduction::Mean;
  if (text == "mean-nonzero") return Reduction::MeanNonzero;
  if (text == "sum") return Reduction::Sum;
  throw UsageError("unknown reduction '" + text + "': expected mean, mean-nonzero or sum");
}

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::Mean:
      return "mean";
    case Reduction::MeanNonzero:
      return "mean-nonzero";
    case Reduction::Sum:
      return "sum";
  }
  return "?";
}

Tensor MetricLoss::forward(const Tensor& embeddings, const std::vector<int32_t>& labels) {
  return forward(embeddings, Tensor::from_ints(labels, embeddings.device()));
}

const LossStats& MetricLoss::stats() const {
  if (pending_.defined()) resolve_stats(pending_.to_vector().data());
  return stats_;
}

int64_t MetricLoss::empty_batches() const {
  stats();  // the last forward's batch counts once its figures are read
  return empty_batches_;
}

void MetricLoss::resolve_stats(const float* s) const {
  pending_ = Tensor();
  stats_ = LossStats{};
  stats_.unit = unit_;
  stats_.considered = static_cast<int64_t>(s[0]);
  stats_.active = static_cast<int64_t>(s[1]);
  stats_.mean_pos = s[2] > 0 ? double(s[3]) / s[2] : 0;
  stats_.mean_neg = s[4] > 0 ? double(s[5]) / s[4] : 0;
  if (stats_.considered == 0) note_empty_batch(if_empty_);
}

void MetricLoss::defer_stats(Tensor figures, std::string unit, std::string if_empty) {
  TRINE_CHECK(figures.defined() && figures.numel() == kStatsSize && figures.dtype() == DType::F32,
              describe(), ": loss statistics must be ", kStatsSize, " floats");
  stats();
  pending_ = std::move(figures);
  unit_ = std::move(unit);
  if_empty_ = std::move(if_empty);
}

void MetricLoss::note_empty_batch(const std::string& why) const {
  if (empty_batches_++ == 0)
    std::cerr << "warning: " << describe() << ": " << why
              << "; the loss is 0 for such batches (counted in empty_batches)\n";
}

void check_embeddings_labels(const Tensor& embeddings, const Tensor& labels, const char* who) {
  TRINE_CHECK(embeddings.defined() && embeddings.dim() == 2, who,
              ": embeddings must be [B, D], got ",
              embeddings.defined() ? embeddings.shape_str() : "undefined");
  TRINE_CHECK(labels.defined() && labels.dtype() == DType::I32 && labels.dim() == 1, who,
              ": labels must be a 1-D int32 tensor");
  TRINE_CHECK(labels.size(0) == embeddings.size(0), who, ": ", labels.size(0), " labels for ",
              embeddings.size(0), " embeddings");
  TRINE_CHECK(labels.device() == embeddings.device(), who, ": labels on ", labels.device().str(),
              ", embeddings on ", embeddings.device().str());
}

}  // namespace trine
