// stb_image's implementation, in a translation unit of its own. Compiled as C++, its failure
// reason is thread_local, safe for parallel decoding. Only the formats image datasets use are
// compiled in: every other decoder of stb_image 2.27 is attack surface with known memory-safety
// bugs (GIF, PSD, PIC, HDR, TGA).
//
// What tests/fuzz/fuzz_image.cpp found in stb_image 2.27 that no header check can refuse (all
// fixed upstream in 2.28), and how CMakeLists.txt builds this file for it:
// - its JPEG decoder does undefined arithmetic on corrupt entropy-coded data: signed overflow
//   (DC predictions times the quantization table) and shifts by 32 or more (its bit reader,
//   once it has read past the data). Built with -fwrapv, so the signed arithmetic wraps; on
//   x86 and ARM a shift count is masked. Either way the pixels of such a file are garbage, and
//   no index or size depends on them: ASan, which stays on here, finds no memory error;
// - it calls memcpy(NULL, src, 0) for a legal PNG whose first IDAT chunk is empty: copies
//   nothing.
// Sanitizer builds leave UBSan's signed-integer-overflow, shift and nonnull-attribute checks
// off for this file only; every other check stays on here, and those stay on for the rest of
// trine.
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
  StbPixels px(stbi_load_from_memory(u8(bytes), static_cast<int>(bytes.size()), width, height,
                                     &comp, channels));
  if (!px) {
    const char* reason = stbi_failure_reason();
    *why = reason ? reason : "unknown reason";
  }
  return px;
}

}  // namespace trine::detail
