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

#include <cstdint>
#include <cstdlib>

namespace trine::detail {
namespace {

// stb_image allocates through these: each allocation may be at most `alloc_limit` bytes (set
// per decode by stb_load, from the header's size), so that data that inflates without end (a
// PNG whose zlib stream decompresses 1000:1) fails with "outofmem" instead of taking gigabytes.
thread_local size_t alloc_limit = SIZE_MAX;
thread_local bool alloc_refused = false;

void* limited_malloc(size_t bytes) {
  if (bytes > alloc_limit) {
    alloc_refused = true;
    return nullptr;
  }
  return std::malloc(bytes);
}

void* limited_realloc(void* p, size_t bytes) {
  if (bytes > alloc_limit) {
    alloc_refused = true;
    return nullptr;  // p stays allocated; stb_image frees it when it gives up
  }
  return std::realloc(p, bytes);
}

}  // namespace
}  // namespace trine::detail

#define STBI_MALLOC(bytes) trine::detail::limited_malloc(bytes)
#define STBI_REALLOC(p, bytes) trine::detail::limited_realloc(p, bytes)
#define STBI_FREE(p) std::free(p)
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

StbPixels stb_load(std::string_view bytes, int channels, size_t max_alloc, int* width, int* height,
                   std::string* why) {
  alloc_limit = max_alloc;
  alloc_refused = false;
  int comp = 0;
  StbPixels px(stbi_load_from_memory(u8(bytes), static_cast<int>(bytes.size()), width, height,
                                     &comp, channels));
  alloc_limit = SIZE_MAX;
  if (!px) {
    const char* reason = stbi_failure_reason();
    *why = alloc_refused ? "its data asks for more than " + std::to_string(max_alloc) +
                               " bytes at once, more than its size needs: corrupt or hostile"
           : reason ? reason
                    : "unknown reason";
  }
  return px;
}

}  // namespace trine::detail
