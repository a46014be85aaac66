// ImageFolder: listing, parallel decoding with stb_image, packing into one uint8 buffer.
#include "datasets/image_folder.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <system_error>

#include "datasets/stb_decode.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace trine {

namespace fs = std::filesystem;

namespace {

bool hidden(const std::string& name) {
  return name.empty() || name[0] == '.';
}

// Reads a whole file; false (and `error`) when it cannot be read.
bool read_bytes(const std::string& path, std::string& bytes, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::string("cannot open (") + std::strerror(errno) + ")";
    return false;
  }
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    error = "read error";
    return false;
  }
  return true;
}

// stb_image 2.27 (Debian 12's libstb) builds a JPEG Huffman table without checking that its
// code counts sum to at most 256, and writes past the table's arrays when they do not (fixed
// upstream in 2.28; found here by tests/fuzz/fuzz_image.cpp). Such a file breaks the JPEG
// standard, so it is refused before stb_image reads it. This walks the markers as stb_image
// does and reads each DHT segment's tables the way it would. Returns "" when the file is not a
// JPEG or its tables are sound, else why not.
std::string unsafe_jpeg_tables(std::string_view b) {
  auto at = [&](size_t i) -> unsigned {
    return i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
  };
  // SOI, after any 0xFF fill bytes: stb_image skips them too, so "FF FF D8" starts a JPEG.
  if (at(0) != 0xFF) return "";
  size_t i = 1;
  while (i < b.size() && at(i) == 0xFF) ++i;
  if (at(i) != 0xD8) return "";  // no SOI: not a JPEG
  ++i;
  while (i + 1 < b.size()) {
    if (at(i) != 0xFF) {  // entropy-coded data (or garbage) between markers
      ++i;
      continue;
    }
    const unsigned m = at(i + 1);
    if (m == 0xFF || m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      i += m == 0xFF ? 1 : 2;  // fill byte, stuffed 0xFF, TEM, RSTn, SOI: no length field
      continue;
    }
    if (m == 0xD9) break;  // EOI
    const size_t len = (at(i + 2) << 8) | at(i + 3);
    if (m == 0xC4) {  // DHT: tables of (class/id byte, 16 code counts, the codes' symbols)
      int64_t left = static_cast<int64_t>(len) - 2;
      size_t p = i + 4;
      while (left > 0) {
        if ((at(p) >> 4) > 1 || (at(p) & 15) > 3) return "";  // stb_image stops here itself
        unsigned n = 0;
        for (size_t k = 1; k <= 16; ++k) n += at(p + k);
        if (n > 256)
          return "corrupt JPEG: a Huffman table at byte " + std::to_string(p) + " declares " +
                 std::to_string(n) + " codes, at most 256 exist";
        p += 17 + n;
        left -= 17 + static_cast<int64_t>(n);
      }
      if (left != 0) return "";  // stb_image rejects the segment
    }
    i += 2 + len;
  }
  return "";
}

// stb_image 2.27 grows its IDAT buffer to a chunk's declared length before it reads the chunk,
// so a 100-byte PNG that declares a 2 GB chunk made it allocate 2 GB (found by
// tests/fuzz/fuzz_image.cpp). This walks the chunks as stb_image does (length, type, data, CRC,
// up to IEND) and refuses a chunk that claims more bytes than the file has left: such a file
// is truncated or corrupt, and stb_image would fail on it after the allocation. It also refuses
// a critical chunk type stb_image does not know, whose failure message stb_image writes into a
// static buffer, unsafely when images decode in parallel.
std::string unsafe_png_chunks(std::string_view b) {
  static constexpr std::string_view kSignature("\x89PNG\r\n\x1A\n", 8);
  if (b.substr(0, 8) != kSignature) return "";
  auto be32 = [&](size_t i) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(b[i + k]);
    return v;
  };
  for (size_t p = 8; p + 8 <= b.size();) {
    const uint64_t length = be32(p), left = b.size() - (p + 8);
    if (length > left)
      return "corrupt PNG: the chunk at byte " + std::to_string(p) + " declares " +
             std::to_string(length) + " data bytes, only " + std::to_string(left) + " follow";
    const std::string_view type = b.substr(p + 4, 4);
    if (type == "IEND") break;
    const bool critical = (static_cast<unsigned char>(type[0]) & 0x20) == 0;
    if (critical && type != "IHDR" && type != "PLTE" && type != "IDAT" && type != "CgBI") {
      std::string name;
      for (char c : type) name += c >= ' ' && c <= '~' ? c : '?';
      return "PNG with an unknown critical chunk '" + name + "' at byte " + std::to_string(p);
    }
    p += 12 + length;
  }
  return "";
}

// stb_image 2.27 decodes a 16-bit PGM/PPM into a buffer sized for 8 bits when it converts the
// channels, then reads past it, and its header parser overflows an int on long numbers (both
// found by tests/fuzz/fuzz_image.cpp). The header is parsed here first, as stb_image parses it
// (blanks and # comments, then width, height, maxval), and such files are refused.
std::string unsafe_pnm(std::string_view b) {
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return "";
  auto blank = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
  };
  size_t i = 2;
  int64_t value[3] = {0, 0, 0};
  for (int64_t& v : value) {
    for (;;) {  // blanks, then a comment to the end of its line, again
      while (i < b.size() && blank(b[i])) ++i;
      if (i >= b.size() || b[i] != '#') break;
      while (i < b.size() && b[i] != '\n' && b[i] != '\r') ++i;
    }
    for (; i < b.size() && b[i] >= '0' && b[i] <= '9'; ++i) {
      if (v > (INT_MAX - 9) / 10) return "PGM/PPM header: a number does not fit an int";
      v = v * 10 + (b[i] - '0');
    }
  }
  if (value[2] > 255)
    return "16-bit PGM/PPM (maxval " + std::to_string(value[2]) +
           ") is not supported; convert it to 8 bits";
  return "";
}

// Why stb_image must not decode `bytes` ("" when it may): more bytes than it takes, a JPEG,
// PNG or PNM header that stb_image 2.27 mishandles (above), or a header that claims more than
// `max_pixels`. *w and *h get the header's size, or 0 x 0 when stb_image cannot read the header
// (decoding then fails with stb_image's own reason).
std::string refuse_before_decoding(std::string_view bytes, int64_t max_pixels, int* w, int* h) {
  *w = *h = 0;
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    return std::to_string(bytes.size()) + " bytes, more than an image file trine decodes";
  if (std::string why = unsafe_jpeg_tables(bytes); !why.empty()) return why;
  if (std::string why = unsafe_pnm(bytes); !why.empty()) return why;
  if (std::string why = unsafe_png_chunks(bytes); !why.empty()) return why;
  int comp = 0;
  if (!detail::stb_info(bytes, w, h, &comp)) {
    *w = *h = 0;
    return "";
  }
  if (static_cast<int64_t>(*w) * *h > max_pixels)
    return std::to_string(*w) + "x" + std::to_string(*h) + " pixels, more than the " +
           std::to_string(max_pixels) + " trine decodes (corrupt header?)";
  return "";
}

// The size stb_image reads from the header, when it can and the file may be decoded; else false.
bool header_size(std::string_view bytes, int* w, int* h) {
  return refuse_before_decoding(bytes, kMaxImagePixels, w, h).empty() && *w > 0;
}

}  // namespace

std::string decode_image_into(std::string_view bytes, int channels, int width, int height,
                              ResizeFilter filter, uint8_t* out, int64_t max_pixels) {
  if (bytes.empty()) return "empty file";
  int w = 0, h = 0;
  // The header first: refuse what stb_image would mishandle, and absurd sizes before it
  // allocates for them.
  if (std::string why = refuse_before_decoding(bytes, max_pixels, &w, &h); !why.empty()) return why;
  // Each of stb_image's allocations is bounded by what the header's size needs. (Without a
  // header, w = h = 0: stb_image fails to decode such a file in any case.)
  std::string why;
  const detail::StbPixels px =
      detail::stb_load(bytes, channels, detail::stb_decode_limit(w, h), &w, &h, &why);
  if (!px) return "not a decodable image (" + why + ")";
  if (static_cast<int64_t>(w) * h > max_pixels)
    return std::to_string(w) + "x" + std::to_string(h) + " pixels, more than the " +
           std::to_string(max_pixels) + " trine decodes";
  if (w == width && h == height) {
    std::memcpy(out, px.get(), static_cast<size_t>(w) * h * channels);
    return "";
  }
  try {
    Image r = resize_image({px.get(), h, w, channels}, width, height, filter);
    std::memcpy(out, r.pixels.data(), r.pixels.size());
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

int64_t ImageTree::find_identity(const std::string& name) const {
  auto it = std::lower_bound(identities.begin(), identities.end(), name);
  return it != identities.end() && *it == name ? it - identities.begin() : -1;
}

ImageTree list_image_tree(const std::string& root) {
  std::error_code ec;
  TRINE_CHECK_AS(DataError, fs::is_directory(root, ec), "image folder '", root,
                 "' does not exist or is not a folder");
  ImageTree tree;
  tree.root = root;
  try {
    std::vector<std::string> dirs;
    for (const auto& e : fs::directory_iterator(root)) {
      std::string name = e.path().filename().string();
      if (hidden(name)) continue;
      if (e.is_directory())
        dirs.push_back(name);
      else if (e.is_regular_file())
        tree.stray_files.push_back(name);
    }
    std::sort(dirs.begin(), dirs.end());
    std::sort(tree.stray_files.begin(), tree.stray_files.end());
    for (const std::string& d : dirs) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(fs::path(root) / d)) {
        std::string name = e.path().filename().string();
        if (!hidden(name) && e.is_regular_file()) files.push_back(name);
      }
      std::sort(files.begin(), files.end());
      tree.identities.push_back(d);
      tree.files.push_back(std::move(files));
    }
  } catch (const fs::filesystem_error& e) {
    throw DataError("cannot list image folder '" + root + "': " + e.what());
  }
  return tree;
}

ImageFolder ImageFolder::load(const std::string& root, const ImageFolderOptions& opt) {
  TRINE_CHECK_AS(UsageError, opt.channels == 1 || opt.channels == 3,
                 "image channels must be 1 (grey) or 3 (RGB), got ", opt.channels);
  TRINE_CHECK_AS(
      UsageError, (opt.width == 0 && opt.height == 0) || (opt.width > 0 && opt.height > 0),
      "image size must be both positive or both 0 (keep), got ", opt.width, "x", opt.height);
  auto warn = opt.warn ? opt.warn
                       : [](const std::string& line) { std::cerr << "warning: " << line << "\n"; };

  ImageFolder f;
  f.tree_ = list_image_tree(root);
  const ImageTree& tree = f.tree_;
  for (const std::string& s : tree.stray_files)
    warn("skipping " + (fs::path(root) / s).string() + ": a file directly under the root, not " +
         "an identity folder");

  // Every file in identity order: (identity index, file name).
  struct Entry {
    int32_t identity;
    const std::string* file;
  };
  std::vector<Entry> entries;
  for (size_t k = 0; k < tree.identities.size(); ++k)
    for (const std::string& file : tree.files[k])
      entries.push_back({static_cast<int32_t>(k), &file});
  auto path_of = [&](const Entry& e) {
    return (fs::path(root) / tree.identities[e.identity] / *e.file).string();
  };

  // Target size: given, or the first readable image header's.
  int W = opt.width, H = opt.height;
  const int C = opt.channels;
  if (W == 0) {
    for (const Entry& e : entries) {
      std::string bytes, error;
      int w = 0, h = 0;
      if (read_bytes(path_of(e), bytes, error) && header_size(bytes, &w, &h)) {
        W = w;
        H = h;
        break;
      }
    }
  }

  // Decode in parallel, each file straight into its slot; failures are reported afterwards in
  // file order so the warnings (and a strict-mode error) do not depend on thread timing.
  const int64_t n = static_cast<int64_t>(entries.size());
  const size_t image_bytes = static_cast<size_t>(W) * H * C;
  std::vector<uint8_t> pixels(image_bytes * n);
  std::vector<std::string> errors(n);
  std::vector<char> size_mismatch(n, 0);
  const bool keep_size = opt.width == 0;
  parallel_for(n, 8, [&](int64_t begin, int64_t end) {
    std::string bytes;
    for (int64_t i = begin; i < end; ++i) {
      if (!read_bytes(path_of(entries[i]), bytes, errors[i])) continue;
      if (keep_size) {
        int w = 0, h = 0;
        if (header_size(bytes, &w, &h) && (w != W || h != H)) {
          errors[i] = std::to_string(w) + "x" + std::to_string(h) + ", not " + std::to_string(W) +
                      "x" + std::to_string(H);
          size_mismatch[i] = 1;
          continue;
        }
      }
      errors[i] = decode_image_into(bytes, C, W, H, opt.filter, pixels.data() + i * image_bytes);
    }
  });

  // Keep the good images, compacting the buffer in place.
  std::vector<int64_t> count(tree.identities.size(), 0);
  int64_t kept = 0;
  std::vector<int32_t> identity_of;
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = path_of(entries[i]);
    if (size_mismatch[i])
      throw DataError("image " + path + " is " + errors[i] +
                      " like the others; give a resize size to load images of different sizes");
    if (!errors[i].empty()) {
      TRINE_CHECK_AS(DataError, !opt.strict, "image ", path, ": ", errors[i]);
      warn("skipping " + path + ": " + errors[i]);
      f.skipped_.push_back(path);
      continue;
    }
    if (kept != i)
      std::memmove(pixels.data() + kept * image_bytes, pixels.data() + i * image_bytes,
                   image_bytes);
    ++kept;
    ++count[entries[i].identity];
    identity_of.push_back(entries[i].identity);
    f.file_names_.push_back(*entries[i].file);
  }
  pixels.resize(kept * image_bytes);
  pixels.shrink_to_fit();

  // Identities with usable images get consecutive labels in sorted order.
  std::vector<int32_t> label_of(tree.identities.size(), -1);
  f.offsets_.push_back(0);
  for (size_t k = 0; k < tree.identities.size(); ++k) {
    if (count[k] == 0) {
      warn("skipping identity folder " + (fs::path(root) / tree.identities[k]).string() +
           (tree.files[k].empty() ? ": empty" : ": no usable image"));
      continue;
    }
    label_of[k] = static_cast<int32_t>(f.identities_.size());
    f.identities_.push_back(tree.identities[k]);
    f.offsets_.push_back(f.offsets_.back() + count[k]);
  }
  TRINE_CHECK_AS(DataError, f.identities_.size() >= 2, "image folder '", root, "' has ",
                 f.identities_.size(),
                 " identity folder(s) with usable images; need at least 2 (one sub-folder of "
                 "images per identity)");
  f.labels_.reserve(identity_of.size());
  for (int32_t k : identity_of) f.labels_.push_back(label_of[k]);
  f.pixels_ = std::move(pixels);
  f.width_ = W;
  f.height_ = H;
  f.channels_ = C;
  return f;
}

ImageView ImageFolder::image(int64_t i) const {
  TRINE_CHECK(i >= 0 && i < size(), "image index ", i, " out of range [0, ", size(), ")");
  const size_t image_bytes = static_cast<size_t>(width_) * height_ * channels_;
  return {pixels_.data() + i * image_bytes, height_, width_, channels_};
}

std::string ImageFolder::path(int64_t i) const {
  return (fs::path(root()) / identities_.at(labels_.at(i)) / file_names_.at(i)).string();
}

int32_t ImageFolder::find_identity(const std::string& name) const {
  auto it = std::lower_bound(identities_.begin(), identities_.end(), name);
  return it != identities_.end() && *it == name ? static_cast<int32_t>(it - identities_.begin())
                                                : -1;
}

int64_t ImageFolder::find_image(const std::string& name, const std::string& file) const {
  int32_t l = find_identity(name);
  if (l < 0) return -1;
  auto begin = file_names_.begin() + offsets_[l], end = file_names_.begin() + offsets_[l + 1];
  auto it = std::lower_bound(begin, end, file);
  return it != end && *it == file ? it - file_names_.begin() : -1;
}

Tensor make_batch(const ImageFolder& folder, std::span<const int64_t> indices,
                  const BatchTransform& transform, Generator* gen) {
  std::vector<ImageView> views;
  views.reserve(indices.size());
  for (int64_t i : indices) views.push_back(folder.image(i));
  return make_batch(std::span<const ImageView>(views), transform, gen);
}

}  // namespace trine
