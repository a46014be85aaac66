// libFuzzer target: the IDX reader (raw and gzip) on arbitrary bytes. Any outcome but a returned
// array or a trine::Error (a crash, a sanitizer report, a leak, an out-of-memory) is a finding.
#include <cstddef>
#include <cstdint>

#include "datasets/idx.h"
#include "engine/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = trine::fuzz::write_input("idx", data, size);
  try {
    trine::IdxArray a = trine::read_idx(path);
    // What read_idx promises: the data is exactly what the header declares.
    if (static_cast<int64_t>(a.data.size()) != a.numel()) __builtin_trap();
  } catch (const trine::Error&) {
  }
  return 0;
}
