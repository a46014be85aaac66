// Conv2d: x [N, C, H, W] -> [N, M, OH, OW], square kernel, stride and zero padding; weight
// [M, C, k, k], bias [M]; PyTorch's default init.
#pragma once

#include "engine/ops.h"
#include "layers/module.h"

namespace trine {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1,
         int64_t padding = 0, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Tensor weight, bias;

 private:
  int64_t in_, out_, kernel_;
  Conv2dOptions opts_;
};

}  // namespace trine
