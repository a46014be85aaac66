// Neural-network ops: conv2d (im2col + one SGEMM per chunk of images), pooling, batch norm and
// dropout, with their gradients.
#include <algorithm>

#include "engine/ops_util.h"
#include "engine/random.h"

namespace trine {

namespace {

ConvGeom conv_geom(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
  TRINE_CHECK(x.dim() == 4, "conv2d: input must be [N,C,H,W], got ", x.shape_str());
  TRINE_CHECK(w.dim() == 4, "conv2d: weight must be [M,C,kh,kw], got ", w.shape_str());
  TRINE_CHECK(x.size(1) == w.size(1), "conv2d: input has ", x.size(1), " channels ", x.shape_str(),
              " but the weight expects ", w.size(1), " ", w.shape_str());
  TRINE_CHECK(o.stride_h >= 1 && o.stride_w >= 1 && o.pad_h >= 0 && o.pad_w >= 0,
              "conv2d: stride must be >= 1 and padding >= 0, got stride ", o.stride_h, "x",
              o.stride_w, " padding ", o.pad_h, "x", o.pad_w);
  ConvGeom g{x.size(1),  x.size(2), x.size(3), w.size(2), w.size(3), o.stride_h,
             o.stride_w, o.pad_h,   o.pad_w,   0,         0};
  g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  TRINE_CHECK(g.H + 2 * g.ph >= g.kh && g.W + 2 * g.pw >= g.kw, "conv2d: kernel ", g.kh, "x", g.kw,
              " is larger than the padded input ", g.H + 2 * g.ph, "x", g.W + 2 * g.pw);
  return g;
}

PoolGeom pool_geom(const Tensor& x, int64_t k, int64_t s, int64_t p, const char* op) {
  TRINE_CHECK(x.dim() == 4, op, ": input must be [N,C,H,W], got ", x.shape_str());
  TRINE_CHECK(k >= 1 && s >= 1 && p >= 0 && 2 * p <= k, op, ": invalid kernel ", k, ", stride ", s,
              ", padding ", p, " (padding must be at most half the kernel)");
  PoolGeom g{x.size(2), x.size(3), k, k, s, s, p, p, 0, 0};
  TRINE_CHECK(g.H + 2 * p >= k && g.W + 2 * p >= k, op, ": kernel ", k,
              " is larger than the padded input of shape ", x.shape_str());
  g.OH = (g.H + 2 * p - k) / s + 1;
  g.OW = (g.W + 2 * p - k) / s + 1;
  return g;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  detail::check_float(x, "conv2d", "input");
  detail::check_float(w, "conv2d", "weight");
  detail::check_same_device(x, w, "conv2d");
  const ConvGeom g = conv_geom(x, w, o);
  const int64_t N = x.size(0), M = w.size(0);
  if (b.defined()) {
    detail::check_float(b, "conv2d", "bias");
    detail::check_same_device(x, b, "conv2d");
    TRINE_CHECK(b.dim() == 1 && b.size(0) == M, "conv2d: bias ", b.shape_str(), " for ", M,
                " output channels");
  }
  Tensor out = Tensor::empty({N, M, g.OH, g.OW}, x.device());
  x.backend().conv2d_forward(x.data(), w.data(), b.defined() ? b.data() : nullptr, g, N, M,
                             out.data());
  if (!any_requires_grad({&x, &w, &b})) return out;
  Tensor xd = x.detach(), wd = w.detach();
  const bool gx_needed = x.requires_grad(), gw_needed = w.requires_grad();
  const bool gb_needed = b.defined() && b.requires_grad();
  return record(out, "conv2d", {x, w, b}, [=](const Tensor& gy) -> Grads {
    Tensor gx = gx_needed ? Tensor::empty(xd.shape(), xd.device()) : Tensor();
    Tensor gw = gw_needed ? Tensor::empty(wd.shape(), wd.device()) : Tensor();
    Tensor gb = gb_needed ? Tensor::empty({M}, gy.device()) : Tensor();
    gy.backend().conv2d_backward(xd.data(), wd.data(), gy.data(), g, N, M,
                                 gx_needed ? gx.data() : nullptr, gw_needed ? gw.data() : nullptr,
                                 gb_needed ? gb.data() : nullptr);
    return {gx, gw, gb};
  });
}

namespace {

Tensor pool2d(PoolKind kind, const char* name, const Tensor& x, int64_t k, int64_t s, int64_t p) {
  detail::check_float(x, name);
  const PoolGeom g = pool_geom(x, k, s == 0 ? k : s, p, name);
  const int64_t planes = x.size(0) * x.size(1);
  Tensor out = Tensor::empty({x.size(0), x.size(1), g.OH, g.OW}, x.device());
  Tensor argmax;
  if (is_max_pool(kind)) argmax = Tensor::empty(out.shape(), x.device(), DType::I32);
  x.backend().pool2d_forward(kind, x.data(), g, planes, out.data(),
                             argmax.defined() ? argmax.int_data() : nullptr);
  Shape xshape = x.shape();
  return record(out, name, {x}, [=](const Tensor& gy) -> Grads {
    Tensor gx = Tensor::empty(xshape, gy.device());
    gy.backend().pool2d_backward(kind, gy.data(), argmax.defined() ? argmax.int_data() : nullptr, g,
                                 planes, gx.data());
    return {gx};
  });
}

}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad) {
  return pool2d(PoolKind::Max, "max_pool2d", x, kernel, stride, pad);
}

Tensor max_pool2d_relu(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad) {
  return pool2d(PoolKind::MaxRelu, "max_pool2d_relu", x, kernel, stride, pad);
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t pad) {
  return pool2d(PoolKind::Avg, "avg_pool2d", x, kernel, stride, pad);
}

Tensor global_avg_pool2d(const Tensor& x) {
  detail::check_float(x, "global_avg_pool2d");
  TRINE_CHECK(x.dim() == 4, "global_avg_pool2d: input must be [N,C,H,W], got ", x.shape_str());
  // H*W spelled out: reshape cannot infer a -1 when the batch is empty.
  return mean(x.reshape({x.size(0), x.size(1), x.size(2) * x.size(3)}), {2});
}

namespace {

// batch_norm, then a fused ReLU when `relu`.
Tensor batch_norm_impl(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       float momentum, float eps, bool relu) {
  detail::check_float(x, "batch_norm");
  TRINE_CHECK(x.dim() == 2 || x.dim() == 4, "batch_norm: input must be [N,C] or [N,C,H,W], got ",
              x.shape_str());
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / std::max<int64_t>(1, N * C);
  // Per-channel parameters broadcast as [1, C, 1] over x viewed as [N, C, HW].
  auto chan = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return t;
    detail::check_float(t, "batch_norm", what);
    detail::check_same_device(x, t, "batch_norm");
    TRINE_CHECK(t.dim() == 1 && t.size(0) == C, "batch_norm: ", what, " of shape ", t.shape_str(),
                " for ", C, " channels");
    return t.reshape({1, C, 1});
  };
  Tensor x3 = x.reshape({N, C, HW});
  Tensor w3 = chan(weight, "weight"), b3 = chan(bias, "bias");
  Tensor rm = chan(running_mean, "running_mean"), rv = chan(running_var, "running_var");
  if (!training) {
    TRINE_CHECK(rm.defined() && rv.defined(), "batch_norm: inference needs running statistics");
    if (!any_requires_grad({&x, &weight, &bias})) {  // one fused pass (embedding, evaluation)
      Tensor out = Tensor::empty(x.shape(), x.device());
      x.backend().batch_norm_inference(x.data(), N, C, HW, running_mean.data(), running_var.data(),
                                       weight.defined() ? weight.data() : nullptr,
                                       bias.defined() ? bias.data() : nullptr, eps, relu,
                                       out.data());
      return out;
    }
    Tensor invstd;
    {
      NoGradGuard ng;
      invstd = reciprocal(sqrt(rv + eps));
    }
    Tensor y = (x3 - rm) * invstd;  // statistics are constants here
    if (w3.defined()) y = y * w3;
    if (b3.defined()) y = y + b3;
    return relu ? trine::relu(y.reshape(x.shape())) : y.reshape(x.shape());
  }
  const int64_t count = N * HW;
  TRINE_CHECK(count > 1, "batch_norm: training needs more than one value per channel, got ",
              x.shape_str());
  // Training: one fused primitive each way; the gradient covers x, weight and bias together.
  Backend& be = x.backend();
  Tensor out = Tensor::empty(x.shape(), x.device());
  Tensor mu = Tensor::empty({C}, x.device()), var = Tensor::empty({C}, x.device());
  Tensor invstd = Tensor::empty({C}, x.device());
  be.batch_norm_forward(x.data(), N, C, HW, weight.defined() ? weight.data() : nullptr,
                        bias.defined() ? bias.data() : nullptr, eps, relu, out.data(), mu.data(),
                        var.data(), invstd.data());
  if (rm.defined() && rv.defined())  // PyTorch: the unbiased variance here
    be.batch_norm_update_running(
        mu.data(), var.data(), C, momentum,
        static_cast<float>(static_cast<double>(count) / static_cast<double>(count - 1)),
        running_mean.data(), running_var.data());
  if (!any_requires_grad({&x, &weight, &bias})) return out;
  Tensor xd = x.detach(), wd = weight.defined() ? weight.detach() : Tensor();
  Tensor yd = relu ? out.detach() : Tensor();  // the ReLU's mask: y > 0
  const bool gx_needed = x.requires_grad();
  const bool gw_needed = weight.defined() && weight.requires_grad();
  const bool gb_needed = bias.defined() && bias.requires_grad();
  const char* name = relu ? "batch_norm_relu" : "batch_norm";
  return record(out, name, {x, weight, bias}, [=](const Tensor& g) -> Grads {
    Tensor gx = gx_needed ? Tensor::empty(xd.shape(), g.device()) : Tensor();
    Tensor gw = gw_needed ? Tensor::empty({C}, g.device()) : Tensor();
    Tensor gb = gb_needed ? Tensor::empty({C}, g.device()) : Tensor();
    g.backend().batch_norm_backward(
        xd.data(), yd.defined() ? yd.data() : nullptr, g.data(), N, C, HW, mu.data(), invstd.data(),
        wd.defined() ? wd.data() : nullptr, gx_needed ? gx.data() : nullptr,
        gw_needed ? gw.data() : nullptr, gb_needed ? gb.data() : nullptr);
    return {gx, gw, gb};
  });
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  float momentum, float eps) {
  return batch_norm_impl(x, weight, bias, running_mean, running_var, training, momentum, eps,
                         false);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       float momentum, float eps) {
  return batch_norm_impl(x, weight, bias, running_mean, running_var, training, momentum, eps, true);
}

Tensor dropout(const Tensor& x, float p, bool training) {
  detail::check_float(x, "dropout");
  TRINE_CHECK(p >= 0.f && p < 1.f, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0.f) return x;
  Tensor mask = Tensor::empty(x.shape(), x.device());
  Generator& gen = default_generator();
  Backend& be = x.backend();
  be.random_uniform(mask.data(), mask.numel(), gen.seed(), gen.advance(mask.numel()));
  {
    NoGradGuard ng;
    // keep = u >= p, scaled by 1/(1-p)
    mask = ge(mask, Tensor::scalar(p, x.device())) * (1.f / (1.f - p));
  }
  return x * mask;
}

}  // namespace trine
