// Image transforms and batch making (see transforms.h). Resizing is stb_image_resize's, except
// the Pillow-exact bilinear filter written out here.
#include "datasets/transforms.h"

// stb_image_resize's implementation lives here, file-local (STB_IMAGE_RESIZE_STATIC).
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_resize.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "engine/error.h"

namespace trine {

namespace {

stbir_filter stb_filter(ResizeFilter f) {
  switch (f) {
    case ResizeFilter::Default:
      return STBIR_FILTER_DEFAULT;
    case ResizeFilter::Box:
      return STBIR_FILTER_BOX;
    case ResizeFilter::Triangle:
      return STBIR_FILTER_TRIANGLE;
    case ResizeFilter::CubicBSpline:
      return STBIR_FILTER_CUBICBSPLINE;
    case ResizeFilter::CatmullRom:
      return STBIR_FILTER_CATMULLROM;
    case ResizeFilter::Mitchell:
      return STBIR_FILTER_MITCHELL;
    case ResizeFilter::PillowBilinear:
      break;
  }
  return STBIR_FILTER_DEFAULT;
}

// Pillow's resampling weights along one axis (Resample.c, precompute_coeffs and
// normalize_coeffs_8bpc): for output pixel i, `size[i]` input pixels from `first[i]` with
// fixed-point weights w[i * ksize + k] (22 fraction bits).
struct PillowAxis {
  static constexpr int kBits = 22;
  int ksize = 0;
  std::vector<int> first, size;
  std::vector<int32_t> w;
};

PillowAxis pillow_axis(int in, int out) {
  const double scale = static_cast<double>(in) / out;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the tent's support is 1
  PillowAxis a;
  a.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  a.first.resize(out);
  a.size.resize(out);
  a.w.assign(static_cast<size_t>(out) * a.ksize, 0);
  const double ss = 1.0 / filterscale;  // multiplied, as Pillow does: same rounding
  std::vector<double> k(a.ksize);
  for (int i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    int lo = static_cast<int>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in) hi = in;
    const int n = hi - lo;
    double sum = 0.0;
    for (int x = 0; x < n; ++x) {
      const double t = std::fabs((x + lo - center + 0.5) * ss);
      k[x] = t < 1.0 ? 1.0 - t : 0.0;
      sum += k[x];
    }
    for (int x = 0; x < n; ++x) {
      const double v = sum != 0.0 ? k[x] / sum : k[x];
      a.w[static_cast<size_t>(i) * a.ksize + x] = static_cast<int32_t>(
          v < 0 ? -0.5 + v * (1 << PillowAxis::kBits) : 0.5 + v * (1 << PillowAxis::kBits));
    }
    a.first[i] = lo;
    a.size[i] = n;
  }
  return a;
}

uint8_t pillow_clip8(int64_t v) {
  if (v >= (int64_t{1} << PillowAxis::kBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> PillowAxis::kBits);
}

// Pillow's two-pass resize: horizontal into uint8 (only when the width changes), then vertical
// (only when the height changes).
Image pillow_resize(ImageView src, int width, int height) {
  const int C = src.channels;
  Image cur;
  cur.width = src.width;
  cur.height = src.height;
  cur.channels = C;
  cur.pixels.assign(src.data, src.data + static_cast<size_t>(src.width) * src.height * C);
  if (width != src.width) {
    const PillowAxis a = pillow_axis(src.width, width);
    Image tmp;
    tmp.width = width;
    tmp.height = cur.height;
    tmp.channels = C;
    tmp.pixels.resize(static_cast<size_t>(width) * cur.height * C);
    for (int y = 0; y < cur.height; ++y)
      for (int x = 0; x < width; ++x) {
        const int32_t* w = &a.w[static_cast<size_t>(x) * a.ksize];
        for (int c = 0; c < C; ++c) {
          int64_t acc = int64_t{1} << (PillowAxis::kBits - 1);
          for (int k = 0; k < a.size[x]; ++k)
            acc +=
                int64_t{cur.pixels[(static_cast<size_t>(y) * cur.width + a.first[x] + k) * C + c]} *
                w[k];
          tmp.pixels[(static_cast<size_t>(y) * width + x) * C + c] = pillow_clip8(acc);
        }
      }
    cur = std::move(tmp);
  }
  if (height != cur.height) {
    const PillowAxis a = pillow_axis(cur.height, height);
    Image tmp;
    tmp.width = cur.width;
    tmp.height = height;
    tmp.channels = C;
    tmp.pixels.resize(static_cast<size_t>(cur.width) * height * C);
    const size_t row = static_cast<size_t>(cur.width) * C;
    for (int y = 0; y < height; ++y) {
      const int32_t* w = &a.w[static_cast<size_t>(y) * a.ksize];
      for (size_t j = 0; j < row; ++j) {
        int64_t acc = int64_t{1} << (PillowAxis::kBits - 1);
        for (int k = 0; k < a.size[y]; ++k)
          acc += int64_t{cur.pixels[(static_cast<size_t>(a.first[y]) + k) * row + j]} * w[k];
        tmp.pixels[y * row + j] = pillow_clip8(acc);
      }
    }
    cur = std::move(tmp);
  }
  return cur;
}

void check_view(ImageView v, const char* what) {
  TRINE_CHECK(v.data != nullptr && v.height > 0 && v.width > 0, what, ": empty image (", v.width,
              "x", v.height, ")");
  TRINE_CHECK(v.channels == 1 || v.channels == 3, what, ": images have 1 or 3 channels, got ",
              v.channels);
}

}  // namespace

ResizeFilter parse_resize_filter(const std::string& name) {
  if (name == "default") return ResizeFilter::Default;
  if (name == "box") return ResizeFilter::Box;
  if (name == "triangle") return ResizeFilter::Triangle;
  if (name == "bspline") return ResizeFilter::CubicBSpline;
  if (name == "catmullrom") return ResizeFilter::CatmullRom;
  if (name == "mitchell") return ResizeFilter::Mitchell;
  if (name == "pil") return ResizeFilter::PillowBilinear;
  throw UsageError("unknown resize filter '" + name +
                   "' (expected default, box, triangle, bspline, catmullrom, mitchell or pil)");
}

Image resize_image(ImageView src, int width, int height, ResizeFilter filter) {
  check_view(src, "resize_image");
  TRINE_CHECK(width > 0 && height > 0, "resize_image: target size must be positive, got ", width,
              "x", height);
  Image out;
  out.width = width;
  out.height = height;
  out.channels = src.channels;
  out.pixels.resize(static_cast<size_t>(width) * height * src.channels);
  if (width == src.width && height == src.height) {
    std::memcpy(out.pixels.data(), src.data, out.pixels.size());
    return out;
  }
  if (filter == ResizeFilter::PillowBilinear) return pillow_resize(src, width, height);
  const stbir_filter f = stb_filter(filter);
  int ok = stbir_resize(src.data, src.width, src.height, 0, out.pixels.data(), width, height, 0,
                        STBIR_TYPE_UINT8, src.channels, STBIR_ALPHA_CHANNEL_NONE, 0,
                        STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, f, f, STBIR_COLORSPACE_LINEAR, nullptr);
  TRINE_CHECK(ok, "resize_image: stb_image_resize failed (", src.width, "x", src.height, " -> ",
              width, "x", height, ")");
  return out;
}

CropBox center_crop_box(int src_width, int src_height, int width, int height) {
  TRINE_CHECK(width > 0 && height > 0 && width <= src_width && height <= src_height, "center crop ",
              width, "x", height, " does not fit a ", src_width, "x", src_height, " image");
  return {(src_width - width) / 2, (src_height - height) / 2, width, height};
}

CropBox random_crop_box(int src_width, int src_height, int width, int height, Generator& gen) {
  TRINE_CHECK(width > 0 && height > 0 && width <= src_width && height <= src_height, "random crop ",
              width, "x", height, " does not fit a ", src_width, "x", src_height, " image");
  CropBox box{0, 0, width, height};
  box.y = static_cast<int>(gen.randint(src_height - height + 1));
  box.x = static_cast<int>(gen.randint(src_width - width + 1));
  return box;
}

Image crop_image(ImageView src, const CropBox& box) {
  check_view(src, "crop_image");
  TRINE_CHECK(box.width > 0 && box.height > 0 && box.x >= 0 && box.y >= 0 &&
                  box.x + box.width <= src.width && box.y + box.height <= src.height,
              "crop box (x ", box.x, ", y ", box.y, ", ", box.width, "x", box.height,
              ") leaves the ", src.width, "x", src.height, " image");
  Image out;
  out.width = box.width;
  out.height = box.height;
  out.channels = src.channels;
  out.pixels.resize(static_cast<size_t>(box.width) * box.height * src.channels);
  const size_t row = static_cast<size_t>(box.width) * src.channels;
  for (int y = 0; y < box.height; ++y)
    std::memcpy(out.pixels.data() + y * row,
                &src.data[((static_cast<int64_t>(box.y) + y) * src.width + box.x) * src.channels],
                row);
  return out;
}

Image center_crop(ImageView src, int width, int height) {
  return crop_image(src, center_crop_box(src.width, src.height, width, height));
}

Image random_crop(ImageView src, int width, int height, Generator& gen) {
  return crop_image(src, random_crop_box(src.width, src.height, width, height, gen));
}

Image hflip(ImageView src) {
  check_view(src, "hflip");
  Image out;
  out.width = src.width;
  out.height = src.height;
  out.channels = src.channels;
  out.pixels.resize(static_cast<size_t>(src.width) * src.height * src.channels);
  const int c = src.channels;
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x)
      std::memcpy(&out.pixels[(static_cast<size_t>(y) * src.width + x) * c],
                  &src.data[(static_cast<int64_t>(y) * src.width + (src.width - 1 - x)) * c], c);
  return out;
}

void normalize_chw(ImageView src, const CropBox& box, bool flip, const Normalize& norm,
                   float* out) {
  check_view(src, "normalize_chw");
  const int C = src.channels;
  TRINE_CHECK(box.width > 0 && box.height > 0 && box.x >= 0 && box.y >= 0 &&
                  box.x + box.width <= src.width && box.y + box.height <= src.height,
              "normalize_chw: box (x ", box.x, ", y ", box.y, ", ", box.width, "x", box.height,
              ") leaves the ", src.width, "x", src.height, " image");
  auto per_channel = [&](const std::vector<float>& v, const char* name) {
    TRINE_CHECK(v.size() == 1 || v.size() == static_cast<size_t>(C), "normalize: ", name, " has ",
                v.size(), " values for ", C, "-channel images (give 1 or ", C, ")");
  };
  per_channel(norm.mean, "mean");
  per_channel(norm.std, "std");
  // One lookup table per channel: 256 exact values, computed in double.
  std::vector<std::array<float, 256>> lut(C);
  for (int c = 0; c < C; ++c) {
    const double m = norm.mean[norm.mean.size() == 1 ? 0 : c];
    const double s = norm.std[norm.std.size() == 1 ? 0 : c];
    TRINE_CHECK(s != 0.0, "normalize: std of channel ", c, " is 0");
    for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<float>((v / 255.0 - m) / s);
  }
  const int64_t plane = static_cast<int64_t>(box.height) * box.width;
  for (int c = 0; c < C; ++c) {
    const float* table = lut[c].data();
    float* o = out + c * plane;
    for (int y = 0; y < box.height; ++y) {
      const uint8_t* row =
          src.data + ((static_cast<int64_t>(box.y) + y) * src.width + box.x) * C + c;
      float* orow = o + static_cast<int64_t>(y) * box.width;
      if (flip) {
        for (int x = 0; x < box.width; ++x) orow[x] = table[row[(box.width - 1 - x) * C]];
      } else {
        for (int x = 0; x < box.width; ++x) orow[x] = table[row[x * C]];
      }
    }
  }
}

Tensor make_batch(std::span<const ImageView> images, const BatchTransform& t, Generator* gen) {
  TRINE_CHECK(!images.empty(), "make_batch: no images");
  const ImageView& first = images[0];
  check_view(first, "make_batch");
  const bool crop = t.crop_width > 0 || t.crop_height > 0;
  TRINE_CHECK(!crop || (t.crop_width > 0 && t.crop_height > 0),
              "make_batch: give both crop sizes, got ", t.crop_width, "x", t.crop_height);
  TRINE_CHECK(t.flip_probability >= 0.f && t.flip_probability <= 1.f,
              "make_batch: flip probability must be in [0, 1], got ", t.flip_probability);
  const bool random = (crop && t.random_crop) || t.flip_probability > 0.f;
  TRINE_CHECK(!random || gen != nullptr,
              "make_batch: random crop or flip asked for without a generator");
  const int C = first.channels;
  const int H = crop ? t.crop_height : first.height;
  const int W = crop ? t.crop_width : first.width;
  const int64_t n = static_cast<int64_t>(images.size());
  Tensor out = Tensor::empty({n, C, H, W});
  float* o = out.data();
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& im = images[i];
    TRINE_CHECK(im.height == first.height && im.width == first.width && im.channels == C,
                "make_batch: image ", i, " is ", im.width, "x", im.height, "x", im.channels,
                ", image 0 is ", first.width, "x", first.height, "x", C);
    CropBox box{0, 0, im.width, im.height};
    if (crop) {
      box = t.random_crop ? random_crop_box(im.width, im.height, W, H, *gen)
                          : center_crop_box(im.width, im.height, W, H);
    }
    bool flip = t.flip_all;
    if (t.flip_probability > 0.f && gen->uniform() < t.flip_probability) flip = !flip;
    normalize_chw(im, box, flip, t.normalize, o + i * C * H * W);
  }
  return out;
}

}  // namespace trine
