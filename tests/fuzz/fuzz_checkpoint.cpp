// libFuzzer target: the checkpoint reader on arbitrary bytes. Every checkpoint ends in a CRC-32
// of the rest, which random mutations almost never match; so for inputs whose first byte is odd
// the harness writes a correct CRC over the mutated bytes, and the fuzzer reaches the parser
// behind the checksum (metadata, tensor headers, dims, sizes).
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size >= 5 && (data[0] & 1)) {
    bytes[0] = 'T';  // restore the magic's first byte, then seal
    const uint32_t crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0),
                                                     reinterpret_cast<const Bytef*>(bytes.data()),
                                                     static_cast<uInt>(size - 4)));
    std::memcpy(bytes.data() + size - 4, &crc, 4);
  }
  const std::string& path = trine::fuzz::write_input(
      "checkpoint", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  try {
    trine::Checkpoint ck = trine::load_checkpoint(path);
    for (const auto& [name, t] : ck.tensors)
      if (!t.defined() || t.numel() < 0) __builtin_trap();
  } catch (const trine::Error&) {
  }
  return 0;
}
