// Pooling layers over [N, C, H, W]: MaxPool2d, AvgPool2d (square windows; stride defaults to the
// kernel), and GlobalAvgPool ([N, C, H, W] -> [N, C]).
#pragma once

#include <string>

#include "engine/ops.h"
#include "layers/module.h"

namespace trine {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0)
      : k_(kernel), s_(stride == 0 ? kernel : stride), p_(padding) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, k_, s_, p_); }
  // forward(relu(x)) in one pass: max_pool2d_relu (Sequential runs ReLU then MaxPool2d so).
  Tensor forward_relu(const Tensor& x) { return max_pool2d_relu(x, k_, s_, p_); }
  std::string describe() const override {
    return "MaxPool2d(" + std::to_string(k_) + ", stride " + std::to_string(s_) + ")";
  }

 private:
  int64_t k_, s_, p_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0)
      : k_(kernel), s_(stride == 0 ? kernel : stride), p_(padding) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, k_, s_, p_); }
  std::string describe() const override {
    return "AvgPool2d(" + std::to_string(k_) + ", stride " + std::to_string(s_) + ")";
  }

 private:
  int64_t k_, s_, p_;
};

class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override { return global_avg_pool2d(x); }
  std::string describe() const override { return "GlobalAvgPool"; }
};

}  // namespace trine
