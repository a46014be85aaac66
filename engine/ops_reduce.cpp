// Reductions (sum, mean, max, min, arg-max/min) and their gradients.
#include <algorithm>
#include <numeric>

#include "engine/ops_util.h"

namespace trine {

namespace {

// Sorted, unique, non-negative dims.
std::vector<int64_t> norm_dims(std::vector<int64_t> dims, int64_t rank, const char* op) {
  for (int64_t& d : dims) d = normalize_dim(d, rank, op);
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  return dims;
}

// x's shape with `dims` set to 1.
Shape kept_shape(const Shape& shape, const std::vector<int64_t>& dims) {
  Shape s = shape;
  for (int64_t d : dims) s[d] = 1;
  return s;
}

Shape dropped_shape(const Shape& shape, const std::vector<int64_t>& dims) {
  Shape s;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) s.push_back(shape[i]);
  return s;
}

// Sums over `dims` (no graph), result in keepdim shape.
Tensor sum_forward(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor cur = x;
  Shape shape = x.shape();
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) {
    const int64_t d = *it;
    if (shape[d] == 1) continue;
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < d; ++i) outer *= shape[i];
    for (size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
    shape[d] = 1;
    Tensor out = Tensor::empty(shape, x.device());
    x.backend().reduce(ReduceOp::Sum, cur.data(), out.data(), nullptr, outer, x.shape()[d], inner);
    cur = out;
  }
  if (cur.same(x)) cur = x.detach().clone();  // nothing reduced: still a fresh tensor
  return cur.reshape(shape);
}

Tensor extreme(ReduceOp op, const char* name, const Tensor& x, int64_t dim, bool keepdim,
               Tensor* index_out) {
  detail::check_float(x, name);
  TRINE_CHECK(x.dim() > 0, name, ": needs a dim to reduce; got a scalar");
  const int64_t d = normalize_dim(dim, x.dim(), name);
  TRINE_CHECK(x.shape()[d] > 0, name, ": dim ", dim, " of shape ", x.shape_str(), " is empty");
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.shape()[i];
  Shape kshape = kept_shape(x.shape(), {d});
  Tensor out = Tensor::empty(kshape, x.device());
  Tensor idx = Tensor::empty(kshape, x.device(), DType::I32);
  x.backend().reduce(op, x.data(), out.data(), idx.int_data(), outer, x.shape()[d], inner);
  if (index_out) *index_out = keepdim ? idx : idx.reshape(dropped_shape(x.shape(), {d}));
  Shape xshape = x.shape();
  Tensor result = keepdim ? out : out.reshape(dropped_shape(x.shape(), {d}));
  // Backward: the gradient goes to the arg-max position of each reduced row.
  return record(result, name, {x}, [xshape, idx, d, outer, inner](const Tensor& g) -> Grads {
    Tensor gx = Tensor::zeros(xshape, g.device());
    g.backend().scatter_add(g.data(), outer, xshape[d], inner, idx.int_data(), 1, gx.data());
    return {gx};
  });
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  detail::check_float(x, "sum");
  dims = norm_dims(std::move(dims), x.dim(), "sum");
  Tensor out = sum_forward(x, dims);
  if (!keepdim) out = out.reshape(dropped_shape(x.shape(), dims));
  Shape xshape = x.shape(), kshape = kept_shape(x.shape(), dims);
  return record(out, "sum", {x}, [xshape, kshape](const Tensor& g) -> Grads {
    return {expand(g.reshape(kshape), xshape)};
  });
}

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(static_cast<size_t>(x.dim()));
  std::iota(all.begin(), all.end(), 0);
  return sum(x, all, false);
}

Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  detail::check_float(x, "mean");
  dims = norm_dims(std::move(dims), x.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  TRINE_CHECK(count > 0, "mean: reducing over an empty dim of shape ", x.shape_str());
  return mul_scalar(sum(x, dims, keepdim), 1.f / static_cast<float>(count));
}

Tensor mean(const Tensor& x) {
  TRINE_CHECK(x.numel() > 0, "mean: tensor of shape ", x.shape_str(), " is empty");
  return mul_scalar(sum(x), 1.f / static_cast<float>(x.numel()));
}

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme(ReduceOp::Max, "max", x, dim, keepdim, nullptr);
}
Tensor min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme(ReduceOp::Min, "min", x, dim, keepdim, nullptr);
}
Tensor max(const Tensor& x) {
  return max(x.reshape({-1}), 0, false);
}
Tensor min(const Tensor& x) {
  return min(x.reshape({-1}), 0, false);
}

Tensor max_abs_each(const std::vector<Tensor>& xs) {
  TRINE_CHECK(!xs.empty(), "max_abs_each: no tensors");
  std::vector<const float*> ptrs;
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) {
    const std::string name = "tensor " + std::to_string(ptrs.size());
    detail::check_float(x, "max_abs_each", name.c_str());
    detail::check_same_device(xs[0], x, "max_abs_each");
    ptrs.push_back(x.data());
    sizes.push_back(x.numel());
  }
  Tensor out = Tensor::empty({static_cast<int64_t>(xs.size())}, xs[0].device());
  xs[0].backend().max_abs_each(ptrs, sizes, out.data());
  return out;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor idx;
  NoGradGuard ng;
  extreme(ReduceOp::Max, "argmax", x, dim, keepdim, &idx);
  return idx;
}

Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor idx;
  NoGradGuard ng;
  extreme(ReduceOp::Min, "argmin", x, dim, keepdim, &idx);
  return idx;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  TRINE_CHECK(shape.size() <= x.shape().size(), "sum_to: cannot reduce ", x.shape_str(), " to ",
              shape_str(shape));
  const size_t lead = x.shape().size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead) {
      dims.push_back(static_cast<int64_t>(i));
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      dims.push_back(static_cast<int64_t>(i));
    } else {
      TRINE_CHECK(shape[i - lead] == x.shape()[i], "sum_to: cannot reduce ", x.shape_str(), " to ",
                  shape_str(shape));
    }
  }
  return sum(x, dims, true).reshape(shape);
}

}  // namespace trine
