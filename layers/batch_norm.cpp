// Batch normalization layers.
#include "layers/batch_norm.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace trine {

BatchNorm::BatchNorm(int64_t channels, int expected_rank, float eps, float momentum)
    : channels_(channels), rank_(expected_rank), eps_(eps), momentum_(momentum) {
  TRINE_CHECK_AS(UsageError, channels > 0, "BatchNorm: channels must be positive, got ", channels);
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
}

void BatchNorm::check_input(const Tensor& x) const {
  TRINE_CHECK(x.dim() == rank_ && x.size(1) == channels_, describe(), ": expected input of rank ",
              rank_, " with ", channels_, " channels, got ", x.shape_str());
}

Tensor BatchNorm::forward(const Tensor& x) {
  check_input(x);
  return batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum_, eps_);
}

Tensor BatchNorm::forward_relu(const Tensor& x) {
  check_input(x);
  return batch_norm_relu(x, weight, bias, running_mean, running_var, is_training(), momentum_,
                         eps_);
}

std::string BatchNorm::describe() const {
  return std::string(rank_ == 2 ? "BatchNorm1d(" : "BatchNorm2d(") + std::to_string(channels_) +
         ")";
}

}  // namespace trine
