// Module: the base of every layer and model. A module owns named parameters (trained), named
// buffers (state such as batch-norm running statistics) and named child modules; names nest
// with dots ("features.0.weight"). train()/eval() switch modes recursively.
//
// Writing a layer: derive from Module, create tensors with register_parameter/register_buffer
// in the constructor, children with register_module, and implement forward().
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace trine {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // "Linear(in=3136, out=256)" — one line, no children.
  virtual std::string describe() const = 0;
  // The module tree with parameter counts.
  std::string summary() const;

  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Parameters and buffers by full name.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values into this module's tensors (their identity is kept, so optimizers holding them
  // stay valid). strict: every name must match both ways, with equal shapes.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  int64_t num_parameters() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter and buffer to `device`, in place (tensor handles stay valid).
  void to(Device device);
  void zero_grad();

  // Checkpoint I/O of the state dict (engine/checkpoint.h format).
  void save(const std::string& path) const;
  void load(const std::string& path);

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 private:
  void collect(const std::string& prefix, bool params,
               std::vector<std::pair<std::string, Tensor>>& out) const;
  void summary_into(std::string& out, const std::string& name, int depth) const;

  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace trine
