// .npy reading and writing: round trips per dtype, versions 1.0/2.0, every malformed-file error,
// NaN/Inf detection, and interchange with NumPy itself when /usr/bin/python3 has it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "datasets/npy.h"
#include "engine/error.h"
#include "support/test_util.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A .npy file by hand: version major.0, header dict text (padded to 16), then data bytes.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string h = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + h.size() + 1) % 16) h.push_back(' ');
  h.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  const size_t n = h.size();
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  if (major != 1) {
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 24) & 0xff));
  }
  return out + h + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(Npy, FloatRoundTrip) {
  test::TempDir t("npy");
  const std::vector<float> v{1.5f, -2.f, 3.25f, 0.f, 1e-30f, -7.f};
  Tensor x = Tensor::from_vector(v, {2, 3});
  write_npy(t.file("x.npy"), x);
  Tensor y = read_npy_floats(t.file("x.npy"));
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.to_vector(), v);
  const NpyHeader h = read_npy_header(t.file("x.npy"));
  EXPECT_EQ(h.version_major, 1);
  EXPECT_EQ(h.descr, "<f4");
  EXPECT_FALSE(h.fortran_order);
  EXPECT_EQ(h.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.data_offset % 64, 0);  // NumPy aligns the data to 64 bytes
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(t.file("x.npy"))), h.data_offset + 24);
  // 1-D, scalar and empty.
  write_npy(t.file("v.npy"), Tensor::from_vector({4.f, 5.f}));
  EXPECT_EQ(read_npy_header(t.file("v.npy")).shape_str(), "(2,)");
  EXPECT_EQ(read_npy_floats(t.file("v.npy")).to_vector(), (std::vector<float>{4.f, 5.f}));
  write_npy(t.file("s.npy"), Tensor::scalar(2.5f));
  EXPECT_EQ(read_npy_header(t.file("s.npy")).shape_str(), "()");
  EXPECT_EQ(read_npy_floats(t.file("s.npy")).item(), 2.5f);
  write_npy(t.file("e.npy"), Tensor::zeros({0, 64}));
  EXPECT_EQ(read_npy_floats(t.file("e.npy")).shape(), (Shape{0, 64}));
  // A slice (a view with an offset) writes its own elements.
  write_npy(t.file("row.npy"), x.slice(0, 1, 2));
  EXPECT_EQ(read_npy_floats(t.file("row.npy")).to_vector(),
            (std::vector<float>{0.f, 1e-30f, -7.f}));
}

TEST(Npy, Float64IsConverted) {
  test::TempDir t("npy");
  const std::vector<double> v{0.1, -2.0, 1e300};
  write_npy_raw(t.file("d.npy"), "<f8", {3}, v.data(), v.size() * 8);
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_floats(t.file("d.npy")); },
                                           {"element 2", "as float32", "not finite"}));
  NpyReadOptions lax;
  lax.check_finite = false;
  const std::vector<float> got = read_npy_floats(t.file("d.npy"), lax).to_vector();
  EXPECT_EQ(got[0], 0.1f);
  EXPECT_EQ(got[1], -2.f);
  EXPECT_TRUE(std::isinf(got[2]));
}

TEST(Npy, LabelsEveryIntegerType) {
  test::TempDir t("npy");
  const std::vector<int32_t> l{0, 9, -3, 2147483647, -2147483647 - 1};
  write_npy_labels(t.file("i4.npy"), l);
  EXPECT_EQ(read_npy_header(t.file("i4.npy")).descr, "<i4");
  EXPECT_EQ(read_npy_labels(t.file("i4.npy")), l);
  const std::vector<int64_t> l8{5, -1, 2147483647, -2147483648LL};
  write_npy_raw(t.file("i8.npy"), "<i8", {4}, l8.data(), l8.size() * 8);
  EXPECT_EQ(read_npy_labels(t.file("i8.npy")),
            (std::vector<int32_t>{5, -1, 2147483647, -2147483647 - 1}));
  const std::vector<uint8_t> u1{0, 255, 7};
  write_npy_raw(t.file("u1.npy"), "|u1", {3, 1}, u1.data(), 3);  // (N, 1) is accepted
  EXPECT_EQ(read_npy_labels(t.file("u1.npy")), (std::vector<int32_t>{0, 255, 7}));
  const std::vector<int16_t> i2{-300, 300};
  write_npy_raw(t.file("i2.npy"), "<i2", {2}, i2.data(), 4);
  EXPECT_EQ(read_npy_labels(t.file("i2.npy")), (std::vector<int32_t>{-300, 300}));
  const std::vector<uint64_t> u8{1, 1ull << 31};
  write_npy_raw(t.file("u8.npy"), "<u8", {2}, u8.data(), 16);
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_npy_labels(t.file("u8.npy")); },
                                   {"label 2147483648", "element 1", "does not fit int32"}));
  // int64 out of the int32 range, named by its index.
  const std::vector<int64_t> big{1, 2, 5000000000LL};
  write_npy_raw(t.file("big.npy"), "<i8", {3}, big.data(), 24);
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_labels(t.file("big.npy")); },
                                           {t.file("big.npy"), "5000000000", "element 2"}));
  // An int32 tensor through write_npy.
  write_npy(t.file("it.npy"), Tensor::from_ints({4, 5, 6}));
  EXPECT_EQ(read_npy_labels(t.file("it.npy")), (std::vector<int32_t>{4, 5, 6}));
  // Labels must be integers of shape (N,) or (N, 1).
  write_npy(t.file("f.npy"), Tensor::from_vector({1.f, 2.f}));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_labels(t.file("f.npy")); },
                                           {"'<f4' is not an integer type"}));
  const std::vector<int32_t> two(4, 1);
  write_npy_raw(t.file("2d.npy"), "<i4", {2, 2}, two.data(), 16);
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_labels(t.file("2d.npy")); },
                                           {"shape (N,) or (N, 1), got (2, 2)"}));
}

TEST(Npy, Version2AndHeaderVariants) {
  test::TempDir t("npy");
  const std::vector<float> v{1.f, 2.f, 3.f, 4.f};
  write_bytes(t.file("v2.npy"),
              npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", raw(v), 2));
  EXPECT_EQ(read_npy_header(t.file("v2.npy")).version_major, 2);
  EXPECT_EQ(read_npy_floats(t.file("v2.npy")).to_vector(), v);
  // Keys in another order, double quotes, Python 2 longs, no trailing comma.
  write_bytes(
      t.file("odd.npy"),
      npy_bytes("{\"shape\": (4L,), \"fortran_order\": False, \"descr\": \"<f4\"}", raw(v)));
  EXPECT_EQ(read_npy_floats(t.file("odd.npy")).shape(), (Shape{4}));
  // Fortran order is harmless for 1-D data.
  write_bytes(t.file("f1.npy"),
              npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", raw(v)));
  EXPECT_EQ(read_npy_floats(t.file("f1.npy")).to_vector(), v);
}

TEST(Npy, MalformedFiles) {
  test::TempDir t("npy");
  const std::vector<float> v{1.f, 2.f, 3.f, 4.f};
  auto dict = [](const std::string& descr, const std::string& order, const std::string& shape) {
    return "{'descr': " + descr + ", 'fortran_order': " + order + ", 'shape': " + shape + ", }";
  };
  struct Case {
    std::string name, bytes;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"magic", "\x93NUMPZ\x01\x00\x10\x00" + std::string(16, ' '), {"wrong magic"}},
      {"short", "\x93NUM", {"too short"}},
      {"version", npy_bytes(dict("'<f4'", "False", "(4,)"), raw(v), 9), {"version 9.0"}},
      {"dtype_c8", npy_bytes(dict("'<c8'", "False", "(2,)"), raw(v)), {"'<c8'", "not float32"}},
      {"dtype_f2", npy_bytes(dict("'<f2'", "False", "(8,)"), raw(v)), {"'<f2'"}},
      {"dtype_str", npy_bytes(dict("'<U3'", "False", "(1,)"), raw(v)), {"'<U3'"}},
      {"structured", npy_bytes(dict("[('a', '<f4')]", "False", "(4,)"), raw(v)), {"structured"}},
      {"big_endian", npy_bytes(dict("'>f4'", "False", "(4,)"), raw(v)), {"big-endian"}},
      {"fortran", npy_bytes(dict("'<f4'", "True", "(2, 2)"), raw(v)), {"Fortran"}},
      {"truncated",
       npy_bytes(dict("'<f4'", "False", "(2, 3)"), raw(v)),
       {"truncated", "(2, 3)", "needs 24 bytes", "holds 16"}},
      {"trailing", npy_bytes(dict("'<f4'", "False", "(3,)"), raw(v)), {"4 bytes after"}},
      {"huge",
       npy_bytes(dict("'<f4'", "False", "(1000000000, 1000000000)"), raw(v)),
       {"truncated", "holds 16"}},
      {"overflow",
       npy_bytes(dict("'<f4'", "False", "(99999999999, 99999999999, 9999999999)"), raw(v)),
       {"too large"}},
      {"bad_shape", npy_bytes(dict("'<f4'", "False", "(-4,)"), raw(v)), {"malformed header"}},
      {"bad_bool", npy_bytes(dict("'<f4'", "Nope", "(4,)"), raw(v)), {"malformed header"}},
      {"no_shape", npy_bytes("{'descr': '<f4', 'fortran_order': False}", raw(v)), {"lacks"}},
      {"extra_key",
       npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", raw(v)),
       {"unexpected key 'x'"}},
      {"header_cut",
       npy_bytes(dict("'<f4'", "False", "(4,)"), "").substr(0, 30),
       {"truncated inside the header"}},
  };
  for (const Case& c : cases) {
    const std::string p = t.file(c.name + ".npy");
    write_bytes(p, c.bytes);
    std::vector<std::string> parts = c.parts;
    parts.push_back(p);
    EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_floats(p); }, parts)) << c.name;
  }
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_floats(t.file("absent.npy")); },
                                           {"absent.npy", "no such file"}));
  fs::create_directory(t.file("dir.npy"));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_labels(t.file("dir.npy")); },
                                           {"dir.npy", "is a directory"}));
}

TEST(Npy, NonFiniteEmbeddingsNameRowAndColumn) {
  test::TempDir t("npy");
  std::vector<float> v(12, 0.5f);
  v[1 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
  write_npy(t.file("nan.npy"), Tensor::from_vector(v, {3, 4}));
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_npy_floats(t.file("nan.npy")); },
                                   {t.file("nan.npy"), "nan", "row 1, column 2", "not finite"}));
  v[1 * 4 + 2] = 0.f;
  v[2 * 4 + 0] = -std::numeric_limits<float>::infinity();
  write_npy(t.file("inf.npy"), Tensor::from_vector(v, {3, 4}));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_floats(t.file("inf.npy")); },
                                           {"-inf", "row 2, column 0"}));
  NpyReadOptions lax;
  lax.check_finite = false;
  EXPECT_TRUE(std::isinf(read_npy_floats(t.file("inf.npy"), lax).to_vector()[8]));
  write_npy(t.file("nan3.npy"), Tensor::from_vector(v, {3, 2, 2}));
  EXPECT_TRUE(test::throws_with<DataError>([&] { read_npy_floats(t.file("nan3.npy")); },
                                           {"index [2, 0, 0]"}));
}

TEST(Npy, WritesAreAtomic) {
  test::TempDir t("npy");
  write_npy(t.file("a.npy"), Tensor::ones({2, 2}));
  write_npy(t.file("a.npy"), Tensor::zeros({3}));  // replaced whole
  EXPECT_EQ(read_npy_floats(t.file("a.npy")).shape(), (Shape{3}));
  int files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(t.file("a.npy")).parent_path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);  // no temporary left behind
  EXPECT_THROW(write_npy(t.file("no/such/dir/a.npy"), Tensor::ones({1})), Error);
}

// ---- interchange with NumPy (skipped where /usr/bin/python3 lacks numpy)

bool have_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") == 0;
  return ok;
}

std::string run_python(const std::string& code) {
  const std::string cmd = "/usr/bin/python3 -c \"" + code + "\" 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "popen failed";
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(NpyNumpy, TrineFilesReadByNumpy) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  test::TempDir t("npy");
  write_npy(t.file("e.npy"), Tensor::from_vector({1.5f, -2.f, 3.f, 0.25f, 5.f, 6.f}, {3, 2}));
  write_npy_labels(t.file("l.npy"), {7, -1, 3});
  const std::string out = run_python(
      "import numpy as np; e = np.load('" + t.file("e.npy") + "'); l = np.load('" +
      t.file("l.npy") + "'); print(e.dtype, e.shape, e.flags['C_CONTIGUOUS'], e.tolist()); " +
      "print(l.dtype, l.shape, l.tolist())");
  EXPECT_EQ(out,
            "float32 (3, 2) True [[1.5, -2.0], [3.0, 0.25], [5.0, 6.0]]\n"
            "int32 (3,) [7, -1, 3]\n");
}

TEST(NpyNumpy, NumpyFilesReadByTrine) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  test::TempDir t("npy");
  const std::string d = t.file("");
  const std::string out = run_python(
      "import numpy as np; d = '" + d +
      "'; e = np.arange(12, dtype=np.float32).reshape(4, 3) / 4; np.save(d + 'f4.npy', e); "
      "np.save(d + 'f8.npy', e.astype(np.float64)); "
      "np.save(d + 'i8.npy', np.array([3, 1, 4, 1, 5], dtype=np.int64)); "
      "np.save(d + 'i4.npy', np.array([9, 2], dtype=np.int32)); "
      "np.save(d + 'fortran.npy', np.asfortranarray(e)); "
      "np.save(d + 'big.npy', e.astype('>f4')); "
      "f = open(d + 'v2.npy', 'wb'); np.lib.format.write_array(f, e, version=(2, 0)); f.close(); "
      "print('ok')");
  ASSERT_EQ(out, "ok\n");
  std::vector<float> want(12);
  for (int i = 0; i < 12; ++i) want[i] = static_cast<float>(i) / 4.f;
  for (const char* name : {"f4.npy", "f8.npy", "v2.npy"}) {
    Tensor x = read_npy_floats(t.file(name));
    EXPECT_EQ(x.shape(), (Shape{4, 3})) << name;
    EXPECT_EQ(x.to_vector(), want) << name;
  }
  EXPECT_EQ(read_npy_header(t.file("v2.npy")).version_major, 2);
  EXPECT_EQ(read_npy_labels(t.file("i8.npy")), (std::vector<int32_t>{3, 1, 4, 1, 5}));
  EXPECT_EQ(read_npy_labels(t.file("i4.npy")), (std::vector<int32_t>{9, 2}));
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_npy_floats(t.file("fortran.npy")); }, {"Fortran"}));
  EXPECT_TRUE(
      test::throws_with<DataError>([&] { read_npy_floats(t.file("big.npy")); }, {"big-endian"}));
}

}  // namespace
}  // namespace trine
