// --resume, the training-loop flags, stored flags and the interrupted-run message.
#include "apps/training_run.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "engine/cpu/blas.h"
#include "engine/error.h"

namespace trine::cli {

namespace fs = std::filesystem;

std::optional<ResumePoint> read_resume(Args& args, const std::string& model,
                                       const std::string& other_command) {
  const auto dir = args.opt_str("resume", "continue the run in this folder from its checkpoint");
  if (!dir) return std::nullopt;
  const std::string path = (fs::path(*dir) / "checkpoint.trine").string();
  ResumePoint r{*dir, load_checkpoint(path)};
  auto held = r.checkpoint.meta.find("model");
  TRINE_CHECK_AS(DataError, held == r.checkpoint.meta.end() || held->second == model, path,
                 ": holds a ", held->second, " model, not ", model, "; resume it with trine ",
                 other_command, " --resume ", *dir);
  auto flags = r.checkpoint.meta.find("flags");
  TRINE_CHECK_AS(DataError, flags != r.checkpoint.meta.end(), path, ": no stored flags to resume");
  args.inherit(flags_from_meta(flags->second));
  return r;
}

TrainerOptions read_loop_flags(Args& args) {
  TrainerOptions o;
  o.log_every = args.integer("log-every", 50, "steps between log lines", 1, INT64_MAX);
  o.checkpoint_every = args.integer(
      "checkpoint-every", 0, "steps between checkpoints (0: at each epoch end)", 0, INT64_MAX);
  o.recover_nonfinite =
      args.choice("on-nonfinite", "recover", {"recover", "stop"},
                  "non-finite loss or gradient: reload the last good checkpoint with a lower "
                  "learning rate, or stop") == "recover";
  const auto inject = args.opt_str(
      "inject-nonfinite",
      "TESTING AID, not for real runs: at step STEP, once, fill the first layer's weights with "
      "NaN before the step (weight:STEP) or after its update (update:STEP), scale the input by "
      "1e38 (input:STEP) or fill the last layer's gradient with Inf (grad:STEP), to exercise "
      "--on-nonfinite");
  if (inject) parse_inject_nonfinite(*inject, o);
  return o;
}

std::string flags_to_meta(const std::vector<std::string>& tokens) {
  std::string out;
  for (const std::string& t : tokens) out += (out.empty() ? "" : "\n") + t;
  return out;
}

std::vector<std::string> flags_from_meta(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string t; std::getline(ss, t);)
    if (!t.empty()) out.push_back(t);
  return out;
}

Json flags_json(const std::vector<std::string>& tokens) {
  Json j;
  for (const std::string& t : tokens) {  // "--name=value" or "--name"
    const size_t eq = t.find('=');
    j.set(t.substr(2, eq == std::string::npos ? std::string::npos : eq - 2),
          eq == std::string::npos ? std::string("true") : t.substr(eq + 1));
  }
  return j;
}

void add_run_summary(Json& metrics, double train_img_per_s, double embed_img_per_s,
                     double peak_rss_mb, const std::string& device, const std::string& setup,
                     const std::vector<std::string>& flags) {
  metrics.set("train_img_per_s", train_img_per_s)
      .set("embed_img_per_s", embed_img_per_s)
      .set("peak_rss_mb", peak_rss_mb)
      .set("blas", blas::summary())
      .set("device", device)
      .set("setup", setup)
      .set("flags", flags_json(flags));
}

void print_wait_shares(double loader_share, double device_share, double device_waits_per_step,
                       const Device& device) {
  std::printf("train_loader_wait_share %.3f\n", loader_share);
  if (device.is_cpu()) return;
  std::printf("train_device_wait_share %.3f\n", device_share);
  std::printf("train_device_waits_per_step %.2f\n", device_waits_per_step);
}

std::string scratch_run_dir(const std::string& tag) {
  return (fs::temp_directory_path() / ("trine-" + tag + "-" + std::to_string(::getpid()))).string();
}

int report_interrupted(const Trainer& trainer, const std::string& run_dir,
                       const std::string& command) {
  std::cerr << "interrupted at step " << trainer.step() << "; the checkpoint is in " << run_dir
            << "\nresume with: trine " << command << " --resume " << run_dir << "\n";
  return 130;
}

}  // namespace trine::cli
