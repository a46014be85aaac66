// Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, with the update rules of
// PyTorch's torch.optim so that reference workloads train alike. Updates run on the parameters'
// device through Backend::sgd_step / adam_step. Parameters without a gradient are skipped.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace trine {

class Optimizer {
 public:
  Optimizer(std::vector<Tensor> params, float lr);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  // Drops every parameter's gradient.
  void zero_grad();
  float lr() const { return lr_; }
  void set_lr(float lr);
  int64_t steps() const { return steps_; }
  const std::vector<Tensor>& params() const { return params_; }
  // Optimizer state for checkpoints ("step", per-parameter buffers by index).
  virtual std::map<std::string, Tensor> state_dict() const;
  virtual void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  // A per-parameter buffer named `name`, created as zeros on first use, on its parameter's device
  // (and moved there if the parameter has moved since).
  Tensor& buffer(const std::string& name, size_t index);

  std::vector<Tensor> params_;
  float lr_;
  int64_t steps_ = 0;
  std::map<std::string, std::vector<Tensor>> buffers_;
};

struct SgdOptions {
  float lr = 0.01f;
  float momentum = 0.f;
  float dampening = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SgdOptions& options = {});
  void step() override;

 private:
  SgdOptions o_;
};

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;  // Adam: L2 added to the gradient; AdamW: decoupled decay
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {}, bool decoupled = false);
  void step() override;
  // Adds "param_step.<i>": the updates parameter i received, for its bias correction.
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

 private:
  AdamOptions o_;
  bool decoupled_;
  // Per parameter, as torch.optim: one that first gets a gradient late starts at step 1.
  std::vector<int64_t> param_steps_;
};

// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (default 0.01, as PyTorch).
class AdamW : public Adam {
 public:
  static AdamOptions defaults() {
    AdamOptions o;
    o.weight_decay = 0.01f;
    return o;
  }
  AdamW(std::vector<Tensor> params, const AdamOptions& options = defaults())
      : Adam(std::move(params), options, true) {}
};

}  // namespace trine
