// Learning-rate schedules.
#include "engine/lr_schedule.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "engine/error.h"

namespace trine {

std::string ConstantLr::describe() const {
  std::ostringstream os;
  os << "constant " << base_;
  return os.str();
}

StepLr::StepLr(float base, int64_t step_size, float gamma)
    : base_(base), step_size_(step_size), gamma_(gamma) {
  TRINE_CHECK_AS(UsageError, step_size > 0 && gamma > 0.f,
                 "step schedule: size must be > 0 and gamma > 0, got ", step_size, ", ", gamma);
}
float StepLr::lr_at(int64_t step) const {
  return base_ * std::pow(gamma_, static_cast<float>(step / step_size_));
}
std::string StepLr::describe() const {
  std::ostringstream os;
  os << "step " << base_ << " x" << gamma_ << " every " << step_size_ << " steps";
  return os.str();
}

CosineLr::CosineLr(float base, int64_t total_steps, float min_lr)
    : base_(base), total_(total_steps), min_(min_lr) {
  TRINE_CHECK_AS(UsageError, total_steps > 0, "cosine schedule: total steps must be > 0, got ",
                 total_steps);
}
float CosineLr::lr_at(int64_t step) const {
  if (step >= total_) return min_;
  const double t = static_cast<double>(step) / static_cast<double>(total_);
  return static_cast<float>(min_ + (base_ - min_) * 0.5 * (1.0 + std::cos(M_PI * t)));
}
std::string CosineLr::describe() const {
  std::ostringstream os;
  os << "cosine " << base_ << " -> " << min_ << " over " << total_ << " steps";
  return os.str();
}

WarmupLr::WarmupLr(std::shared_ptr<LrSchedule> inner, int64_t warmup_steps)
    : inner_(std::move(inner)), warmup_(warmup_steps) {
  TRINE_CHECK_AS(UsageError, warmup_steps >= 0, "warm-up steps must be >= 0, got ", warmup_steps);
}
float WarmupLr::lr_at(int64_t step) const {
  if (step < warmup_)
    return inner_->lr_at(0) * static_cast<float>(step + 1) / static_cast<float>(warmup_);
  return inner_->lr_at(step - warmup_);
}
std::string WarmupLr::describe() const {
  return inner_->describe() + " after " + std::to_string(warmup_) + " linear warm-up steps";
}

namespace {
// Whole-string numbers: std::stoll/stof alone would read "5x" as 5 and "1.5" as 1.
int64_t parse_int(const std::string& s) {
  size_t used = 0;
  const int64_t v = std::stoll(s, &used);
  if (used != s.size()) throw std::invalid_argument(s);
  return v;
}
float parse_float(const std::string& s) {
  size_t used = 0;
  const float v = std::stof(s, &used);
  if (used != s.size()) throw std::invalid_argument(s);
  return v;
}
}  // namespace

std::shared_ptr<LrSchedule> parse_lr_schedule(const std::string& text, float base,
                                              int64_t total_steps) {
  std::string main = text;
  int64_t warmup = 0;
  if (size_t plus = text.find("+warmup:"); plus != std::string::npos) {
    main = text.substr(0, plus);
    try {
      warmup = parse_int(text.substr(plus + 8));
    } catch (...) {
      warmup = -1;
    }
    TRINE_CHECK_AS(UsageError, warmup >= 0, "bad warm-up in learning-rate schedule '", text,
                   "': expected +warmup:STEPS with STEPS >= 0");
  }
  std::vector<std::string> parts;
  std::stringstream ss(main);
  for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
  std::shared_ptr<LrSchedule> s;
  try {
    if (parts.size() == 1 && parts[0] == "constant") {
      s = std::make_shared<ConstantLr>(base);
    } else if (parts.size() == 3 && parts[0] == "step") {
      s = std::make_shared<StepLr>(base, parse_int(parts[1]), parse_float(parts[2]));
    } else if ((parts.size() == 1 || parts.size() == 2) && parts[0] == "cosine") {
      s = std::make_shared<CosineLr>(base, std::max<int64_t>(1, total_steps - warmup),
                                     parts.size() == 2 ? parse_float(parts[1]) : 0.f);
    }
  } catch (const UsageError&) {
    throw;
  } catch (...) {
    s = nullptr;
  }
  TRINE_CHECK_AS(UsageError, s, "unknown learning-rate schedule '", text,
                 "': expected constant, step:SIZE:GAMMA or cosine[:MIN], optionally followed by "
                 "+warmup:STEPS");
  return warmup > 0 ? std::make_shared<WarmupLr>(s, warmup) : s;
}

}  // namespace trine
