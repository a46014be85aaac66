// gradcheck: compares autograd's gradients with central finite differences, for anyone adding
// an op, layer or loss.
//
// The function's output is reduced to the scalar L = sum_i out_i * r_i with fixed random
// weights r (so every output element matters), accumulated in double on the host. For each
// input element, dL/dx is estimated as (L(x + eps) - L(x - eps)) / 2 eps. The function runs in
// float32, so the estimate carries ~1e-7 |out| / eps of rounding noise: with the defaults
// (eps 1e-3, atol 1e-3, rtol 1e-2) the check holds for smooth functions with outputs of order
// 1-100. Pick inputs away from kinks (relu at 0, max ties), where finite differences are wrong.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace trine {

struct GradcheckOptions {
  double eps = 1e-3;   // finite-difference step
  double atol = 1e-3;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-2;
  uint64_t seed = 1234;  // for the projection weights r
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // the worst element when !ok: input, index, analytic, numeric
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks the gradient of `fn` with respect to every input that requires grad. Inputs are
// float32 tensors on any device; they are restored after the check.
GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace trine
