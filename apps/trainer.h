// Trainer: the training loop every training command runs. It takes P x K batches from an epoch
// plan (a pure function of the epoch, so a resumed run replays the same batches), prepares the
// next batch on a background thread, and does forward, loss, backward and update with:
//  - progress on stderr and a per-step log (loss, active fraction, mean d(a,p), d(a,n), lr);
//  - checkpoints every N steps and at each epoch end, written atomically, holding the model,
//    the optimizer, the position (epoch, batch, step), the RNG state and the step log;
//  - SIGINT/SIGTERM: the current step finishes, a checkpoint is written, and run() returns
//    Interrupted (the caller prints how to resume);
//  - a non-finite loss or gradient: the step is not applied; the first layer whose output or
//    gradient went non-finite is named; then the last good checkpoint is reloaded with the
//    learning rate lowered (recover) or training stops with the message (stop);
//  - a collapse watchdog that warns when every triplet is active and the batch's embeddings
//    have collapsed to one point (spread under 0.1% of their length, two checks in a row).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "layers/sequential.h"
#include "losses/loss.h"
#include "mining/curriculum.h"

namespace trine::cli {

struct TrainerOptions {
  std::string run_dir;  // checkpoint.trine and train_log.csv go here
  int64_t epochs = 1;
  int64_t max_steps = 0;          // stop after this many steps in total (0: all epochs)
  int64_t log_every = 50;         // log lines (when stderr is not a terminal) and watchdog checks
  int64_t checkpoint_every = 0;   // steps between checkpoints (0: epoch ends only)
  bool recover_nonfinite = true;  // false: stop at the first non-finite loss or gradient
  double nonfinite_lr_factor = 0.5;
  int max_recoveries = 3;
  Device device = Device::cpu();
  // Fault injection, a testing aid (--inject-nonfinite): at step inject_step (once per process),
  // "weight" fills the first parameter of the model with NaN before the step; "input" scales
  // the input batch by 1e38, so activations overflow in the forward pass and the loss goes
  // non-finite; "grad" fills the last parameter's gradient with +Inf after the backward pass;
  // "update" fills the first parameter with NaN after the update (before the step's checkpoint).
  // -1: off.
  int64_t inject_step = -1;
  std::string inject_kind = "weight";
};

class Trainer;

// trainer.restore(ck), with a DataError naming run_dir/checkpoint.trine when the checkpoint does
// not fit (another model, a model file instead of a training checkpoint, ...); then prints
// "resuming RUN_DIR at step N" on stderr.
void restore_or_explain(Trainer& trainer, const Checkpoint& ck, const std::string& run_dir);

// The generator of training step `step`'s random transforms (shifts, crops, flips): a stream of
// its own per step, drawn from `seed`, so a resumed run draws what an uninterrupted one would.
Generator step_generator(int64_t seed, int64_t step);

// Parses --inject-nonfinite's "weight:STEP", "input:STEP", "grad:STEP" or "update:STEP" (a bare
// STEP means weight) into
// options.inject_kind and inject_step; throws UsageError otherwise.
void parse_inject_nonfinite(const std::string& text, TrainerOptions& options);

// One step of the log.
struct StepRecord {
  int64_t step = 0, epoch = 0;
  double loss = 0, active_fraction = 0, mean_pos = 0, mean_neg = 0, lr = 0, images_per_s = 0;
};

// A prepared batch: inputs on the device and labels.
struct Batch {
  Tensor x;
  std::vector<int32_t> labels;
};

using EpochPlanFn = std::function<std::vector<std::vector<int64_t>>(int64_t epoch)>;
// Builds the inputs for dataset indices (runs on the loader thread; must be deterministic).
using LoadFn = std::function<Batch(const std::vector<int64_t>& indices, int64_t step)>;

class Trainer {
 public:
  enum class Outcome { Finished, Interrupted };

  // `meta` is stored in every checkpoint (model name, input size, normalization, flags...).
  Trainer(Sequential& model, MetricLoss& loss, Optimizer& optimizer,
          std::shared_ptr<LrSchedule> schedule, const Curriculum* curriculum,
          TrainerOptions options, std::map<std::string, std::string> meta);

  // Restores model, optimizer, position, RNG and log from a checkpoint written by this class.
  void restore(const Checkpoint& ck);
  Outcome run(const EpochPlanFn& plan, const LoadFn& load);

  const std::vector<StepRecord>& log() const { return log_; }
  int64_t step() const { return step_; }
  // Images per second of training this session: forward, loss, backward and update, plus any
  // time spent waiting for the loader thread (checkpoint writes excluded).
  double train_images_per_s() const;
  // Shares of that training time spent waiting: for the loader thread's next batch, and (on a
  // GPU) for the device to finish queued work (Backend::device_wait_seconds). What is left is
  // the host's own work, launching the step. 0 before any step.
  double loader_wait_share() const;
  double device_wait_share() const;
  // The waits for the device (Backend::device_waits) per training step, in the same time: 2 (the
  // checks before the update, the end of the step). 0 before any step and on the CPU.
  double device_waits_per_step() const;
  std::string checkpoint_path() const;
  // Writes train_log.csv (atomically) from the step log.
  void write_log_csv() const;

 private:
  void save_checkpoint();
  // False, naming the first parameter with a NaN or Inf in *where, if any.
  bool parameters_finite(std::string* where);
  // The parameters (with the loss's own) whose values (grads false) or gradients are defined,
  // and their names.
  std::vector<Tensor> watched(bool grads, std::vector<std::string>* names);
  // False, naming in *where the first parameter whose largest magnitude in `max_abs` (one per
  // name) is a NaN or Inf.
  bool all_finite(const float* max_abs, const std::vector<std::string>& names, std::string* where);
  // What a step checks before its update, read from the device in one transfer (one wait): the
  // loss value, the loss's statistics, and whether the parameters and gradients are finite
  // (bad_parameter and bad_gradient name the first that is not; empty when all are).
  struct StepCheck {
    float loss = 0;
    std::string bad_parameter, bad_gradient;
  };
  StepCheck check_step(const Tensor& loss);
  // "the output of layer 3 (Linear(...))" for the first layer whose output on x has a NaN or Inf
  // ("the input batch itself" when x has), or "" when the whole forward pass is finite.
  std::string first_nonfinite_layer(const Tensor& x);
  void recover(const std::string& what);
  // --inject-nonfinite: true once, at the injection step, when `kind` is the one asked for.
  bool inject_now(const char* kind);
  // Fills the model's first parameter with NaN and says so (`when`: "" or " after the update").
  void poison_first_parameter(const char* when);

  Sequential& model_;
  MetricLoss& loss_;
  Optimizer& opt_;
  std::shared_ptr<LrSchedule> schedule_;
  const Curriculum* curriculum_;
  TrainerOptions o_;
  std::map<std::string, std::string> meta_;
  std::vector<StepRecord> log_;
  int64_t epoch_ = 0, batch_ = 0, step_ = 0;
  double lr_scale_ = 1.0;
  int recoveries_ = 0;
  double train_seconds_ = 0, loader_wait_seconds_ = 0, device_wait_seconds_ = 0;
  int64_t train_images_ = 0, device_waits_ = 0, timed_steps_ = 0;
  int collapsed_checks_ = 0;  // consecutive watchdog checks that saw a collapse
  int64_t last_collapse_warning_ = -1;
  bool injected_ = false;
};

}  // namespace trine::cli
