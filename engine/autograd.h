// Reverse-mode autograd, define-by-run. Each differentiable op builds its output, then (when
// gradients are wanted) attaches a Node whose backward function maps the output's gradient to
// its inputs' gradients. backward() walks the nodes in reverse topological order and
// accumulates (+=) into leaves' .grad.
//
// Adding an op:
//   Tensor my_op(const Tensor& x) {
//     Tensor y = ...forward...;
//     return record(y, "my_op", {x}, [x](const Tensor& gy) -> Grads { return {gy * ...}; });
//   }
// The backward runs with gradients disabled, so it may use any op. Return an undefined Tensor
// for an input that takes no gradient.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace trine {

using Grads = std::vector<Tensor>;
using BackwardFn = std::function<Grads(const Tensor& grad_out)>;

// One recorded op: where its inputs' gradients go, and how to compute them.
class Node {
 public:
  // Where one input's gradient goes: into another node, or into a leaf's .grad, or nowhere.
  struct Edge {
    std::shared_ptr<Node> fn;
    std::shared_ptr<TensorImpl> leaf;
    Shape shape;  // the input's shape, to check what backward returns
  };

  Node(std::string op, std::vector<Edge> edges, BackwardFn fn)
      : op_(std::move(op)), edges_(std::move(edges)), fn_(std::move(fn)) {}
  // Frees the chain of input nodes that only this node holds one at a time, so that dropping a
  // graph of any depth takes constant stack (a plain destructor recursed once per node).
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& op() const { return op_; }
  const std::vector<Edge>& edges() const { return edges_; }
  bool released() const { return !fn_; }
  // Runs the backward function; throws when the graph was freed by an earlier backward().
  Grads apply(const Tensor& grad_out) const;
  // Drops the saved tensors (the backward function and its captures).
  void release() { fn_ = nullptr; }

 private:
  std::string op_;
  std::vector<Edge> edges_;
  BackwardFn fn_;
};

// Whether ops record the graph (thread-local; on by default).
bool grad_enabled();

// Disables graph recording in its scope (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any input requires a gradient.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

// Attaches a backward node to `out` when any input requires a gradient (and grad mode is on);
// returns `out` either way. `inputs` are the op's differentiable inputs, in the order the
// backward function returns their gradients.
Tensor record(Tensor out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn);

// Runs reverse-mode differentiation from `root` with initial gradient `grad`.
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace trine
