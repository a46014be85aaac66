// Small images for the report (face pairs, say): 8-bit pixel buffers, conversion from image
// tensors, and PNG data URIs that keep the page a single file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tensor.h"

namespace trine::report {

// An 8-bit image, row-major HWC: pixels.size() == width * height * channels, channels 1 (grey)
// or 3 (RGB).
struct Thumbnail {
  std::vector<uint8_t> pixels;
  int width = 0, height = 0, channels = 0;
};

// Two images shown side by side with a caption underneath (plain text, escaped when drawn).
struct ThumbnailPair {
  Thumbnail a, b;
  std::string caption;
};

// One image tensor [C, H, W] or [H, W] (C 1 or 3, float32, any device; copied to the CPU) as a
// Thumbnail, its own min..max stretched to 0..255 so that normalized inputs display (a constant
// image becomes mid-grey; non-finite values black).
Thumbnail thumbnail_from_tensor(const Tensor& image);

// The PNG file bytes of `image` (stb_image_write). Throws Error for an inconsistent Thumbnail.
std::string encode_png(const Thumbnail& image);

// Standard base64 (RFC 4648, with '=' padding).
std::string base64_encode(std::string_view bytes);

// "data:image/png;base64,..." for an <img src>.
std::string png_data_uri(const Thumbnail& image);

}  // namespace trine::report
