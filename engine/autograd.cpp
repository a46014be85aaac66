// The backward engine: topological order over the recorded nodes, gradient accumulation.
#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/error.h"
#include "engine/ops.h"

namespace trine {

namespace {
thread_local bool g_grad_enabled = true;

// Adds `g` into a leaf's gradient. A first gradient is adopted without a copy when nothing else
// refers to it or its storage (the common case: a fresh product from a backward function);
// otherwise it is copied, since the leaf's gradient is later updated in place.
void accumulate_leaf(TensorImpl& leaf, Tensor g) {
  if (leaf.grad) {
    Tensor(leaf.grad).add_(g);
  } else if (g.impl().use_count() == 1 && g.impl()->storage.use_count() == 1 && !g.grad_fn() &&
             g.impl()->offset == 0) {
    leaf.grad = g.impl();
  } else {
    leaf.grad = g.detach().clone().impl();
  }
}
}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}

Node::~Node() {
  std::vector<std::shared_ptr<Node>> owned;  // nodes no one else holds, still to free
  auto take_inputs = [&owned](Node& n) {
    n.fn_ = nullptr;  // first its captures, which may hold the same input nodes
    for (Edge& e : n.edges_) {
      // One edge at a time: of several edges to one node, the last takes it; an input that
      // someone else still holds is only released.
      std::shared_ptr<Node> input = std::move(e.fn);
      if (input && input.use_count() == 1) owned.push_back(std::move(input));
    }
  };
  take_inputs(*this);
  while (!owned.empty()) {
    std::shared_ptr<Node> n = std::move(owned.back());
    owned.pop_back();
    take_inputs(*n);
  }  // n is freed here, with no input node left that would free another in turn
}

Grads Node::apply(const Tensor& grad_out) const {
  TRINE_CHECK(fn_, "backward through the graph of '", op_,
              "' a second time: its saved tensors were freed by the first backward(); "
              "pass retain_graph=true to the first call");
  return fn_(grad_out);
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

Tensor record(Tensor out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!g_grad_enabled) return out;
  bool any = false;
  std::vector<Node::Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Node::Edge e;
    if (t.defined() && t.requires_grad()) {
      any = true;
      if (t.grad_fn())
        e.fn = t.grad_fn();
      else
        e.leaf = t.impl();
      e.shape = t.shape();
    }
    edges.push_back(std::move(e));
  }
  if (!any) return out;
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::make_shared<Node>(op, std::move(edges), std::move(fn));
  return out;
}

void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  TRINE_CHECK(root.defined(), "backward() on an undefined tensor");
  TRINE_CHECK(root.requires_grad(),
              "backward() on a tensor that does not require grad: no input of the computation "
              "that made it requires a gradient (or it was computed under NoGradGuard)");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    TRINE_CHECK(root.numel() == 1, "backward() without a gradient needs a one-element output, got ",
                root.shape_str(), "; pass a gradient of that shape");
    grad = Tensor::ones(root.shape(), root.device());
  }
  TRINE_CHECK(grad.shape() == root.shape(), "backward(): gradient of shape ", grad.shape_str(),
              " for an output of shape ", root.shape_str());
  TRINE_CHECK(grad.device() == root.device(), "backward(): gradient on ", grad.device().str(),
              " for an output on ", root.device().str());
  NoGradGuard no_grad;
  if (!root.grad_fn()) {  // a leaf: its gradient is the given one
    accumulate_leaf(*root.impl(), grad);
    return;
  }

  // Reverse post-order DFS gives a topological order (each node before the nodes it feeds).
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{root.grad_fn().get(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->edges().size()) {
      Node* child = node->edges()[next++].fn.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = pending.find(node);
    if (found == pending.end()) continue;  // no gradient flowed here
    Tensor g = std::move(found->second);
    pending.erase(found);
    Grads grads = node->apply(g);
    TRINE_CHECK(grads.size() == node->edges().size(), "backward of '", node->op(), "' returned ",
                grads.size(), " gradients for ", node->edges().size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Node::Edge& e = node->edges()[i];
      if (!grads[i].defined() || (!e.fn && !e.leaf)) continue;
      TRINE_CHECK(grads[i].shape() == e.shape, "backward of '", node->op(),
                  "' returned a gradient of shape ", grads[i].shape_str(), " for input ", i,
                  " of shape ", shape_str(e.shape));
      if (e.fn) {
        auto [slot, fresh] = pending.try_emplace(e.fn.get(), grads[i]);
        if (!fresh) slot->second = slot->second + grads[i];
      } else {
        accumulate_leaf(*e.leaf, std::move(grads[i]));
      }
    }
    if (!retain_graph) node->release();
  }
}

}  // namespace trine
