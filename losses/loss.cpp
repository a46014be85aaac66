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

void MetricLoss::note_empty_batch(const std::string& why) {
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
