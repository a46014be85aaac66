// Shapes: a tensor's dimensions, row-major strides and broadcasting rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trine {

using Shape = std::vector<int64_t>;

// Number of elements (1 for a rank-0 shape).
int64_t numel_of(const Shape& shape);

// Row-major (contiguous) strides, in elements.
Shape contiguous_strides(const Shape& shape);

// "[2, 3, 4]".
std::string shape_str(const Shape& shape);

// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read `shape` (aligned right) as if broadcast to `out`: 0 on broadcast dims.
Shape broadcast_strides(const Shape& shape, const Shape& out);

// A strided loop over `shape` for several operands, in as few dims as possible: size-1 dims
// dropped, and neighbouring dims merged where they are contiguous for every operand. Visiting
// `shape` and `strides` in row-major order visits the same elements as the original loop.
struct Coalesced {
  Shape shape;                 // at least one dim (a lone 1 when every dim had size 1)
  std::vector<Shape> strides;  // per operand, one stride per dim of `shape`
};

// `strides[k]` is operand k's stride (in elements) for each dim of `shape`.
Coalesced coalesce(const Shape& shape, const std::vector<Shape>& strides);

// Normalizes a possibly negative dimension index against `rank`; throws when out of range.
int64_t normalize_dim(int64_t dim, int64_t rank, const char* op);

}  // namespace trine
