// IDX reader and MNIST loader: good files (raw and gzip), every kind of corrupt file, the real
// MNIST (and Fashion-MNIST) when present, and datasets/download_mnist.sh with local mirrors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "datasets/idx.h"
#include "datasets/mnist.h"
#include "engine/error.h"
#include "support/test_util.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// An IDX header: magic bytes 0 0 type rank, then the dims big-endian.
std::string idx_header(const std::vector<uint32_t>& dims, uint8_t type = 0x08) {
  std::string h{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<char>((d >> s) & 0xff));
  return h;
}

IdxArray images(int64_t n, int64_t r, int64_t c) {
  IdxArray a;
  a.dims = {n, r, c};
  for (int64_t i = 0; i < n * r * c; ++i)
    a.data.push_back(static_cast<uint8_t>((i * 37 + 11) % 256));
  return a;
}

IdxArray labels(const std::vector<uint8_t>& v) {
  IdxArray a;
  a.dims = {static_cast<int64_t>(v.size())};
  a.data = v;
  return a;
}

TEST(Idx, RoundTripRawAndGzip) {
  test::TempDir t("idx");
  const IdxArray im = images(5, 3, 4);
  for (bool gz : {false, true}) {
    const std::string p = t.file(gz ? "im.gz" : "im");
    write_idx(p, im, gz);
    const IdxArray back = read_idx(p, kIdxImagesMagic);
    EXPECT_EQ(back.dims, im.dims);
    EXPECT_EQ(back.data, im.data);
    EXPECT_EQ(read_bytes(p).substr(0, 2), gz ? std::string("\x1f\x8b") : std::string(2, '\0'));
  }
  const IdxArray lb = labels({3, 1, 4, 1, 5});
  write_idx(t.file("lb"), lb, true);
  EXPECT_EQ(read_idx(t.file("lb"), kIdxLabelsMagic).data, lb.data);
  EXPECT_EQ(read_idx(t.file("lb")).dims, (std::vector<int64_t>{5}));  // any magic accepted
}

TEST(Idx, FormatRecognisedByContentNotName) {
  test::TempDir t("idx");
  const IdxArray im = images(2, 2, 2);
  write_idx(t.file("raw_named.gz"), im, false);
  write_idx(t.file("gz_named_raw"), im, true);
  EXPECT_EQ(read_idx(t.file("raw_named.gz")).data, im.data);
  EXPECT_EQ(read_idx(t.file("gz_named_raw")).data, im.data);
}

TEST(Idx, EmptyArrayIsValid) {
  test::TempDir t("idx");
  IdxArray a;
  a.dims = {0, 28, 28};
  write_idx(t.file("e"), a);
  EXPECT_EQ(read_idx(t.file("e"), kIdxImagesMagic).data.size(), 0u);
}

TEST(Idx, MissingDirectoryAndUnreadable) {
  test::TempDir t("idx");
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("nope")); },
                                           {t.file("nope"), "no such file"}));
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_idx(t.str()); }, {t.str(), "is a directory"}));
  write_idx(t.file("locked"), images(1, 2, 2));
  fs::permissions(t.file("locked"), fs::perms::none);
  if (::geteuid() != 0) {  // root reads anything
    EXPECT_TRUE(
        test::throws_with<DataError>([&] { read_idx(t.file("locked")); },
                                     {t.file("locked"), "cannot open", "ermission denied"}));
  }
}

TEST(Idx, WrongMagicAndType) {
  test::TempDir t("idx");
  write_bytes(t.file("png"), "\x89PNG\r\n\x1a\n0000000000");
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("png")); },
                                           {t.file("png"), "wrong magic", "not an IDX file"}));
  write_idx(t.file("labels"), labels({1, 2}));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("labels"), kIdxImagesMagic); },
                                           {t.file("labels"), "2049", "expected 2051"}));
  write_bytes(t.file("float"), idx_header({1}, 0x0D) + std::string(4, '\0'));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("float")); },
                                           {t.file("float"), "element type 0xd", "not supported"}));
  write_bytes(t.file("empty"), "");
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("empty")); },
                                           {t.file("empty"), "truncated"}));
  write_bytes(t.file("short_header"), idx_header({4, 28, 28}).substr(0, 9));
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_idx(t.file("short_header")); },
                                   {t.file("short_header"), "truncated inside the header"}));
}

TEST(Idx, TruncatedAndTrailingData) {
  test::TempDir t("idx");
  const std::string full = idx_header({5, 3, 4}) + std::string(60, '\x07');
  write_bytes(t.file("trunc"), full.substr(0, full.size() - 12));
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_idx(t.file("trunc")); },
                                   {t.file("trunc"), "truncated", "5 x 3 x 4 = 60", "holds 48"}));
  write_bytes(t.file("trunc.gz"), gzip_compress(full.substr(0, full.size() - 12)));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("trunc.gz")); },
                                           {t.file("trunc.gz"), "truncated", "holds 48"}));
  write_bytes(t.file("extra"), full + "xyz");
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("extra")); },
                                           {t.file("extra"), "3 bytes after the 60 bytes"}));
  write_bytes(t.file("extra.gz"), gzip_compress(full + "xyz"));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("extra.gz")); },
                                           {t.file("extra.gz"), "3 bytes after"}));
  // A gzip stream cut short: zlib reports an unexpected end of the compressed data.
  const std::string gz = gzip_compress(full);
  write_bytes(t.file("cut.gz"), gz.substr(0, gz.size() - 10));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("cut.gz")); },
                                           {t.file("cut.gz"), "truncated"}));
}

TEST(Idx, CorruptGzipData) {
  test::TempDir t("idx");
  IdxArray im = images(50, 28, 28);
  std::string gz =
      gzip_compress(idx_header({50, 28, 28}) + std::string(im.data.begin(), im.data.end()));
  for (size_t i = 20; i < 60; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  write_bytes(t.file("bad.gz"), gz);
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_idx(t.file("bad.gz")); }, {t.file("bad.gz")}));
}

TEST(Idx, LyingHeaderDoesNotAllocate) {
  test::TempDir t("idx");
  // 10^9 images of 28x28 declared in a file of a few bytes: rejected from the file size (raw) or
  // after reading the little data there is (gzip), quickly and without a 784 GB allocation.
  const std::string lie = idx_header({1000000000u, 28, 28}) + std::string(784, '\x01');
  write_bytes(t.file("lie"), lie);
  write_bytes(t.file("lie.gz"), gzip_compress(lie));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("lie")); },
                                           {t.file("lie"), "more than", "trine accepts"}));
  const std::string lie4 = idx_header({1000000u, 28, 28}) + std::string(784, '\x01');  // 784 MB
  write_bytes(t.file("lie4"), lie4);
  write_bytes(t.file("lie4.gz"), gzip_compress(lie4));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("lie4")); },
                                           {"truncated", "784000000 bytes", "holds 784"}));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("lie4.gz")); },
                                           {"truncated", "784000000 bytes", "holds 784"}));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  write_bytes(t.file("huge"), idx_header({0xffffffffu, 0xffffffffu, 0xffffffffu}));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_idx(t.file("huge")); }, {"more than"}));
}

// A fake MNIST folder: train raw (6 images 4x3), test gzip (3 images).
struct FakeMnist {
  test::TempDir dir{"idx"};
  IdxArray train_im = images(6, 4, 3), test_im = images(3, 4, 3);
  IdxArray train_lb = labels({0, 1, 2, 1, 0, 9}), test_lb = labels({7, 0, 1});
  FakeMnist() {
    write_idx(dir.file("train-images-idx3-ubyte"), train_im, false);
    write_idx(dir.file("train-labels-idx1-ubyte"), train_lb, false);
    write_idx(dir.file("t10k-images-idx3-ubyte.gz"), test_im, true);
    write_idx(dir.file("t10k-labels-idx1-ubyte.gz"), test_lb, true);
  }
};

TEST(Mnist, LoadsBothSplits) {
  FakeMnist f;
  const MnistDataset tr = MnistDataset::load(f.dir.str(), MnistSplit::Train);
  EXPECT_EQ(tr.size(), 6);
  EXPECT_EQ(tr.rows(), 4);
  EXPECT_EQ(tr.cols(), 3);
  EXPECT_EQ(tr.pixels(), f.train_im.data);
  EXPECT_EQ(tr.labels(), (std::vector<int32_t>{0, 1, 2, 1, 0, 9}));
  EXPECT_EQ(tr.num_classes(), 10);
  EXPECT_EQ(tr.class_counts(), (std::vector<int64_t>{2, 2, 1, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(tr.source(), f.dir.file("train-images-idx3-ubyte"));
  const MnistDataset te = MnistDataset::load(f.dir.str(), MnistSplit::Test);
  EXPECT_EQ(te.size(), 3);
  EXPECT_EQ(te.labels(), (std::vector<int32_t>{7, 0, 1}));
  EXPECT_EQ(te.source(), f.dir.file("t10k-images-idx3-ubyte.gz"));
  EXPECT_NE(te.describe().find("3 images 4x3"), std::string::npos);
}

TEST(Mnist, NormalizedBatches) {
  FakeMnist f;
  const MnistDataset tr = MnistDataset::load(f.dir.str(), MnistSplit::Train);
  const std::vector<int64_t> idx{5, 0, 5};
  Tensor b = tr.images(idx);
  EXPECT_EQ(b.shape(), (Shape{3, 1, 4, 3}));
  const std::vector<float> v = b.to_vector();
  for (int64_t j = 0; j < 3; ++j)
    for (int64_t p = 0; p < 12; ++p) {
      const uint8_t x = f.train_im.data[idx[j] * 12 + p];
      // float32 as NumPy: ((x / 255) - 0.1307) / 0.3081
      const float want = (static_cast<float>(x) / 255.f - 0.1307f) / 0.3081f;
      ASSERT_EQ(v[j * 12 + p], want);
    }
  EXPECT_EQ(tr.labels_of(idx), (std::vector<int32_t>{9, 0, 9}));
  const std::vector<int32_t> idx32{1, 2};
  EXPECT_EQ(tr.images(idx32).to_vector(), tr.images_range(1, 3).to_vector());
  EXPECT_EQ(tr.labels_of(idx32), (std::vector<int32_t>{1, 2}));
  EXPECT_NEAR(tr.normalize(0), -0.1307f / 0.3081f, 1e-6);
  EXPECT_NEAR(tr.normalize(255), (1.f - 0.1307f) / 0.3081f, 1e-6);
  EXPECT_EQ(tr.images_range(2, 2).shape(), (Shape{0, 1, 4, 3}));

  const std::vector<int64_t> bad{0, 6};
  EXPECT_TRUE(test::throws_with<UsageError>([&] { tr.images(bad); }, {"index 6", "position 1"}));
  EXPECT_TRUE(test::throws_with<UsageError>([&] { tr.labels_of(bad); }, {"index 6"}));
  EXPECT_TRUE(test::throws_with<UsageError>([&] { tr.images_range(4, 7); }, {"range [4, 7)"}));
}

TEST(Mnist, OptionsLimitAndNormalization) {
  FakeMnist f;
  MnistOptions opt;
  opt.limit = 4;
  opt.mean = 0.5f;
  opt.std = 0.25f;
  const MnistDataset tr = MnistDataset::load(f.dir.str(), MnistSplit::Train, opt);
  EXPECT_EQ(tr.size(), 4);
  EXPECT_EQ(tr.pixels().size(), 4u * 12);
  EXPECT_EQ(tr.labels(), (std::vector<int32_t>{0, 1, 2, 1}));
  EXPECT_EQ(tr.normalize(255), 2.f);
  opt.limit = 100;  // more than there are: all
  EXPECT_EQ(MnistDataset::load(f.dir.str(), MnistSplit::Train, opt).size(), 6);
  opt.limit = -1;
  EXPECT_THROW(MnistDataset::load(f.dir.str(), MnistSplit::Train, opt), UsageError);
  opt.limit = 0;
  opt.std = 0.f;
  EXPECT_THROW(MnistDataset::load(f.dir.str(), MnistSplit::Train, opt), UsageError);
}

TEST(Mnist, LabelChecks) {
  FakeMnist f;
  MnistOptions opt;
  opt.num_classes = 5;  // label 9 is out of range
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] { MnistDataset::load(f.dir.str(), MnistSplit::Train, opt); },
      {f.dir.file("train-labels-idx1-ubyte"), "label 9 at index 5", "outside 0..4"}));
  opt.limit = 5;  // ... unless it is cut off
  EXPECT_EQ(MnistDataset::load(f.dir.str(), MnistSplit::Train, opt).size(), 5);
  // Counts that disagree.
  write_idx(f.dir.file("train-labels-idx1-ubyte"), labels({0, 1, 2}), false);
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { MnistDataset::load(f.dir.str(), MnistSplit::Train); },
                                   {"6 images", "3 labels", f.dir.file("train-images-idx3-ubyte"),
                                    f.dir.file("train-labels-idx1-ubyte")}));
  // Images and labels swapped.
  write_idx(f.dir.file("train-labels-idx1-ubyte"), f.train_im, false);
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { MnistDataset::load(f.dir.str(), MnistSplit::Train); },
                                   {"wrong magic number 2051", "expected 2049"}));
}

TEST(Mnist, MissingFilesAndFolders) {
  FakeMnist f;
  fs::remove(f.dir.file("t10k-labels-idx1-ubyte.gz"));
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] { MnistDataset::load(f.dir.str(), MnistSplit::Test); },
      {f.dir.file("t10k-labels-idx1-ubyte.gz"), f.dir.file("t10k-labels-idx1-ubyte"), "neither",
       "download_mnist.sh"}));
  fs::create_directory(f.dir.file("t10k-labels-idx1-ubyte"));  // a directory where a file belongs
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] { MnistDataset::load(f.dir.str(), MnistSplit::Test); }, {"is a directory"}));
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] { MnistDataset::load(f.dir.file("absent"), MnistSplit::Train); }, {"does not exist"}));
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] { MnistDataset::load(f.dir.file("train-images-idx3-ubyte"), MnistSplit::Train); },
      {"not a directory"}));
}

TEST(Mnist, FromMemory) {
  MnistDataset d({0, 255, 128, 64}, {3, 1}, 1, 2, 0.f, 1.f);
  EXPECT_EQ(d.size(), 2);
  EXPECT_EQ(d.num_classes(), 4);
  EXPECT_EQ(d.images_range(0, 2).to_vector(),
            (std::vector<float>{0.f, 1.f, 128.f / 255.f, 64.f / 255.f}));
  EXPECT_THROW(MnistDataset({0, 1, 2}, {0, 1}, 1, 2), UsageError);
  EXPECT_THROW(MnistDataset({0, 1}, {-1}, 1, 2), UsageError);
}

TEST(Mnist, ShiftedImagesMatchABruteForceShift) {
  const int64_t rows = 5, cols = 6, n = 40, m = 2;
  std::vector<uint8_t> pixels(n * rows * cols);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(1 + (i * 37) % 255);
  MnistDataset d(pixels, std::vector<int32_t>(n, 0), rows, cols, 0.5f, 0.25f);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i) idx.push_back((i * 7) % n);
  Generator gen(11), replay(11);
  const std::vector<float> got = d.shifted_images(idx, m, gen).to_vector();
  std::set<int64_t> seen_dy, seen_dx;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t dy = replay.randint(2 * m + 1) - m, dx = replay.randint(2 * m + 1) - m;
    seen_dy.insert(dy);
    seen_dx.insert(dx);
    for (int64_t y = 0; y < rows; ++y)
      for (int64_t x = 0; x < cols; ++x) {
        const int64_t sy = y - dy, sx = x - dx;
        const bool inside = sy >= 0 && sy < rows && sx >= 0 && sx < cols;
        const uint8_t byte = inside ? pixels[(idx[j] * rows + sy) * cols + sx] : 0;
        ASSERT_EQ(got[(j * rows + y) * cols + x], d.normalize(byte))
            << "image " << j << " shifted by (" << dy << ", " << dx << ") at (" << y << ", " << x
            << ")";
      }
  }
  EXPECT_EQ(seen_dy.size(), 5u);  // every offset in [-2, 2] drawn, both ways
  EXPECT_EQ(seen_dx.size(), 5u);
  EXPECT_EQ(gen.randint(1000), replay.randint(1000));  // two draws per image, no more

  // Shift 0 is images() and draws nothing; bad shifts are errors naming the value.
  Generator g0(3), g0_replay(3);
  EXPECT_EQ(d.shifted_images(idx, 0, g0).to_vector(), d.images(idx).to_vector());
  EXPECT_EQ(g0.randint(1000), g0_replay.randint(1000));
  EXPECT_THROW(d.shifted_images(idx, -1, g0), UsageError);
  try {
    d.shifted_images(idx, rows, g0);
    ADD_FAILURE() << "a shift as large as the image was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("shift 5"), std::string::npos) << e.what();
  }
  const std::vector<int64_t> bad = {0, n};
  EXPECT_THROW(d.shifted_images(bad, 1, g0), UsageError);
}

std::string source_dir() {
  const char* s = std::getenv("TRINE_SOURCE_DIR");
  return s ? s : ".";
}

void expect_counts(const MnistDataset& d, const std::vector<int64_t>& want) {
  EXPECT_EQ(d.class_counts(), want);
  EXPECT_EQ(d.rows(), 28);
  EXPECT_EQ(d.cols(), 28);
}

TEST(MnistReal, LabelCountsMatchThePublishedOnes) {
  const std::string dir = source_dir() + "/../shared/data/mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "no MNIST at " << dir;
  const MnistDataset te = MnistDataset::load(dir, MnistSplit::Test);
  ASSERT_EQ(te.size(), 10000);
  expect_counts(te, {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  EXPECT_EQ(te.labels()[0], 7);  // the first test digit is a 7
  const MnistDataset tr = MnistDataset::load(dir, MnistSplit::Train);
  ASSERT_EQ(tr.size(), 60000);
  expect_counts(tr, {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
  EXPECT_EQ(tr.labels()[0], 5);  // and the first training digit a 5
  // Normalized pixels: mean ~0 and std ~1 over the training set (that is what 0.1307/0.3081 are).
  double s = 0, s2 = 0;
  for (uint8_t p : tr.pixels()) {
    const double v = tr.normalize(p);
    s += v;
    s2 += v * v;
  }
  const double n = static_cast<double>(tr.pixels().size());
  EXPECT_NEAR(s / n, 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(s2 / n - (s / n) * (s / n)), 1.0, 1e-3);
}

TEST(MnistReal, FashionMnistWhenInstalled) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir)) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const MnistDataset te = MnistDataset::load(dir, MnistSplit::Test);
  ASSERT_EQ(te.size(), 10000);
  expect_counts(te, std::vector<int64_t>(10, 1000));
  const MnistDataset tr = MnistDataset::load(dir, MnistSplit::Train);
  ASSERT_EQ(tr.size(), 60000);
  expect_counts(tr, std::vector<int64_t>(10, 6000));
}

// ---- datasets/download_mnist.sh, with file:// mirrors (no network needed)

struct ScriptResult {
  int status;
  std::string output;
};

ScriptResult run_script(const std::string& env, const std::string& args) {
  const std::string cmd =
      env + " bash " + source_dir() + "/datasets/download_mnist.sh " + args + " 2>&1";
  ScriptResult r{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(DownloadScript, VerifiesChecksumsAndFailsCleanly) {
  const std::string script = source_dir() + "/datasets/download_mnist.sh";
  const std::string mnist = fs::absolute(source_dir() + "/../shared/data/mnist").string();
  if (!fs::exists(script)) GTEST_SKIP() << "no " << script;
  if (std::system("command -v curl > /dev/null || command -v wget > /dev/null") != 0)
    GTEST_SKIP() << "neither curl nor wget";
  test::TempDir t("idx");
  // Usage.
  EXPECT_EQ(run_script("", "").status, 2);
  // A mirror with wrong content and an unreachable one: exit 1, nothing left behind.
  fs::create_directories(t.file("bad"));
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    write_bytes(t.file("bad/") + name, "not mnist");
  ScriptResult r = run_script("MNIST_MIRRORS='http://127.0.0.1:9/ file://" + t.file("bad/") + "'",
                              t.file("out"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("checksum mismatch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("download failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("could not fetch a verified train-images-idx3-ubyte.gz"),
            std::string::npos)
      << r.output;
  EXPECT_TRUE(fs::is_empty(t.file("out")));  // no partial or temporary files
  // A good local mirror: all four verified and in place.
  if (!fs::exists(mnist + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no MNIST at " << mnist;
  r = run_script("MNIST_MIRRORS='file://" + t.file("bad/") + " file://" + mnist + "/'",
                 t.file("out"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("MNIST ready"), std::string::npos) << r.output;
  EXPECT_EQ(MnistDataset::load(t.file("out"), MnistSplit::Test).size(), 10000);
  int n_files = 0;
  for (const auto& e : fs::directory_iterator(t.file("out"))) {
    (void)e;
    ++n_files;
  }
  EXPECT_EQ(n_files, 4);
  // Already present: kept; a corrupted one is fetched again.
  write_bytes(t.file("out/t10k-labels-idx1-ubyte.gz"), "garbage");
  r = run_script("MNIST_MIRRORS='file://" + mnist + "/'", t.file("out"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("train-images-idx3-ubyte.gz: present, checksum ok"), std::string::npos);
  EXPECT_NE(r.output.find("checksum is wrong; downloading again"), std::string::npos);
  EXPECT_EQ(MnistDataset::load(t.file("out"), MnistSplit::Test).size(), 10000);
}

}  // namespace
}  // namespace trine
