// ImageFolder: a labelled image set from a root with one folder per identity
// (root/<identity>/<file>), decoded once with stb_image (JPEG, PNG, BMP, 8-bit PGM/PPM) into
// one uint8 HWC buffer, optionally converted to grey or RGB and resized on the way in.
//
// Identities are the sorted folder names that have at least one usable image; an image's label
// is its identity's index in that list. Files are sorted by name within a folder, and images
// are stored identity by identity, so identity l's images are the index range
// [first_image(l), first_image(l + 1)).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/transforms.h"
#include "engine/tensor.h"

namespace trine {

// The layout of an image tree without decoding anything: every visible (not dot-prefixed)
// sub-folder of root, sorted by name (bytewise), and in each the visible regular files, sorted.
struct ImageTree {
  std::string root;
  std::vector<std::string> identities;          // folder names, empty folders included
  std::vector<std::vector<std::string>> files;  // files[k]: file names in identities[k]
  std::vector<std::string> stray_files;         // regular files directly under root
  // Index of identity `name`, or -1.
  int64_t find_identity(const std::string& name) const;
};

// Lists root. Throws DataError when root is not a readable folder.
ImageTree list_image_tree(const std::string& root);

// The largest image trine decodes, in pixels (width x height; 2^25, e.g. 8192 x 4096). A file whose
// header claims more is refused before decoding: a corrupt or hostile header could otherwise make
// stb_image allocate and fill gigabytes.
constexpr int64_t kMaxImagePixels = int64_t{1} << 25;

// Decodes one encoded image (JPEG, PNG, BMP, 8-bit PGM/PPM, as stb_image reads them) to
// `channels` (1 or 3) and, when its size differs, resizes it with `filter` into `out`, which
// holds width x height x channels bytes (width, height > 0). Returns "" on success, else why not
// ("empty file", "not a decodable image (...)", "30000x30000 pixels, more than ..."); never
// throws for bad bytes. This is what ImageFolder::load runs on every file. `max_pixels` lowers
// the size limit (the fuzz target keeps each input fast with it).
std::string decode_image_into(std::string_view bytes, int channels, int width, int height,
                              ResizeFilter filter, uint8_t* out,
                              int64_t max_pixels = kMaxImagePixels);

// How ImageFolder::load decodes.
struct ImageFolderOptions {
  int channels = 3;  // 1: grey (stb's luma (77 R + 150 G + 29 B) / 256), 3: RGB
  int width = 0;     // > 0 with height: resize every image to width x height;
  int height = 0;    // 0, 0: keep the decoded size, which must then be the same everywhere
  ResizeFilter filter = ResizeFilter::Default;
  // false: an unreadable or non-image file is skipped with one warning line naming it;
  // true: it is a DataError.
  bool strict = false;
  // Receives each warning line (without a newline). Default: "warning: <line>" on stderr.
  std::function<void(const std::string&)> warn;
};

class ImageFolder {
 public:
  ImageFolder() = default;

  // Lists and decodes root (files decoded in parallel with trine::parallel_for). Skips, with a
  // warning each: files that cannot be read or decoded (unless options.strict), identity folders
  // with no usable image, and stray files directly under root. Throws DataError when fewer than
  // two identities have usable images, or when images differ in size and no resize size is
  // given; UsageError for bad options.
  static ImageFolder load(const std::string& root, const ImageFolderOptions& options = {});

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }  // images
  int height() const { return height_; }
  int width() const { return width_; }
  int channels() const { return channels_; }

  // Image i (0 <= i < size()), pointing into the folder's buffer.
  ImageView image(int64_t i) const;
  int32_t label(int64_t i) const { return labels_.at(i); }
  const std::vector<int32_t>& labels() const { return labels_; }
  // File name of image i inside its identity folder, and its path root/identity/file.
  const std::string& file_name(int64_t i) const { return file_names_.at(i); }
  std::string path(int64_t i) const;

  // Usable identities, sorted; label l names identities()[l].
  const std::vector<std::string>& identities() const { return identities_; }
  int64_t num_identities() const { return static_cast<int64_t>(identities_.size()); }
  // Images of identity l are [first_image(l), first_image(l + 1)); l may be num_identities().
  int64_t first_image(int32_t label) const { return offsets_.at(label); }
  int64_t count(int32_t label) const { return offsets_.at(label + 1) - offsets_.at(label); }
  // Label of identity `name`, or -1 when it has no usable image.
  int32_t find_identity(const std::string& name) const;
  // Index of the image `file` of identity `name`, or -1 when it was not loaded.
  int64_t find_image(const std::string& name, const std::string& file) const;

  // The listing the folder was loaded from (all files, including skipped ones).
  const ImageTree& tree() const { return tree_; }
  const std::string& root() const { return tree_.root; }
  // Files skipped as unreadable or not images.
  const std::vector<std::string>& skipped_files() const { return skipped_; }
  // Bytes of decoded pixel data held.
  int64_t bytes() const { return static_cast<int64_t>(pixels_.size()); }

 private:
  ImageTree tree_;
  std::vector<uint8_t> pixels_;  // size() images of height x width x channels
  int height_ = 0, width_ = 0, channels_ = 0;
  std::vector<int32_t> labels_;
  std::vector<std::string> file_names_;
  std::vector<std::string> identities_;
  std::vector<int64_t> offsets_;  // num_identities() + 1
  std::vector<std::string> skipped_;
};

// make_batch (transforms.h) over images `indices` of a folder: a float32 [n, C, H, W] tensor.
Tensor make_batch(const ImageFolder& folder, std::span<const int64_t> indices,
                  const BatchTransform& transform, Generator* gen = nullptr);

}  // namespace trine
