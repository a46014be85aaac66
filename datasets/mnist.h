// MNIST-format datasets (MNIST, Fashion-MNIST): one split loaded from the four standard IDX files
// into uint8 images [N, rows, cols] and int32 labels, plus normalized float32 batches for training.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/random.h"
#include "engine/tensor.h"

namespace trine {

enum class MnistSplit { Train, Test };  // train-* (60 000 in MNIST) or t10k-* (10 000)

struct MnistOptions {
  int64_t limit = 0;         // keep only the first `limit` images (0: all); for subset runs
  int32_t num_classes = 10;  // every label must be < num_classes (0: any 0..255)
  float mean = 0.1307f;      // pixels become (x/255 - mean) / std; MNIST's statistics by default
  float std = 0.3081f;       // (Fashion-MNIST: 0.2860 / 0.3530)
};

// The path of the standard file `stem` (e.g. "train-images-idx3-ubyte") in `dir`: stem + ".gz"
// when it exists, else stem. Throws DataError naming both paths tried when neither exists.
std::string find_mnist_file(const std::string& dir, const std::string& stem);

// One split of an MNIST-format dataset, held in memory as bytes (47 MB for MNIST train).
class MnistDataset {
 public:
  // Loads `split` from `dir`, which holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
  // Throws DataError naming the file when a file is missing or corrupt, when image and label
  // counts differ, or when a label is >= opt.num_classes; UsageError for bad options
  // (limit < 0, std <= 0).
  static MnistDataset load(const std::string& dir, MnistSplit split, const MnistOptions& opt = {});

  // From memory: pixels [n, rows, cols] row-major, labels [n]. Throws UsageError on size mismatch.
  MnistDataset(std::vector<uint8_t> pixels, std::vector<int32_t> labels, int64_t rows, int64_t cols,
               float mean = 0.1307f, float std = 0.3081f, std::string source = "memory");

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // max(label) + 1 (0 when empty).
  int32_t num_classes() const { return num_classes_; }
  float mean() const { return mean_; }
  float std() const { return std_; }
  const std::string& source() const { return source_; }  // the images file, or "memory"

  // Raw pixels [size, rows, cols] (0 background, 255 ink) and labels [size].
  const std::vector<uint8_t>& pixels() const { return pixels_; }
  const std::vector<int32_t>& labels() const { return labels_; }
  // Images per class, indexed by label: [num_classes].
  std::vector<int64_t> class_counts() const;

  // Normalized images for `indices`, in that order: float32 [n, 1, rows, cols] on `device`,
  // pixel (x/255 - mean)/std computed in float32 as torchvision/NumPy do. Repeats are allowed.
  // Throws UsageError naming the first index outside [0, size).
  Tensor images(std::span<const int64_t> indices, Device device = Device::cpu()) const;
  Tensor images(std::span<const int32_t> indices, Device device = Device::cpu()) const;
  // images() with each image moved by its own random offset, the training augmentation of
  // `trine mnist --shift`: per image, dy then dx drawn with gen.randint uniformly from
  // [-max_shift, max_shift]; pixel (y, x) of the result is pixel (y - dy, x - dx) of the source,
  // and pixels that come from outside the image are background (byte 0). max_shift 0 gives
  // images() and draws nothing. Throws UsageError when max_shift is negative or not below both
  // rows and cols, and for indices as images() does.
  Tensor shifted_images(std::span<const int64_t> indices, int64_t max_shift, Generator& gen,
                        Device device = Device::cpu()) const;
  // Images begin..end-1: [end - begin, 1, rows, cols]. Requires 0 <= begin <= end <= size.
  Tensor images_range(int64_t begin, int64_t end, Device device = Device::cpu()) const;
  // The labels of `indices`, in that order. Same index checks as images().
  std::vector<int32_t> labels_of(std::span<const int64_t> indices) const;
  std::vector<int32_t> labels_of(std::span<const int32_t> indices) const;

  // The float value a pixel byte maps to.
  float normalize(uint8_t pixel) const { return lut_[pixel]; }
  // e.g. "60000 images 28x28, 10 classes, from DIR/train-images-idx3-ubyte.gz"
  std::string describe() const;

 private:
  // The normalized images of `indices`; when `shifts` is given, image j moved by
  // (shifts[2j], shifts[2j+1]) = (dy, dx) as shifted_images() says.
  template <typename I>
  Tensor gather(std::span<const I> indices, Device device,
                const std::vector<int64_t>* shifts = nullptr) const;
  void build_lut();

  std::vector<uint8_t> pixels_;
  std::vector<int32_t> labels_;
  int64_t rows_ = 0, cols_ = 0;
  int32_t num_classes_ = 0;
  float mean_, std_;
  float lut_[256];
  std::string source_;
};

}  // namespace trine
