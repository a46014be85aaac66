// libFuzzer target: the .npy reader (header parser, float and label readers) on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "datasets/npy.h"
#include "engine/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = trine::fuzz::write_input("npy", data, size);
  try {
    trine::read_npy_header(path);
  } catch (const trine::Error&) {
  }
  try {
    trine::Tensor t = trine::read_npy_floats(path);
    (void)t;
  } catch (const trine::Error&) {
  }
  try {
    std::vector<int32_t> labels = trine::read_npy_labels(path);
    (void)labels;
  } catch (const trine::Error&) {
  }
  return 0;
}
