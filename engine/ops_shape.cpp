// Shape ops: views (reshape, flatten, squeeze), copies (transpose, permute, expand, concat,
// slice) and indexing (index_select, gather), with their gradients.
#include <algorithm>
#include <numeric>

#include "engine/ops_util.h"

namespace trine {

namespace {

// A view of x's storage with another shape, starting `offset` elements further in.
Tensor view_of(const Tensor& x, const Shape& shape, int64_t offset = 0) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl()->storage;
  impl->offset = x.impl()->offset + offset;
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = x.dtype();
  return Tensor(std::move(impl));
}

// Splits x's shape around `dim` into [outer, n, inner].
void around(const Shape& s, int64_t dim, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= s[i];
  n = s[dim];
  for (size_t i = dim + 1; i < s.size(); ++i) inner *= s[i];
}

void check_index_range(const Tensor& index, int64_t n, const char* op) {
  // On a GPU this would cost a copy to the host and a wait per op; its kernels read an index
  // outside [0, n) as naming no element instead (backend.h).
  if (!index.device().is_cpu()) return;
  const int32_t* p = index.int_data();
  for (int64_t i = 0; i < index.numel(); ++i)
    TRINE_CHECK(p[i] >= 0 && p[i] < n, op, ": index ", p[i], " at position ", i,
                " is out of range for a dim of size ", n);
}

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TRINE_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      TRINE_CHECK(shape[i] >= 0, "reshape: negative size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    TRINE_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot view ", x.shape_str(), " as ",
                shape_str(shape));
    shape[infer] = x.numel() / known;
  }
  TRINE_CHECK(numel_of(shape) == x.numel(), "reshape: cannot view ", x.shape_str(), " (", x.numel(),
              " elements) as ", shape_str(shape));
  Tensor out = view_of(x, shape);
  if (x.dtype() != DType::F32) return out;
  Shape xshape = x.shape();
  return record(out, "reshape", {x},
                [xshape](const Tensor& g) -> Grads { return {g.reshape(xshape)}; });
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return x.reshape({1});
  const int64_t s = normalize_dim(start_dim, x.dim(), "flatten");
  const int64_t e = normalize_dim(end_dim, x.dim(), "flatten");
  TRINE_CHECK(s <= e, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int64_t i = s; i <= e; ++i) merged *= x.shape()[i];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return x.reshape(shape);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + d, 1);
  return x.reshape(shape);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.dim(), "squeeze");
  TRINE_CHECK(x.shape()[d] == 1, "squeeze: dim ", dim, " of shape ", x.shape_str(),
              " is not of size 1");
  Shape shape = x.shape();
  shape.erase(shape.begin() + d);
  return x.reshape(shape);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  detail::check_float(x, "permute");
  TRINE_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), "permute: ", dims.size(),
              " dims for a tensor of rank ", x.dim());
  std::vector<int64_t> perm(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    perm[i] = normalize_dim(dims[i], x.dim(), "permute");
    TRINE_CHECK(!seen[perm[i]], "permute: dim ", dims[i], " repeated");
    seen[perm[i]] = true;
    inverse[perm[i]] = static_cast<int64_t>(i);
  }
  Shape shape(dims.size()), src_strides(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    shape[i] = x.shape()[perm[i]];
    src_strides[i] = x.strides()[perm[i]];
  }
  Tensor out = Tensor::empty(shape, x.device());
  x.backend().copy_strided(x.data(), src_strides, out.data(), out.strides(), shape);
  return record(out, "permute", {x},
                [inverse](const Tensor& g) -> Grads { return {permute(g, inverse)}; });
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_dim(dim0, x.dim(), "transpose")],
            dims[normalize_dim(dim1, x.dim(), "transpose")]);
  return permute(x, dims);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  detail::check_float(x, "expand");
  if (x.shape() == shape) return x;
  Shape b = broadcast_shapes(x.shape(), shape, "expand");
  TRINE_CHECK(b == shape, "expand: cannot expand ", x.shape_str(), " to ", shape_str(shape));
  Tensor out = Tensor::empty(shape, x.device());
  x.backend().copy_strided(x.data(), broadcast_strides(x.shape(), shape), out.data(), out.strides(),
                           shape);
  Shape xshape = x.shape();
  return record(out, "expand", {x},
                [xshape](const Tensor& g) -> Grads { return {sum_to(g, xshape)}; });
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  TRINE_CHECK(!xs.empty(), "concat: no tensors");
  detail::check_float(xs[0], "concat");
  const int64_t d = normalize_dim(dim, xs[0].dim(), "concat");
  Shape shape = xs[0].shape();
  shape[d] = 0;
  for (const Tensor& x : xs) {
    detail::check_float(x, "concat");
    detail::check_same_device(x, xs[0], "concat");
    bool ok = x.dim() == xs[0].dim();
    for (int64_t i = 0; ok && i < x.dim(); ++i) ok = i == d || x.shape()[i] == xs[0].shape()[i];
    TRINE_CHECK(ok, "concat: shape ", x.shape_str(), " does not match ", xs[0].shape_str(),
                " outside dim ", d);
    shape[d] += x.shape()[d];
  }
  Tensor out = Tensor::empty(shape, xs[0].device());
  const Shape out_strides = out.strides();
  int64_t at = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) {
    x.backend().copy_strided(x.data(), x.strides(), out.data() + at * out_strides[d], out_strides,
                             x.shape());
    at += x.shape()[d];
    sizes.push_back(x.shape()[d]);
  }
  return record(out, "concat", xs, [sizes, d](const Tensor& g) -> Grads {
    Grads grads;
    int64_t start = 0;
    for (int64_t s : sizes) {
      grads.push_back(slice(g, d, start, start + s));
      start += s;
    }
    return grads;
  });
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  detail::check_float(x, "slice");
  const int64_t d = normalize_dim(dim, x.dim(), "slice");
  const int64_t n = x.shape()[d];
  TRINE_CHECK(step >= 1, "slice: step must be positive, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = x.shape();
  shape[d] = (end - start + step - 1) / step;
  Tensor out;
  bool contiguous = step == 1;
  for (int64_t i = 0; i < d && contiguous; ++i) contiguous = x.shape()[i] == 1;
  if (contiguous) {
    out = view_of(x, shape, start * x.strides()[d]);
  } else {
    out = Tensor::empty(shape, x.device());
    Shape src = x.strides();
    src[d] *= step;
    x.backend().copy_strided(x.data() + start * x.strides()[d], src, out.data(), out.strides(),
                             shape);
  }
  Shape xshape = x.shape();
  return record(out, "slice", {x}, [xshape, d, start, step, shape](const Tensor& g) -> Grads {
    Tensor gx = Tensor::zeros(xshape, g.device());
    Shape dst = gx.strides();
    const int64_t base = start * dst[d];
    dst[d] *= step;
    g.backend().copy_strided(g.data(), g.strides(), gx.data() + base, dst, shape);
    return {gx};
  });
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_float(x, "index_select");
  detail::check_int(index, "index_select");
  detail::check_same_device(x, index, "index_select");
  TRINE_CHECK(index.dim() == 1, "index_select: index must be 1-D, got ", index.shape_str());
  const int64_t d = normalize_dim(dim, x.dim(), "index_select");
  int64_t outer, n, inner;
  around(x.shape(), d, outer, n, inner);
  check_index_range(index, n, "index_select");
  Shape shape = x.shape();
  shape[d] = index.numel();
  Tensor out = Tensor::empty(shape, x.device());
  x.backend().index_select(x.data(), outer, n, inner, index.int_data(), index.numel(), out.data());
  Shape xshape = x.shape();
  return record(out, "index_select", {x}, [=](const Tensor& g) -> Grads {
    Tensor gx = Tensor::zeros(xshape, g.device());
    g.backend().index_add(g.data(), outer, n, inner, index.int_data(), index.numel(), gx.data());
    return {gx};
  });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_float(x, "gather");
  detail::check_int(index, "gather");
  detail::check_same_device(x, index, "gather");
  const int64_t d = normalize_dim(dim, x.dim(), "gather");
  bool ok = index.dim() == x.dim();
  for (int64_t i = 0; ok && i < x.dim(); ++i) ok = i == d || index.shape()[i] == x.shape()[i];
  TRINE_CHECK(ok, "gather: index of shape ", index.shape_str(), " must match input ", x.shape_str(),
              " outside dim ", d);
  int64_t outer, n, inner;
  around(x.shape(), d, outer, n, inner);
  check_index_range(index, n, "gather");
  Tensor out = Tensor::empty(index.shape(), x.device());
  const int64_t n_idx = index.shape()[d];
  x.backend().gather(x.data(), outer, n, inner, index.int_data(), n_idx, out.data());
  Shape xshape = x.shape();
  return record(out, "gather", {x}, [=](const Tensor& g) -> Grads {
    Tensor gx = Tensor::zeros(xshape, g.device());
    g.backend().scatter_add(g.data(), outer, n, inner, index.int_data(), n_idx, gx.data());
    return {gx};
  });
}

}  // namespace trine
