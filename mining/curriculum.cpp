// Miner schedules.
#include "mining/curriculum.h"

#include <cmath>
#include <sstream>

#include "engine/error.h"

namespace trine {

Curriculum::Curriculum(std::vector<Stage> stages, Unit unit, int64_t total)
    : stages_(std::move(stages)), unit_(unit), total_(total) {
  TRINE_CHECK_AS(UsageError, !stages_.empty(), "curriculum: no stages");
  TRINE_CHECK_AS(UsageError, total > 0, "curriculum: training length must be positive, got ",
                 total);
  double sum = 0;
  for (const Stage& s : stages_) {
    TRINE_CHECK_AS(UsageError, s.miner && std::isfinite(s.weight) && s.weight > 0,
                   "curriculum: every stage needs a miner and a positive weight");
    sum += s.weight;
  }
  double acc = 0;
  for (const Stage& s : stages_) ends_.push_back((acc += s.weight) / sum);
  ends_.back() = 1.0;
}

Curriculum Curriculum::parse(const std::string& spec, Unit unit, int64_t total) {
  std::string list = spec;
  if (spec == "curriculum") list = "easy,semi-hard:facenet,batch-hard";
  if (spec == "anti-curriculum") list = "batch-hard,semi-hard:facenet,easy";
  std::vector<Stage> stages;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    double weight = 1;
    if (size_t star = item.find('*'); star != std::string::npos) {
      try {
        size_t used = 0;
        weight = std::stod(item.substr(star + 1), &used);
        if (used != item.size() - star - 1) weight = -1;
      } catch (...) {
        weight = -1;
      }
      TRINE_CHECK_AS(UsageError, weight > 0, "curriculum '", spec, "': bad weight in '", item, "'");
      item = item.substr(0, star);
    }
    stages.push_back({parse_miner(item), weight});
  }
  return Curriculum(std::move(stages), unit, total);
}

size_t Curriculum::stage_at(int64_t step, int64_t epoch) const {
  const int64_t at = unit_ == Unit::Step ? step : epoch;
  const double progress = static_cast<double>(at) / static_cast<double>(total_);
  for (size_t i = 0; i < ends_.size(); ++i)
    if (progress < ends_[i]) return i;
  return ends_.size() - 1;
}

const Miner& Curriculum::miner_at(int64_t step, int64_t epoch) const {
  return *stages_[stage_at(step, epoch)].miner;
}

std::shared_ptr<Miner> Curriculum::miner_ptr_at(int64_t step, int64_t epoch) const {
  return stages_[stage_at(step, epoch)].miner;
}

std::string Curriculum::describe() const {
  std::ostringstream os;
  for (size_t i = 0; i < stages_.size(); ++i) {
    os << (i ? " -> " : "") << stages_[i].miner->name();
    const double start = i ? ends_[i - 1] : 0.0;
    os << " (" << static_cast<int>(std::lround(100 * (ends_[i] - start))) << "%)";
  }
  os << " by " << (unit_ == Unit::Step ? "step" : "epoch") << " over " << total_;
  return os.str();
}

}  // namespace trine
