// Tensor: storage, creation, data access, in-place updates, printing.
#include "engine/tensor.h"

#include <cmath>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace trine {

const char* dtype_name(DType t) {
  return t == DType::F32 ? "float32" : "int32";
}

Storage::Storage(Device d, size_t n) : device(d), bytes(n), ptr(nullptr) {
  ptr = backend_for(device).allocate(std::max<size_t>(bytes, 1));
}

Storage::~Storage() {
  backend_for(device).deallocate(ptr, bytes);
}

// ---------------------------------------------------------------------------------- creation

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  for (int64_t d : shape)
    TRINE_CHECK(d >= 0, "cannot create a tensor of shape ", trine::shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(device, static_cast<size_t>(numel_of(shape)) * 4);
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.backend().fill(t.data(), t.numel(), value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, Device device) {
  return full(shape, 0.f, device);
}
Tensor Tensor::ones(const Shape& shape, Device device) {
  return full(shape, 1.f, device);
}
Tensor Tensor::scalar(float value, Device device) {
  return full({}, value, device);
}

Tensor Tensor::from_vector(const std::vector<float>& data, const Shape& shape, Device device) {
  TRINE_CHECK(static_cast<int64_t>(data.size()) == numel_of(shape), "from_vector: ", data.size(),
              " values for shape ", trine::shape_str(shape), " (", numel_of(shape), " elements)");
  Tensor t = empty(shape, device);
  t.backend().copy_from_host(t.data(), data.data(), data.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& data) {
  return from_vector(data, {static_cast<int64_t>(data.size())});
}

Tensor Tensor::from_ints(const std::vector<int32_t>& data, Device device) {
  Tensor t = empty({static_cast<int64_t>(data.size())}, device, DType::I32);
  t.backend().copy_from_host(t.int_data(), data.data(), data.size() * sizeof(int32_t));
  return t;
}

Tensor Tensor::arange(int64_t n, Device device) {
  TRINE_CHECK(n >= 0, "arange: length must be >= 0, got ", n);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return from_vector(v, {n}, device);
}

Tensor Tensor::rand(const Shape& shape, float lo, float hi, Device device) {
  Tensor t = empty(shape, device);
  Generator& g = default_generator();
  t.backend().random_uniform(t.data(), t.numel(), g.seed(), g.advance(t.numel()));
  if (lo != 0.f || hi != 1.f) {
    Backend& be = t.backend();
    be.unary(UnaryOp::MulScalar, t.data(), t.data(), t.numel(), hi - lo, 0);
    be.unary(UnaryOp::AddScalar, t.data(), t.data(), t.numel(), lo, 0);
  }
  return t;
}

Tensor Tensor::randn(const Shape& shape, float mean, float std, Device device) {
  Tensor t = empty(shape, device);
  Generator& g = default_generator();
  t.backend().random_normal(t.data(), t.numel(), g.seed(), g.advance(t.numel()));
  if (mean != 0.f || std != 1.f) {
    Backend& be = t.backend();
    be.unary(UnaryOp::MulScalar, t.data(), t.data(), t.numel(), std, 0);
    be.unary(UnaryOp::AddScalar, t.data(), t.data(), t.numel(), mean, 0);
  }
  return t;
}

// ---------------------------------------------------------------------------------- metadata

const TensorImpl& Tensor::checked() const {
  TRINE_CHECK(impl_, "use of an undefined tensor");
  return *impl_;
}
const Shape& Tensor::shape() const {
  return checked().shape;
}
const Shape& Tensor::strides() const {
  return checked().strides;
}
int64_t Tensor::size(int64_t d) const {
  return shape()[normalize_dim(d, dim(), "size")];
}
int64_t Tensor::numel() const {
  return numel_of(shape());
}
Device Tensor::device() const {
  return checked().storage->device;
}
DType Tensor::dtype() const {
  return checked().dtype;
}
Backend& Tensor::backend() const {
  return backend_for(device());
}
std::string Tensor::shape_str() const {
  return trine::shape_str(shape());
}

float* Tensor::data() const {
  const TensorImpl& i = checked();
  TRINE_CHECK(i.dtype == DType::F32, "data(): tensor is ", dtype_name(i.dtype), ", not float32");
  return static_cast<float*>(i.storage->ptr) + i.offset;
}

int32_t* Tensor::int_data() const {
  const TensorImpl& i = checked();
  TRINE_CHECK(i.dtype == DType::I32, "int_data(): tensor is ", dtype_name(i.dtype), ", not int32");
  return static_cast<int32_t*>(i.storage->ptr) + i.offset;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  backend().copy_to_host(v.data(), data(), v.size() * sizeof(float));
  return v;
}

std::vector<int32_t> Tensor::to_int_vector() const {
  std::vector<int32_t> v(static_cast<size_t>(numel()));
  backend().copy_to_host(v.data(), int_data(), v.size() * sizeof(int32_t));
  return v;
}

float Tensor::item() const {
  TRINE_CHECK(numel() == 1, "item(): tensor of shape ", shape_str(), " has ", numel(),
              " elements, not 1");
  return to_vector()[0];
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor out = empty(shape(), target, dtype());
  const size_t bytes = static_cast<size_t>(numel()) * 4;
  void* src = static_cast<char*>(checked().storage->ptr) + checked().offset * 4;
  if (device().is_cpu()) {
    out.backend().copy_from_host(out.impl()->storage->ptr, src, bytes);
  } else if (target.is_cpu()) {
    backend().copy_to_host(out.impl()->storage->ptr, src, bytes);
  } else {  // between GPUs: through the host
    std::vector<char> host(bytes);
    backend().copy_to_host(host.data(), src, bytes);
    out.backend().copy_from_host(out.impl()->storage->ptr, host.data(), bytes);
  }
  if (dtype() != DType::F32) return out;
  const Device from = device();
  return record(out, "to", {*this}, [from](const Tensor& g) -> Grads { return {g.to(from)}; });
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), device(), dtype());
  backend().copy(out.impl()->storage->ptr,
                 static_cast<char*>(checked().storage->ptr) + checked().offset * 4,
                 static_cast<size_t>(numel()) * 4);
  if (dtype() != DType::F32) return out;
  return record(out, "clone", {*this}, [](const Tensor& g) -> Grads { return {g}; });
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::to_float() const {
  TRINE_CHECK(dtype() == DType::I32, "to_float(): tensor is already float32");
  Tensor out = empty(shape(), device());
  backend().cast_i32_to_f32(int_data(), out.data(), numel());
  return out;
}

Tensor Tensor::to_int() const {
  Tensor out = empty(shape(), device(), DType::I32);
  backend().cast_f32_to_i32(data(), out.int_data(), numel());
  return out;
}

// ---------------------------------------------------------------------------------- in place

Tensor& Tensor::fill_(float value) {
  backend().fill(data(), numel(), value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  TRINE_CHECK(src.shape() == shape(), "copy_: source of shape ", src.shape_str(),
              " into a tensor of shape ", shape_str());
  TRINE_CHECK(src.dtype() == dtype(), "copy_: source is ", dtype_name(src.dtype()), ", target ",
              dtype_name(dtype()));
  Tensor s = src.detach().to(device());
  backend().copy(static_cast<char*>(checked().storage->ptr) + impl_->offset * 4,
                 static_cast<char*>(s.impl()->storage->ptr) + s.impl()->offset * 4,
                 static_cast<size_t>(numel()) * 4);
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, float alpha) {
  TRINE_CHECK(other.shape() == shape(), "add_: shapes ", shape_str(), " and ", other.shape_str());
  TRINE_CHECK(other.device() == device(), "add_: tensors on different devices (", device().str(),
              " and ", other.device().str(), ")");
  Tensor o = other.detach();
  if (alpha != 1.f) {
    NoGradGuard ng;
    o = mul_scalar(o, alpha);
  }
  const Shape strides = contiguous_strides(shape());
  backend().binary(BinaryOp::Add, {data(), strides}, {o.data(), strides}, data(), shape());
  return *this;
}

Tensor& Tensor::mul_(float value) {
  backend().unary(UnaryOp::MulScalar, data(), data(), numel(), value, 0);
  return *this;
}

// ---------------------------------------------------------------------------------- autograd

bool Tensor::requires_grad() const {
  return checked().requires_grad;
}

Tensor& Tensor::set_requires_grad(bool value) {
  TRINE_CHECK(!checked().grad_fn,
              "set_requires_grad: only leaf tensors can be changed; this one "
              "was computed by '",
              impl_->grad_fn->op(), "' (use detach())");
  TRINE_CHECK(!value || dtype() == DType::F32, "set_requires_grad: int32 tensors have no gradient");
  impl_->requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const {
  return Tensor(checked().grad);
}

void Tensor::set_grad(const Tensor& g) {
  TRINE_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient of shape ", g.shape_str(),
              " for a tensor of shape ", shape_str());
  TRINE_CHECK(!g.defined() || g.device() == device(), "set_grad: gradient on ", g.device().str(),
              " for a tensor on ", device().str());
  impl_->grad = g.defined() ? g.impl() : nullptr;
}

void Tensor::zero_grad() {
  checked(), impl_->grad = nullptr;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  return checked().grad_fn;
}
bool Tensor::is_leaf() const {
  return !checked().grad_fn;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  run_backward(*this, grad, retain_graph);
}

Tensor Tensor::reshape(const Shape& s) const {
  return trine::reshape(*this, s);
}
Tensor Tensor::flatten(int64_t start, int64_t end) const {
  return trine::flatten(*this, start, end);
}
Tensor Tensor::t() const {
  return trine::transpose(*this, 0, 1);
}
Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  return trine::slice(*this, d, start, end);
}
Tensor Tensor::sum() const {
  return trine::sum(*this);
}
Tensor Tensor::mean() const {
  return trine::mean(*this);
}

// ---------------------------------------------------------------------------------- printing

namespace {
void print_rec(std::ostream& os, const std::vector<float>& v, const Shape& shape,
               const Shape& strides, size_t d, int64_t off, int indent) {
  const int64_t n = shape[d];
  const int64_t edge = 3;  // shown at each end of a long dim
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * edge && i == edge) {
      os << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - edge - 1;
      continue;
    }
    if (d + 1 == shape.size()) {
      os << v[off + i * strides[d]];
    } else {
      print_rec(os, v, shape, strides, d + 1, off + i * strides[d], indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << ']';
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << std::setprecision(4) << std::fixed << "tensor(";
  if (dtype() == DType::I32) {
    std::vector<int32_t> iv = to_int_vector();
    std::vector<float> v(iv.begin(), iv.end());
    os << std::setprecision(0);
    if (dim() == 0)
      os << v[0];
    else
      print_rec(os, v, shape(), strides(), 0, 0, 7);
  } else {
    std::vector<float> v = to_vector();
    if (dim() == 0)
      os << v[0];
    else
      print_rec(os, v, shape(), strides(), 0, 0, 7);
  }
  os << ", shape=" << shape_str();
  if (dtype() != DType::F32) os << ", dtype=" << dtype_name(dtype());
  if (!device().is_cpu()) os << ", device=" << device().str();
  if (grad_fn())
    os << ", grad_fn=" << grad_fn()->op();
  else if (requires_grad())
    os << ", requires_grad";
  os << ')';
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.str();
}

}  // namespace trine
