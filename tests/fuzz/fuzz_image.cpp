// libFuzzer target: the image decoder ImageFolder::load runs on every file (stb_image: JPEG, PNG,
// BMP, PGM/PPM), with the header checks, grey/RGB conversion and the resize to a
// fixed size. The first input byte picks channels and target size; the rest is the file.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "datasets/image_folder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int channels = (data[0] & 1) ? 3 : 1;
  const int side = 4 + ((data[0] >> 1) & 31);  // 4..35
  const trine::ResizeFilter filter =
      (data[0] & 64) ? trine::ResizeFilter::PillowBilinear : trine::ResizeFilter::Default;
  std::vector<uint8_t> out(static_cast<size_t>(side) * side * channels);
  const std::string_view file(reinterpret_cast<const char*>(data + 1), size - 1);
  // At most 2^18 pixels (512 x 512): larger claims are refused the same way as beyond the real
  // limit, and each input stays fast enough to fuzz under the sanitizers.
  trine::decode_image_into(file, channels, side, side, filter, out.data(), int64_t{1} << 18);
  return 0;
}
