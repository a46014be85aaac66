// Residual basic block.
#include "layers/residual.h"

#include "engine/ops.h"

namespace trine {

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_(in_channels), out_(out_channels), stride_(stride) {
  conv1_ = register_module(
      "conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, stride, 1, false));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out_channels));
  conv2_ = register_module("conv2",
                           std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, false));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    down_conv_ = register_module(
        "down_conv", std::make_shared<Conv2d>(in_channels, out_channels, 1, stride, 0, false));
    down_bn_ = register_module("down_bn", std::make_shared<BatchNorm2d>(out_channels));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor y = relu(bn1_->forward(conv1_->forward(x)));
  y = bn2_->forward(conv2_->forward(y));
  Tensor shortcut = down_conv_ ? down_bn_->forward(down_conv_->forward(x)) : x;
  return relu(y + shortcut);
}

std::string BasicBlock::describe() const {
  return "BasicBlock(" + std::to_string(in_) + " -> " + std::to_string(out_) + ", stride " +
         std::to_string(stride_) + ")";
}

}  // namespace trine
