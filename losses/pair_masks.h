// Label masks over a batch (internal helper of the pair-based losses), all float 0/1 [B, B] on
// the labels' device: same class without the diagonal, different class, and i < j.
#pragma once

#include "engine/tensor.h"

namespace trine {

struct PairMasks {
  Tensor positive;  // label(i) == label(j), i != j
  Tensor negative;  // label(i) != label(j)
  Tensor upper;     // i < j
};

PairMasks pair_masks(const Tensor& labels);

}  // namespace trine
