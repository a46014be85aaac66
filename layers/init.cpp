// Weight initialisation.
#include "layers/init.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"

namespace trine::init {

int64_t fan_in(const Tensor& w) {
  TRINE_CHECK(w.dim() >= 2, "fan_in: weight must have rank >= 2, got ", w.shape_str());
  return w.numel() / w.size(0);
}

int64_t fan_out(const Tensor& w) {
  TRINE_CHECK(w.dim() >= 2, "fan_out: weight must have rank >= 2, got ", w.shape_str());
  return w.numel() / w.size(1);
}

void uniform_(Tensor& t, float lo, float hi) {
  t.copy_(Tensor::rand(t.shape(), lo, hi));
}
void normal_(Tensor& t, float mean, float std) {
  t.copy_(Tensor::randn(t.shape(), mean, std));
}

void kaiming_uniform_(Tensor& w, float a) {
  const float gain = std::sqrt(2.f / (1.f + a * a));
  const float bound = gain * std::sqrt(3.f / static_cast<float>(fan_in(w)));
  uniform_(w, -bound, bound);
}

void kaiming_normal_(Tensor& w, float a) {
  const float gain = std::sqrt(2.f / (1.f + a * a));
  normal_(w, 0.f, gain / std::sqrt(static_cast<float>(fan_in(w))));
}

void xavier_uniform_(Tensor& w, float gain) {
  const float bound = gain * std::sqrt(6.f / static_cast<float>(fan_in(w) + fan_out(w)));
  uniform_(w, -bound, bound);
}

void xavier_normal_(Tensor& w, float gain) {
  normal_(w, 0.f, gain * std::sqrt(2.f / static_cast<float>(fan_in(w) + fan_out(w))));
}

void pytorch_default_(Tensor& w, Tensor& b) {
  kaiming_uniform_(w, std::sqrt(5.f));
  if (b.defined()) {
    const float bound = 1.f / std::sqrt(static_cast<float>(fan_in(w)));
    uniform_(b, -bound, bound);
  }
}

}  // namespace trine::init
