// Module: parameter bookkeeping, modes, device moves, state dicts.
#include "layers/module.h"

#include <set>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/error.h"

namespace trine {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  TRINE_CHECK(t.defined(), "register_parameter: '", name, "' is undefined");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  TRINE_CHECK(t.defined(), "register_buffer: '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  TRINE_CHECK(m, "register_module: '", name, "' is null");
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, bool params,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  for (auto& [name, t] : named_buffers()) out[name] = t;
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::map<std::string, Tensor> mine = state_dict();
  std::set<std::string> used;
  for (auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      TRINE_CHECK_AS(DataError, !strict, "load_state_dict: missing '", name, "' (", t.shape_str(),
                     ")");
      continue;
    }
    TRINE_CHECK_AS(DataError, it->second.shape() == t.shape(), "load_state_dict: '", name,
                   "' has shape ", it->second.shape_str(), ", the model expects ", t.shape_str());
    TRINE_CHECK_AS(DataError, it->second.dtype() == t.dtype(), "load_state_dict: '", name, "' is ",
                   dtype_name(it->second.dtype()), ", the model expects ", dtype_name(t.dtype()));
    t.copy_(it->second);
    used.insert(name);
  }
  if (strict)
    for (auto& [name, t] : state)
      TRINE_CHECK_AS(DataError, used.count(name), "load_state_dict: unexpected '", name, "' (",
                     t.shape_str(), ") is not part of the model");
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  auto move = [&](Tensor& t) {
    if (t.device() == device) return;
    Tensor moved = t.detach().to(device);
    t.impl()->storage = moved.impl()->storage;  // in place: every handle sees the new storage
    t.impl()->offset = moved.impl()->offset;
    t.impl()->grad = nullptr;
  };
  for (auto& [name, t] : params_) move(t);
  for (auto& [name, t] : buffers_) move(t);
  for (auto& [name, child] : children_) child->to(device);
}

void Module::zero_grad() {
  for (auto& [name, t] : params_) t.zero_grad();
  for (auto& [name, child] : children_) child->zero_grad();
}

void Module::save(const std::string& path) const {
  Checkpoint ck;
  ck.tensors = state_dict();
  save_checkpoint(path, ck);
}

void Module::load(const std::string& path) {
  load_state_dict(load_checkpoint(path).tensors);
}

void Module::summary_into(std::string& out, const std::string& name, int depth) const {
  int64_t own = 0;
  for (auto& [n, t] : params_) own += t.numel();
  out += std::string(2 * depth, ' ') + (name.empty() ? "" : "(" + name + ") ") + describe();
  if (own) out += "  [" + std::to_string(own) + " params]";
  out += "\n";
  for (auto& [n, child] : children_) child->summary_into(out, n, depth + 1);
}

std::string Module::summary() const {
  std::string out;
  summary_into(out, "", 0);
  out += "total parameters: " + std::to_string(num_parameters()) + "\n";
  return out;
}

}  // namespace trine
