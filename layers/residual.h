// BasicBlock: the residual block of ResNet-18/34 (He et al. 2016):
//   y = relu(bn2(conv3x3(relu(bn1(conv3x3(x, stride))))) + shortcut(x))
// where shortcut is the identity, or conv1x1(stride) + bn when the shape changes.
#pragma once

#include "layers/batch_norm.h"
#include "layers/conv2d.h"

namespace trine {

class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  int64_t in_, out_, stride_;
  std::shared_ptr<Conv2d> conv1_, conv2_, down_conv_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, down_bn_;
};

}  // namespace trine
