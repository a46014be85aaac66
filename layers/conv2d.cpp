// Conv2d layer.
#include "layers/conv2d.h"

#include "engine/error.h"
#include "layers/init.h"

namespace trine {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
               int64_t padding, bool with_bias)
    : in_(in_channels),
      out_(out_channels),
      kernel_(kernel),
      opts_{stride, stride, padding, padding} {
  TRINE_CHECK_AS(UsageError,
                 in_channels > 0 && out_channels > 0 && kernel > 0 && stride > 0 && padding >= 0,
                 "Conv2d: invalid configuration in=", in_channels, " out=", out_channels,
                 " kernel=", kernel, " stride=", stride, " padding=", padding);
  weight = register_parameter("weight", Tensor::empty({out_channels, in_channels, kernel, kernel}));
  if (with_bias) bias = register_parameter("bias", Tensor::empty({out_channels}));
  init::pytorch_default_(weight, bias);
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, opts_);
}

std::string Conv2d::describe() const {
  return "Conv2d(" + std::to_string(in_) + " -> " + std::to_string(out_) + ", kernel " +
         std::to_string(kernel_) + ", stride " + std::to_string(opts_.stride_h) + ", padding " +
         std::to_string(opts_.pad_h) + (bias.defined() ? "" : ", bias=false") + ")";
}

}  // namespace trine
