// BatchNorm over channels (dim 1) of [N, C] (BatchNorm1d) or [N, C, H, W] (BatchNorm2d) input.
// Learnable weight (1) and bias (0); running_mean (0) and running_var (1) buffers updated in
// training with `momentum`, used in eval. Matches torch.nn.BatchNorm1d/2d.
#pragma once

#include "layers/module.h"

namespace trine {

class BatchNorm : public Module {
 public:
  BatchNorm(int64_t channels, int expected_rank, float eps = 1e-5f, float momentum = 0.1f);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) by the fused op batch_norm_relu; Sequential calls it for a BatchNorm
  // followed by a ReLU.
  Tensor forward_relu(const Tensor& x);
  std::string describe() const override;
  Tensor weight, bias, running_mean, running_var;

 private:
  void check_input(const Tensor& x) const;
  int64_t channels_;
  int rank_;
  float eps_, momentum_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f)
      : BatchNorm(channels, 2, eps, momentum) {}
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f)
      : BatchNorm(channels, 4, eps, momentum) {}
};

}  // namespace trine
