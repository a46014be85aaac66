// IDX reading (raw or gzip, through zlib's gzread, which passes raw files through unchanged) and
// writing, with every header field checked against the data actually present.
#include "datasets/idx.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/checkpoint.h"
#include "engine/error.h"

namespace trine {

int64_t IdxArray::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

namespace {

// Owns a gzFile (or the bare descriptor before gzdopen takes it over).
class GzReader {
 public:
  GzReader(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    TRINE_CHECK_AS(DataError, fs::exists(st), "IDX file ", path, ": no such file");
    TRINE_CHECK_AS(DataError, !fs::is_directory(st), "IDX file ", path,
                   ": is a directory, expected a file");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    TRINE_CHECK_AS(DataError, fd >= 0, "IDX file ", path, ": cannot open (", std::strerror(errno),
                   ")");
    struct stat sb {};
    if (::fstat(fd, &sb) == 0) file_bytes_ = static_cast<int64_t>(sb.st_size);
    gz_ = ::gzdopen(fd, "rb");
    if (!gz_) {
      ::close(fd);
      throw DataError("IDX file " + path + ": cannot open (out of memory in zlib)");
    }
    ::gzbuffer(gz_, 1 << 17);
  }
  ~GzReader() {
    if (gz_) ::gzclose(gz_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many were read (fewer only at the end of the data).
  // Throws DataError on corrupt or truncated compressed data.
  int64_t read(void* dst, int64_t n) {
    int64_t got = 0;
    while (got < n) {
      const unsigned want = static_cast<unsigned>(std::min<int64_t>(n - got, 1 << 30));
      const int r = ::gzread(gz_, static_cast<char*>(dst) + got, want);
      if (r < 0) {
        int err = Z_OK;
        const char* msg = ::gzerror(gz_, &err);
        // zlib prefixes "<fd:N>: " (it was opened from a descriptor); the path says more.
        if (std::strncmp(msg, "<fd:", 4) == 0 && std::strstr(msg, ": "))
          msg = std::strstr(msg, ": ") + 2;
        if (err == Z_BUF_ERROR)
          throw DataError(detail::concat(
              "IDX file ", path_, ": truncated (the compressed stream ends early: ", msg, ")"));
        throw DataError(detail::concat("IDX file ", path_, ": corrupt gzip data (", msg, ")"));
      }
      if (r == 0) break;
      got += r;
    }
    return got;
  }
  // True when the file is not gzip-compressed (valid after the first read).
  bool raw() const { return ::gzdirect(gz_) != 0; }
  int64_t file_bytes() const { return file_bytes_; }

 private:
  std::string path_;
  gzFile gz_ = nullptr;
  int64_t file_bytes_ = -1;
};

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

std::string magic_name(uint32_t magic) {
  if (magic == kIdxImagesMagic) return "2051, IDX images";
  if (magic == kIdxLabelsMagic) return "2049, IDX labels";
  return std::to_string(magic);
}

}  // namespace

IdxArray read_idx(const std::string& path, uint32_t expected_magic) {
  GzReader in(path);
  unsigned char head[4];
  const int64_t got_head = in.read(head, 4);
  TRINE_CHECK_AS(DataError, got_head == 4, "IDX file ", path, ": truncated (", got_head,
                 " bytes, shorter than the 4-byte IDX magic number)");
  const uint32_t magic = be32(head);
  TRINE_CHECK_AS(DataError, head[0] == 0 && head[1] == 0 && head[3] >= 1, "IDX file ", path,
                 ": wrong magic number ", magic, " (0x", std::hex, magic, std::dec,
                 "): not an IDX file");
  TRINE_CHECK_AS(DataError, head[2] == 0x08, "IDX file ", path, ": element type 0x", std::hex,
                 int{head[2]}, std::dec,
                 " is not supported (trine reads unsigned-byte IDX files, type 0x08)");
  TRINE_CHECK_AS(DataError, expected_magic == 0 || magic == expected_magic, "IDX file ", path,
                 ": wrong magic number ", magic, ", expected ", magic_name(expected_magic));

  const int rank = head[3];
  std::vector<unsigned char> raw_dims(4 * static_cast<size_t>(rank));
  const int64_t got_dims = in.read(raw_dims.data(), 4 * rank);
  TRINE_CHECK_AS(DataError, got_dims == 4 * rank, "IDX file ", path,
                 ": truncated inside the header (", rank, " dimensions declared)");
  IdxArray a;
  // extent: the product of the non-zero dims, bounded too, so that products of the dims of an
  // empty array (a plane of rows x cols) cannot overflow either.
  int64_t declared = 1, extent = 1;
  bool too_big = false;
  for (int d = 0; d < rank; ++d) {
    const int64_t v = be32(&raw_dims[4 * d]);
    a.dims.push_back(v);
    if (!too_big && v != 0 && extent > kIdxMaxBytes / v) too_big = true;
    if (!too_big && v != 0) extent *= v;
    if (!too_big) declared *= v;
  }
  TRINE_CHECK_AS(DataError, !too_big && declared <= kIdxMaxBytes, "IDX file ", path,
                 ": header declares ", dims_str(a.dims), " bytes of data, more than the ",
                 kIdxMaxBytes, " trine accepts (corrupt header?)");

  const int64_t header_bytes = 4 + 4 * int64_t{rank};
  if (in.raw() && in.file_bytes() >= 0) {
    // Uncompressed: the file size settles it before any allocation.
    const int64_t present = in.file_bytes() - header_bytes;
    TRINE_CHECK_AS(DataError, present >= declared, "IDX file ", path,
                   ": truncated: header declares ", dims_str(a.dims), " = ", declared,
                   " bytes of data, the file holds ", present);
    TRINE_CHECK_AS(DataError, present == declared, "IDX file ", path, ": ", present - declared,
                   " bytes after the ", declared, " bytes of data the header declares (",
                   dims_str(a.dims), ")");
  }

  // Read in steps so memory follows the data actually present, not the header's claim.
  constexpr int64_t kStep = int64_t{8} << 20;
  int64_t got = 0;
  while (got < declared) {
    const int64_t want = std::min(kStep, declared - got);
    a.data.resize(static_cast<size_t>(got + want));
    const int64_t r = in.read(a.data.data() + got, want);
    got += r;
    if (r < want) break;
  }
  a.data.resize(static_cast<size_t>(got));
  TRINE_CHECK_AS(DataError, got == declared, "IDX file ", path, ": truncated: header declares ",
                 dims_str(a.dims), " = ", declared, " bytes of data, the file holds ", got);
  // Reading on to the end also makes zlib verify the gzip CRC and length.
  unsigned char extra[4096];
  int64_t surplus = 0;
  for (int64_t r; (r = in.read(extra, sizeof(extra))) > 0;) surplus += r;
  TRINE_CHECK_AS(DataError, surplus == 0, "IDX file ", path, ": ", surplus, " bytes after the ",
                 declared, " bytes of data the header declares (", dims_str(a.dims), ")");
  return a;
}

std::string gzip_compress(const std::string& bytes) {
  TRINE_CHECK(bytes.size() < (size_t{1} << 31), "gzip_compress: ", bytes.size(),
              " bytes is more than one call compresses");
  z_stream zs{};
  // windowBits 15 + 16: gzip wrapper; level 6 as gzip(1).
  TRINE_CHECK(::deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
              "gzip_compress: deflateInit2 failed");
  std::string out(::deflateBound(&zs, bytes.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = ::deflate(&zs, Z_FINISH);
  const size_t n = zs.total_out;
  ::deflateEnd(&zs);
  TRINE_CHECK(rc == Z_STREAM_END, "gzip_compress: deflate failed (", rc, ")");
  out.resize(n);
  return out;
}

void write_idx(const std::string& path, const IdxArray& a, bool gzip) {
  TRINE_CHECK(!a.dims.empty() && a.dims.size() <= 255, "write_idx ", path, ": rank ", a.dims.size(),
              " is not in 1..255");
  for (int64_t d : a.dims)
    TRINE_CHECK(d >= 0 && d <= int64_t{0xffffffff}, "write_idx ", path, ": dimension ", d,
                " does not fit an IDX header");
  TRINE_CHECK(static_cast<int64_t>(a.data.size()) == a.numel(), "write_idx ", path, ": ",
              a.data.size(), " bytes of data for dims ", dims_str(a.dims));
  std::string out;
  out.reserve(4 + 4 * a.dims.size() + a.data.size());
  out.push_back('\0');
  out.push_back('\0');
  out.push_back('\x08');
  out.push_back(static_cast<char>(a.dims.size()));
  for (int64_t d : a.dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((d >> shift) & 0xff));
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  write_file_atomic(path, gzip ? gzip_compress(out) : out);
}

}  // namespace trine
