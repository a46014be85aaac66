// Thumbnails: tensor-to-8-bit conversion, PNG encoding and base64 data URIs.
#include "engine/report/thumbnail.h"

// stb_image_write's implementation lives here, file-local (STB_IMAGE_WRITE_STATIC), so libtrine
// exports none of its symbols.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace trine::report {

Thumbnail thumbnail_from_tensor(const Tensor& image) {
  TRINE_CHECK(image.defined(), "thumbnail_from_tensor: undefined tensor");
  TRINE_CHECK(image.dtype() == DType::F32, "thumbnail_from_tensor: need a float32 image, got ",
              dtype_name(image.dtype()));
  TRINE_CHECK(image.dim() == 2 || (image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3)),
              "thumbnail_from_tensor: need an image [C, H, W] with C 1 or 3, or [H, W]; got ",
              image.shape_str());
  const int64_t c = image.dim() == 3 ? image.size(0) : 1;
  const int64_t h = image.size(-2), w = image.size(-1);
  TRINE_CHECK(h > 0 && w > 0 && h <= 16384 && w <= 16384,
              "thumbnail_from_tensor: image size out of range: ", image.shape_str());
  const std::vector<float> v = image.to_vector();  // CHW
  float lo = INFINITY, hi = -INFINITY;
  for (float x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  Thumbnail t;
  t.width = static_cast<int>(w), t.height = static_cast<int>(h), t.channels = static_cast<int>(c);
  t.pixels.resize(static_cast<size_t>(c * h * w));
  const double range = hi > lo ? static_cast<double>(hi) - lo : 0.0;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < h * w; ++i) {
      const float x = v[static_cast<size_t>(ch * h * w + i)];
      double g = 0.0;
      if (std::isfinite(x)) g = range > 0 ? (x - lo) / range * 255.0 : 127.0;
      t.pixels[static_cast<size_t>(i * c + ch)] =
          static_cast<uint8_t>(std::clamp(std::lround(g), 0L, 255L));
    }
  return t;
}

namespace {

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

}  // namespace

std::string encode_png(const Thumbnail& image) {
  TRINE_CHECK(image.channels == 1 || image.channels == 3,
              "thumbnail: channels must be 1 or 3, got ", image.channels);
  TRINE_CHECK(image.width > 0 && image.height > 0 && image.width <= 16384 && image.height <= 16384,
              "thumbnail: size ", image.width, "x", image.height, " out of range");
  const size_t expected = static_cast<size_t>(image.width) * static_cast<size_t>(image.height) *
                          static_cast<size_t>(image.channels);
  TRINE_CHECK(image.pixels.size() == expected, "thumbnail: ", image.width, "x", image.height, "x",
              image.channels, " needs ", expected, " bytes, got ", image.pixels.size());
  std::string png;
  const int ok =
      stbi_write_png_to_func(append_bytes, &png, image.width, image.height, image.channels,
                             image.pixels.data(), image.width * image.channels);
  TRINE_CHECK(ok != 0 && !png.empty(), "thumbnail: PNG encoding failed");
  return png;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[n >> 18 & 63], out += kAlphabet[n >> 12 & 63];
    out += kAlphabet[n >> 6 & 63], out += kAlphabet[n & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest) {
    uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
    if (rest == 2) n |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
    out += kAlphabet[n >> 18 & 63], out += kAlphabet[n >> 12 & 63];
    out += rest == 2 ? kAlphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string png_data_uri(const Thumbnail& image) {
  return "data:image/png;base64," + base64_encode(encode_png(image));
}

}  // namespace trine::report
