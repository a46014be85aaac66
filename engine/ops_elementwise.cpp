// Elementwise ops with broadcasting, and their gradients.
#include <cmath>

#include "engine/ops_util.h"

namespace trine {

namespace detail {

void check_float(const Tensor& t, const char* op, const char* name) {
  TRINE_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
  TRINE_CHECK(t.dtype() == DType::F32, op, ": ", name, " must be float32, got ",
              dtype_name(t.dtype()));
}

void check_int(const Tensor& t, const char* op, const char* name) {
  TRINE_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
  TRINE_CHECK(t.dtype() == DType::I32, op, ": ", name, " must be int32, got ",
              dtype_name(t.dtype()));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  TRINE_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(),
              " and ", b.device().str(), ")");
}

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_float(a, name, "first operand");
  check_float(b, name, "second operand");
  check_same_device(a, b, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.device());
  a.backend().binary(op, {a.data(), broadcast_strides(a.shape(), shape)},
                     {b.data(), broadcast_strides(b.shape(), shape)}, out.data(), shape);
  return out;
}

Tensor unary_forward(UnaryOp op, const Tensor& x, float p0, float p1) {
  check_float(x, "unary op");
  Tensor out = Tensor::empty(x.shape(), x.device());
  x.backend().unary(op, x.data(), out.data(), x.numel(), p0, p1);
  return out;
}

}  // namespace detail

using detail::binary_forward;
using detail::unary_forward;

namespace {

// Whether f'(x) can be computed from y = f(x) alone (or needs nothing), so the backward keeps
// the output and not the input: ReLU's x > 0 is y > 0. After conv -> batch norm -> ReLU ->
// conv, the batch norm's output is then freed as soon as the ReLU has read it.
bool backward_needs_input(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Exp:
    case UnaryOp::Sqrt:
    case UnaryOp::Relu:
    case UnaryOp::Sigmoid:
    case UnaryOp::Tanh:
    case UnaryOp::AddScalar:
    case UnaryOp::MulScalar:
      return false;
    default:
      return true;
  }
}

// A unary op whose backward is the backend's unary_backward (gx = gy * f'(x)).
Tensor unary(UnaryOp op, const char* name, const Tensor& x, float p0 = 0.f, float p1 = 0.f) {
  detail::check_float(x, name);
  Tensor y = unary_forward(op, x, p0, p1);
  if (!any_requires_grad({&x})) return y;
  Tensor ys = y.detach();
  Tensor xs = backward_needs_input(op) ? x.detach() : ys;  // y stands in for x where it may
  return record(y, name, {x}, [op, xs, ys, p0, p1](const Tensor& g) -> Grads {
    Tensor gx = Tensor::empty(xs.shape(), xs.device());
    xs.backend().unary_backward(op, xs.data(), ys.data(), g.data(), gx.data(), xs.numel(), p0, p1);
    return {gx};
  });
}

}  // namespace

// --------------------------------------------------------------------------------- binary

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Add, a, b, "add");
  Shape sa = a.shape(), sb = b.shape();
  return record(out, "add", {a, b}, [sa, sb](const Tensor& g) -> Grads {
    return {sum_to(g, sa), sum_to(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Sub, a, b, "sub");
  Shape sa = a.shape(), sb = b.shape();
  return record(out, "sub", {a, b}, [sa, sb](const Tensor& g) -> Grads {
    return {sum_to(g, sa), sum_to(neg(g), sb)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Mul, a, b, "mul");
  if (!any_requires_grad({&a, &b})) return out;
  Tensor ad = a.detach(), bd = b.detach();
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, "mul", {a, b}, [ad, bd, ga, gb](const Tensor& g) -> Grads {
    return {ga ? sum_to(g * bd, ad.shape()) : Tensor(), gb ? sum_to(g * ad, bd.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Div, a, b, "div");
  if (!any_requires_grad({&a, &b})) return out;
  Tensor ad = a.detach(), bd = b.detach();
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, "div", {a, b}, [ad, bd, ga, gb](const Tensor& g) -> Grads {
    Tensor gda = ga ? sum_to(g / bd, ad.shape()) : Tensor();
    Tensor gdb = gb ? sum_to(neg(g * ad / square(bd)), bd.shape()) : Tensor();
    return {gda, gdb};
  });
}

namespace {
// max/min: the gradient goes to a where `a_wins` (a >= b for max), else to b.
Tensor select_binary(BinaryOp op, BinaryOp a_wins, const char* name, const Tensor& a,
                     const Tensor& b) {
  Tensor out = binary_forward(op, a, b, name);
  if (!any_requires_grad({&a, &b})) return out;
  Tensor ad = a.detach(), bd = b.detach();
  return record(out, name, {a, b}, [ad, bd, a_wins](const Tensor& g) -> Grads {
    Tensor mask = binary_forward(a_wins, ad, bd, "max/min backward");
    return {sum_to(g * mask, ad.shape()), sum_to(g * (1.f - mask), bd.shape())};
  });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return select_binary(BinaryOp::Max, BinaryOp::Ge, "maximum", a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return select_binary(BinaryOp::Min, BinaryOp::Le, "minimum", a, b);
}

Tensor eq(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Eq, a, b, "eq");
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Ne, a, b, "ne");
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Lt, a, b, "lt");
}
Tensor le(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Le, a, b, "le");
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Gt, a, b, "gt");
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Ge, a, b, "ge");
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_float(cond, "where", "condition");
  detail::check_float(a, "where", "first operand");
  detail::check_float(b, "where", "second operand");
  detail::check_same_device(cond, a, "where");
  detail::check_same_device(a, b, "where");
  Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor c = expand(cond.detach(), shape);
  Tensor ea = expand(a.detach(), shape), eb = expand(b.detach(), shape);
  Tensor out = Tensor::empty(shape, a.device());
  a.backend().where(c.data(), ea.data(), eb.data(), out.data(), out.numel());
  if (!any_requires_grad({&a, &b})) return out;
  Shape sa = a.shape(), sb = b.shape();
  return record(out, "where", {a, b}, [c, sa, sb](const Tensor& g) -> Grads {
    Tensor zero = Tensor::zeros({}, g.device());
    return {sum_to(where(c, g, zero), sa), sum_to(where(c, zero, g), sb)};
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, float value) {
  return where(mask, Tensor::full({}, value, x.device()), x);
}

// --------------------------------------------------------------------------------- unary

Tensor add_scalar(const Tensor& x, float s) {
  return unary(UnaryOp::AddScalar, "add_scalar", x, s);
}
Tensor mul_scalar(const Tensor& x, float s) {
  return unary(UnaryOp::MulScalar, "mul_scalar", x, s);
}
Tensor neg(const Tensor& x) {
  return unary(UnaryOp::Neg, "neg", x);
}
Tensor exp(const Tensor& x) {
  return unary(UnaryOp::Exp, "exp", x);
}
Tensor log(const Tensor& x) {
  return unary(UnaryOp::Log, "log", x);
}
Tensor sqrt(const Tensor& x) {
  return unary(UnaryOp::Sqrt, "sqrt", x);
}
Tensor abs(const Tensor& x) {
  return unary(UnaryOp::Abs, "abs", x);
}
Tensor square(const Tensor& x) {
  return unary(UnaryOp::Square, "square", x);
}
Tensor reciprocal(const Tensor& x) {
  return unary(UnaryOp::Recip, "reciprocal", x);
}
Tensor pow(const Tensor& x, float p) {
  return unary(UnaryOp::Pow, "pow", x, p);
}
Tensor clamp(const Tensor& x, float lo, float hi) {
  TRINE_CHECK(!(lo > hi), "clamp: lower bound ", lo, " is above upper bound ", hi);
  return unary(UnaryOp::Clamp, "clamp", x, lo, hi);
}
Tensor clamp_min(const Tensor& x, float lo) {
  return clamp(x, lo, INFINITY);
}
Tensor relu(const Tensor& x) {
  return unary(UnaryOp::Relu, "relu", x);
}
Tensor leaky_relu(const Tensor& x, float slope) {
  return unary(UnaryOp::LeakyRelu, "leaky_relu", x, slope);
}
Tensor sigmoid(const Tensor& x) {
  return unary(UnaryOp::Sigmoid, "sigmoid", x);
}
Tensor tanh(const Tensor& x) {
  return unary(UnaryOp::Tanh, "tanh", x);
}
Tensor softplus(const Tensor& x) {
  return unary(UnaryOp::Softplus, "softplus", x);
}

// --------------------------------------------------------------------------------- operators

Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
Tensor operator-(const Tensor& a) {
  return neg(a);
}
Tensor operator+(const Tensor& a, float b) {
  return add_scalar(a, b);
}
Tensor operator-(const Tensor& a, float b) {
  return add_scalar(a, -b);
}
Tensor operator*(const Tensor& a, float b) {
  return mul_scalar(a, b);
}
Tensor operator/(const Tensor& a, float b) {
  return mul_scalar(a, 1.f / b);
}
Tensor operator+(float a, const Tensor& b) {
  return add_scalar(b, a);
}
Tensor operator-(float a, const Tensor& b) {
  return add_scalar(neg(b), a);
}
Tensor operator*(float a, const Tensor& b) {
  return mul_scalar(b, a);
}

}  // namespace trine
