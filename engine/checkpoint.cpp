// Checkpoint format: writing, atomic replacement, validated reading.
#include "engine/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/error.h"

namespace trine {

namespace {

constexpr char kMagic[8] = {'T', 'R', 'I', 'N', 'E', 'C', 'K', 'P'};
constexpr uint64_t kMaxEntries = 1 << 20;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_str(std::string& out, const std::string& s) {
  put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out += s;
}

uint32_t crc_of(const char* data, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

// Bounds-checked reader over the file's bytes.
class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes, size_t end)
      : path_(path), bytes_(bytes), end_(end) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_str(const char* what) {
    uint32_t n = get<uint32_t>(what);
    need(n, what);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  const char* take(size_t n, const char* what) {
    need(n, what);
    const char* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }
  size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& msg) const {
    throw DataError("checkpoint " + path_ + ": " + msg + " at byte " + std::to_string(pos_));
  }

 private:
  void need(size_t n, const char* what) const {
    if (n > end_ - pos_) fail(std::string("truncated while reading ") + what);
  }
  const std::string& path_;
  const std::string& bytes_;
  size_t end_;
  size_t pos_ = 0;
};

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Hidden, next to the target (so rename stays on one filesystem), and unique per process and
  // call (so two threads writing one path never share a temporary file).
  static std::atomic<uint64_t> counter{0};
  std::string tmp_name(1, '.');
  tmp_name.append(target.filename().string())
      .append(".tmp.")
      .append(std::to_string(::getpid()))
      .append(".")
      .append(std::to_string(counter.fetch_add(1)));
  const std::string tmp = (dir / tmp_name).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TRINE_CHECK(fd >= 0, "cannot write ", tmp, ": ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write " + tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot flush " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  // Persist the rename itself.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kCheckpointVersion);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, ck.meta.size());
  for (const auto& [k, v] : ck.meta) {
    put_str(out, k);
    put_str(out, v);
  }
  put<uint64_t>(out, ck.tensors.size());
  for (const auto& [name, t] : ck.tensors) {
    TRINE_CHECK(t.defined(), "save_checkpoint: tensor '", name, "' is undefined");
    TRINE_CHECK(t.dim() < 256, "save_checkpoint: tensor '", name, "' has rank ", t.dim());
    put_str(out, name);
    put<uint8_t>(out, t.dtype() == DType::F32 ? 0 : 1);
    put<uint8_t>(out, static_cast<uint8_t>(t.dim()));
    put<uint16_t>(out, 0);
    for (int64_t d : t.shape()) put<int64_t>(out, d);
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * 4;
    put<uint64_t>(out, nbytes);
    if (t.dtype() == DType::F32) {
      std::vector<float> v = t.to_vector();
      out.append(reinterpret_cast<const char*>(v.data()), nbytes);
    } else {
      std::vector<int32_t> v = t.to_int_vector();
      out.append(reinterpret_cast<const char*>(v.data()), nbytes);
    }
  }
  put<uint32_t>(out, crc_of(out.data(), out.size()));
  write_file_atomic(path, out);
}

Checkpoint load_checkpoint(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  TRINE_CHECK_AS(DataError, fs::exists(path, ec), "checkpoint ", path, ": no such file");
  TRINE_CHECK_AS(DataError, !fs::is_directory(path, ec), "checkpoint ", path,
                 ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  TRINE_CHECK_AS(DataError, in.good(), "checkpoint ", path, ": cannot open (", std::strerror(errno),
                 ")");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t header = sizeof(kMagic) + 8;
  TRINE_CHECK_AS(DataError, bytes.size() >= header + 4, "checkpoint ", path, ": file is ",
                 bytes.size(), " bytes, too short to be a trine checkpoint");
  TRINE_CHECK_AS(DataError, std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0, "checkpoint ",
                 path, ": not a trine checkpoint (wrong magic bytes)");
  uint32_t version;
  std::memcpy(&version, bytes.data() + sizeof(kMagic), 4);
  TRINE_CHECK_AS(DataError, version == kCheckpointVersion, "checkpoint ", path, ": format version ",
                 version, ", this build reads version ", kCheckpointVersion);
  const size_t body = bytes.size() - 4;
  uint32_t stored;
  std::memcpy(&stored, bytes.data() + body, 4);
  TRINE_CHECK_AS(DataError, stored == crc_of(bytes.data(), body), "checkpoint ", path,
                 ": checksum mismatch (the file is truncated or corrupt)");

  Reader r(path, bytes, body);
  r.take(header, "header");
  Checkpoint ck;
  const uint64_t n_meta = r.get<uint64_t>("metadata count");
  if (n_meta > kMaxEntries) r.fail("implausible metadata count " + std::to_string(n_meta));
  for (uint64_t i = 0; i < n_meta; ++i) {
    std::string k = r.get_str("metadata key");
    ck.meta[k] = r.get_str("metadata value");
  }
  const uint64_t n = r.get<uint64_t>("tensor count");
  if (n > kMaxEntries) r.fail("implausible tensor count " + std::to_string(n));
  for (uint64_t i = 0; i < n; ++i) {
    std::string name = r.get_str("tensor name");
    const uint8_t dtype = r.get<uint8_t>("dtype");
    const uint8_t rank = r.get<uint8_t>("rank");
    r.get<uint16_t>("reserved");
    if (dtype > 1) r.fail("tensor '" + name + "' has unknown dtype " + std::to_string(dtype));
    Shape shape(rank);
    // extent: the product of the non-zero dims, bounded too, so that an empty tensor's strides
    // (products of the dims after a zero) cannot overflow either.
    uint64_t numel = 1, extent = 1;
    for (auto& d : shape) {
      d = r.get<int64_t>("dims");
      if (d < 0 || (d > 0 && extent > (uint64_t(1) << 40) / static_cast<uint64_t>(d)))
        r.fail("tensor '" + name + "' has invalid dims");
      if (d > 0) extent *= static_cast<uint64_t>(d);
      numel *= static_cast<uint64_t>(d);
    }
    const uint64_t nbytes = r.get<uint64_t>("data size");
    if (nbytes != numel * 4)
      r.fail("tensor '" + name + "' " + shape_str(shape) + " declares " + std::to_string(nbytes) +
             " bytes, expected " + std::to_string(numel * 4));
    const char* data = r.take(nbytes, "tensor data");
    Tensor t = Tensor::empty(shape, Device::cpu(), dtype == 0 ? DType::F32 : DType::I32);
    std::memcpy(t.impl()->storage->ptr, data, nbytes);
    ck.tensors[name] = t;
  }
  if (r.pos() != body) r.fail("unexpected trailing bytes");
  return ck;
}

}  // namespace trine
