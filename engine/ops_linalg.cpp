// Matrix products (all through Backend::gemm), linear layers' op, L2 normalization and the
// pairwise Euclidean distance matrix, with their gradients.
#include <cmath>

#include "engine/ops_util.h"

namespace trine {

namespace {

// op(a) @ op(b) for 2-D a, b without recording a graph; op = transpose when the flag is set.
Tensor mm(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const int64_t m = ta ? a.size(1) : a.size(0), k = ta ? a.size(0) : a.size(1);
  const int64_t n = tb ? b.size(0) : b.size(1);
  Tensor out = Tensor::empty({m, n}, a.device());
  a.backend().gemm(ta, tb, m, n, k, 1.f, a.data(), a.size(1), b.data(), b.size(1), 0.f, out.data(),
                   n);
  return out;
}

// Batched version over 3-D tensors [B, rows, cols].
Tensor bmm(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const int64_t batch = a.size(0);
  const int64_t m = ta ? a.size(2) : a.size(1), k = ta ? a.size(1) : a.size(2);
  const int64_t n = tb ? b.size(1) : b.size(2);
  Tensor out = Tensor::empty({batch, m, n}, a.device());
  a.backend().gemm_batched(ta, tb, m, n, k, 1.f, a.data(), a.size(2), a.size(1) * a.size(2),
                           b.data(), b.size(2), b.size(1) * b.size(2), 0.f, out.data(), n, m * n,
                           batch);
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_float(a, "matmul", "left operand");
  detail::check_float(b, "matmul", "right operand");
  detail::check_same_device(a, b, "matmul");
  if (a.dim() == 2 && b.dim() == 2) {
    TRINE_CHECK(a.size(1) == b.size(0), "matmul: shapes ", a.shape_str(), " and ", b.shape_str(),
                " do not match (", a.size(1), " != ", b.size(0), ")");
    Tensor out = mm(a, false, b, false);
    Tensor ad = a.detach(), bd = b.detach();
    bool ga = a.requires_grad(), gb = b.requires_grad();
    return record(out, "matmul", {a, b}, [ad, bd, ga, gb](const Tensor& g) -> Grads {
      return {ga ? mm(g, false, bd, true) : Tensor(), gb ? mm(ad, true, g, false) : Tensor()};
    });
  }
  if (a.dim() == 3 && b.dim() == 2) {  // [B,m,k] @ [k,n]: one GEMM over B*m rows
    TRINE_CHECK(a.size(2) == b.size(0), "matmul: shapes ", a.shape_str(), " and ", b.shape_str(),
                " do not match");
    return matmul(a.reshape({-1, a.size(2)}), b).reshape({a.size(0), a.size(1), b.size(1)});
  }
  TRINE_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1),
              "matmul: unsupported or mismatched shapes ", a.shape_str(), " and ", b.shape_str(),
              " (supported: [m,k]@[k,n], [B,m,k]@[k,n], [B,m,k]@[B,k,n])");
  Tensor out = bmm(a, false, b, false);
  Tensor ad = a.detach(), bd = b.detach();
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, "bmm", {a, b}, [ad, bd, ga, gb](const Tensor& g) -> Grads {
    return {ga ? bmm(g, false, bd, true) : Tensor(), gb ? bmm(ad, true, g, false) : Tensor()};
  });
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  detail::check_float(x, "linear", "input");
  detail::check_float(w, "linear", "weight");
  detail::check_same_device(x, w, "linear");
  TRINE_CHECK(w.dim() == 2 && x.dim() == 2 && x.size(1) == w.size(1), "linear: input ",
              x.shape_str(), " does not match weight ", w.shape_str(), " ([out, in])");
  const int64_t n = x.size(0), in = x.size(1), out_f = w.size(0);
  Tensor out = Tensor::empty({n, out_f}, x.device());
  float beta = 0.f;
  if (b.defined()) {
    detail::check_float(b, "linear", "bias");
    detail::check_same_device(x, b, "linear");
    TRINE_CHECK(b.dim() == 1 && b.size(0) == out_f, "linear: bias ", b.shape_str(),
                " does not match weight ", w.shape_str());
    x.backend().copy_strided(b.data(), {0, 1}, out.data(), out.strides(), out.shape());
    beta = 1.f;
  }
  x.backend().gemm(false, true, n, out_f, in, 1.f, x.data(), in, w.data(), in, beta, out.data(),
                   out_f);
  Tensor xd = x.detach(), wd = w.detach();
  bool gx = x.requires_grad(), gw = w.requires_grad();
  return record(out, "linear", {x, w, b}, [xd, wd, gx, gw](const Tensor& g) -> Grads {
    return {gx ? mm(g, false, wd, false) : Tensor(), gw ? mm(g, true, xd, false) : Tensor(),
            sum(g, {0})};
  });
}

Tensor l2_normalize(const Tensor& x, int64_t dim, float eps) {
  detail::check_float(x, "l2_normalize");
  const int64_t d = normalize_dim(dim, x.dim(), "l2_normalize");
  Tensor norm, clamped, y;
  {
    NoGradGuard ng;
    norm = sqrt(sum(square(x), {d}, true));
    clamped = clamp_min(norm, eps);
    y = x / clamped;
  }
  // d/dx (x / n) = (g - y <g, y>) / n where n > eps; g / eps where the norm was clamped.
  Tensor yd = y.detach();
  return record(y, "l2_normalize", {x}, [yd, norm, clamped, d, eps](const Tensor& g) -> Grads {
    Tensor active = gt(norm, Tensor::scalar(eps, norm.device()));
    Tensor dot = sum(g * yd, {d}, true) * active;
    return {(g - yd * dot) / clamped};
  });
}

Tensor pairwise_distance(const Tensor& a, const Tensor& b, bool squared, bool centred) {
  detail::check_float(a, "pairwise_distance", "first operand");
  detail::check_float(b, "pairwise_distance", "second operand");
  detail::check_same_device(a, b, "pairwise_distance");
  TRINE_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1),
              "pairwise_distance: expected [n,d] and [m,d], got ", a.shape_str(), " and ",
              b.shape_str());
  const int64_t n = a.size(0), m = b.size(0), dim = a.size(1);
  Backend& be = a.backend();
  Tensor out = Tensor::empty({n, m}, a.device());
  // Distances do not change when both sets move by one vector, so when `centred` both move by
  // the mean of a's rows: |a|^2 + |b|^2 - 2 a.b then cancels far less for close points far from
  // the origin, and the backward formulas below hold for the moved values just the same.
  Tensor ac, bc;
  {
    NoGradGuard ng;
    if (centred) {
      Tensor centre = n > 0 ? mean(a.detach(), {0}, true) : Tensor::zeros({1, dim}, a.device());
      ac = a.detach() - centre;
      bc = a.same(b) ? ac : b.detach() - centre;
    } else {
      ac = a.detach();
      bc = b.detach();
    }
    Tensor na = sum(square(ac), {1}, true);  // [n,1]
    Tensor nb = a.same(b) ? na.reshape({1, n}) : sum(square(bc), {1}).reshape({1, m});
    be.binary(BinaryOp::Add, {na.data(), {1, 0}}, {nb.data(), {0, 1}}, out.data(), {n, m});
    be.gemm(false, true, n, m, dim, -2.f, ac.data(), dim, bc.data(), dim, 1.f, out.data(), m);
    be.unary(UnaryOp::Clamp, out.data(), out.data(), out.numel(), 0.f, INFINITY);
    if (a.same(b)) {  // d(x, x) = 0 exactly, whatever the rounding of the three terms
      Tensor z = Tensor::scalar(0.f, a.device());
      be.copy_strided(z.data(), {0}, out.data(), {m + 1}, {n});
    }
    if (!squared) be.unary(UnaryOp::Sqrt, out.data(), out.data(), out.numel(), 0, 0);
  }
  if (!any_requires_grad({&a, &b})) return out;
  Tensor ad = ac, bd = bc, dd = out.detach();
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, "pairwise_distance", {a, b}, [=](const Tensor& g) -> Grads {
    // w = dL/d(d^2); zero where the distance is 0, where sqrt has no finite derivative.
    Tensor w = squared ? g
                       : where(gt(dd, Tensor::scalar(0.f, g.device())), g / (dd * 2.f),
                               Tensor::scalar(0.f, g.device()));
    // d^2_ij = |a_i|^2 + |b_j|^2 - 2 a_i.b_j:  dA = 2 (rowsum(w) a - w b), dB = 2 (colsum(w) b -
    // w^T a).
    Tensor grad_a, grad_b;
    if (ga) grad_a = (sum(w, {1}, true) * ad - mm(w, false, bd, false)) * 2.f;
    if (gb) grad_b = (sum(w, {0}).reshape({m, 1}) * bd - mm(w, true, ad, false)) * 2.f;
    return {grad_a, grad_b};
  });
}

}  // namespace trine
