// The training loop with checkpoints, resume, signal handling and numerical guards.
#include "apps/trainer.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "apps/run_support.h"
#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "losses/triplet_loss.h"

namespace trine::cli {

namespace {

std::atomic<int> g_signal{0};
extern "C" void on_signal(int signo) {
  g_signal.store(signo);
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

// max |x| (NaN when x holds a NaN, inf when it holds an inf).
float max_abs(const Tensor& t) {
  return max(abs(t.detach())).item();
}

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

std::string Trainer::checkpoint_path() const {
  return (std::filesystem::path(o_.run_dir) / "checkpoint.trine").string();
}

void Trainer::save_checkpoint() {
  Checkpoint ck;
  ck.meta = meta_;
  ck.meta["trainer.epoch"] = std::to_string(epoch_);
  ck.meta["trainer.batch"] = std::to_string(batch_);
  ck.meta["trainer.step"] = std::to_string(step_);
  ck.meta["trainer.lr_scale"] = fmt(lr_scale_, 12);
  ck.meta["trainer.recoveries"] = std::to_string(recoveries_);
  ck.meta["rng.seed"] = std::to_string(default_generator().seed());
  ck.meta["rng.offset"] = std::to_string(default_generator().offset());
  for (auto& [name, t] : model_.state_dict()) ck.tensors["model." + name] = t;
  for (auto& [name, t] : opt_.state_dict()) ck.tensors["optim." + name] = t;
  const auto loss_params = loss_.parameters();
  for (size_t i = 0; i < loss_params.size(); ++i)
    ck.tensors["loss." + std::to_string(i)] = loss_params[i];
  const int64_t n = static_cast<int64_t>(log_.size());
  std::vector<float> epochs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) epochs[i] = static_cast<float>(log_[i].epoch);
  ck.tensors["log.epoch"] = Tensor::from_vector(epochs, {n});
  for (const auto& [name, field] : kLogFields) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(log_[i].*field);
    ck.tensors[std::string("log.") + name] = Tensor::from_vector(v, {n});
  }
  trine::save_checkpoint(checkpoint_path(), ck);
}

void Trainer::restore(const Checkpoint& ck) {
  auto meta = [&](const std::string& key) {
    auto it = ck.meta.find(key);
    TRINE_CHECK_AS(DataError, it != ck.meta.end(), "checkpoint: missing '", key,
                   "'; is this a training checkpoint written by trine?");
    return it->second;
  };
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
  epoch_ = std::stoll(meta("trainer.epoch"));
  batch_ = std::stoll(meta("trainer.batch"));
  step_ = std::stoll(meta("trainer.step"));
  lr_scale_ = std::stod(meta("trainer.lr_scale"));
  recoveries_ = std::stoi(meta("trainer.recoveries"));
  default_generator().set_state(std::stoull(meta("rng.seed")), std::stoull(meta("rng.offset")));
  log_.clear();
  auto col = [&](const std::string& name) {
    auto it = ck.tensors.find("log." + name);
    TRINE_CHECK_AS(DataError, it != ck.tensors.end(), "checkpoint: missing log column ", name);
    return it->second.to_vector();
  };
  std::vector<float> ep = col("epoch");
  log_.resize(ep.size());
  for (size_t i = 0; i < ep.size(); ++i) {
    log_[i].epoch = static_cast<int64_t>(ep[i]);
    log_[i].step = static_cast<int64_t>(i);
  }
  for (const auto& [name, field] : kLogFields) {
    std::vector<float> v = col(name);
    TRINE_CHECK_AS(DataError, v.size() == log_.size(), "checkpoint: log column ", name, " has ",
                   v.size(), " rows, expected ", log_.size());
    for (size_t i = 0; i < v.size(); ++i) log_[i].*field = v[i];
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

bool Trainer::check_finite_grads(std::string* where) {
  NoGradGuard ng;
  std::vector<std::pair<std::string, Tensor>> params = model_.named_parameters();
  const auto loss_params = loss_.parameters();
  for (size_t i = 0; i < loss_params.size(); ++i)
    params.emplace_back("loss parameter " + std::to_string(i), loss_params[i]);
  std::vector<Tensor> maxima;
  std::vector<std::string> names;
  for (auto& [name, p] : params) {
    if (!p.grad().defined()) continue;
    maxima.push_back(max(abs(p.grad())).reshape({1}));
    names.push_back(name);
  }
  if (maxima.empty()) return true;
  std::vector<float> m = concat(maxima, 0).to_vector();  // one transfer for all parameters
  for (size_t i = 0; i < m.size(); ++i) {
    if (!std::isfinite(m[i])) {
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
  }
  return true;
}

std::string Trainer::first_nonfinite_layer(const Tensor& x) {
  NoGradGuard ng;
  if (!std::isfinite(max_abs(x))) return "the input batch itself";
  Tensor y = x;
  for (size_t i = 0; i < model_.size(); ++i) {
    y = model_[i].forward(y);
    if (!std::isfinite(max_abs(y)))
      return "the output of layer " + std::to_string(i) + " (" + model_[i].describe() + ")";
  }
  return "the loss (every layer's output was finite)";
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
      int64_t total = static_cast<int64_t>(log_.size());
      for (int64_t e = epoch_; e < o_.epochs; ++e)
        total += static_cast<int64_t>(plan(e).size()) - (e == epoch_ ? batch_ : 0);
      if (o_.max_steps > 0) total = std::min(total, o_.max_steps);
      Progress progress("train", total, o_.log_every);
      for (; epoch_ < o_.epochs; ++epoch_, batch_ = 0) {
        const std::vector<std::vector<int64_t>> batches = plan(epoch_);
        const int64_t first = batch_, base_step = step_;
        Prefetcher<Batch> prefetch(static_cast<int64_t>(batches.size()) - first, [&](int64_t i) {
          return load(batches[static_cast<size_t>(first + i)], base_step + i);
        });
        // A step's time runs from asking for its batch to the end of the update, so waiting for
        // the loader counts (as the peers time their batch gathering).
        double t0 = now_seconds();
        while (auto b = prefetch.next()) {
          if (o_.max_steps > 0 && step_ >= o_.max_steps) break;
          const double lr = schedule_->lr_at(step_) * lr_scale_;
          opt_.set_lr(static_cast<float>(lr));
          if (curriculum_) triplet->set_miner(curriculum_->miner_ptr_at(step_, epoch_));
          Tensor emb = model_(b->x);
          Tensor loss = loss_.forward(emb, Tensor::from_ints(b->labels, o_.device));
          const float value = loss.item();
          if (!std::isfinite(value))
            recover("non-finite loss (" + fmt(value) +
                    "); first non-finite value: " + first_nonfinite_layer(b->x));
          opt_.zero_grad();
          loss.backward();
          std::string where;
          if (!check_finite_grads(&where)) recover("non-finite gradient in " + where);
          opt_.step();
          const double dt = now_seconds() - t0;
          train_seconds_ += dt;
          train_images_ += b->x.size(0);
          const LossStats& s = loss_.stats();
          log_.push_back({step_, epoch_, value, s.active_fraction(), s.mean_pos, s.mean_neg, lr,
                          static_cast<double>(b->x.size(0)) / dt});
          if (step_ % o_.log_every == 0) {  // collapse watchdog
            NoGradGuard ng;
            Tensor e = emb.detach();
            const float spread = mean(sqrt(mean(square(e - mean(e, {0}, true)), {0}))).item();
            if (first_spread_ < 0) first_spread_ = spread;
            if (s.active_fraction() >= 0.99 && spread < 0.05 * first_spread_ &&
                (last_collapse_warning_ < 0 ||
                 step_ - last_collapse_warning_ >= 10 * o_.log_every)) {
              last_collapse_warning_ = step_;
              std::cerr << "\nwarning: step " << step_
                        << ": the embeddings are collapsing to a point"
                        << " (batch spread " << fmt(spread, 5) << ", "
                        << fmt(100.0 * spread / first_spread_, 1) << "% of its first value; "
                        << "every triplet active; mean d(a,p) " << fmt(s.mean_pos, 5) << ", d(a,n) "
                        << fmt(s.mean_neg, 5) << "). Try a lower learning rate, "
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
