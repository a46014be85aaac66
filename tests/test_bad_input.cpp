// Bad input, end to end: every reader of the `trine` program (IDX/MNIST, image folders, pairs
// files, .npy, checkpoints and model files) and its command-line flags, fed malformed input built
// in a scratch folder. Each case is one run of the program with the message fragment and exit
// status it must give: 2 for usage errors, 1 for data errors, never a signal, a hang or more
// than a few seconds. Messages must name the file (and line or position where there is one).
//
// TRINE_RELIABILITY_TABLE=FILE writes the cases and what trine printed as a markdown table
// (docs/reliability.md holds it).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/idx.h"
#include "engine/checkpoint.h"
#include "support/child_process.h"
#include "support/image_write.h"
#include "support/run_program.h"
#include "support/test_util.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------------ building malformed input

using test::append_to_string;
using test::write_bytes;

std::string read_bytes(const fs::path& p) {
  return test::read_text(p.string());
}

void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

// An IDX file: magic 0x0000 08 <rank>, big-endian dims, then `data` (which may disagree).
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& data) {
  std::string s;
  s.push_back('\0');
  s.push_back('\0');
  s.push_back('\x08');
  s.push_back(static_cast<char>(dims.size()));
  for (uint32_t d : dims) put_be32(s, d);
  return s + data;
}

// Deterministic pseudo-random bytes.
std::string noise(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

std::string labels_data(size_t n, int classes) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % static_cast<size_t>(classes));
  return s;
}

// A small valid MNIST-format folder: 200 train images (20 per class), 50 test images, raw IDX.
void write_mnist(const fs::path& dir) {
  write_bytes(dir / "train-images-idx3-ubyte", idx_bytes({200, 28, 28}, noise(200 * 784, 1)));
  write_bytes(dir / "train-labels-idx1-ubyte", idx_bytes({200}, labels_data(200, 10)));
  write_bytes(dir / "t10k-images-idx3-ubyte", idx_bytes({50, 28, 28}, noise(50 * 784, 2)));
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx_bytes({50}, labels_data(50, 10)));
}

// A .npy v1.0 file with a given header dict (padded as NumPy does) and data.
std::string npy_bytes(const std::string& dict, const std::string& data) {
  std::string header = dict;
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string s("\x93NUMPY\x01\x00", 8);
  s.push_back(static_cast<char>(header.size() & 0xff));
  s.push_back(static_cast<char>(header.size() >> 8));
  return s + header + data;
}

std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::string ints(const std::vector<int32_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
}

// A w x h RGB image with a pattern from `seed`, as PNG or JPEG bytes.
std::string image_bytes(int w, int h, uint32_t seed, bool jpeg) {
  std::string px = noise(static_cast<size_t>(w) * h * 3, seed);
  std::string out;
  if (jpeg)
    stbi_write_jpg_to_func(append_to_string, &out, w, h, 3, px.data(), 90);
  else
    stbi_write_png_to_func(append_to_string, &out, w, h, 3, px.data(), w * 3);
  return out;
}

// Identity folders a..d with three 12x12 PNG images each (LFW-style names).
void write_faces(const fs::path& dir) {
  uint32_t seed = 10;
  for (const std::string id : {"a", "b", "c", "d"})
    for (int i = 1; i <= 3; ++i)
      write_bytes(dir / id / (id + "_000" + std::to_string(i) + ".jpg"),
                  image_bytes(12, 12, seed++, true));
}

// A JPEG whose frame header (SOF0) claims width x height; the scan data stays that of a
// small image, so the header lies.
std::string jpeg_with_size(uint16_t width, uint16_t height) {
  std::string j = image_bytes(16, 16, 99, true);
  for (size_t i = 2; i + 9 < j.size(); ++i) {
    if (static_cast<unsigned char>(j[i]) == 0xFF && static_cast<unsigned char>(j[i + 1]) == 0xC0) {
      // FF C0, length (2), precision (1), height (2), width (2)
      j[i + 5] = static_cast<char>(height >> 8);
      j[i + 6] = static_cast<char>(height & 0xff);
      j[i + 7] = static_cast<char>(width >> 8);
      j[i + 8] = static_cast<char>(width & 0xff);
      break;
    }
  }
  return j;
}

std::string pairs_text(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s.append(l).append("\n");
  return s;
}

// ------------------------------------------------------------------ the cases

struct Case {
  Case(std::string reader_, std::string what_, std::vector<std::string> args_, std::string expect_,
       int status_ = 1, bool as_nobody_ = false)
      : reader(std::move(reader_)),
        what(std::move(what_)),
        args(std::move(args_)),
        expect(std::move(expect_)),
        status(status_),
        as_nobody(as_nobody_) {}
  std::string reader;  // which reader or part of the program
  std::string what;    // what is wrong with the input
  std::vector<std::string> args;
  std::string expect;  // fragment of stderr
  int status = 1;
  bool as_nobody = false;   // a permission case: run unprivileged when the test is root
  std::string skip;         // non-empty: skipped, and why
  double max_seconds = 15;  // generous: the machine may be loaded
};

struct Outcome {
  test::RunResult run;
  std::string printed;  // the line of stderr that holds the fragment (or the last line)
  bool skipped = false;
  std::string skip_reason;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string printed_line(const std::string& err, const std::string& fragment) {
  std::istringstream in(err);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!fragment.empty() && line.find(fragment) != std::string::npos) return line;
    if (!line.empty()) last = line;
  }
  return last;
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    program_ = test::trine_program();
    if (program_.empty()) GTEST_SKIP() << "the trine program is not built";
    root_ = fs::temp_directory_path() / ("trine_bad_input_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
  }
  void TearDown() override {
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }

  std::string p(const std::string& rel) const { return (root_ / rel).string(); }

  // A copy of the good MNIST folder with `file` replaced by `bytes`.
  std::string mnist_with(const std::string& name, const std::string& file,
                         const std::string& bytes) {
    const fs::path dir = root_ / ("mnist-" + name);
    fs::create_directories(dir);
    fs::copy(root_ / "mnist", dir,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    write_bytes(dir / file, bytes);
    return dir.string();
  }

  Outcome run_case(const Case& c) {
    Outcome o;
    if (!c.skip.empty()) {
      o.skipped = true;
      o.skip_reason = c.skip;
      return o;
    }
    std::vector<std::string> argv = {program_};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    test::ChildOptions opt;
    opt.as_nobody = c.as_nobody && test::can_drop_privileges();
    o.run = test::run_program(argv, 120, opt);
    if (opt.as_nobody && o.run.status == 126 && o.run.err.empty()) {
      o.skipped = true;
      o.skip_reason = "cannot switch to user nobody here (no CAP_SETUID)";
      return o;
    }
    o.printed = printed_line(o.run.err, c.expect);
    if (c.expect.empty() && !o.run.out.empty())  // a control run: its first figure
      o.printed = "stdout: " + o.run.out.substr(0, o.run.out.find('\n'));
    return o;
  }

  std::string program_;
  fs::path root_;
};

TEST_F(BadInput, EveryReaderAndFlagGivesAClearMessageAndStatus) {
  const std::string runs = p("runs");

  // ---- good input the bad input is made from
  write_mnist(root_ / "mnist");
  write_faces(root_ / "faces");
  const std::string mnist = p("mnist"), faces = p("faces");
  // 2 folds of one same and one different pair; fold 1 uses a and b, fold 2 uses c and d.
  write_bytes(root_ / "pairs.txt",
              pairs_text({"2\t1", "a\t1\t2", "a\t1\tb\t1", "c\t1\t3", "c\t2\td\t1"}));

  // A short training run on the good data: its checkpoint, model and embeddings are the base of
  // the checkpoint and .npy cases, and it shows the good data is accepted.
  const std::string good_run = runs + "/good";
  const Case control{"(control)",
                     "valid MNIST-format data: a short run",
                     {"mnist", "--data", mnist, "--out", good_run, "--epochs", "2",
                      "--checkpoint-every", "1", "--threads", "1", "--no-train-gallery"},
                     "run folder: " + good_run,
                     0};
  {
    const Outcome o = run_case(control);
    ASSERT_NE(o.run.out.find("test_precision_at_1"), std::string::npos) << o.run.out;
    ASSERT_EQ(o.run.status, 0) << o.run.err;
    ASSERT_TRUE(fs::exists(good_run + "/checkpoint.trine"));
    ASSERT_TRUE(fs::exists(good_run + "/model.trine"));
  }
  const std::string ckpt = read_bytes(good_run + "/checkpoint.trine");
  const std::string model = read_bytes(good_run + "/model.trine");
  const std::string emb = good_run + "/test_embeddings.npy", lab = good_run + "/test_labels.npy";

  std::vector<Case> cases;
  auto add = [&](Case c) { cases.push_back(std::move(c)); };
  // `trine mnist` on a data folder: the data is read before anything is trained or written.
  auto mnist_args = [&](const std::string& data, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"mnist",   "--data", data,        "--out", runs + "/x",
                                  "--steps", "1",      "--threads", "1",     "--no-train-gallery"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string train_im = "train-images-idx3-ubyte", train_lb = "train-labels-idx1-ubyte";
  const std::string good_im = read_bytes(root_ / "mnist" / train_im);

  // ---- IDX / MNIST
  {
    const std::string d = mnist_with("empty", train_im, "");
    add({"IDX", "zero-length file", mnist_args(d),
         "IDX file " + d + "/" + train_im +
             ": truncated (0 bytes, shorter than the 4-byte IDX "
             "magic number)"});
  }
  {
    const std::string d = mnist_with("short-header", train_im, good_im.substr(0, 9));
    add({"IDX", "file ends inside the header", mnist_args(d), "truncated inside the header"});
  }
  {
    const std::string d = mnist_with("truncated", train_im, good_im.substr(0, good_im.size() / 2));
    add({"IDX", "truncated data (half the file)", mnist_args(d),
         "IDX file " + d + "/" + train_im + ": truncated: header declares 200 x 28 x 28 = 156800 " +
             "bytes of data, the file holds 78392"});
  }
  {
    const std::string d = mnist_with("trailing", train_im, good_im + "extra");
    add({"IDX", "bytes after the declared data", mnist_args(d),
         ": 5 bytes after the 156800 bytes of data the header declares"});
  }
  {
    const std::string d =
        mnist_with("magic", train_im, std::string("GIF89a").append(good_im.substr(6)));
    add({"IDX", "wrong magic (not an IDX file)", mnist_args(d), train_im + ": wrong magic number"});
  }
  {
    const std::string d = mnist_with("swapped", train_im, read_bytes(root_ / "mnist" / train_lb));
    add({"IDX", "labels file where the images belong (magic 2049)", mnist_args(d),
         "wrong magic number 2049, expected 2051, IDX images"});
  }
  {
    const std::string d =
        mnist_with("elemtype", train_im, std::string("\0\0\x0d\x03", 4).append(good_im.substr(4)));
    add({"IDX", "element type float (0x0d) instead of unsigned byte", mnist_args(d),
         "element type 0xd is not supported"});
  }
  {
    const std::string d = mnist_with("huge", train_im, idx_bytes({4000000000u, 60000, 60000}, ""));
    add({"IDX", "header claims 4e9 x 60000 x 60000 (no allocation may follow)", mnist_args(d),
         "bytes of data, more than the 4294967296 trine accepts"});
  }
  {
    // Within the 4 GiB cap, so only the file size can refute it.
    const std::string d = mnist_with("lying", train_im, idx_bytes({5000000, 28, 28}, "x"));
    add({"IDX", "header claims 5 000 000 images, file holds 1 byte", mnist_args(d),
         "header declares 5000000 x 28 x 28 = 3920000000 bytes of data, the file holds 1"});
  }
  {
    // The same lie gzip-compressed: the size is unknown until decompressed, so memory must
    // follow the data actually read.
    const std::string d = mnist_with("lying-gz", train_im, "");
    fs::remove(fs::path(d) / train_im);
    write_bytes(fs::path(d) / (train_im + ".gz"), gzip_compress(idx_bytes({5000000, 28, 28}, "x")));
    add({"IDX", "gzip file whose header claims 5 000 000 images", mnist_args(d),
         "bytes of data, the file holds 1"});
  }
  {
    // A gzip header, then deflate data with a damaged middle.
    std::string gz = gzip_compress(good_im);
    for (size_t i = gz.size() / 3; i < gz.size() / 3 + 64; ++i) gz[i] = static_cast<char>(i * 7);
    const std::string d = mnist_with("gz-corrupt", train_im, "");
    fs::remove(fs::path(d) / train_im);
    write_bytes(fs::path(d) / (train_im + ".gz"), gz);
    add({"IDX", "corrupt gzip stream", mnist_args(d), train_im + ".gz: corrupt gzip data"});
  }
  {
    const std::string d = mnist_with("count", train_lb, idx_bytes({199}, labels_data(199, 10)));
    add({"IDX", "200 images but 199 labels", mnist_args(d),
         "holds 200 images but " + d + "/" + train_lb + " holds 199 labels"});
  }
  {
    std::string lb = labels_data(200, 10);
    lb[37] = static_cast<char>(200);
    const std::string d = mnist_with("label-range", train_lb, idx_bytes({200}, lb));
    add({"IDX", "label 200 in a 10-class set", mnist_args(d),
         train_lb + ": label 200 at index 37 (byte 45) is outside 0..9"});
  }
  {
    const std::string d = mnist_with("dir", train_im, "");
    fs::remove(fs::path(d) / train_im);
    fs::create_directories(fs::path(d) / train_im);
    add({"IDX", "a directory where the images file belongs", mnist_args(d),
         train_im + ": is a directory, expected a file"});
  }
  {
    const std::string d = mnist_with("perm", train_lb, read_bytes(root_ / "mnist" / train_lb));
    fs::permissions(fs::path(d) / train_lb, fs::perms::none);
    add({"IDX", "unreadable file (mode 000)", mnist_args(d),
         train_lb + ": cannot open (Permission denied)", 1, true});
  }
  add({"IDX", "data folder does not exist", mnist_args(p("nowhere")),
       "MNIST folder " + p("nowhere") + " does not exist"});
  add({"IDX", "data folder is a file", mnist_args(p("pairs.txt")), "is not a directory"});
  {
    const std::string d = mnist_with("missing", train_im, "");
    fs::remove(fs::path(d) / train_im);
    add({"IDX", "images file missing", mnist_args(d), "neither " + d + "/" + train_im + ".gz nor"});
  }

  // ---- image folders (`trine pairs` decodes every image of a folder)
  auto folder_with = [&](const std::string& name, const std::string& file,
                         const std::string& bytes) {
    const fs::path dir = root_ / ("faces-" + name);
    fs::create_directories(dir);
    fs::copy(root_ / "faces", dir,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    if (!file.empty()) write_bytes(dir / file, bytes);
    return dir.string();
  };
  auto pairs_args = [&](const std::string& images, bool strict) {
    std::vector<std::string> a = {"pairs", "--images",         images,
                                  "--out", p("generated.txt"), "--folds",
                                  "2",     "--pairs-per-fold", "1"};
    if (strict) a.push_back("--strict");
    return a;
  };
  const std::string good_jpeg = read_bytes(root_ / "faces" / "b" / "b_0002.jpg");
  {
    const std::string d = folder_with("corrupt", "b/b_0002.jpg", noise(300, 5));
    add({"image folder", "corrupt JPEG (random bytes), default: skipped with a warning",
         pairs_args(d, false), "warning: skipping " + d + "/b/b_0002.jpg: not a decodable image",
         0});
    add({"image folder", "corrupt JPEG (random bytes), --strict", pairs_args(d, true),
         "image " + d + "/b/b_0002.jpg: not a decodable image"});
  }
  {
    std::string bad = good_jpeg;
    for (size_t i = bad.size() / 4; i < bad.size() / 4 + 40 && i < bad.size(); ++i) bad[i] = 'X';
    const std::string d = folder_with("corrupt-header", "b/b_0002.jpg", bad);
    // The overwritten bytes land in a Huffman table (DHT): its code counts sum to 1234, past
    // the 256 the table holds, which stb_image 2.27 would write beyond its arrays.
    add({"image folder", "JPEG with 40 bytes of its tables overwritten, --strict",
         pairs_args(d, true),
         "image " + d + "/b/b_0002.jpg: corrupt JPEG: a Huffman table at byte"});
  }
  {
    const std::string d = folder_with("empty-file", "c/c_0001.jpg", "");
    add({"image folder", "zero-length image, --strict", pairs_args(d, true),
         "image " + d + "/c/c_0001.jpg: empty file"});
  }
  {
    const std::string d = folder_with("trunc", "c/c_0001.jpg", good_jpeg.substr(0, 100));
    add({"image folder", "JPEG cut after 100 bytes, --strict", pairs_args(d, true),
         d + "/c/c_0001.jpg: not a decodable image"});
  }
  {
    const std::string d = folder_with("huge", "a/a_0001.jpg", jpeg_with_size(30000, 30000));
    add({"image folder", "JPEG header claims 30000 x 30000 (no 2.7 GB decode), --strict",
         pairs_args(d, true), "image " + d + "/a/a_0001.jpg: 30000x30000 pixels, more than"});
  }
  {
    const std::string pgm = std::string("P5\n12 12\n65535\n").append(noise(288, 4));
    const std::string d = folder_with("pgm16", "c/c_0002.jpg", pgm);
    add({"image folder", "16-bit PGM (stb_image 2.27 would read past its buffer), --strict",
         pairs_args(d, true),
         "image " + d + "/c/c_0002.jpg: 16-bit PGM/PPM (maxval 65535) is not supported"});
  }
  {
    // The IDAT chunk's length field says 2 GB (stb_image 2.27 would allocate it first).
    std::string png = image_bytes(12, 12, 7, false);
    const size_t idat = png.find("IDAT") - 4;
    png.replace(idat, 4, "\x7F\xFF\xFF\xFF");
    const std::string d = folder_with("png-chunk", "a/a_0002.jpg", png);
    add({"image folder", "PNG chunk that declares 2 GB in a small file, --strict",
         pairs_args(d, true),
         "image " + d + "/a/a_0002.jpg: corrupt PNG: the chunk at byte " + std::to_string(idat) +
             " declares 2147483647 data bytes, only"});
  }
  {
    const std::string d = folder_with("perm", "", "");
    fs::permissions(fs::path(d) / "d" / "d_0003.jpg", fs::perms::none);
    add({"image folder", "unreadable image (mode 000), --strict", pairs_args(d, true),
         "image " + d + "/d/d_0003.jpg: cannot open", 1, true});
  }
  add({"image folder", "root does not exist", pairs_args(p("nowhere"), false),
       "image folder '" + p("nowhere") + "' does not exist or is not a folder"});
  add({"image folder", "root is a file", pairs_args(p("pairs.txt"), false),
       "image folder '" + p("pairs.txt") + "' does not exist or is not a folder"});
  {
    const fs::path d = root_ / "faces-one";
    fs::create_directories(d / "a");
    fs::copy(root_ / "faces" / "a", d / "a");
    add({"image folder", "only one identity folder", pairs_args(d.string(), false),
         "has 1 identity folder(s) with usable images; need at least 2"});
  }

  // ---- pairs files (`trine faces` reads the pairs file first, then the images)
  auto faces_args = [&](const std::string& pairs, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"faces", "--images",  faces,    "--pairs", pairs,
                                  "--out", runs + "/f", "--size", "16",      "--steps",
                                  "1",     "--threads", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto pairs_file = [&](const std::string& name, const std::vector<std::string>& lines) {
    const std::string path = p("pairs-" + name + ".txt");
    write_bytes(path, pairs_text(lines));
    return path;
  };
  {
    const std::string f = p("pairs-empty.txt");
    write_bytes(f, "");
    add({"pairs file", "zero-length file", faces_args(f), f + ":1: empty pairs file"});
  }
  {
    const std::string f = pairs_file("header", {"ten\t300"});
    add({"pairs file", "header is not '<folds> <n>'", faces_args(f),
         f + ":1: header must be '<folds><TAB><pairs per fold>'"});
  }
  {
    const std::string f =
        pairs_file("fields", {"2\t1", "a\t1\t2", "a\t1\tb", "c\t1\t3", "c\t2\td\t1"});
    add({"pairs file", "a different pair with 3 fields", faces_args(f),
         f + ":3: a different pair needs 4 fields 'name1 i name2 j', got 3"});
  }
  {
    const std::string f =
        pairs_file("number", {"2\t1", "a\t1\tx", "a\t1\tb\t1", "c\t1\t3", "c\t2\td\t1"});
    add({"pairs file", "image number 'x'", faces_args(f),
         f + ":2: image number must be an integer >= 1, got 'x'"});
  }
  {
    const std::string f =
        pairs_file("zero", {"2\t1", "a\t0\t2", "a\t1\tb\t1", "c\t1\t3", "c\t2\td\t1"});
    add({"pairs file", "image number 0", faces_args(f),
         f + ":2: image number must be an integer >= 1, got '0'"});
  }
  {
    const std::string f = pairs_file("short", {"2\t1", "a\t1\t2", "a\t1\tb\t1"});
    add({"pairs file", "fewer lines than the header promises", faces_args(f),
         f + ":3: file ends after 2 pair lines (1 complete fold(s)); the header promises 2 folds"});
  }
  {
    const std::string f = pairs_file("overflow", {"10\t9223372036854775807", "a\t1\t2"});
    add({"pairs file", "header count near 2^63 (overflow)", faces_args(f),
         f + ":1: header promises"});
  }
  {
    const std::string f =
        pairs_file("identity", {"2\t1", "zed\t1\t2", "a\t1\tb\t1", "c\t1\t3", "c\t2\td\t1"});
    add({"pairs file", "identity without a folder", faces_args(f),
         f + ":2: identity 'zed' has no folder in " + faces});
  }
  {
    const std::string f =
        pairs_file("image", {"2\t1", "a\t1\t7", "a\t1\tb\t1", "c\t1\t3", "c\t2\td\t1"});
    add({"pairs file", "image number beyond the folder", faces_args(f),
         f + ":2: image 7 of 'a' not found: no file " + faces + "/a/a_0007.jpg"});
  }
  add({"pairs file", "file does not exist", faces_args(p("nowhere.txt")),
       "pairs file '" + p("nowhere.txt") + "'"});
  add({"pairs file", "a directory where the file belongs", faces_args(faces),
       "pairs file '" + faces + "' is a directory, expected a file"});
  {
    const std::string f = pairs_file("perm", {"2\t1"});
    fs::permissions(f, fs::perms::none);
    add({"pairs file", "unreadable file (mode 000)", faces_args(f),
         "cannot open pairs file '" + f + "' (Permission denied)", 1, true});
  }

  // ---- .npy (`trine eval`)
  auto eval_args = [&](const std::string& e, const std::string& l) {
    return std::vector<std::string>{"eval", "--embeddings", e, "--labels", l, "--threads", "1"};
  };
  const std::string f32 = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }";
  const std::string lab4 = p("labels4.npy");
  write_bytes(lab4, npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }",
                              ints({0, 0, 1, 1})));
  add({".npy", "(control) embeddings and labels of the short run", eval_args(emb, lab),
       "eval: 50 embeddings, leave-one-out", 0});
  {
    const std::string f = p("empty.npy");
    write_bytes(f, "");
    add({".npy", "zero-length file", eval_args(f, lab),
         ".npy file " + f + ": 0 bytes, too short to be a .npy file"});
  }
  {
    const std::string f = p("magic.npy");
    write_bytes(f, std::string("PK\x03\x04").append(noise(100, 3)));
    add({".npy", "wrong magic (a zip file)", eval_args(f, lab),
         ".npy file " + f + ": wrong magic bytes (not a NumPy .npy file)"});
  }
  {
    const std::string f = p("version.npy");
    std::string b = npy_bytes(f32, floats({1, 2, 3, 4, 5, 6, 7, 8}));
    b[6] = 9;
    write_bytes(f, b);
    add({".npy", "format version 9.0", eval_args(f, lab4), "format version 9.0 is not supported"});
  }
  {
    const std::string f = p("header.npy");
    write_bytes(f, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, two), }",
                             floats({1, 2, 3, 4, 5, 6, 7, 8})));
    add({".npy", "malformed header dict", eval_args(f, lab4),
         ".npy file " + f +
             ": malformed header: shape holds a value that is not a non-negative "
             "integer"});
  }
  {
    const std::string f = p("truncated.npy");
    write_bytes(f, npy_bytes(f32, floats({1, 2, 3, 4, 5})));
    add({".npy", "truncated data (5 of 8 floats)", eval_args(f, lab4),
         ".npy file " + f + ": truncated: header shape (4, 2) of '<f4' needs 32 bytes of data, " +
             "the file holds 20"});
  }
  {
    const std::string f = p("huge.npy");
    write_bytes(f, npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (1000000000000, 1000000000000), }",
                             floats({1, 2})));
    add({".npy", "header shape 1e12 x 1e12 (overflows int64; no allocation may follow)",
         eval_args(f, lab4),
         ".npy file " + f + ": shape (1000000000000, 1000000000000) is too large"});
  }
  {
    const std::string f = p("big.npy");
    write_bytes(f, npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (100000000, 8), }",
                             floats({1, 2})));
    add({".npy", "header shape 1e8 x 8, file holds 8 bytes", eval_args(f, lab4),
         "needs 3200000000 bytes of data, the file holds 8"});
  }
  {
    const std::string f = p("nan.npy");
    write_bytes(f, npy_bytes(f32, floats({1, 2, 3, NAN, 5, 6, 7, 8})));
    add({".npy", "NaN in the embeddings", eval_args(f, lab4),
         ".npy file " + f + ": value nan at row 1, column 1 is not finite"});
  }
  {
    const std::string f = p("inf.npy");
    write_bytes(f, npy_bytes(f32, floats({1, 2, 3, 4, 5, 6, -INFINITY, 8})));
    add({".npy", "-Inf in the embeddings", eval_args(f, lab4),
         ".npy file " + f + ": value -inf at row 3, column 0 is not finite"});
  }
  {
    const std::string f = p("f8.npy"), e = p("good4.npy");
    write_bytes(e, npy_bytes(f32, floats({1, 2, 3, 4, 5, 6, 7, 8})));
    write_bytes(f, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
                             std::string(32, '\0')));
    add({".npy", "float labels", eval_args(e, f),
         ".npy file " + f + ": dtype '<f8' is not an integer type (labels)"});
    const std::string l3 = p("labels3.npy");
    write_bytes(l3, npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
                              ints({0, 0, 1})));
    add({".npy", "4 embeddings, 3 labels", eval_args(e, l3),
         e + " holds 4 embeddings but " + l3 + " holds 3 labels"});
    const std::string big_endian = p("be.npy");
    write_bytes(big_endian, npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (4, 2), }",
                                      floats({1, 2, 3, 4, 5, 6, 7, 8})));
    add({".npy", "big-endian floats", eval_args(big_endian, lab4),
         "dtype '>f4' is big-endian; trine reads little-endian data"});
    const std::string one_d = p("onedim.npy");
    write_bytes(one_d, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (8,), }",
                                 floats({1, 2, 3, 4, 5, 6, 7, 8})));
    add({".npy", "1-D embeddings", eval_args(one_d, lab4),
         one_d + ": embeddings must be a 2-D array [N, D], got shape [8]"});
  }
  add({".npy", "a directory where the file belongs", eval_args(p("mnist"), lab),
       ".npy file " + p("mnist") + ": is a directory, expected a file"});
  add({".npy", "file does not exist", eval_args(p("nowhere.npy"), lab),
       ".npy file " + p("nowhere.npy") + ": no such file"});
  {
    const std::string f = p("perm.npy");
    fs::copy_file(emb, f);
    fs::permissions(f, fs::perms::none);
    add({".npy", "unreadable file (mode 000)", eval_args(f, lab),
         ".npy file " + f + ": cannot open (Permission denied)", 1, true});
  }

  // ---- checkpoints (`trine mnist --resume`) and model files (`trine embed --model`)
  auto resume_dir = [&](const std::string& name, const std::string& bytes) {
    const fs::path d = root_ / "runs" / ("resume-" + name);
    fs::create_directories(d);
    write_bytes(d / "checkpoint.trine", bytes);
    return d.string();
  };
  auto resume_args = [&](const std::string& dir) {
    return std::vector<std::string>{"mnist", "--resume", dir, "--threads", "1"};
  };
  {
    const std::string d = resume_dir("empty", "");
    add({"checkpoint", "zero-length checkpoint", resume_args(d),
         "checkpoint " + d +
             "/checkpoint.trine: file is 0 bytes, too short to be a trine "
             "checkpoint"});
  }
  {
    const std::string d = resume_dir("truncated", ckpt.substr(0, ckpt.size() / 2));
    add({"checkpoint", "truncated checkpoint (half)", resume_args(d),
         "checkpoint " + d +
             "/checkpoint.trine: checksum mismatch (the file is truncated or "
             "corrupt)"});
  }
  {
    std::string flipped = ckpt;
    flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x10);
    const std::string d = resume_dir("flipped", flipped);
    add({"checkpoint", "one bit flipped", resume_args(d), "/checkpoint.trine: checksum mismatch"});
  }
  {
    const std::string d = resume_dir("magic", read_bytes(emb));
    add({"checkpoint", "a .npy file named checkpoint.trine", resume_args(d),
         "checkpoint " + d + "/checkpoint.trine: not a trine checkpoint (wrong magic bytes)"});
  }
  {
    const std::string d = resume_dir("model", model);
    add({"checkpoint", "a model file (no training state) as the checkpoint", resume_args(d),
         d + "/checkpoint.trine: cannot resume from it: checkpoint: missing 'trainer.epoch'; is "
             "this a training checkpoint written by trine?"});
  }
  {
    std::vector<std::string> a = resume_args(good_run);
    a.insert(a.end(), {"--dim", "32"});
    add({"checkpoint", "resumed with a --dim that does not match the checkpoint", a,
         good_run + "/checkpoint.trine: cannot resume from it: load_state_dict: '"});
  }
  {
    const fs::path d = root_ / "runs" / "resume-dir";
    fs::create_directories(d / "checkpoint.trine");
    add({"checkpoint", "a directory where the checkpoint belongs", resume_args(d.string()),
         "checkpoint " + d.string() + "/checkpoint.trine: is a directory, expected a file"});
  }
  {
    Checkpoint other = load_checkpoint(good_run + "/checkpoint.trine");
    other.meta["model"] = "facenet-s";
    const fs::path d = root_ / "runs" / "resume-faces";
    fs::create_directories(d);
    save_checkpoint((d / "checkpoint.trine").string(), other);
    add({"checkpoint", "a faces run's checkpoint resumed with trine mnist", resume_args(d.string()),
         "checkpoint.trine: holds a facenet-s model, not mnist-w1; resume it with trine faces "
         "--resume"});
  }
  add({"checkpoint", "run folder without a checkpoint", resume_args(p("nowhere")),
       "checkpoint " + p("nowhere") + "/checkpoint.trine: no such file"});
  {
    const std::string d = resume_dir("perm", ckpt);
    fs::permissions(fs::path(d) / "checkpoint.trine", fs::perms::none);
    add({"checkpoint", "unreadable checkpoint (mode 000)", resume_args(d),
         "checkpoint " + d + "/checkpoint.trine: cannot open (Permission denied)", 1, true});
  }
  auto embed_args = [&](const std::string& model_path) {
    return std::vector<std::string>{"embed", "--model",  model_path,  "--mnist", mnist,
                                    "--out", p("e.npy"), "--threads", "1"};
  };
  {
    const std::string f = p("truncated-model.trine");
    write_bytes(f, model.substr(0, model.size() - 100));
    add({"model file", "truncated model file", embed_args(f),
         "checkpoint " + f + ": checksum mismatch"});
  }
  add({"model file", "a .npy file as the model", embed_args(emb),
       "checkpoint " + emb + ": not a trine checkpoint (wrong magic bytes)"});
  add({"model file", "model file does not exist", embed_args(p("nowhere.trine")),
       "checkpoint " + p("nowhere.trine") + ": no such file"});
  add({"model file", "(control) the short run's model", embed_args(good_run + "/model.trine"), "",
       0});

  // ---- flags and numeric values
  add({"flags", "--epochs 0", mnist_args(mnist, {"--epochs", "0"}),
       "--epochs must be in [1, 100000], got 0", 2});
  add({"flags", "--epochs -3", mnist_args(mnist, {"--epochs", "-3"}),
       "--epochs must be in [1, 100000], got -3", 2});
  add({"flags", "--epochs 1.5", mnist_args(mnist, {"--epochs", "1.5"}),
       "--epochs expects an integer, got '1.5'", 2});
  add({"flags", "--epochs 99999999999999999999 (overflows int64)",
       mnist_args(mnist, {"--epochs", "99999999999999999999"}), "--epochs expects an integer", 2});
  add({"flags",
       "--steps -1",
       {"mnist", "--data", mnist, "--steps=-1"},
       "--steps must be in [0,",
       2});
  add({"flags", "--eval-batch 0", mnist_args(mnist, {"--eval-batch", "0"}),
       "--eval-batch must be in [1, 1048576], got 0", 2});
  add({"flags",
       "embed --batch -5",
       {"embed", "--model", good_run, "--mnist", mnist, "--out", p("e.npy"), "--batch=-5"},
       "--batch must be in [1, 1048576], got -5",
       2});
  add({"flags", "--p 1 (a triplet needs two classes)", mnist_args(mnist, {"--p", "1"}),
       "--p must be in [2, 100000], got 1", 2});
  add({"flags", "--k 0", mnist_args(mnist, {"--k", "0"}), "--k must be in [2, 100000], got 0", 2});
  add({"flags", "--p 12 with 10 classes in the data", mnist_args(mnist, {"--p", "12"}),
       "P=12 classes per batch, but the data has only 10 classes", 2});
  add({"flags", "--k 64 with 20 images per class", mnist_args(mnist, {"--k", "64"}),
       "K=64 samples per class, but the largest class has only 20", 2});
  add({"flags", "--limit 12 leaves 2 images per class for K=16",
       mnist_args(mnist, {"--limit", "12"}),
       "K=16 samples per class, but the largest class has only 2", 2});
  add({"flags", "--lr abc", mnist_args(mnist, {"--lr", "abc"}),
       "--lr expects a finite number, got 'abc'", 2});
  add({"flags", "--lr nan", mnist_args(mnist, {"--lr", "nan"}),
       "--lr expects a finite number, got 'nan'", 2});
  add({"flags", "--lr inf", mnist_args(mnist, {"--lr", "inf"}),
       "--lr expects a finite number, got 'inf'", 2});
  add({"flags", "--lr -0.1", mnist_args(mnist, {"--lr=-0.1"}), "--lr must be in [0, 1000]", 2});
  add({"flags", "--margin -1", mnist_args(mnist, {"--margin=-1"}), "--margin must be in [0,", 2});
  add({"flags",
       "--threads -1",
       {"mnist", "--data", mnist, "--threads=-1"},
       "--threads must be in [0, 1024], got -1",
       2});
  add({"flags", "--dim 0", mnist_args(mnist, {"--dim", "0"}), "--dim must be in [1, 65536]", 2});
  add({"flags", "--checkpoint-every -2", mnist_args(mnist, {"--checkpoint-every=-2"}),
       "--checkpoint-every must be in [0,", 2});
  add({"flags", "--miner bogus", mnist_args(mnist, {"--miner", "bogus"}), "bogus", 2});
  add({"flags", "--lr-schedule bogus", mnist_args(mnist, {"--lr-schedule", "bogus"}), "bogus", 2});
  add({"flags", "--distance lp:x", mnist_args(mnist, {"--distance", "lp:x"}), "lp:x", 2});
  add({"flags", "--distance mahalanobis:65 for 64-d embeddings",
       mnist_args(mnist, {"--distance", "mahalanobis:65"}),
       "RANK must be a whole number from 1 to the embedding size 64", 2});
  add({"flags", "--on-nonfinite maybe", mnist_args(mnist, {"--on-nonfinite", "maybe"}),
       "--on-nonfinite must be one of recover|stop, got 'maybe'", 2});
  add({"flags", "unknown flag --epoch", mnist_args(mnist, {"--epoch", "3"}), "unknown flag --epoch",
       2});
  add({"flags", "flag without its value", mnist_args(mnist, {"--seed"}),
       "flag --seed needs a value", 2});
  add({"flags", "flag given twice", mnist_args(mnist, {"--seed", "1", "--seed", "2"}),
       "flag --seed given more than once", 2});
  add({"flags",
       "stray argument",
       {"mnist", "extra", "--data", mnist},
       "unexpected argument 'extra'",
       2});
  add({"flags", "faces --folds 0", faces_args(p("pairs.txt"), {"--folds", "0"}),
       "--folds must be a fold number >= 1 or 'all', got '0'", 2});
  add({"flags", "faces --folds 3 with a 2-fold pairs file",
       faces_args(p("pairs.txt"), {"--folds", "3"}),
       "--folds 3: " + p("pairs.txt") + " has 2 folds", 2});
  add({"flags",
       "eval --recall-k 0",
       {"eval", "--embeddings", emb, "--labels", lab, "--recall-k", "0"},
       "--recall-k expects positive integers",
       2});
  add({"flags",
       "eval without --labels",
       {"eval", "--embeddings", emb},
       "--embeddings and --labels are required",
       2});
  add({"flags", "--conv-math tf32 on the CPU", mnist_args(mnist, {"--conv-math", "tf32"}),
       "--conv-math tf32 needs a CUDA device (--device cuda)", 2});
  add({"flags", "--device tpu", mnist_args(mnist, {"--device", "tpu"}),
       "unknown device 'tpu': expected cpu, cuda or cuda:N", 2});
  {
    Case c{"flags", "--device cuda in a build without CUDA",
           mnist_args(mnist, {"--device", "cuda"}), "requested, but trine was built without CUDA",
           2};
    if (test::run_trine("--version").out.find("with CUDA") != std::string::npos)
      c.skip = "this build has CUDA";
    add(c);
  }
  add({"flags", "unknown command", {"trian"}, "trine: unknown command 'trian'", 2});
  add({"flags", "unknown subcommand", {"bench", "w9"}, "trine bench: unknown subcommand 'w9'", 2});
  add({"flags", "command group alone", {"bench"}, "trine bench: needs a subcommand", 2});
  add({"flags", "no command (the usage text goes to stdout)", {}, "", 2});

  // ---- run them
  std::ostringstream table;
  table << "| reader | bad input | status | what trine printed (stderr) |\n"
        << "|---|---|---|---|\n";
  int failures = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reader + ": " + c.what);
    const Outcome o = run_case(c);
    std::string shown = replace_all(o.printed, root_.string(), "T");
    shown = replace_all(shown, "|", "\\|");
    if (o.skipped) {
      table << "| " << c.reader << " | " << c.what << " | skipped | " << o.skip_reason << " |\n";
      continue;
    }
    table << "| " << c.reader << " | " << c.what << " | " << o.run.status << " | `" << shown
          << "` |\n";
    const bool found = o.run.err.find(c.expect) != std::string::npos;
    const bool fast = c.status == 0 || o.run.seconds < c.max_seconds;
    const bool ok = !o.run.timed_out && !o.run.killed_by_signal && o.run.status == c.status &&
                    found && fast && o.run.err.find("terminate called") == std::string::npos;
    EXPECT_TRUE(ok) << "status " << o.run.status << " (expected " << c.status << ")"
                    << (o.run.timed_out ? ", hung" : "")
                    << (o.run.killed_by_signal ? ", killed by a signal" : "")
                    << (fast ? "" : ", too slow to fail: " + std::to_string(o.run.seconds) + " s")
                    << (found ? "" : "\nexpected '" + c.expect + "' in stderr") << "\nstderr:\n"
                    << o.run.err;
    if (!ok) ++failures;
  }
  std::cout << cases.size() << " cases, " << failures << " failing\n";
  if (const char* out = std::getenv("TRINE_RELIABILITY_TABLE")) {
    std::ofstream f(out);
    f << table.str();
  }
}

}  // namespace
}  // namespace trine
