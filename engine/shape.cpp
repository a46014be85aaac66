// Shape helpers.
#include "engine/shape.h"

#include <algorithm>
#include <sstream>

#include "engine/error.h"

namespace trine {

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    TRINE_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                shape_str(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Shape& shape, const Shape& out) {
  Shape strides(out.size(), 0);
  Shape own = contiguous_strides(shape);
  size_t lead = out.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i)
    strides[lead + i] = (shape[i] == 1 && out[lead + i] != 1) ? 0 : own[i];
  return strides;
}

Coalesced coalesce(const Shape& shape, const std::vector<Shape>& strides) {
  Coalesced c;
  c.strides.resize(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !c.shape.empty();
    for (size_t k = 0; merge && k < strides.size(); ++k)
      merge = c.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      c.shape.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) c.strides[k].back() = strides[k][d];
    } else {
      c.shape.push_back(shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) c.strides[k].push_back(strides[k][d]);
    }
  }
  if (c.shape.empty()) {
    c.shape.push_back(1);
    for (auto& s : c.strides) s.push_back(0);
  }
  return c;
}

int64_t normalize_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t d = dim < 0 ? dim + rank : dim;
  // Strictly below rank: callers index the shape with the result, and a scalar has no dims.
  TRINE_CHECK(d >= 0 && d < rank, op, ": dim ", dim, " is out of range for a tensor of rank ",
              rank);
  return d;
}

}  // namespace trine
