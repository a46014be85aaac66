// Label masks for pair-based losses.
#include "losses/pair_masks.h"

#include "engine/autograd.h"
#include "engine/ops.h"

namespace trine {

PairMasks pair_masks(const Tensor& labels) {
  NoGradGuard ng;
  const int64_t B = labels.size(0);
  Tensor l = labels.to_float();
  Tensor same = eq(l.reshape({B, 1}), l.reshape({1, B}));
  Tensor idx = Tensor::arange(B, labels.device());
  Tensor row = idx.reshape({B, 1}), col = idx.reshape({1, B});
  return {same * ne(row, col), 1.f - same, lt(row, col)};
}

}  // namespace trine
