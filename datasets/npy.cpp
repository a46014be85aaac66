// .npy reading and writing: a small parser for the header's Python dict literal, size checks
// against the file before any allocation, dtype conversion with range and finiteness checks.
#include "datasets/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <type_traits>

#include "engine/checkpoint.h"
#include "engine/error.h"

namespace trine {

static_assert(std::endian::native == std::endian::little,
              ".npy support assumes a little-endian host");

int64_t NpyHeader::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string NpyHeader::shape_str() const {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes
constexpr int64_t kMaxHeader = int64_t{1} << 20;

// An open file descriptor with the path for messages.
class File {
 public:
  explicit File(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    TRINE_CHECK_AS(DataError, fs::exists(st), ".npy file ", path, ": no such file");
    TRINE_CHECK_AS(DataError, !fs::is_directory(st), ".npy file ", path,
                   ": is a directory, expected a file");
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    TRINE_CHECK_AS(DataError, fd_ >= 0, ".npy file ", path, ": cannot open (", std::strerror(errno),
                   ")");
    struct stat sb {};
    TRINE_CHECK_AS(DataError, ::fstat(fd_, &sb) == 0, ".npy file ", path, ": cannot stat (",
                   std::strerror(errno), ")");
    size_ = static_cast<int64_t>(sb.st_size);
  }
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  int64_t size() const { return size_; }
  // Reads exactly n bytes at `offset`; throws DataError when the file ends first.
  void read_at(int64_t offset, void* dst, int64_t n, const char* what) {
    int64_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, static_cast<char*>(dst) + got,
                                static_cast<size_t>(std::min<int64_t>(n - got, 1 << 30)),
                                static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      TRINE_CHECK_AS(DataError, r >= 0, ".npy file ", path_, ": read error (", std::strerror(errno),
                     ")");
      TRINE_CHECK_AS(DataError, r > 0, ".npy file ", path_, ": truncated inside the ", what);
      got += r;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// Parser for the header: a Python dict literal with string keys and string, bool, int or
// tuple-of-int values, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  void parse(NpyHeader& h) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = string_lit();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() == '[')
          fail("dtype is a structured (record) type; trine reads plain numeric arrays");
        h.descr = string_lit();
        seen_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = bool_lit();
        seen_order = true;
      } else if (key == "shape") {
        h.shape = tuple_lit();
        seen_shape = true;
      } else {
        fail("unexpected key '" + key + "' in the header");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      break;
    }
    if (!seen_descr || !seen_order || !seen_shape)
      fail("header lacks one of 'descr', 'fortran_order', 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw DataError(".npy file " + path_ + ": malformed header: " + what + " (header: " + s_ + ")");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("expected '") + c + "' at position " + std::to_string(i_));
    ++i_;
  }
  std::string string_lit() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string at position " + std::to_string(i_));
    const size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return out;
  }
  bool bool_lit() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("fortran_order is neither True nor False");
  }
  std::vector<int64_t> tuple_lit() {
    std::vector<int64_t> dims;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++i_;
        return dims;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek())))
        fail("shape holds a value that is not a non-negative integer");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("shape value too large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (peek() == 'L') ++i_;  // Python 2 long
      dims.push_back(v);
      skip_ws();
      if (peek() == ',')
        ++i_;
      else if (peek() != ')')
        fail("expected ',' or ')' in the shape");
    }
  }

  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

NpyHeader parse_header(File& f, const std::string& path) {
  char pre[12];
  TRINE_CHECK_AS(DataError, f.size() >= 10, ".npy file ", path, ": ", f.size(),
                 " bytes, too short to be a .npy file");
  f.read_at(0, pre, 10, "header");
  TRINE_CHECK_AS(DataError, std::memcmp(pre, kMagic, 6) == 0, ".npy file ", path,
                 ": wrong magic bytes (not a NumPy .npy file)");
  NpyHeader h;
  h.version_major = static_cast<unsigned char>(pre[6]);
  h.version_minor = static_cast<unsigned char>(pre[7]);
  int64_t header_len = 0;
  int64_t prefix = 10;
  if (h.version_major == 1) {
    header_len = static_cast<unsigned char>(pre[8]) | (static_cast<unsigned char>(pre[9]) << 8);
  } else if (h.version_major == 2 || h.version_major == 3) {
    f.read_at(10, pre + 10, 2, "header");
    header_len = 0;
    for (int b = 3; b >= 0; --b)
      header_len = (header_len << 8) | static_cast<unsigned char>(pre[8 + b]);
    prefix = 12;
  } else {
    throw DataError(".npy file " + path + ": format version " + std::to_string(h.version_major) +
                    "." + std::to_string(h.version_minor) + " is not supported (1.0, 2.0, 3.0)");
  }
  TRINE_CHECK_AS(DataError, header_len <= kMaxHeader, ".npy file ", path, ": header length ",
                 header_len, " is implausible (corrupt file?)");
  TRINE_CHECK_AS(DataError, prefix + header_len <= f.size(), ".npy file ", path,
                 ": truncated inside the header (declares ", header_len, " header bytes)");
  std::string text(static_cast<size_t>(header_len), '\0');
  f.read_at(prefix, text.data(), header_len, "header");
  HeaderParser(text, path).parse(h);
  h.data_offset = prefix + header_len;
  return h;
}

struct Dtype {
  char kind;  // 'f', 'i', 'u', 'b', ...
  int size;   // bytes
};

Dtype parse_descr(const NpyHeader& h, const std::string& path) {
  const std::string& d = h.descr;
  const bool ok = d.size() >= 3 && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') &&
                  std::isalpha(static_cast<unsigned char>(d[1])) &&
                  d.find_first_not_of("0123456789", 2) == std::string::npos && d.size() <= 4;
  TRINE_CHECK_AS(DataError, ok, ".npy file ", path, ": unsupported dtype '", d, "'");
  Dtype t{d[1], std::stoi(d.substr(2))};
  TRINE_CHECK_AS(DataError, !(d[0] == '>' && t.size > 1), ".npy file ", path, ": dtype '", d,
                 "' is big-endian; trine reads little-endian data (save with "
                 "arr.astype(arr.dtype.newbyteorder('<')))");
  TRINE_CHECK_AS(DataError, !(h.fortran_order && h.shape.size() >= 2), ".npy file ", path,
                 ": data is in Fortran (column-major) order; save a C-order array "
                 "(np.ascontiguousarray)");
  return t;
}

// Checks the declared data size against the file and returns it in bytes.
int64_t data_bytes(const NpyHeader& h, const Dtype& t, const File& f, const std::string& path) {
  // extent: the product of the non-zero dims, bounded too, so that an empty array's strides
  // (products of the dims after a zero) cannot overflow either.
  int64_t n = t.size, extent = std::max(t.size, 1);
  for (int64_t d : h.shape) {
    TRINE_CHECK_AS(DataError, d == 0 || extent <= std::numeric_limits<int64_t>::max() / d,
                   ".npy file ", path, ": shape ", h.shape_str(),
                   " is too large (corrupt header?)");
    if (d > 0) extent *= d;
    n *= d;
  }
  const int64_t present = f.size() - h.data_offset;
  TRINE_CHECK_AS(DataError, present >= n, ".npy file ", path, ": truncated: header shape ",
                 h.shape_str(), " of '", h.descr, "' needs ", n, " bytes of data, the file holds ",
                 present);
  TRINE_CHECK_AS(DataError, present == n, ".npy file ", path, ": ", present - n,
                 " bytes after the data its header declares (shape ", h.shape_str(), " of '",
                 h.descr, "')");
  return n;
}

// "row 3, column 7" for rank 2; "element 5" for rank 1; "index [1, 2, 3]" otherwise.
std::string position(const std::vector<int64_t>& shape, int64_t flat) {
  if (shape.size() == 2)
    return "row " + std::to_string(flat / shape[1]) + ", column " + std::to_string(flat % shape[1]);
  if (shape.size() <= 1) return "element " + std::to_string(flat);
  std::vector<int64_t> idx(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    idx[k] = flat % shape[k];
    flat /= shape[k];
  }
  std::string s = "index [";
  for (size_t k = 0; k < idx.size(); ++k) s += (k ? ", " : "") + std::to_string(idx[k]);
  return s + "]";
}

std::string header_text(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string shp = "(";
  for (size_t i = 0; i < shape.size(); ++i) shp += (i ? ", " : "") + std::to_string(shape[i]);
  shp += shape.size() == 1 ? ",)" : ")";
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shp + ", }";
  // Pad with spaces and a final newline so the data starts on a 64-byte boundary (as NumPy).
  const size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out(kMagic, 6);
  out.push_back('\x01');
  out.push_back('\x00');
  TRINE_CHECK(dict.size() <= 65535, "write_npy: header too long");
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>(dict.size() >> 8));
  return out + dict;
}

template <typename S>
void ints_to_i32(const char* src, int64_t n, std::vector<int32_t>& out, const NpyHeader& h,
                 const std::string& path) {
  for (int64_t i = 0; i < n; ++i) {
    S v;
    std::memcpy(&v, src + i * sizeof(S), sizeof(S));
    const bool fits = std::is_signed_v<S>
                          ? (static_cast<int64_t>(v) >= std::numeric_limits<int32_t>::min() &&
                             static_cast<int64_t>(v) <= std::numeric_limits<int32_t>::max())
                          : static_cast<uint64_t>(v) <= uint64_t{0x7fffffff};
    TRINE_CHECK_AS(DataError, fits, ".npy file ", path, ": label ", +v, " at ",
                   position(h.shape, i), " does not fit int32");
    out[i] = static_cast<int32_t>(v);
  }
}

}  // namespace

NpyHeader read_npy_header(const std::string& path) {
  File f(path);
  return parse_header(f, path);
}

Tensor read_npy_floats(const std::string& path, const NpyReadOptions& opt) {
  File f(path);
  const NpyHeader h = parse_header(f, path);
  const Dtype t = parse_descr(h, path);
  TRINE_CHECK_AS(DataError, t.kind == 'f' && (t.size == 4 || t.size == 8), ".npy file ", path,
                 ": dtype '", h.descr, "' is not float32 or float64");
  const int64_t bytes = data_bytes(h, t, f, path);
  const int64_t n = bytes / t.size;
  Tensor out = Tensor::empty(h.shape);
  float* dst = out.data();
  if (t.size == 4) {
    f.read_at(h.data_offset, dst, bytes, "data");
  } else {
    std::vector<double> tmp(static_cast<size_t>(n));
    f.read_at(h.data_offset, tmp.data(), bytes, "data");
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(tmp[i]);
  }
  if (opt.check_finite) {
    for (int64_t i = 0; i < n; ++i)
      TRINE_CHECK_AS(DataError, std::isfinite(dst[i]), ".npy file ", path, ": value ", dst[i],
                     " at ", position(h.shape, i), (t.size == 8 ? " (as float32)" : ""),
                     " is not finite");
  }
  return out;
}

std::vector<int32_t> read_npy_labels(const std::string& path) {
  File f(path);
  const NpyHeader h = parse_header(f, path);
  const Dtype t = parse_descr(h, path);
  TRINE_CHECK_AS(DataError,
                 (t.kind == 'i' || t.kind == 'u') &&
                     (t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8),
                 ".npy file ", path, ": dtype '", h.descr, "' is not an integer type (labels)");
  TRINE_CHECK_AS(DataError, h.shape.size() == 1 || (h.shape.size() == 2 && h.shape[1] == 1),
                 ".npy file ", path, ": labels must have shape (N,) or (N, 1), got ",
                 h.shape_str());
  const int64_t bytes = data_bytes(h, t, f, path);
  const int64_t n = bytes / t.size;
  std::vector<char> raw(static_cast<size_t>(bytes));
  f.read_at(h.data_offset, raw.data(), bytes, "data");
  std::vector<int32_t> out(static_cast<size_t>(n));
  const char* p = raw.data();
  if (t.kind == 'i') {
    if (t.size == 1) ints_to_i32<int8_t>(p, n, out, h, path);
    if (t.size == 2) ints_to_i32<int16_t>(p, n, out, h, path);
    if (t.size == 4) ints_to_i32<int32_t>(p, n, out, h, path);
    if (t.size == 8) ints_to_i32<int64_t>(p, n, out, h, path);
  } else {
    if (t.size == 1) ints_to_i32<uint8_t>(p, n, out, h, path);
    if (t.size == 2) ints_to_i32<uint16_t>(p, n, out, h, path);
    if (t.size == 4) ints_to_i32<uint32_t>(p, n, out, h, path);
    if (t.size == 8) ints_to_i32<uint64_t>(p, n, out, h, path);
  }
  return out;
}

void write_npy_raw(const std::string& path, const std::string& descr,
                   const std::vector<int64_t>& shape, const void* data, size_t bytes) {
  NpyHeader h;
  h.descr = descr;
  h.shape = shape;
  TRINE_CHECK(descr.size() >= 3, "write_npy ", path, ": bad dtype '", descr, "'");
  const int64_t itemsize = std::stoi(descr.substr(2));
  for (int64_t d : shape) TRINE_CHECK(d >= 0, "write_npy ", path, ": negative dimension ", d);
  TRINE_CHECK(static_cast<int64_t>(bytes) == h.numel() * itemsize, "write_npy ", path, ": ", bytes,
              " bytes of data for shape ", h.shape_str(), " of '", descr, "'");
  std::string out = header_text(descr, shape);
  out.append(static_cast<const char*>(data), bytes);
  write_file_atomic(path, out);
}

void write_npy(const std::string& path, const Tensor& t) {
  TRINE_CHECK(t.defined(), "write_npy ", path, ": undefined tensor");
  const Shape& shape = t.shape();
  if (t.dtype() == DType::F32) {
    const std::vector<float> v = t.to_vector();
    write_npy_raw(path, "<f4", shape, v.data(), v.size() * sizeof(float));
  } else {
    const std::vector<int32_t> v = t.to_int_vector();
    write_npy_raw(path, "<i4", shape, v.data(), v.size() * sizeof(int32_t));
  }
}

void write_npy_labels(const std::string& path, const std::vector<int32_t>& labels) {
  write_npy_raw(path, "<i4", {static_cast<int64_t>(labels.size())}, labels.data(),
                labels.size() * sizeof(int32_t));
}

}  // namespace trine
