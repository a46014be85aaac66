// Optimizer updates and state.
#include "engine/optim.h"

#include <cmath>

#include "engine/backend.h"
#include "engine/error.h"

namespace trine {

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
  if (!list[index].defined())
    list[index] = Tensor::zeros(params_[index].shape(), params_[index].device());
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
    const size_t dot = key.rfind('.');
    TRINE_CHECK_AS(DataError, dot != std::string::npos, "optimizer state: bad entry '", key, "'");
    const size_t index = std::stoul(key.substr(dot + 1));
    TRINE_CHECK_AS(DataError, index < params_.size(), "optimizer state: '", key, "' refers to ",
                   "parameter ", index, " of ", params_.size());
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
  const bool first = buffers_.find("momentum") == buffers_.end();
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    float* buf = o_.momentum != 0.f ? buffer("momentum", i).data() : nullptr;
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
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    p.backend().adam_step(p.data(), g.data(), buffer("exp_avg", i).data(),
                          buffer("exp_avg_sq", i).data(), p.numel(),
                          {lr_, o_.beta1, o_.beta2, o_.eps, o_.weight_decay, decoupled_, steps_});
  }
}

}  // namespace trine
