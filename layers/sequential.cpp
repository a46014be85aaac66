// Sequential container.
#include "layers/sequential.h"

#include <typeinfo>

#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/pooling.h"

namespace trine {

namespace {

// Exactly this class, not a subclass that may override forward().
template <class T>
bool is(const Module* m) {
  return m && typeid(*m) == typeid(T);
}

}  // namespace

Sequential::Sequential(std::initializer_list<ModulePtr> modules) {
  for (const ModulePtr& m : modules) add(m);
}

Sequential& Sequential::add(ModulePtr m) {
  add_child(std::to_string(children().size()), std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  const auto& layers = children();
  Tensor y = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    Module* m = layers[i].second.get();
    Module* next = i + 1 < layers.size() ? layers[i + 1].second.get() : nullptr;
    if ((is<BatchNorm1d>(m) || is<BatchNorm2d>(m) || is<BatchNorm>(m)) && is<ReLU>(next)) {
      y = static_cast<BatchNorm*>(m)->forward_relu(y);
      ++i;
    } else if (is<ReLU>(m) && is<MaxPool2d>(next)) {
      y = static_cast<MaxPool2d*>(next)->forward_relu(y);
      ++i;
    } else {
      y = m->forward(y);
    }
  }
  return y;
}

}  // namespace trine
