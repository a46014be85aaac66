// Linear layer.
#include "layers/linear.h"

#include "engine/error.h"
#include "engine/ops.h"
#include "layers/init.h"

namespace trine {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias)
    : in_(in_features), out_(out_features) {
  TRINE_CHECK_AS(UsageError, in_features > 0 && out_features > 0,
                 "Linear: features must be positive, got ", in_features, " -> ", out_features);
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_features}));
  init::pytorch_default_(weight, bias);
}

Tensor Linear::forward(const Tensor& x) {
  TRINE_CHECK(x.dim() == 2 && x.size(1) == in_, describe(), ": expected input [N, ", in_, "], got ",
              x.shape_str());
  return linear(x, weight, bias);
}

std::string Linear::describe() const {
  return "Linear(in=" + std::to_string(in_) + ", out=" + std::to_string(out_) +
         (bias.defined() ? "" : ", bias=false") + ")";
}

}  // namespace trine
