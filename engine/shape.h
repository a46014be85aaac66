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

// Normalizes a possibly negative dimension index against `rank`; throws when out of range.
int64_t normalize_dim(int64_t dim, int64_t rank, const char* op);

}  // namespace trine
