// Small stateless layers: Flatten ([N, ...] -> [N, rest]), Dropout (training only) and
// L2Normalize (rows onto the unit sphere, the usual last layer of an embedding network).
#pragma once

#include <sstream>
#include <string>

#include "engine/ops.h"
#include "layers/module.h"

namespace trine {

class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override { return flatten(x, 1); }
  std::string describe() const override { return "Flatten"; }
};

class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f) : p_(p) {}
  Tensor forward(const Tensor& x) override { return dropout(x, p_, is_training()); }
  std::string describe() const override {
    std::ostringstream os;
    os << "Dropout(" << p_ << ")";
    return os.str();
  }

 private:
  float p_;
};

class L2Normalize : public Module {
 public:
  Tensor forward(const Tensor& x) override { return l2_normalize(x, 1); }
  std::string describe() const override { return "L2Normalize"; }
};

}  // namespace trine
