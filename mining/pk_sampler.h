// PKSampler: batches of P classes x K samples (Hermans et al. 2017), the batch layout every
// online miner expects. An epoch is a pure function of (seed, epoch), so a resumed run replays
// the same batches.
//
// Per epoch, each class's samples are shuffled and cut into groups of K; a class's last partial
// group is filled up with other samples of that class, and a class with fewer than K samples is
// repeated to K (flagged in EpochPlan::repeated_classes). Batches then take one group from each
// of P distinct classes, chosen at random with weights proportional to the groups each class has
// left, which keeps the classes in step so nearly every sample is seen exactly once per epoch;
// groups left when fewer than P classes remain are not used that epoch (EpochPlan::unused).
//
// uniform_epoch() samples as the reference workloads' PyTorch peers do: each batch takes P
// distinct classes uniformly at random and K samples of each (without replacement when the class
// has K, else with), for a given number of batches. Every class is equally likely, however many
// samples it has: on skewed data (LFW: 530 images of one person, 2 of most) the batches hold many
// more identities than epoch()'s, which follow the samples.
#pragma once

#include <cstdint>
#include <vector>

namespace trine {

struct EpochPlan {
  std::vector<std::vector<int64_t>> batches;  // each P*K dataset indices, K per class, grouped
  int64_t repeated_classes = 0;               // classes with fewer than K samples
  int64_t unused = 0;                         // samples in groups left over at the epoch's end
};

class PKSampler {
 public:
  // Throws UsageError when P < 2, K < 2, P exceeds the number of classes, no class has two
  // samples, or K exceeds the largest class.
  PKSampler(std::vector<int32_t> labels, int64_t P, int64_t K, uint64_t seed);
  EpochPlan epoch(int64_t epoch) const;
  // `steps` batches drawn uniformly over classes (see above); also a pure function of
  // (seed, epoch). unused is 0; repeated_classes as in epoch().
  EpochPlan uniform_epoch(int64_t epoch, int64_t steps) const;
  int64_t P() const { return P_; }
  int64_t K() const { return K_; }
  int64_t batch_size() const { return P_ * K_; }
  int64_t num_classes() const { return static_cast<int64_t>(by_class_.size()); }
  // Classes with fewer than K samples (repeated every epoch).
  int64_t small_classes() const;

 private:
  std::vector<std::vector<int64_t>> by_class_;  // sample indices per class (classes sorted)
  int64_t P_, K_;
  uint64_t seed_;
};

}  // namespace trine
