// stb_image behind a few functions (internal to datasets/). Its implementation is compiled in
// datasets/stb_decode.cpp only, file-local (STB_IMAGE_STATIC): libtrine exports no stb symbols,
// so a program that also compiles stb_image links without clashes. Callers must vet the bytes
// first (ImageFolder's refuse_before_decoding): stb_image 2.27 has memory-safety bugs on some
// malformed headers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace trine::detail {

// The size and channel count in the header of `bytes`; false when stb_image cannot read one.
bool stb_info(std::string_view bytes, int* width, int* height, int* channels);

// Decoded pixels, freed by stb_image's own allocator.
struct StbFree {
  void operator()(uint8_t* p) const;
};
using StbPixels = std::unique_ptr<uint8_t, StbFree>;

// Decodes `bytes` (at most INT_MAX of them) to `channels` (1 or 3) interleaved 8-bit channels;
// *width and *height get the image's size. Null on failure, with stb_image's reason in *why.
// No single allocation of stb_image's may exceed `max_alloc` bytes (see stb_decode_limit).
StbPixels stb_load(std::string_view bytes, int channels, size_t max_alloc, int* width, int* height,
                   std::string* why);

// The most one allocation needs to decode a width x height image of any format stb_image reads
// here: 16 bytes a pixel over the size rounded up to JPEG's largest MCU (a 16-bit RGBA PNG's
// data, with stb_image's doubling buffer), plus 1 MB.
inline size_t stb_decode_limit(int width, int height) {
  return 16 * (static_cast<size_t>(width) + 32) * (static_cast<size_t>(height) + 32) + (1u << 20);
}

}  // namespace trine::detail
