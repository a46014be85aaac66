// Image transforms on uint8 HWC images (resize, crops, horizontal flip) and the step that turns
// a list of images into a normalized float32 [n,C,H,W] batch tensor.
//
// Random choices draw from a trine::Generator the caller passes in, never the global one, so a
// data-loader thread with its own generator reproduces the same batches for the same seed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"

namespace trine {

// A read-only view of one image: height x width pixels of `channels` interleaved uint8 values
// (HWC, row-major, no padding). channels is 1 (grey) or 3 (RGB).
struct ImageView {
  const uint8_t* data = nullptr;
  int height = 0, width = 0, channels = 0;
  // Value of channel c of pixel (y, x).
  uint8_t at(int y, int x, int c) const {
    return data[(static_cast<int64_t>(y) * width + x) * channels + c];
  }
};

// An owned image in the same layout.
struct Image {
  std::vector<uint8_t> pixels;  // height * width * channels
  int height = 0, width = 0, channels = 0;
  ImageView view() const { return {pixels.data(), height, width, channels}; }
};

// Resampling filters of stb_image_resize (v0.97). All work in linear space (no sRGB decoding),
// clamp at the edges and widen the kernel by the scale factor when downsampling, so downsampling
// is antialiased with every filter.
enum class ResizeFilter {
  Default,       // stb's choice: Mitchell when downsampling, Catmull-Rom when upsampling
  Box,           // box (a trapezoid with 1-pixel ramps for non-integer ratios)
  Triangle,      // tent: bilinear when upsampling; when downsampling the tent widened by the
                 // scale, which is Pillow's BILINEAR (used by the W2 peer) up to rounding and
                 // edge handling (Pillow renormalizes the clipped kernel, stb clamps)
  CubicBSpline,  // B-spline (Mitchell-Netravali B=1, C=0): smooth, blurs
  CatmullRom,    // interpolating cubic
  Mitchell,      // Mitchell-Netravali B=1/3, C=1/3
  // Not stb: Pillow 9's Image.resize(BILINEAR) reimplemented to the bit (tent widened by the
  // scale, kernel clipped at the edges and renormalized, 22-bit fixed-point weights, horizontal
  // pass rounded to uint8 before the vertical pass): what the W2 peer's --resize pil does.
  PillowBilinear,
};

// Parses "default", "box", "triangle", "bspline", "catmullrom", "mitchell", "pil"; throws
// UsageError.
ResizeFilter parse_resize_filter(const std::string& name);

// Resamples src to width x height (both > 0) with `filter`; same channels. Returns a copy when
// the size is unchanged (Pillow's resize also copies then).
Image resize_image(ImageView src, int width, int height,
                   ResizeFilter filter = ResizeFilter::Default);

// A rectangle inside an image: columns [x, x+width), rows [y, y+height).
struct CropBox {
  int x = 0, y = 0, width = 0, height = 0;
};

// The centred width x height box of a src_width x src_height image: x = (src_width - width) / 2
// rounded down, likewise y. Throws Error when the box is larger than the image.
CropBox center_crop_box(int src_width, int src_height, int width, int height);
// A uniformly random box: draws y = gen.randint(src_height - height + 1), then x likewise
// (two draws, always, even when a range has one value). Throws Error when it does not fit.
CropBox random_crop_box(int src_width, int src_height, int width, int height, Generator& gen);

// Copies the box out of src; throws Error when the box leaves the image.
Image crop_image(ImageView src, const CropBox& box);
Image center_crop(ImageView src, int width, int height);
Image random_crop(ImageView src, int width, int height, Generator& gen);
// Mirror image: column x becomes column width-1-x.
Image hflip(ImageView src);

// Per-channel normalization x -> (x/255 - mean[c]) / std[c]. `mean` and `std` hold one value
// per channel, or a single value used for every channel. std values must be non-zero.
struct Normalize {
  std::vector<float> mean{0.f};
  std::vector<float> std{1.f};
};

// Writes the normalized box of src, mirrored when `flip`, as float32 CHW into out
// (channels * box.height * box.width floats).
void normalize_chw(ImageView src, const CropBox& box, bool flip, const Normalize& norm, float* out);

// How make_batch turns each image into one sample.
struct BatchTransform {
  int crop_width = 0, crop_height = 0;  // 0, 0: the whole image; otherwise crop to this size
  bool random_crop = false;             // random box (needs a generator); false: centred box
  float flip_probability = 0.f;         // mirror each image with this probability (training)
  bool flip_all = false;  // mirror every image (test-time augmentation); with flip_probability
                          // too, a drawn flip undoes it
  Normalize normalize;
};

// Builds a float32 CPU tensor [n, C, H, W] from n images of one size and channel count: crop,
// flip, normalize (in that order). Per image, in order, the random draws are: the crop box (when
// random_crop), then one gen.uniform() compared with flip_probability (when it is > 0), so the
// same generator state gives the same batch. Throws Error when a random choice is asked for
// without a generator, when the images differ in size or channels, or when n is 0.
// Runs on the calling thread (no parallel_for), so a loader thread does not take the thread pool
// from the training thread.
Tensor make_batch(std::span<const ImageView> images, const BatchTransform& transform,
                  Generator* gen = nullptr);

}  // namespace trine
