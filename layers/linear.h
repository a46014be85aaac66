// Linear: y = x W^T + b, x [N, in] -> [N, out]. W [out, in], b [out]; PyTorch's default init.
#pragma once

#include "layers/module.h"

namespace trine {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Tensor weight, bias;

 private:
  int64_t in_, out_;
};

}  // namespace trine
