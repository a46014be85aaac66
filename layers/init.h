// Weight initialisation, drawing from trine's global generator (seed it with manual_seed).
// The layers' defaults match PyTorch's, so reference workloads start from the same distribution:
// weights and biases of Linear/Conv2d uniform in +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt
// 5).
#pragma once

#include "engine/tensor.h"

namespace trine::init {

// fan_in and fan_out of a [out, in] or [out, in, kh, kw] weight.
int64_t fan_in(const Tensor& w);
int64_t fan_out(const Tensor& w);

void uniform_(Tensor& t, float lo, float hi);
void normal_(Tensor& t, float mean, float std);
// He et al. 2015, for ReLU networks: std = gain / sqrt(fan_in), gain = sqrt(2 / (1 + a^2)).
void kaiming_uniform_(Tensor& w, float a = 0.f);
void kaiming_normal_(Tensor& w, float a = 0.f);
// Glorot & Bengio 2010: variance 2 / (fan_in + fan_out).
void xavier_uniform_(Tensor& w, float gain = 1.f);
void xavier_normal_(Tensor& w, float gain = 1.f);
// PyTorch's default for Linear and Conv2d (bias may be undefined).
void pytorch_default_(Tensor& w, Tensor& b);

}  // namespace trine::init
