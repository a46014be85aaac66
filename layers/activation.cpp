// Activation layers with parameters or options.
#include "layers/activation.h"

#include <sstream>

#include "engine/error.h"

namespace trine {

std::string LeakyReLU::describe() const {
  std::ostringstream os;
  os << "LeakyReLU(" << slope_ << ")";
  return os.str();
}

PReLU::PReLU(int64_t num_parameters, float init) {
  TRINE_CHECK_AS(UsageError, num_parameters > 0, "PReLU: num_parameters must be positive");
  weight = register_parameter("weight", Tensor::full({num_parameters}, init));
}

Tensor PReLU::forward(const Tensor& x) {
  Tensor a = weight;
  if (weight.numel() > 1) {
    TRINE_CHECK(x.dim() >= 2 && x.size(1) == weight.numel(), describe(), ": input ", x.shape_str(),
                " does not have ", weight.numel(), " channels in dim 1");
    Shape s(static_cast<size_t>(x.dim()), 1);
    s[1] = weight.numel();
    a = weight.reshape(s);
  } else {
    a = weight.reshape({});
  }
  return relu(x) - a * relu(-x);
}

std::string PReLU::describe() const {
  return "PReLU(" + std::to_string(weight.numel()) + ")";
}

}  // namespace trine
