// Curriculum: a schedule of miners over training, driven by step or by epoch. The default
// easy-to-hard curriculum moves through the hardness scale of m = d(a,n) - d(a,p): `easy`
// (m >= 0) -> `semi-hard:facenet` -> `batch-hard`, a third of training each; the anti-curriculum
// runs the same stages in reverse (Wu et al., "When Do Curricula Work?", ICLR 2021, compare
// both orders against a random ordering).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mining/miner.h"

namespace trine {

class Curriculum {
 public:
  enum class Unit { Step, Epoch };
  struct Stage {
    std::shared_ptr<Miner> miner;
    double weight;  // relative length
  };

  // `total` is the run's length in `unit`s.
  Curriculum(std::vector<Stage> stages, Unit unit, int64_t total);
  // Parses "curriculum" (easy -> semi-hard -> hard), "anti-curriculum", or a list
  // "MINER[*WEIGHT],MINER[*WEIGHT],..." of parse_miner() specs, e.g.
  // "easy*1,semi-hard:facenet*1,batch-hard*2". Throws UsageError.
  static Curriculum parse(const std::string& spec, Unit unit, int64_t total);

  // The stage for a position in training (step and epoch both count from 0).
  size_t stage_at(int64_t step, int64_t epoch) const;
  const Miner& miner_at(int64_t step, int64_t epoch) const;
  std::shared_ptr<Miner> miner_ptr_at(int64_t step, int64_t epoch) const;
  size_t num_stages() const { return stages_.size(); }
  // "easy -> semi-hard:facenet -> batch-hard by step over 1404".
  std::string describe() const;

 private:
  std::vector<Stage> stages_;
  std::vector<double> ends_;  // cumulative end of each stage, as a fraction of training
  Unit unit_;
  int64_t total_;
};

}  // namespace trine
