// Offline mining: an epoch's triplets chosen from embeddings of the whole training set (or a
// random sample of candidates) computed with the current model, as FaceNet's offline variant
// (Schroff et al. 2015, section 3.1), and plain random triplets as the baseline.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "losses/distance.h"

namespace trine {

struct Triplet {
  int64_t anchor, positive, negative;  // dataset indices
};

enum class OfflinePositive { Random, Hardest };
enum class OfflineNegative { Random, Hardest, SemiHard };

struct OfflineMiningOptions {
  OfflinePositive positive = OfflinePositive::Hardest;
  // SemiHard: the closest negative with d(a,p) < d(a,n) < d(a,p) + margin; failing that the
  // closest negative farther than the positive; failing that the closest negative.
  OfflineNegative negative = OfflineNegative::SemiHard;
  float margin = 0.2f;
  int64_t candidates = 0;  // candidate pool size for positives and negatives (0: every sample)
  int64_t anchors = 0;     // anchors per epoch (0: every sample that has a positive)
};

// Mines one triplet per anchor from `embeddings` [N, D] (CPU or device; computed without grad)
// under `distance`. Anchors whose class has no other sample (in the pool) are skipped.
std::vector<Triplet> mine_offline(const Tensor& embeddings, const std::vector<int32_t>& labels,
                                  const Distance& distance, const OfflineMiningOptions& options,
                                  Generator& gen);

// `count` uniformly random valid triplets (anchor, a different sample of its class, a sample of
// another class). Throws UsageError when no valid triplet exists.
std::vector<Triplet> random_triplets(const std::vector<int32_t>& labels, int64_t count,
                                     Generator& gen);

}  // namespace trine
