// Sequential: applies its children in order; children are named "0", "1", ...
// Two adjacent pairs of trine's own layers run fused, with the same values and gradients as one
// after the other (tests/test_module_layers.cpp checks both):
// - BatchNorm1d/2d then ReLU: one batch_norm_relu op, so the ReLU needs no pass of its own;
// - ReLU then MaxPool2d: one max_pool2d_relu op, which takes each value's ReLU as the pooling
//   reads it, so the ReLU's outputs are never stored.
// The children stay as they are (names, parameters, describe()); calling them one by one gives
// the unfused computation.
#pragma once

#include <initializer_list>

#include "layers/module.h"

namespace trine {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<ModulePtr> modules);
  // Appends a module; returns *this for chaining.
  Sequential& add(ModulePtr m);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "Sequential"; }
  size_t size() const { return children().size(); }
  Module& operator[](size_t i) const { return *children().at(i).second; }
};

}  // namespace trine
