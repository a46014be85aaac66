// Image transforms: flips are exact mirrors, crops land where they should, normalization gives
// the right values, resizing averages as its filter says, and batches are reproducible.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "datasets/transforms.h"
#include "engine/error.h"
#include "engine/random.h"

namespace trine {
namespace {

// Pixel (y, x, c) = a distinct value from (y, x, c).
Image numbered(int w, int h, int c) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = c;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) im.pixels.push_back(static_cast<uint8_t>(y * 40 + x * 3 + k));
  return im;
}

TEST(Transforms, HflipIsAnExactMirror) {
  Image im = numbered(5, 3, 3);
  Image f = hflip(im.view());
  ASSERT_EQ(f.width, 5);
  ASSERT_EQ(f.height, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(f.view().at(y, x, c), im.view().at(y, 4 - x, c));
  EXPECT_EQ(hflip(f.view()).pixels, im.pixels);
}

TEST(Transforms, CropsLandAtTheRightPlace) {
  Image im = numbered(7, 5, 1);
  // Centre: x = (7 - 4) / 2 = 1, y = (5 - 2) / 2 = 1 (rounded down).
  CropBox b = center_crop_box(7, 5, 4, 2);
  EXPECT_EQ(b.x, 1);
  EXPECT_EQ(b.y, 1);
  Image c = center_crop(im.view(), 4, 2);
  ASSERT_EQ(c.width, 4);
  ASSERT_EQ(c.height, 2);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(c.view().at(y, x, 0), im.view().at(y + 1, x + 1, 0));
  Image k = crop_image(im.view(), {3, 2, 4, 3});  // the bottom-right corner
  EXPECT_EQ(k.view().at(0, 0, 0), im.view().at(2, 3, 0));
  EXPECT_EQ(k.view().at(2, 3, 0), im.view().at(4, 6, 0));
  EXPECT_THROW(crop_image(im.view(), {4, 2, 4, 3}), Error);
  EXPECT_THROW(center_crop(im.view(), 8, 2), Error);

  // Random boxes: inside the image, every position reached, same seed same boxes.
  Generator g1(7), g2(7);
  std::set<std::pair<int, int>> seen;
  for (int i = 0; i < 400; ++i) {
    CropBox r = random_crop_box(7, 5, 4, 2, g1);
    CropBox r2 = random_crop_box(7, 5, 4, 2, g2);
    EXPECT_EQ(r.x, r2.x);
    EXPECT_EQ(r.y, r2.y);
    ASSERT_TRUE(r.x >= 0 && r.x <= 3 && r.y >= 0 && r.y <= 3) << r.x << "," << r.y;
    seen.insert({r.x, r.y});
    Image rc = random_crop(im.view(), 4, 2, g2);  // advances g2 the same way as box + crop
    (void)rc;
    random_crop_box(7, 5, 4, 2, g1);
  }
  EXPECT_EQ(seen.size(), 16u);  // 4 x positions x 4 y positions
}

TEST(Transforms, NormalizeComputesPerChannelValues) {
  Image im;
  im.width = 2;
  im.height = 1;
  im.channels = 3;
  im.pixels = {0, 51, 255, 255, 102, 0};  // pixel 0: (0, 51, 255); pixel 1: (255, 102, 0)
  Normalize n;
  n.mean = {0.5f, 0.2f, 0.f};
  n.std = {0.5f, 0.1f, 2.f};
  std::vector<float> out(6);
  normalize_chw(im.view(), {0, 0, 2, 1}, false, n, out.data());
  // Channel 0: (0/255 - 0.5)/0.5 = -1, (1 - 0.5)/0.5 = 1.
  // Channel 1: (51/255 - 0.2)/0.1 = (0.2 - 0.2)/0.1 = 0, (102/255 - 0.2)/0.1 = (0.4 - 0.2)/0.1 = 2.
  // Channel 2: (1 - 0)/2 = 0.5, 0/2 = 0.
  std::vector<float> want{-1.f, 1.f, 0.f, 2.f, 0.5f, 0.f};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[i], want[i], 1e-6) << i;
  // Mirrored: each channel row reversed.
  normalize_chw(im.view(), {0, 0, 2, 1}, true, n, out.data());
  std::vector<float> mirrored{1.f, -1.f, 2.f, 0.f, 0.f, 0.5f};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[i], mirrored[i], 1e-6) << i;
  // One value for all channels; wrong counts and zero std are errors.
  Normalize one;
  one.mean = {0.5f};
  one.std = {0.5f};
  normalize_chw(im.view(), {0, 0, 2, 1}, false, one, out.data());
  EXPECT_NEAR(out[2], (51 / 255.0 - 0.5) / 0.5, 1e-6);
  Normalize two;
  two.mean = {0.f, 0.f};
  EXPECT_THROW(normalize_chw(im.view(), {0, 0, 2, 1}, false, two, out.data()), Error);
  Normalize zero;
  zero.std = {0.f};
  EXPECT_THROW(normalize_chw(im.view(), {0, 0, 2, 1}, false, zero, out.data()), Error);
}

TEST(Transforms, ResizeFiltersAverageAsDefined) {
  // Box, 2:1 along x: each output is the mean of two inputs: (10+30)/2, (50+70)/2.
  Image row;
  row.width = 4;
  row.height = 1;
  row.channels = 1;
  row.pixels = {10, 30, 50, 70};
  Image b = resize_image(row.view(), 2, 1, ResizeFilter::Box);
  EXPECT_EQ(b.pixels, (std::vector<uint8_t>{20, 60}));
  // A constant image stays constant under every filter, up and down.
  Image flat;
  flat.width = 9;
  flat.height = 7;
  flat.channels = 3;
  flat.pixels.assign(9 * 7 * 3, 123);
  for (ResizeFilter f : {ResizeFilter::Default, ResizeFilter::Box, ResizeFilter::Triangle,
                         ResizeFilter::CubicBSpline, ResizeFilter::CatmullRom,
                         ResizeFilter::Mitchell, ResizeFilter::PillowBilinear}) {
    for (auto [w, h] : {std::pair{4, 3}, std::pair{20, 13}}) {
      Image r = resize_image(flat.view(), w, h, f);
      ASSERT_EQ(r.pixels.size(), static_cast<size_t>(w * h * 3));
      for (uint8_t v : r.pixels) ASSERT_EQ(v, 123);
    }
  }
  // Triangle downsampling is antialiased: a 1-pixel stripe pattern (0, 255, 0, 255, ...) shrunk
  // 112 -> 64 averages to mid-grey everywhere away from the edges, where point sampling would
  // alias into bands of 0 and 255.
  Image stripes;
  stripes.width = 112;
  stripes.height = 1;
  stripes.channels = 1;
  for (int x = 0; x < 112; ++x) stripes.pixels.push_back(x % 2 ? 255 : 0);
  for (ResizeFilter f : {ResizeFilter::Triangle, ResizeFilter::PillowBilinear}) {
    Image t = resize_image(stripes.view(), 64, 1, f);
    for (int x = 2; x < 62; ++x) EXPECT_NEAR(t.pixels[x], 127.5, 40.0) << x;
  }
  // Same size: a copy.
  EXPECT_EQ(resize_image(row.view(), 4, 1).pixels, row.pixels);
  EXPECT_EQ(parse_resize_filter("triangle"), ResizeFilter::Triangle);
  EXPECT_THROW(parse_resize_filter("lanczos"), UsageError);
}

TEST(Transforms, PillowBilinearMatchesPillowToTheBit) {
  // [10, 30, 50, 70] -> 2 pixels, scale 2, tent of half-width 2 clipped to the image and
  // renormalized: out 0 at centre 1.0 takes pixels 0..2 with weights 0.75, 0.75, 0.25:
  // (7.5 + 22.5 + 12.5) / 1.75 = 24.29 -> 24; out 1 at 3.0 takes pixels 1..3 with 0.25, 0.75,
  // 0.75: (7.5 + 37.5 + 52.5) / 1.75 = 55.71 -> 56.
  Image row;
  row.width = 4;
  row.height = 1;
  row.channels = 1;
  row.pixels = {10, 30, 50, 70};
  EXPECT_EQ(resize_image(row.view(), 2, 1, ResizeFilter::PillowBilinear).pixels,
            (std::vector<uint8_t>{24, 56}));
  // A 7x5 image, down to 4x3 and up to 9x8; the expected values are Pillow 9.4's
  // Image.fromarray(g, 'L').resize(size, Image.BILINEAR).
  Image g;
  g.width = 7;
  g.height = 5;
  g.channels = 1;
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x)
      g.pixels.push_back(static_cast<uint8_t>((x * 37 + y * 91 + x * y * 13) % 256));
  EXPECT_EQ(resize_image(g.view(), 4, 3, ResizeFilter::PillowBilinear).pixels,
            (std::vector<uint8_t>{61, 128, 127, 163, 151, 142, 148, 140, 106, 125, 142, 131}));
  EXPECT_EQ(resize_image(g.view(), 9, 8, ResizeFilter::PillowBilinear).pixels,
            (std::vector<uint8_t>{0,   25,  53,  82,  111, 140, 169, 197, 222, 40,  68,  101,
                                  135, 168, 114, 123, 155, 184, 97,  130, 163, 194, 233, 86,
                                  72,  107, 130, 154, 193, 160, 109, 154, 138, 166, 154, 75,
                                  130, 175, 149, 104, 156, 146, 180, 174, 101, 27,  78,  129,
                                  179, 237, 109, 114, 167, 206, 68,  124, 125, 110, 174, 152,
                                  112, 113, 168, 108, 167, 123, 50,  119, 188, 115, 71,  130}));
  // RGB: each channel on its own, like the grey image.
  Image rgb;
  rgb.width = 7;
  rgb.height = 5;
  rgb.channels = 3;
  for (uint8_t v : g.pixels)
    for (int c = 0; c < 3; ++c) rgb.pixels.push_back(static_cast<uint8_t>(v ^ (c * 85)));
  Image r = resize_image(rgb.view(), 4, 3, ResizeFilter::PillowBilinear);
  for (int c = 0; c < 3; ++c) {
    Image plane;
    plane.width = 7;
    plane.height = 5;
    plane.channels = 1;
    for (size_t i = 0; i < g.pixels.size(); ++i) plane.pixels.push_back(rgb.pixels[i * 3 + c]);
    Image want = resize_image(plane.view(), 4, 3, ResizeFilter::PillowBilinear);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(r.pixels[i * 3 + c], want.pixels[i]) << c << " " << i;
  }
  EXPECT_EQ(parse_resize_filter("pil"), ResizeFilter::PillowBilinear);
}

TEST(Transforms, MakeBatchCropsFlipsAndNormalizes) {
  Image a = numbered(6, 4, 3), b = hflip(numbered(6, 4, 3).view());
  std::vector<ImageView> views{a.view(), b.view()};
  BatchTransform t;
  t.normalize.mean = {0.5f};
  t.normalize.std = {0.5f};
  Tensor x = make_batch(views, t);
  ASSERT_EQ(x.shape(), (Shape{2, 3, 4, 6}));
  std::vector<float> v = x.to_vector();
  auto at = [&](const std::vector<float>& d, int n, int c, int y, int xx, int C, int H, int W) {
    return d[((n * C + c) * H + y) * W + xx];
  };
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int xx = 0; xx < 6; ++xx)
        EXPECT_NEAR(at(v, 0, c, y, xx, 3, 4, 6), (a.view().at(y, xx, c) / 255.0 - 0.5) / 0.5, 1e-6);
  // flip_all: sample 1 (a mirrored image) mirrored again equals image a.
  t.flip_all = true;
  std::vector<float> f = make_batch(views, t).to_vector();
  for (int i = 0; i < 3 * 4 * 6; ++i) EXPECT_EQ(f[3 * 4 * 6 + i], v[i]);
  // Centre crop 4x2 of 6x4: box x 1, y 1.
  t.flip_all = false;
  t.crop_width = 4;
  t.crop_height = 2;
  std::vector<float> c = make_batch(views, t).to_vector();
  EXPECT_NEAR(at(c, 0, 2, 1, 3, 3, 2, 4), (a.view().at(2, 4, 2) / 255.0 - 0.5) / 0.5, 1e-6);
  // Random choices need a generator.
  t.random_crop = true;
  EXPECT_THROW(make_batch(views, t), Error);
  // Images of different sizes cannot share a batch.
  Image small = numbered(5, 4, 3);
  std::vector<ImageView> mixed{a.view(), small.view()};
  EXPECT_THROW(make_batch(mixed, BatchTransform{}), Error);
  EXPECT_THROW(make_batch(std::span<const ImageView>{}, BatchTransform{}), Error);
}

TEST(Transforms, RandomFlipIsReproducibleAndFlipsAboutHalf) {
  const int n = 400;
  Image im = numbered(4, 2, 1);
  std::vector<ImageView> views(n, im.view());
  BatchTransform t;
  t.flip_probability = 0.5f;
  Generator g1(42), g2(42), g3(43);
  std::vector<float> x1 = make_batch(views, t, &g1).to_vector();
  std::vector<float> x2 = make_batch(views, t, &g2).to_vector();
  std::vector<float> x3 = make_batch(views, t, &g3).to_vector();
  EXPECT_EQ(x1, x2);
  EXPECT_NE(x1, x3);
  // Each sample is the image or its mirror; count the mirrors.
  Image m = hflip(im.view());
  int flipped = 0;
  for (int i = 0; i < n; ++i) {
    bool is_plain = true, is_mirror = true;
    for (int k = 0; k < 8; ++k) {
      is_plain &= x1[i * 8 + k] == im.pixels[k] / 255.f;
      is_mirror &= x1[i * 8 + k] == m.pixels[k] / 255.f;
    }
    ASSERT_TRUE(is_plain || is_mirror) << i;
    flipped += is_mirror;
  }
  EXPECT_GT(flipped, 150);  // Binomial(400, 0.5): 200 +- 10
  EXPECT_LT(flipped, 250);
  // One uniform per image: the generator advanced by n draws' worth, the same either way.
  EXPECT_EQ(g1.offset(), g2.offset());
}

}  // namespace
}  // namespace trine
