// Tensor: a cheap, reference-counted handle to an n-dimensional float32 (or int32) array on a
// device, with the autograd fields (requires_grad, grad, grad_fn).
//
// Storage is always row-major; `strides()` are the contiguous ones and a tensor may start at an
// offset into shared storage (reshape and leading-dimension slices are views). Copying a Tensor
// copies the handle, not the data: use clone() for a deep copy.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/shape.h"

namespace trine {

class Node;
class Backend;

enum class DType : uint8_t { F32, I32 };
const char* dtype_name(DType t);

// Device memory owned by one or more tensors; returned to the backend's cache when released.
struct Storage {
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Device device;
  size_t bytes;
  void* ptr;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (uninitialized, constant, from host data, random)
  static Tensor empty(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor scalar(float value, Device device = Device::cpu());
  // Throws when data.size() != numel(shape).
  static Tensor from_vector(const std::vector<float>& data, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor from_vector(const std::vector<float>& data);  // 1-D
  static Tensor from_ints(const std::vector<int32_t>& data, Device device = Device::cpu());
  // 0, 1, ..., n-1 as float.
  static Tensor arange(int64_t n, Device device = Device::cpu());
  // Uniform in [lo, hi) and normal(mean, std), drawn from the global generator (see random.h).
  static Tensor rand(const Shape& shape, float lo = 0.f, float hi = 1.f,
                     Device device = Device::cpu());
  static Tensor randn(const Shape& shape, float mean = 0.f, float std = 1.f,
                      Device device = Device::cpu());

  // ---- metadata
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  Device device() const;
  DType dtype() const;
  Backend& backend() const;
  std::string shape_str() const;

  // ---- data. data()/int_data() are raw pointers on the tensor's device.
  float* data() const;
  int32_t* int_data() const;
  std::vector<float> to_vector() const;        // any device; copies to the host
  std::vector<int32_t> to_int_vector() const;  // I32 tensors
  float item() const;                          // one-element tensors only
  Tensor to(Device device) const;              // differentiable copy (same tensor if same device)
  Tensor clone() const;                        // deep copy, keeps the graph (differentiable)
  Tensor detach() const;                       // shares data, no graph
  Tensor to_float() const;                     // I32 -> F32 copy
  Tensor to_int() const;                       // F32 -> I32: toward zero, saturating, NaN -> 0

  // ---- in-place, never recorded by autograd (optimizers, initialisation, accumulation)
  Tensor& fill_(float value);
  Tensor& zero_() { return fill_(0.f); }
  Tensor& copy_(const Tensor& src);  // same shape; any devices
  Tensor& add_(const Tensor& other, float alpha = 1.f);
  Tensor& mul_(float value);

  // ---- autograd
  bool requires_grad() const;
  Tensor& set_requires_grad(bool value);  // leaves only
  Tensor grad() const;                    // undefined until a backward reaches this tensor
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const;
  // Backpropagates from this tensor: a scalar, or any shape with `grad` of that shape. Frees the
  // graph's saved tensors unless retain_graph.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // ---- shape helpers (differentiable; see ops.h for the rest)
  Tensor reshape(const Shape& shape) const;  // one dim may be -1
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor t() const;  // 2-D transpose
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;
  Tensor sum() const;
  Tensor mean() const;

  // Readable printing: values (elided beyond a few per dim), shape, device, grad_fn.
  std::string str() const;

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Arithmetic operators (differentiable, broadcasting); defined in ops.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, float b);
Tensor operator-(const Tensor& a, float b);
Tensor operator*(const Tensor& a, float b);
Tensor operator/(const Tensor& a, float b);
Tensor operator+(float a, const Tensor& b);
Tensor operator-(float a, const Tensor& b);
Tensor operator*(float a, const Tensor& b);

}  // namespace trine
