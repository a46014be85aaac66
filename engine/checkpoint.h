// Checkpoints: one versioned binary file of named tensors plus string metadata.
//
// Layout (little-endian):
//   "TRINECKP" | u32 version (1) | u32 flags (0)
//   u64 n_meta,    then per entry: u32 len, key bytes, u32 len, value bytes
//   u64 n_tensors, then per entry: u32 len, name bytes, u8 dtype (0 f32, 1 i32), u8 rank,
//                                  u16 0, i64 dims[rank], u64 nbytes, data
//   u32 CRC-32 (zlib) of every byte before it
// Saving writes a temporary file in the same folder, fsyncs it and renames it over the target, so
// a crash leaves either the old file or the new one, never half of one. Loading checks the magic,
// version, size and checksum before parsing, and throws DataError naming the file and the fault.
#pragma once

#include <map>
#include <string>

#include "engine/tensor.h"

namespace trine {

struct Checkpoint {
  std::map<std::string, Tensor> tensors;    // any device when saving; CPU when loaded
  std::map<std::string, std::string> meta;  // free-form: config, step, model input size, ...
};

constexpr uint32_t kCheckpointVersion = 1;

void save_checkpoint(const std::string& path, const Checkpoint& ck);
Checkpoint load_checkpoint(const std::string& path);

// Writes `bytes` to `path` atomically (temporary file, fsync, rename). Throws Error on failure.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace trine
