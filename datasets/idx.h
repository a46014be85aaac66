// IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (magic, then one u32 per
// dimension) followed by unsigned-byte data in row-major order, stored raw or gzip-compressed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trine {

// IDX magic numbers: 0x00 0x00, element type 0x08 (unsigned byte), number of dimensions.
constexpr uint32_t kIdxLabelsMagic = 2049;  // 0x00000801: [N] labels
constexpr uint32_t kIdxImagesMagic = 2051;  // 0x00000803: [N, rows, cols] images

// The most data bytes read_idx accepts from one file (4 GiB): a larger header is taken as corrupt.
constexpr int64_t kIdxMaxBytes = int64_t{1} << 32;

// An unsigned-byte IDX array: `data` holds prod(dims) bytes, row-major.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
  int64_t numel() const;
};

// Reads an unsigned-byte IDX file, raw or gzip (recognised by its content, not its name).
// `expected_magic` (e.g. kIdxImagesMagic) is checked when non-zero.
// Ensures: data.size() == prod(dims), and the file holds exactly that much data.
// Throws DataError naming the file for: a missing file, a directory, an unreadable file, a wrong
// magic or element type, a header that declares more than kIdxMaxBytes, data shorter or longer
// than the header declares, and corrupt gzip data. Memory grows with the data actually read, so a
// lying header cannot trigger a huge allocation.
IdxArray read_idx(const std::string& path, uint32_t expected_magic = 0);

// Writes `a` as an unsigned-byte IDX file (1 to 255 dimensions), gzip-compressed when `gzip`.
// Atomic (temporary file + fsync + rename). For tests and data-preparation tools.
// Requires: data.size() == prod(dims), every dim < 2^32. Throws Error otherwise or on I/O failure.
void write_idx(const std::string& path, const IdxArray& a, bool gzip = false);

// Gzip-compresses `bytes` in memory (the format gzip(1) and gzread read). Throws Error on failure.
std::string gzip_compress(const std::string& bytes);

}  // namespace trine
