// ImageFolder on generated image trees: every decoded format (JPEG, PNG, BMP, PGM, PPM), grey and
// RGB conversion, resizing, skipped files and folders, and the errors for unusable roots.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "datasets/image_folder.h"
#include "engine/error.h"
#include "support/image_write.h"
#include "support/test_util.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

// Folders made by fresh_dir, removed when the test program exits.
std::vector<std::unique_ptr<test::TempDir>> scratch;
fs::path fresh_dir(const std::string& name) {
  scratch.push_back(std::make_unique<test::TempDir>("image_folder_" + name));
  return scratch.back()->path();
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A w x h image with c channels whose pixel values depend on (x, y, c) and `seed`.
Image pattern(int w, int h, int c, int seed) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = c;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        im.pixels.push_back(static_cast<uint8_t>((x * 31 + y * 17 + k * 80 + seed * 13) % 256));
  return im;
}

// A smooth image (JPEG keeps it within a few levels).
Image smooth(int w, int h, int seed) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = 3;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < 3; ++k)
        im.pixels.push_back(static_cast<uint8_t>(40 + 5 * x + 4 * y + 30 * k + seed));
  return im;
}

void write_png(const fs::path& p, const Image& im) {
  ASSERT_TRUE(stbi_write_png(p.c_str(), im.width, im.height, im.channels, im.pixels.data(),
                             im.width * im.channels));
}
void write_bmp(const fs::path& p, const Image& im) {
  ASSERT_TRUE(stbi_write_bmp(p.c_str(), im.width, im.height, im.channels, im.pixels.data()));
}
void write_jpg(const fs::path& p, const Image& im) {
  ASSERT_TRUE(stbi_write_jpg(p.c_str(), im.width, im.height, im.channels, im.pixels.data(), 95));
}
// Binary PGM (P5, 1 channel) or PPM (P6, 3 channels); stb_image_write has no PNM writer.
void write_pnm(const fs::path& p, const Image& im) {
  std::string s = (im.channels == 1 ? "P5\n" : "P6\n") + std::to_string(im.width) + " " +
                  std::to_string(im.height) + "\n255\n";
  s.append(im.pixels.begin(), im.pixels.end());
  test::write_bytes(p, s);
}

// prefix + n + suffix (snprintf: GCC 12 -Wrestrict misfires on chained std::string +).
std::string name_of(const char* prefix, int n, const char* suffix) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%d%s", prefix, n, suffix);
  return buf;
}

// Collects warning lines.
struct Warnings {
  std::vector<std::string> lines;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& l) { lines.push_back(l); };
  }
  int count_naming(const std::string& part) const {
    return static_cast<int>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(part) != std::string::npos;
    }));
  }
};

template <typename E, typename F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception of the expected type";
  return "";
}

// Exact pixels for the lossless formats, decoded at their own size.
TEST(ImageFolder, DecodesLosslessFormatsExactly) {
  fs::path root = fresh_dir("lossless");
  fs::create_directories(root / "ann");
  fs::create_directories(root / "bob");
  const Image rgb1 = pattern(6, 4, 3, 1), rgb2 = pattern(6, 4, 3, 2), rgb3 = pattern(6, 4, 3, 3);
  const Image grey = pattern(6, 4, 1, 4);
  write_png(root / "ann" / "a.png", rgb1);
  write_bmp(root / "ann" / "b.bmp", rgb2);
  write_pnm(root / "ann" / "c.ppm", rgb3);
  write_pnm(root / "bob" / "d.pgm", grey);

  ImageFolderOptions opt;
  Warnings w;
  opt.warn = w.sink();
  ImageFolder f = ImageFolder::load(root.string(), opt);
  EXPECT_TRUE(w.lines.empty());
  ASSERT_EQ(f.size(), 4);
  EXPECT_EQ(f.width(), 6);
  EXPECT_EQ(f.height(), 4);
  EXPECT_EQ(f.channels(), 3);
  EXPECT_EQ(f.identities(), (std::vector<std::string>{"ann", "bob"}));
  EXPECT_EQ(f.labels(), (std::vector<int32_t>{0, 0, 0, 1}));
  EXPECT_EQ(f.file_name(1), "b.bmp");
  EXPECT_EQ(f.path(3), (root / "bob" / "d.pgm").string());
  const Image* want[3] = {&rgb1, &rgb2, &rgb3};
  for (int i = 0; i < 3; ++i) {
    ImageView v = f.image(i);
    EXPECT_TRUE(std::equal(want[i]->pixels.begin(), want[i]->pixels.end(), v.data)) << i;
  }
  // Grey loaded as RGB: R = G = B = grey value.
  ImageView g = f.image(3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(g.at(y, x, c), grey.pixels[y * 6 + x]);

  // As grey: stb's luma (77 R + 150 G + 29 B) >> 8 for RGB files, the value itself for PGM.
  opt.channels = 1;
  ImageFolder fg = ImageFolder::load(root.string(), opt);
  ASSERT_EQ(fg.channels(), 1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) {
      const uint8_t* p = &rgb1.pixels[(y * 6 + x) * 3];
      EXPECT_EQ(fg.image(0).at(y, x, 0), (p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8);
      EXPECT_EQ(fg.image(3).at(y, x, 0), grey.pixels[y * 6 + x]);
    }
}

// The mixed tree of the issue: every format, a truncated JPEG, a text file named .jpg, an empty
// identity folder, a stray file at the root and a hidden folder.
struct MixedTree {
  fs::path root;
  MixedTree() {
    root = fresh_dir("mixed");
    for (const char* d : {"alice", "bob", "carol", "dave", ".cache"})
      fs::create_directories(root / d);
    write_jpg(root / "alice" / "1.jpg", smooth(20, 16, 0));
    write_png(root / "alice" / "2.png", pattern(10, 30, 3, 1));
    write_bmp(root / "alice" / "3.bmp", pattern(17, 9, 3, 2));
    write_pnm(root / "alice" / "4.pgm", pattern(8, 8, 1, 3));
    write_pnm(root / "alice" / "5.ppm", pattern(12, 5, 3, 4));
    write_png(root / "bob" / "a.png", pattern(7, 7, 1, 5));
    write_jpg(root / "bob" / "b.jpg", smooth(32, 32, 9));
    std::string jpg = read_text(root / "bob" / "b.jpg");
    test::write_bytes(root / "bob" / "b.jpg", jpg.substr(0, jpg.size() / 2));  // truncated
    test::write_bytes(root / "bob" / "c.jpg", "this is not a JPEG\n");
    write_png(root / "dave" / "only.png", pattern(9, 9, 3, 6));
    write_png(root / ".cache" / "x.png", pattern(9, 9, 3, 7));
    test::write_bytes(root / "README.txt", "identities below\n");
  }
};

TEST(ImageFolder, SkipsUnreadableFilesAndEmptyFoldersWithOneWarningEach) {
  MixedTree t;
  ImageFolderOptions opt;
  opt.width = 8;
  opt.height = 6;
  Warnings w;
  opt.warn = w.sink();
  ImageFolder f = ImageFolder::load(t.root.string(), opt);
  EXPECT_EQ(f.identities(), (std::vector<std::string>{"alice", "bob", "dave"}));
  ASSERT_EQ(f.size(), 7);
  EXPECT_EQ(f.labels(), (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 2}));
  EXPECT_EQ(f.width(), 8);
  EXPECT_EQ(f.height(), 6);
  EXPECT_EQ(f.channels(), 3);
  EXPECT_EQ(f.bytes(), 7 * 8 * 6 * 3);
  EXPECT_EQ(f.first_image(1), 5);
  EXPECT_EQ(f.count(0), 5);
  EXPECT_EQ(f.count(2), 1);
  EXPECT_EQ(f.find_identity("carol"), -1);
  EXPECT_EQ(f.find_identity("dave"), 2);
  EXPECT_EQ(f.find_image("alice", "4.pgm"), 3);
  EXPECT_EQ(f.find_image("bob", "b.jpg"), -1);  // skipped
  EXPECT_EQ(f.find_image("bob", "zzz"), -1);
  // One line each for the truncated JPEG, the text file, the empty folder, the stray file.
  EXPECT_EQ(w.lines.size(), 4u);
  EXPECT_EQ(w.count_naming((t.root / "bob" / "b.jpg").string()), 1);
  EXPECT_EQ(w.count_naming((t.root / "bob" / "c.jpg").string()), 1);
  EXPECT_EQ(w.count_naming((t.root / "carol").string()), 1);
  EXPECT_EQ(w.count_naming("README.txt"), 1);
  EXPECT_EQ(f.skipped_files().size(), 2u);
  // The listing keeps everything, including the skipped files and the empty folder.
  EXPECT_EQ(f.tree().identities, (std::vector<std::string>{"alice", "bob", "carol", "dave"}));
  EXPECT_EQ(f.tree().files[1], (std::vector<std::string>{"a.png", "b.jpg", "c.jpg"}));
  // The JPEG, resized, still looks like its smooth source.
  Image src = smooth(20, 16, 0);
  Image want = resize_image(src.view(), 8, 6);
  double err = 0;
  for (size_t i = 0; i < want.pixels.size(); ++i)
    err = std::max(err, std::fabs(double(want.pixels[i]) - f.image(0).data[i]));
  EXPECT_LE(err, 8.0);
}

TEST(ImageFolder, StrictModeMakesAnUnreadableFileAnError) {
  MixedTree t;
  ImageFolderOptions opt;
  opt.width = opt.height = 4;
  opt.strict = true;
  opt.warn = [](const std::string&) {};
  std::string what = error_of<DataError>([&] { ImageFolder::load(t.root.string(), opt); });
  EXPECT_NE(what.find((t.root / "bob" / "b.jpg").string()), std::string::npos) << what;
}

// stb_image 2.27 writes past its Huffman arrays when a DHT table declares more than 256 codes;
// decode_image_into must refuse such a file before stb_image reads it, also when 0xFF fill
// bytes come before the SOI marker (stb_image skips them; found by fuzz_image in CI).
TEST(ImageFolder, DecodeRefusesJpegHuffmanTablesStbImageWouldOverflow) {
  const Image im = smooth(16, 16, 3);
  std::string jpeg;
  ASSERT_TRUE(stbi_write_jpg_to_func(test::append_to_string, &jpeg, im.width, im.height, 3,
                                     im.pixels.data(), 95));
  std::vector<uint8_t> out(16 * 16 * 3), with_fill(out.size());
  ASSERT_EQ(decode_image_into(jpeg, 3, 16, 16, ResizeFilter::Default, out.data()), "");
  // Fill bytes before SOI: still a JPEG to stb_image, decoded to the same pixels.
  const std::string fill = "\xFF\xFF\xFF";
  ASSERT_EQ(decode_image_into(fill + jpeg, 3, 16, 16, ResizeFilter::Default, with_fill.data()), "");
  EXPECT_EQ(with_fill, out);

  const size_t dht = jpeg.find("\xFF\xC4");
  ASSERT_NE(dht, std::string::npos);
  std::string bad = jpeg;
  for (size_t k = 0; k < 16; ++k) bad[dht + 5 + k] = 17;  // 16 x 17 = 272 codes
  for (const std::string& bytes : {bad, fill + bad}) {
    const std::string why = decode_image_into(bytes, 3, 16, 16, ResizeFilter::Default, out.data());
    EXPECT_NE(why.find("corrupt JPEG: a Huffman table at byte"), std::string::npos) << why;
    EXPECT_NE(why.find("declares 272 codes"), std::string::npos) << why;
  }
}

// A legal PNG whose first IDAT chunk is empty decodes exactly (stb_image 2.27 then calls
// memcpy with a null destination and length 0; the sanitizer suite runs this).
TEST(ImageFolder, DecodesAPngWithAnEmptyIdatChunk) {
  const Image im = pattern(5, 4, 1, 2);
  std::string png;
  ASSERT_TRUE(stbi_write_png_to_func(test::append_to_string, &png, im.width, im.height, 1,
                                     im.pixels.data(), im.width));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  // Length 0, "IDAT", the CRC-32 of "IDAT".
  png.insert(idat - 4, std::string("\0\0\0\0IDAT\x35\xAF\x06\x1E", 12));
  std::vector<uint8_t> out(im.pixels.size());
  ASSERT_EQ(decode_image_into(png, 1, 5, 4, ResizeFilter::Default, out.data()), "");
  EXPECT_EQ(out, im.pixels);
}

// PNG chunks are walked before stb_image reads them: one longer than the rest of the file and an
// unknown critical chunk are refused with the byte offset; an unknown ancillary one is skipped.
TEST(ImageFolder, DecodeChecksPngChunksFirst) {
  const Image im = pattern(5, 4, 3, 1);
  std::string png;
  ASSERT_TRUE(stbi_write_png_to_func(test::append_to_string, &png, im.width, im.height, 3,
                                     im.pixels.data(), im.width * 3));
  const size_t iend = png.find("IEND") - 4;
  std::vector<uint8_t> out(im.pixels.size());
  auto decode = [&](const std::string& bytes) {
    return decode_image_into(bytes, 3, 5, 4, ResizeFilter::Default, out.data());
  };
  // A chunk: length 0, type, a CRC stb_image does not check.
  auto with_chunk = [&](const char* type) {
    return std::string(png).insert(iend, std::string("\0\0\0\0", 4) + type + "CRC!");
  };
  EXPECT_EQ(decode(with_chunk("teXt")), "");
  EXPECT_EQ(out, im.pixels);
  EXPECT_EQ(decode(with_chunk("ZZZZ")),
            "PNG with an unknown critical chunk 'ZZZZ' at byte " + std::to_string(iend));
  std::string huge = png;
  huge.replace(iend, 4, std::string("\x10\0\0\0", 4));
  EXPECT_EQ(decode(huge), "corrupt PNG: the chunk at byte " + std::to_string(iend) +
                              " declares 268435456 data bytes, only 4 follow");
}

// A PNG of 8 x 8 pixels whose zlib stream inflates to 20 MB (a deflate "bomb": one literal, then
// copies of 258 bytes at 13 bits each). stb_image would inflate all of it; each of its
// allocations is now bounded by what the header's size needs, so it stops near 1 MB.
TEST(ImageFolder, DecodeStopsAPngThatInflatesFarBeyondItsSize) {
  struct Bits {  // deflate's bit order: values LSB first, Huffman codes MSB first
    std::string out;
    uint32_t acc = 0;
    int n = 0;
    void put(uint32_t v, int bits) {
      acc |= v << n;
      for (n += bits; n >= 8; n -= 8, acc >>= 8) out += static_cast<char>(acc & 255);
    }
    void code(uint32_t c, int len) {
      for (int i = len - 1; i >= 0; --i) put((c >> i) & 1, 1);
    }
  } z;
  z.out = "\x78\x01";  // zlib header
  z.put(1, 1);         // final block
  z.put(1, 2);         // fixed Huffman codes
  z.code(0x30, 8);     // literal 0
  for (int i = 0; i < 20 * (1 << 20) / 258; ++i) {
    z.code(0xC5, 8);  // length 258 (code 285)
    z.code(0, 5);     // distance 1
  }
  z.code(0, 7);                   // end of block
  z.put(0, 7);                    // pad to a byte
  z.out += std::string(4, '\0');  // Adler-32 (stb_image does not check it)
  auto chunk = [](const std::string& type, const std::string& data) {
    const uint32_t n = static_cast<uint32_t>(data.size());
    std::string c{static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                  static_cast<char>(n)};
    return c + type + data + "CRC!";  // stb_image does not check CRCs
  };
  const std::string ihdr("\0\0\0\x08\0\0\0\x08\x08\0\0\0\0", 13);  // 8 x 8, grey, 8 bits
  const std::string png = std::string("\x89PNG\r\n\x1A\n", 8) + chunk("IHDR", ihdr) +
                          chunk("IDAT", z.out) + chunk("IEND", "");
  std::vector<uint8_t> out(64);
  const std::string why = decode_image_into(png, 1, 8, 8, ResizeFilter::Default, out.data());
  EXPECT_NE(why.find("asks for more than"), std::string::npos) << why;
}

TEST(ImageFolder, ResizesToTheAskedSizeAndChannels) {
  MixedTree t;
  for (auto [w, h, c] : {std::tuple{5, 7, 1}, std::tuple{33, 21, 3}, std::tuple{1, 1, 3}}) {
    ImageFolderOptions opt;
    opt.width = w;
    opt.height = h;
    opt.channels = c;
    opt.filter = ResizeFilter::Triangle;
    opt.warn = [](const std::string&) {};
    ImageFolder f = ImageFolder::load(t.root.string(), opt);
    ASSERT_EQ(f.size(), 7);
    for (int64_t i = 0; i < f.size(); ++i) {
      ImageView v = f.image(i);
      EXPECT_EQ(v.width, w);
      EXPECT_EQ(v.height, h);
      EXPECT_EQ(v.channels, c);
    }
  }
}

TEST(ImageFolder, ClearErrorsForUnusableRoots) {
  ImageFolderOptions opt;
  opt.warn = [](const std::string&) {};
  // One identity.
  fs::path one = fresh_dir("single");
  fs::create_directories(one / "solo");
  write_png(one / "solo" / "a.png", pattern(4, 4, 3, 0));
  write_png(one / "solo" / "b.png", pattern(4, 4, 3, 1));
  std::string what = error_of<DataError>([&] { ImageFolder::load(one.string(), opt); });
  EXPECT_NE(what.find("need at least 2"), std::string::npos) << what;
  // Two folders, but one holds only a non-image.
  fs::create_directories(one / "ghost");
  test::write_bytes(one / "ghost" / "x.png", "nope");
  what = error_of<DataError>([&] { ImageFolder::load(one.string(), opt); });
  EXPECT_NE(what.find("has 1 identity"), std::string::npos) << what;
  // No such folder.
  what = error_of<DataError>([&] { ImageFolder::load((one / "missing").string(), opt); });
  EXPECT_NE(what.find("missing"), std::string::npos) << what;
  // Sizes differ and no resize size is given.
  fs::path sizes = fresh_dir("sizes");
  fs::create_directories(sizes / "a");
  fs::create_directories(sizes / "b");
  write_png(sizes / "a" / "1.png", pattern(4, 4, 3, 0));
  write_png(sizes / "b" / "1.png", pattern(5, 4, 3, 0));
  what = error_of<DataError>([&] { ImageFolder::load(sizes.string(), opt); });
  EXPECT_NE(what.find((sizes / "b" / "1.png").string()), std::string::npos) << what;
  EXPECT_NE(what.find("5x4"), std::string::npos) << what;
  // Bad options.
  ImageFolderOptions bad = opt;
  bad.channels = 2;
  error_of<UsageError>([&] { ImageFolder::load(sizes.string(), bad); });
  bad = opt;
  bad.width = 4;  // height 0
  error_of<UsageError>([&] { ImageFolder::load(sizes.string(), bad); });
}

// Many images: the parallel decode keeps file order and labels.
TEST(ImageFolder, ParallelDecodeKeepsOrder) {
  fs::path root = fresh_dir("many");
  const int ids = 12, per = 9;
  for (int k = 0; k < ids; ++k) {
    fs::path d = root / name_of("id", 10 + k, "");
    fs::create_directories(d);
    for (int j = 0; j < per; ++j)
      write_pnm(d / name_of("f", j, ".pgm"), pattern(3, 2, 1, k * per + j));
  }
  ImageFolderOptions opt;
  opt.channels = 1;
  ImageFolder f = ImageFolder::load(root.string(), opt);
  ASSERT_EQ(f.size(), ids * per);
  for (int k = 0; k < ids; ++k)
    for (int j = 0; j < per; ++j) {
      const int64_t i = f.first_image(k) + j;
      EXPECT_EQ(f.label(i), k);
      EXPECT_EQ(f.file_name(i), name_of("f", j, ".pgm"));
      Image want = pattern(3, 2, 1, k * per + j);
      EXPECT_TRUE(std::equal(want.pixels.begin(), want.pixels.end(), f.image(i).data));
    }
}

TEST(ImageFolder, MakeBatchGathersImagesByIndex) {
  MixedTree t;
  ImageFolderOptions opt;
  opt.width = 4;
  opt.height = 3;
  opt.warn = [](const std::string&) {};
  ImageFolder f = ImageFolder::load(t.root.string(), opt);
  std::vector<int64_t> idx{6, 0};
  Tensor b = make_batch(f, idx, BatchTransform{});
  ASSERT_EQ(b.shape(), (Shape{2, 3, 3, 4}));
  std::vector<float> v = b.to_vector();
  // Sample 0 is image 6; CHW: channel c, row y, column x at c*12 + y*4 + x.
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) {
        EXPECT_FLOAT_EQ(v[c * 12 + y * 4 + x], f.image(6).at(y, x, c) / 255.f);
        EXPECT_FLOAT_EQ(v[36 + c * 12 + y * 4 + x], f.image(0).at(y, x, c) / 255.f);
      }
}

// If the LFW crops are around, time nothing but check they load (one identity subset).
TEST(ImageFolder, ListsTheSharedLfwTreeWhenPresent) {
  const char* src = std::getenv("TRINE_SOURCE_DIR");
  if (src == nullptr) GTEST_SKIP() << "TRINE_SOURCE_DIR not set";
  fs::path lfw = fs::path(src) / ".." / "shared" / "data" / "faces" / "lfw";
  if (!fs::is_directory(lfw)) GTEST_SKIP() << lfw << " not present";
  ImageTree tree = list_image_tree(lfw.string());
  EXPECT_EQ(tree.identities.size(), 5749u);
  size_t files = 0;
  for (const auto& f : tree.files) files += f.size();
  EXPECT_EQ(files, 13233u);
}

}  // namespace
}  // namespace trine
