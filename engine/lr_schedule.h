// Learning-rate schedules: pure functions of the step, so resuming from a checkpoint needs only
// the step count. Apply with optimizer.set_lr(schedule.lr_at(step)) before each step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace trine {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual float lr_at(int64_t step) const = 0;  // step counts from 0
  virtual std::string describe() const = 0;
};

// The base rate throughout.
class ConstantLr : public LrSchedule {
 public:
  explicit ConstantLr(float base) : base_(base) {}
  float lr_at(int64_t) const override { return base_; }
  std::string describe() const override;

 private:
  float base_;
};

// base * gamma^(step / step_size) (torch.optim.lr_scheduler.StepLR).
class StepLr : public LrSchedule {
 public:
  StepLr(float base, int64_t step_size, float gamma);
  float lr_at(int64_t step) const override;
  std::string describe() const override;

 private:
  float base_;
  int64_t step_size_;
  float gamma_;
};

// Cosine annealing from base to min_lr over total_steps, then min_lr.
class CosineLr : public LrSchedule {
 public:
  CosineLr(float base, int64_t total_steps, float min_lr = 0.f);
  float lr_at(int64_t step) const override;
  std::string describe() const override;

 private:
  float base_;
  int64_t total_;
  float min_;
};

// Linear warm-up from 0 over the first warmup_steps (rate (step+1)/warmup of the inner
// schedule's), then the inner schedule shifted by the warm-up.
class WarmupLr : public LrSchedule {
 public:
  WarmupLr(std::shared_ptr<LrSchedule> inner, int64_t warmup_steps);
  float lr_at(int64_t step) const override;
  std::string describe() const override;

 private:
  std::shared_ptr<LrSchedule> inner_;
  int64_t warmup_;
};

// Parses "constant", "step:SIZE:GAMMA", "cosine[:MIN]", each optionally followed by
// "+warmup:STEPS"; total_steps is the run's length (for cosine). Throws UsageError on bad text.
std::shared_ptr<LrSchedule> parse_lr_schedule(const std::string& text, float base,
                                              int64_t total_steps);

}  // namespace trine
