// What the training commands (`trine mnist`, `trine faces`) share around the Trainer: --resume,
// the flags of the training loop, the flags as stored in checkpoints and metrics.json, and the
// message of an interrupted run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/run_support.h"
#include "apps/trainer.h"
#include "engine/checkpoint.h"

namespace trine::cli {

// The run a --resume continues: its folder and its last checkpoint.
struct ResumePoint {
  std::string run_dir;
  Checkpoint checkpoint;
};

// Declares --resume. When it is given: loads RUN_DIR/checkpoint.trine, checks that it holds a
// `model` model (else a DataError that says to resume it with `trine <other_command>`), and adds
// the run's stored flags to `args` (flags on the command line win, e.g. a larger --epochs).
// Call it before declaring any other flag, so that they see the stored values.
std::optional<ResumePoint> read_resume(Args& args, const std::string& model,
                                       const std::string& other_command);

// Declares and reads the flags of the training loop into TrainerOptions: --log-every,
// --checkpoint-every, --on-nonfinite and --inject-nonfinite (checked at once, before any data is
// read). The caller fills in device (device_flags), run_dir, epochs and max_steps.
TrainerOptions read_loop_flags(Args& args);

// The given flags (Args::given_tokens()) as one checkpoint meta entry, and back.
std::string flags_to_meta(const std::vector<std::string>& tokens);
std::vector<std::string> flags_from_meta(const std::string& text);
// The given flags as a JSON object, {"epochs": "5", "soft-margin": "true", ...}.
Json flags_json(const std::vector<std::string>& tokens);

// The figures and settings every training run's metrics.json ends with: throughputs, peak
// memory, BLAS, device, the loss/miner/optimizer setup line and the given flags.
void add_run_summary(Json& metrics, double train_img_per_s, double embed_img_per_s,
                     double peak_rss_mb, const std::string& device, const std::string& setup,
                     const std::vector<std::string>& flags);

// Prints `train_loader_wait_share X` and, on a GPU, `train_device_wait_share Y` and
// `train_device_waits_per_step Z`: the shares of the training time spent waiting for batches and
// for the device, and how often a step waits for it (Trainer::loader_wait_share,
// device_wait_share, device_waits_per_step).
void print_wait_shares(double loader_share, double device_share, double device_waits_per_step,
                       const Device& device);

// A run folder for runs that keep none (benchmarks): <temp>/trine-<tag>-<pid>; the caller
// removes it.
std::string scratch_run_dir(const std::string& tag);

// Prints where the interrupted run's checkpoint is and the command that resumes it; returns the
// exit status of an interrupted run, 130.
int report_interrupted(const Trainer& trainer, const std::string& run_dir,
                       const std::string& command);

}  // namespace trine::cli
