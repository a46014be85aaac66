// Finite-difference gradient checking.
#include "engine/gradcheck.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/philox.h"

namespace trine {

namespace {

double project(const Tensor& out, const std::vector<double>& r) {
  std::vector<float> v = out.to_vector();
  double acc = 0;
  for (size_t i = 0; i < v.size(); ++i) acc += static_cast<double>(v[i]) * r[i];
  return acc;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& o) {
  GradcheckResult result;
  // Analytic gradients.
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).zero_grad();
  Tensor out = fn(inputs);
  TRINE_CHECK(out.defined() && out.dtype() == DType::F32,
              "gradcheck: fn must return a float32 tensor");
  std::vector<double> r(static_cast<size_t>(out.numel()));
  std::vector<float> rf(r.size());
  for (size_t i = 0; i < r.size(); ++i) {
    r[i] = 0.5 + philox::uniform(o.seed, i);  // in [0.5, 1.5): no element is ignored
    rf[i] = static_cast<float>(r[i]);
  }
  TRINE_CHECK(out.requires_grad(), "gradcheck: the output does not require grad");
  out.backward(Tensor::from_vector(rf, out.shape(), out.device()));

  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor grad = x.grad();
    std::vector<float> analytic =
        grad.defined() ? grad.to_vector() : std::vector<float>(static_cast<size_t>(x.numel()), 0.f);
    std::vector<float> values = x.to_vector();
    Tensor probe = x.detach();  // shares storage: perturbing it perturbs the input
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float saved = values[i];
      auto eval_at = [&](float v) {
        values[i] = v;
        probe.copy_(Tensor::from_vector(values, x.shape()));
        NoGradGuard ng;
        return project(fn(inputs), r);
      };
      // The step actually taken in float32, not the nominal 2 eps.
      const float hi = static_cast<float>(saved + o.eps), lo = static_cast<float>(saved - o.eps);
      const double up = eval_at(hi), down = eval_at(lo);
      values[i] = saved;
      probe.copy_(Tensor::from_vector(values, x.shape()));
      const double numeric = (up - down) / (static_cast<double>(hi) - static_cast<double>(lo));
      const double err = std::fabs(analytic[i] - numeric);
      // NaN (e.g. the function is undefined at x - eps) fails: nothing was checked there.
      result.max_abs_error = std::isnan(err) ? INFINITY : std::max(result.max_abs_error, err);
      if (!(err <= o.atol + o.rtol * std::fabs(numeric)) || !std::isfinite(analytic[i])) {
        if (result.ok) {
          std::ostringstream os;
          os << "input " << k << " " << x.shape_str() << " element " << i << ": analytic "
             << analytic[i] << ", numeric " << numeric << " (|diff| " << err << ")";
          result.message = os.str();
        }
        result.ok = false;
      }
    }
  }
  return result;
}

}  // namespace trine
