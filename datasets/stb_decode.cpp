// stb_image's implementation, in a translation unit of its own. Compiled as C++, its failure
// reason is thread_local, safe for parallel decoding. Only the formats image datasets use are
// compiled in: every other decoder of stb_image 2.27 is attack surface with known memory-safety
// bugs (GIF, PSD, PIC, HDR, TGA).
//
// CMakeLists.txt builds this file without UBSan's nonnull-attribute check: stb_image 2.27 calls
// memcpy(NULL, src, 0) for a PNG whose first IDAT chunk is empty (legal PNG; found by
// tests/fuzz/fuzz_image.cpp), which copies nothing and is no memory error. Every other
// sanitizer check stays on here, and that one stays on for the rest of trine.
#include "datasets/stb_decode.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#ifndef __clang__
// GCC 12 sees the callback reader's fields unset for memory input, where they are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace trine::detail {

namespace {
const stbi_uc* u8(std::string_view bytes) {
  return reinterpret_cast<const stbi_uc*>(bytes.data());
}
}  // namespace

bool stb_info(std::string_view bytes, int* width, int* height, int* channels) {
  return stbi_info_from_memory(u8(bytes), static_cast<int>(bytes.size()), width, height,
                               channels) != 0;
}

void StbFree::operator()(uint8_t* p) const {
  stbi_image_free(p);
}

StbPixels stb_load(std::string_view bytes, int channels, int* width, int* height,
                   std::string* why) {
  int comp = 0;
  StbPixels px(
      stbi_load_from_memory(u8(bytes), static_cast<int>(bytes.size()), width, height, &comp,
                            channels));
  if (!px) {
    const char* reason = stbi_failure_reason();
    *why = reason ? reason : "unknown reason";
  }
  return px;
}

}  // namespace trine::detail
