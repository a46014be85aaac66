// The training loop with checkpoints, resume, signal handling and numerical guards.
#include "apps/trainer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "apps/run_support.h"
#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "losses/triplet_loss.h"

namespace trine::cli {

namespace {

std::atomic<int> g_signal{0};
// The first SIGINT/SIGTERM asks the loop to stop after the current step; a second one stops the
// process at once (the last checkpoint on disk stays intact: checkpoints are written atomically).
extern "C" void on_signal(int signo) {
  if (g_signal.exchange(signo) != 0) {
    static const char msg[] = "\nsecond signal: stopping now, without a checkpoint of this step\n";
    [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(128 + signo);
  }
}

// Installs the SIGINT/SIGTERM handlers for its lifetime.
class SignalGuard {
 public:
  SignalGuard() {
    g_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// Thrown inside the loop to restart from the reloaded checkpoint.
struct Restart {};

std::string fmt(double v, int digits = 4) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

const std::vector<std::pair<const char*, double StepRecord::*>> kLogFields = {
    {"loss", &StepRecord::loss},
    {"active_fraction", &StepRecord::active_fraction},
    {"mean_pos", &StepRecord::mean_pos},
    {"mean_neg", &StepRecord::mean_neg},
    {"lr", &StepRecord::lr},
    {"images_per_s", &StepRecord::images_per_s}};

}  // namespace

Trainer::Trainer(Sequential& model, MetricLoss& loss, Optimizer& optimizer,
                 std::shared_ptr<LrSchedule> schedule, const Curriculum* curriculum,
                 TrainerOptions options, std::map<std::string, std::string> meta)
    : model_(model),
      loss_(loss),
      opt_(optimizer),
      schedule_(std::move(schedule)),
      curriculum_(curriculum),
      o_(std::move(options)),
      meta_(std::move(meta)) {
  TRINE_CHECK_AS(UsageError, !curriculum_ || dynamic_cast<TripletMarginLoss*>(&loss_),
                 "a curriculum needs the triplet loss");
}

void parse_inject_nonfinite(const std::string& text, TrainerOptions& o) {
  const size_t colon = text.find(':');
  const std::string kind = colon == std::string::npos ? "weight" : text.substr(0, colon);
  const std::string step = colon == std::string::npos ? text : text.substr(colon + 1);
  char* end = nullptr;
  const long long v = std::strtoll(step.c_str(), &end, 10);
  TRINE_CHECK_AS(UsageError,
                 (kind == "weight" || kind == "input" || kind == "grad" || kind == "update") &&
                     !step.empty() && *end == '\0' && v >= 0,
                 "--inject-nonfinite expects weight:STEP, input:STEP, grad:STEP or update:STEP "
                 "(STEP >= 0), got '",
                 text, "'");
  o.inject_kind = kind;
  o.inject_step = v;
}

void restore_or_explain(Trainer& trainer, const Checkpoint& ck, const std::string& run_dir) {
  try {
    trainer.restore(ck);
  } catch (const Error& e) {
    std::string msg = (std::filesystem::path(run_dir) / "checkpoint.trine").string();
    msg.append(": cannot resume from it: ").append(e.what());
    throw DataError(msg);
  }
  std::cerr << "resuming " << run_dir << " at step " << trainer.step() << "\n";
}

Generator step_generator(int64_t seed, int64_t step) {
  const uint64_t stream = static_cast<uint64_t>(seed) ^ 0x9E3779B97F4A7C15ull;
  Generator g(stream);
  g.set_state(stream, static_cast<uint64_t>(step) << 32);
  return g;
}

std::string Trainer::checkpoint_path() const {
  return (std::filesystem::path(o_.run_dir) / "checkpoint.trine").string();
}

void Trainer::save_checkpoint() {
  // Only a good state replaces the last good checkpoint: an update that overflowed a weight is
  // caught by the parameter check of the next step, which then reloads the one on disk.
  if (std::string where; !parameters_finite(&where)) {
    std::cerr << "\nwarning: step " << step_ << ": not writing a checkpoint (non-finite value in "
              << where << "); " << checkpoint_path() << " keeps the last good state\n";
    return;
  }
  Checkpoint ck;
  ck.meta = meta_;
  ck.meta["trainer.epoch"] = std::to_string(epoch_);
  ck.meta["trainer.batch"] = std::to_string(batch_);
  ck.meta["trainer.step"] = std::to_string(step_);
  char scale[32];
  std::snprintf(scale, sizeof scale, "%.17g", lr_scale_);  // exact round trip
  ck.meta["trainer.lr_scale"] = scale;
  ck.meta["trainer.recoveries"] = std::to_string(recoveries_);
  ck.meta["rng.seed"] = std::to_string(default_generator().seed());
  ck.meta["rng.offset"] = std::to_string(default_generator().offset());
  for (auto& [name, t] : model_.state_dict()) ck.tensors["model." + name] = t;
  for (auto& [name, t] : opt_.state_dict()) ck.tensors["optim." + name] = t;
  const auto loss_params = loss_.parameters();
  for (size_t i = 0; i < loss_params.size(); ++i)
    ck.tensors["loss." + std::to_string(i)] = loss_params[i];
  // The step log as text, every double to 17 significant digits (exact round trip), so a
  // resumed run's log is bit-identical to an uninterrupted one's.
  std::string log_text;
  char buf[64];
  for (const StepRecord& r : log_) {
    log_text += std::to_string(r.epoch);
    for (const auto& [name, field] : kLogFields) {
      std::snprintf(buf, sizeof buf, " %.17g", r.*field);
      log_text += buf;
    }
    log_text += '\n';
  }
  ck.meta["trainer.log"] = log_text;
  trine::save_checkpoint(checkpoint_path(), ck);
}

void Trainer::restore(const Checkpoint& ck) {
  auto meta = [&](const std::string& key) {
    auto it = ck.meta.find(key);
    TRINE_CHECK_AS(DataError, it != ck.meta.end(), "checkpoint: missing '", key,
                   "'; is this a training checkpoint written by trine?");
    return it->second;
  };
  // A model file (model.trine) or another program's checkpoint: say so before anything else.
  for (const char* key : {"trainer.epoch", "trainer.batch", "trainer.step", "trainer.lr_scale",
                          "trainer.recoveries", "trainer.log", "rng.seed", "rng.offset"})
    meta(key);
  std::map<std::string, Tensor> model_state, optim_state;
  for (const auto& [name, t] : ck.tensors) {
    if (name.rfind("model.", 0) == 0) model_state[name.substr(6)] = t;
    if (name.rfind("optim.", 0) == 0) optim_state[name.substr(6)] = t;
  }
  model_.load_state_dict(model_state);
  opt_.load_state_dict(optim_state);
  const auto loss_params = loss_.parameters();
  for (size_t i = 0; i < loss_params.size(); ++i) {
    auto it = ck.tensors.find("loss." + std::to_string(i));
    TRINE_CHECK_AS(DataError, it != ck.tensors.end(), "checkpoint: missing loss parameter ", i);
    Tensor(loss_params[i]).copy_(it->second);
  }
  // A count stored by save_checkpoint: a non-negative integer.
  auto count = [&](const std::string& key) -> uint64_t {
    const std::string v = meta(key);
    char* end = nullptr;
    errno = 0;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
    TRINE_CHECK_AS(DataError, !v.empty() && v[0] != '-' && *end == '\0' && errno == 0,
                   "checkpoint: '", key, "' is not a count: '", v, "'");
    return x;
  };
  epoch_ = static_cast<int64_t>(count("trainer.epoch"));
  batch_ = static_cast<int64_t>(count("trainer.batch"));
  step_ = static_cast<int64_t>(count("trainer.step"));
  recoveries_ = static_cast<int>(count("trainer.recoveries"));
  const std::string scale = meta("trainer.lr_scale");
  lr_scale_ = std::strtod(scale.c_str(), nullptr);
  TRINE_CHECK_AS(DataError, std::isfinite(lr_scale_) && lr_scale_ > 0,
                 "checkpoint: 'trainer.lr_scale' is not a positive number: '", scale, "'");
  default_generator().set_state(count("rng.seed"), count("rng.offset"));
  log_.clear();
  std::istringstream lines(meta("trainer.log"));
  for (std::string line; std::getline(lines, line);) {
    // strtod, not operator>>: it also reads back "nan" and "inf".
    const char* p = line.c_str();
    char* end = nullptr;
    StepRecord r;
    r.step = static_cast<int64_t>(log_.size());
    r.epoch = std::strtoll(p, &end, 10);
    bool ok = end != p;
    for (const auto& [name, field] : kLogFields) {
      p = end;
      r.*field = std::strtod(p, &end);
      ok = ok && end != p;
    }
    TRINE_CHECK_AS(DataError, ok, "checkpoint: step log line ", log_.size() + 1, " is malformed: '",
                   line, "'");
    log_.push_back(r);
  }
  TRINE_CHECK_AS(DataError, static_cast<int64_t>(log_.size()) == step_, "checkpoint: the log has ",
                 log_.size(), " steps but the position is step ", step_);
}

void Trainer::write_log_csv() const {
  std::ostringstream os;
  os << "step,epoch,loss,active_fraction,mean_pos,mean_neg,lr,images_per_s\n";
  char buf[256];
  for (const StepRecord& r : log_) {
    std::snprintf(buf, sizeof buf, "%lld,%lld,%.9g,%.6g,%.9g,%.9g,%.6g,%.1f\n",
                  static_cast<long long>(r.step), static_cast<long long>(r.epoch), r.loss,
                  r.active_fraction, r.mean_pos, r.mean_neg, r.lr, r.images_per_s);
    os << buf;
  }
  write_file_atomic((std::filesystem::path(o_.run_dir) / "train_log.csv").string(), os.str());
}

double Trainer::train_images_per_s() const {
  return train_seconds_ > 0 ? static_cast<double>(train_images_) / train_seconds_ : 0.0;
}

double Trainer::loader_wait_share() const {
  return train_seconds_ > 0 ? loader_wait_seconds_ / train_seconds_ : 0.0;
}

double Trainer::device_wait_share() const {
  return train_seconds_ > 0 ? device_wait_seconds_ / train_seconds_ : 0.0;
}

double Trainer::device_waits_per_step() const {
  return timed_steps_ > 0 ? static_cast<double>(device_waits_) / timed_steps_ : 0.0;
}

std::vector<Tensor> Trainer::watched(bool grads, std::vector<std::string>* names) {
  std::vector<std::pair<std::string, Tensor>> params = model_.named_parameters();
  const auto loss_params = loss_.parameters();
  for (size_t i = 0; i < loss_params.size(); ++i)
    params.emplace_back("loss parameter " + std::to_string(i), loss_params[i]);
  std::vector<Tensor> tensors;
  for (auto& [name, p] : params) {
    const Tensor t = grads ? p.grad() : p.detach();
    if (!t.defined()) continue;
    tensors.push_back(t);
    names->push_back(name);
  }
  return tensors;
}

bool Trainer::all_finite(const float* max_abs, const std::vector<std::string>& names,
                         std::string* where) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (std::isfinite(max_abs[i])) continue;
    // "3.weight" -> layer 3 of the Sequential.
    std::string layer = names[i];
    const size_t dot = names[i].find('.');
    if (dot != std::string::npos) {
      try {
        const size_t index = std::stoul(names[i].substr(0, dot));
        if (index < model_.size())
          layer += " of layer " + std::to_string(index) + " (" + model_[index].describe() + ")";
      } catch (...) {
      }
    }
    *where = "parameter " + layer;
    return false;
  }
  return true;
}

bool Trainer::parameters_finite(std::string* where) {
  NoGradGuard ng;
  std::vector<std::string> names;
  const std::vector<Tensor> tensors = watched(false, &names);
  if (tensors.empty()) return true;
  // One launch and one transfer for all parameters on a GPU.
  return all_finite(max_abs_each(tensors).to_vector().data(), names, where);
}

Trainer::StepCheck Trainer::check_step(const Tensor& loss) {
  NoGradGuard ng;
  std::vector<std::string> param_names, grad_names;
  std::vector<Tensor> tensors = watched(false, &param_names);
  for (Tensor& g : watched(true, &grad_names)) tensors.push_back(g);
  // [loss, the loss's statistics (if not read yet), max |.| of each parameter, of each gradient]
  std::vector<Tensor> parts{loss.detach().reshape({1})};
  const Tensor stats = loss_.pending_stats();
  if (stats.defined()) parts.push_back(stats.reshape({-1}));
  if (!tensors.empty()) parts.push_back(max_abs_each(tensors));
  const std::vector<float> v = concat(parts, 0).to_vector();
  const float* at = v.data() + 1;
  if (stats.defined()) {
    loss_.resolve_stats(at);
    at += MetricLoss::kStatsSize;
  }
  StepCheck c;
  c.loss = v[0];
  all_finite(at, param_names, &c.bad_parameter);
  all_finite(at + param_names.size(), grad_names, &c.bad_gradient);
  return c;
}

bool Trainer::inject_now(const char* kind) {
  if (injected_ || step_ != o_.inject_step || o_.inject_kind != kind) return false;
  injected_ = true;
  return true;
}

void Trainer::poison_first_parameter(const char* when) {
  NoGradGuard ng;
  auto [name, p] = model_.named_parameters().front();
  Tensor(p).fill_(NAN);
  std::cerr << "\n--inject-nonfinite (a testing aid): step " << step_ << ": filled " << name
            << " with NaN" << when << "\n";
}

std::string Trainer::first_nonfinite_layer(const Tensor& x) {
  NoGradGuard ng;
  if (!std::isfinite(max_abs_each({x}).item())) return "the input batch itself";
  Tensor y = x;
  for (size_t i = 0; i < model_.size(); ++i) {
    y = model_[i].forward(y);
    if (!std::isfinite(max_abs_each({y}).item()))
      return "the output of layer " + std::to_string(i) + " (" + model_[i].describe() + ")";
  }
  return "";
}

void Trainer::recover(const std::string& what) {
  const std::string msg =
      what + " at step " + std::to_string(step_) + " (epoch " + std::to_string(epoch_ + 1) + ")";
  if (!o_.recover_nonfinite)
    throw Error(msg +
                "; stopping (with --on-nonfinite recover trine reloads the last good "
                "checkpoint and lowers the learning rate)");
  if (recoveries_ >= o_.max_recoveries)
    throw Error(msg + "; gave up after " + std::to_string(recoveries_) +
                " recoveries with lowered learning rates");
  std::cerr << "\nwarning: " << msg << "; reloading the last good checkpoint (" << checkpoint_path()
            << ") and lowering the learning rate by " << o_.nonfinite_lr_factor << "\n";
  const int recoveries = recoveries_ + 1;
  restore(load_checkpoint(checkpoint_path()));
  recoveries_ = recoveries;
  lr_scale_ *= o_.nonfinite_lr_factor;
  throw Restart{};
}

Trainer::Outcome Trainer::run(const EpochPlanFn& plan, const LoadFn& load) {
  SignalGuard signals;
  ensure_dir(o_.run_dir);
  if (step_ == 0) save_checkpoint();  // a good state to fall back to from the first step
  auto* triplet = dynamic_cast<TripletMarginLoss*>(&loss_);
  for (;;) {
    try {
      // Steps still to run, for the progress bar.
      // (The current epoch's plan is kept for the loop below rather than computed again.)
      std::optional<std::vector<std::vector<int64_t>>> current;
      if (epoch_ < o_.epochs) current = plan(epoch_);
      int64_t total = static_cast<int64_t>(log_.size() + (current ? current->size() : 0)) - batch_;
      for (int64_t e = epoch_ + 1; e < o_.epochs; ++e)
        total += static_cast<int64_t>(plan(e).size());
      if (o_.max_steps > 0) total = std::min(total, o_.max_steps);
      Progress progress("train", total, o_.log_every);
      for (; epoch_ < o_.epochs; ++epoch_, batch_ = 0) {
        const std::vector<std::vector<int64_t>> batches =
            current ? std::move(*current) : plan(epoch_);
        current.reset();
        const int64_t first = batch_, base_step = step_;
        // The images and the labels, both on the training device: the loader thread uploads
        // them, so that a step on a GPU does not wait for an upload.
        struct Ready {
          Tensor x, labels;
        };
        Prefetcher<Ready> prefetch(static_cast<int64_t>(batches.size()) - first, [&](int64_t i) {
          Batch b = load(batches[static_cast<size_t>(first + i)], base_step + i);
          return Ready{b.x, Tensor::from_ints(b.labels, o_.device)};
        });
        // A step's time runs from asking for its batch to the end of the update, so waiting for
        // the loader counts (as the peers time their batch gathering).
        double t0 = now_seconds();
        Backend& be = backend_for(o_.device);
        while (auto b = prefetch.next()) {
          if (o_.max_steps > 0 && step_ >= o_.max_steps) break;
          const double t_batch = now_seconds(), device_wait0 = be.device_wait_seconds();
          const int64_t device_waits0 = be.device_waits();
          const double lr = schedule_->lr_at(step_) * lr_scale_;
          opt_.set_lr(static_cast<float>(lr));
          if (curriculum_) triplet->set_miner(curriculum_->miner_ptr_at(step_, epoch_));
          if (inject_now("weight")) poison_first_parameter("");
          if (inject_now("input")) {
            b->x = b->x * 1e38f;
            std::cerr << "\n--inject-nonfinite (a testing aid): step " << step_
                      << ": scaled the input batch by 1e38\n";
          }
          Tensor emb = model_(b->x);
          Tensor loss = loss_.forward(emb, b->labels);
          opt_.zero_grad();
          loss.backward();
          if (inject_now("grad")) {
            NoGradGuard ng;
            auto [name, p] = model_.named_parameters().back();
            Tensor(p.grad()).fill_(INFINITY);
            std::cerr << "\n--inject-nonfinite (a testing aid): step " << step_
                      << ": filled the gradient of " << name << " with +Inf\n";
          }
          // The step's one wait for the device before its update (on a GPU a wait drains the
          // queue of launched work): the loss, its statistics and the finite checks together.
          const StepCheck check = check_step(loss);
          // Parameters first: a NaN weight can vanish from the loss (ReLU maps NaN to 0 here).
          if (!check.bad_parameter.empty()) recover("non-finite value in " + check.bad_parameter);
          const float value = check.loss;
          if (!std::isfinite(value)) {
            const std::string layer = first_nonfinite_layer(b->x);
            recover("non-finite loss (" + std::string(std::isnan(value) ? "nan" : fmt(value)) +
                    "); first non-finite value: " +
                    (layer.empty() ? "the loss itself (every layer's output was finite)" : layer));
          }
          if (!check.bad_gradient.empty()) {
            const std::string layer = first_nonfinite_layer(b->x);
            recover("non-finite gradient in " + check.bad_gradient +
                    (layer.empty() ? "" : "; the forward pass first went non-finite at " + layer));
          }
          opt_.step();
          if (inject_now("update")) poison_first_parameter(" after the update");
          // A GPU queues the update: wait for it, so that it counts in this step's time (as the
          // peers' torch.cuda.synchronize() after each step). On the CPU this is a no-op.
          be.synchronize();
          const double dt = now_seconds() - t0;
          train_seconds_ += dt;
          loader_wait_seconds_ += t_batch - t0;
          device_wait_seconds_ += be.device_wait_seconds() - device_wait0;
          device_waits_ += be.device_waits() - device_waits0;
          ++timed_steps_;
          train_images_ += b->x.size(0);
          const LossStats& s = loss_.stats();
          log_.push_back({step_, epoch_, value, s.active_fraction(), s.mean_pos, s.mean_neg, lr,
                          static_cast<double>(b->x.size(0)) / dt});
          if (step_ % o_.log_every == 0) {  // collapse watchdog
            // Collapsed to one point: every embedding of the batch lies within 0.1% of the
            // embeddings' length from their mean, and all triplets (pairs) are active. Scale-
            // free, so a healthy run whose embeddings are merely small (batch-hard often shrinks
            // them early on and still ranks well) does not count; and it must hold at two checks
            // in a row, so a passing dip does not either.
            NoGradGuard ng;
            Tensor e = emb.detach();
            const std::vector<float> sq = concat({mean(square(e - mean(e, {0}, true))).reshape({1}),
                                                  mean(square(e)).reshape({1})},
                                                 0)
                                              .to_vector();  // one transfer
            const double spread_sq = sq[0], length_sq = sq[1];
            const double relative = length_sq > 0 ? std::sqrt(spread_sq / length_sq) : 0.0;
            const bool collapsed = s.active_fraction() >= 0.99 && relative < 1e-3;
            collapsed_checks_ = collapsed ? collapsed_checks_ + 1 : 0;
            if (collapsed_checks_ >= 2 && (last_collapse_warning_ < 0 ||
                                           step_ - last_collapse_warning_ >= 10 * o_.log_every)) {
              last_collapse_warning_ = step_;
              char spread_text[32];
              std::snprintf(spread_text, sizeof spread_text, "%.2g%%", 100 * relative);
              std::cerr << "\nwarning: step " << step_
                        << ": the embeddings have collapsed to one point (the batch's spread is "
                        << spread_text << " of their length; all " << s.unit
                        << " active; mean d(a,p) " << fmt(s.mean_pos, 6) << ", d(a,n) "
                        << fmt(s.mean_neg, 6) << "). Try a lower learning rate, "
                        << "--soft-margin, semi-hard mining or a curriculum.\n";
            }
          }
          ++step_;
          ++batch_;
          progress.update(static_cast<int64_t>(log_.size()),
                          "epoch " + std::to_string(epoch_ + 1) + "/" + std::to_string(o_.epochs) +
                              " loss " + fmt(value) + " active " +
                              fmt(100 * s.active_fraction(), 0) + "% " +
                              fmt(static_cast<double>(b->x.size(0)) / dt, 0) + " img/s");
          if (o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0) save_checkpoint();
          if (g_signal.load() != 0) {
            save_checkpoint();
            write_log_csv();
            std::cerr << "\n";
            return Outcome::Interrupted;
          }
          t0 = now_seconds();
        }
        if (o_.max_steps > 0 && step_ >= o_.max_steps) break;
        if (batch_ >= static_cast<int64_t>(batches.size())) {  // epoch complete
          epoch_ += 1, batch_ = 0;
          save_checkpoint();
          epoch_ -= 1;  // the for loop advances it
        }
      }
      progress.finish(log_.empty() ? "" : "loss " + fmt(log_.back().loss));
      if (o_.max_steps > 0 && step_ >= o_.max_steps) save_checkpoint();
      write_log_csv();
      return Outcome::Finished;
    } catch (const Restart&) {
      continue;  // position, model and optimizer were reloaded
    }
  }
}

}  // namespace trine::cli
