// NumPy .npy files: read format versions 1.0, 2.0 and 3.0, write 1.0. Little-endian, C order.
// Embeddings are float32 tensors ([N, D] or [N]); labels are int32 vectors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace trine {

// The parsed header of a .npy file.
struct NpyHeader {
  int version_major = 1, version_minor = 0;
  std::string descr;           // NumPy dtype string, e.g. "<f4", "<i8", "|u1"
  bool fortran_order = false;  // as declared
  std::vector<int64_t> shape;  // () for a scalar
  int64_t data_offset = 0;     // bytes before the data (magic + lengths + header)
  int64_t numel() const;
  std::string shape_str() const;  // "(3, 4)", "(5,)", "()"
};

// Parses and checks the header of `path` (without reading the data). Throws DataError naming
// the file for a missing/unreadable file, a directory, a wrong magic string, an unknown version
// or a malformed header dict.
NpyHeader read_npy_header(const std::string& path);

struct NpyReadOptions {
  // Reject NaN and Inf (the message names the row and column). On by default: an embedding with
  // a NaN makes every distance to it NaN and every metric meaningless.
  bool check_finite = true;
};

// Reads a float array ('<f4', or '<f8' converted to float32) of any rank as a CPU float32
// tensor of the file's shape. Throws DataError naming the file for: an unsupported dtype,
// big-endian or Fortran-order data (rank >= 2), a shape that disagrees with the file size
// (truncated or trailing bytes), and NaN/Inf when opt.check_finite.
Tensor read_npy_floats(const std::string& path, const NpyReadOptions& opt = {});

// Reads integer labels of shape [N] or [N, 1], any integer dtype ('<i4', '<i8', '|u1', ...),
// into int32. Throws DataError as read_npy_floats, and naming the index of a value outside the
// int32 range.
std::vector<int32_t> read_npy_labels(const std::string& path);

// Writes a float32 or int32 tensor (any device, any rank) as a version 1.0 .npy ('<f4' / '<i4').
// Atomic (temporary file + fsync + rename). Throws Error on I/O failure.
void write_npy(const std::string& path, const Tensor& t);

// Writes labels as a 1-D '<i4' array. Atomic.
void write_npy_labels(const std::string& path, const std::vector<int32_t>& labels);

// Writes raw little-endian C-order data with a given dtype string and shape (tools and tests,
// e.g. int64 labels). Requires: bytes == prod(shape) * itemsize(descr). Atomic.
void write_npy_raw(const std::string& path, const std::string& descr,
                   const std::vector<int64_t>& shape, const void* data, size_t bytes);

}  // namespace trine
