// Optimizer updates and state.
#include "engine/optim.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"

namespace trine {

namespace {
// The parameter index after the last '.' of a state key ("exp_avg.3" -> 3).
size_t state_index(const std::string& key, size_t n_params) {
  const size_t dot = key.rfind('.');
  const std::string digits = dot == std::string::npos ? "" : key.substr(dot + 1);
  TRINE_CHECK_AS(DataError,
                 !digits.empty() && digits.size() < 10 &&
                     digits.find_first_not_of("0123456789") == std::string::npos,
                 "optimizer state: bad entry '", key, "'");
  const size_t index = std::stoul(digits);
  TRINE_CHECK_AS(DataError, index < n_params, "optimizer state: '", key, "' refers to ",
                 "parameter ", index, " of ", n_params);
  return index;
}
}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, float lr) : params_(std::move(params)), lr_(lr) {
  TRINE_CHECK_AS(UsageError, !params_.empty(), "optimizer: no parameters to optimize");
  for (size_t i = 0; i < params_.size(); ++i) {
    TRINE_CHECK(params_[i].defined() && params_[i].requires_grad(), "optimizer: parameter ", i,
                " is undefined or does not require grad");
    TRINE_CHECK(params_[i].is_leaf(), "optimizer: parameter ", i, " is not a leaf tensor");
  }
  set_lr(lr);
}

void Optimizer::set_lr(float lr) {
  TRINE_CHECK_AS(UsageError, std::isfinite(lr) && lr >= 0.f,
                 "learning rate must be a finite value >= 0, got ", lr);
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

Tensor& Optimizer::buffer(const std::string& name, size_t index) {
  auto& list = buffers_[name];
  if (list.size() < params_.size()) list.resize(params_.size());
  const Tensor& p = params_[index];
  if (!list[index].defined())
    list[index] = Tensor::zeros(p.shape(), p.device());
  else if (list[index].device() != p.device())  // the model moved (Module::to) since the last step
    list[index] = list[index].to(p.device());
  return list[index];
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  out["step"] = Tensor::scalar(static_cast<float>(steps_));
  out["lr"] = Tensor::scalar(lr_);
  for (const auto& [name, list] : buffers_)
    for (size_t i = 0; i < list.size(); ++i)
      if (list[i].defined()) out[name + "." + std::to_string(i)] = list[i];
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  auto step = state.find("step");
  TRINE_CHECK_AS(DataError, step != state.end(), "optimizer state: missing 'step'");
  steps_ = static_cast<int64_t>(step->second.item());
  if (auto lr = state.find("lr"); lr != state.end()) set_lr(lr->second.item());
  buffers_.clear();
  for (const auto& [key, t] : state) {
    if (key == "step" || key == "lr") continue;
    const size_t index = state_index(key, params_.size());
    const size_t dot = key.rfind('.');
    TRINE_CHECK_AS(DataError, t.shape() == params_[index].shape(), "optimizer state: '", key,
                   "' has shape ", t.shape_str(), ", parameter ", index, " has ",
                   params_[index].shape_str());
    buffer(key.substr(0, dot), index).copy_(t);
  }
}

SGD::SGD(std::vector<Tensor> params, const SgdOptions& o)
    : Optimizer(std::move(params), o.lr), o_(o) {
  TRINE_CHECK_AS(UsageError, o.momentum >= 0.f && o.weight_decay >= 0.f,
                 "SGD: momentum and weight decay must be >= 0");
  TRINE_CHECK_AS(UsageError, !o.nesterov || (o.momentum > 0.f && o.dampening == 0.f),
                 "SGD: Nesterov momentum needs momentum > 0 and dampening 0");
}

void SGD::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    // Per parameter: one that first gets a gradient late starts its buffer then (as torch).
    bool first = false;
    float* buf = nullptr;
    if (o_.momentum != 0.f) {
      auto it = buffers_.find("momentum");
      first = it == buffers_.end() || it->second.size() <= i || !it->second[i].defined();
      buf = buffer("momentum", i).data();
    }
    p.backend().sgd_step(p.data(), g.data(), buf, p.numel(),
                         {lr_, o_.momentum, o_.dampening, o_.weight_decay, o_.nesterov, first});
  }
  ++steps_;
}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& o, bool decoupled)
    : Optimizer(std::move(params), o.lr), o_(o), decoupled_(decoupled) {
  TRINE_CHECK_AS(UsageError, o.beta1 >= 0.f && o.beta1 < 1.f && o.beta2 >= 0.f && o.beta2 < 1.f,
                 "Adam: betas must be in [0, 1), got ", o.beta1, ", ", o.beta2);
  TRINE_CHECK_AS(UsageError, o.eps > 0.f && o.weight_decay >= 0.f,
                 "Adam: eps must be > 0 and weight decay >= 0");
}

void Adam::step() {
  ++steps_;
  param_steps_.resize(params_.size(), 0);
  // One call per device for all its parameters (a GPU updates them in O(1) launches).
  std::vector<std::pair<Backend*, std::vector<AdamTensor>>> by_device;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const AdamTensor t{
        p.data(),  g.data(),         buffer("exp_avg", i).data(), buffer("exp_avg_sq", i).data(),
        p.numel(), ++param_steps_[i]};
    auto it = std::find_if(by_device.begin(), by_device.end(),
                           [&](const auto& d) { return d.first == &p.backend(); });
    if (it == by_device.end()) it = by_device.insert(by_device.end(), {&p.backend(), {}});
    it->second.push_back(t);
  }
  const AdamStep s{lr_, o_.beta1, o_.beta2, o_.eps, o_.weight_decay, decoupled_, 0};
  for (auto& [be, tensors] : by_device) be->adam_step_many(tensors, s);
}

std::map<std::string, Tensor> Adam::state_dict() const {
  std::map<std::string, Tensor> out = Optimizer::state_dict();
  for (size_t i = 0; i < param_steps_.size(); ++i)
    if (param_steps_[i] > 0)
      out["param_step." + std::to_string(i)] = Tensor::scalar(static_cast<float>(param_steps_[i]));
  return out;
}

void Adam::load_state_dict(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> rest;
  std::vector<int64_t> counts(params_.size(), -1);
  for (const auto& [key, t] : state) {
    if (key.rfind("param_step.", 0) != 0) {
      rest.emplace(key, t);
      continue;
    }
    TRINE_CHECK_AS(DataError, t.numel() == 1, "optimizer state: '", key, "' has shape ",
                   t.shape_str());
    counts[state_index(key, params_.size())] = static_cast<int64_t>(t.item());
  }
  Optimizer::load_state_dict(rest);
  // State saved without per-parameter counts: a parameter with moments took every step.
  auto moments = buffers_.find("exp_avg");
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] >= 0) continue;
    const bool has_moments =
        moments != buffers_.end() && i < moments->second.size() && moments->second[i].defined();
    counts[i] = has_moments ? steps_ : 0;
  }
  param_steps_ = std::move(counts);
}

}  // namespace trine
