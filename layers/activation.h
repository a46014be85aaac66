// Activation layers: ReLU, LeakyReLU, PReLU (learnable slope per channel), Sigmoid, Tanh.
#pragma once

#include "engine/ops.h"
#include "layers/module.h"

namespace trine {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string describe() const override { return "ReLU"; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f) : slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, slope_); }
  std::string describe() const override;

 private:
  float slope_;
};

// y = max(0, x) + a * min(0, x), with a learnable per channel (dim 1), or one shared a when
// num_parameters is 1. a starts at `init` (0.25, as PyTorch).
class PReLU : public Module {
 public:
  explicit PReLU(int64_t num_parameters = 1, float init = 0.25f);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Tensor weight;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
  std::string describe() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
  std::string describe() const override { return "Tanh"; }
};

}  // namespace trine
