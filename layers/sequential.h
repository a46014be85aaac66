// Sequential: applies its children in order; children are named "0", "1", ...
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
