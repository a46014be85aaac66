// MNIST-format split loading (image and label files matched and validated) and normalized batches.
#include "datasets/mnist.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "datasets/idx.h"
#include "engine/error.h"

namespace trine {

std::string find_mnist_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  const std::string gz = (fs::path(dir) / (stem + ".gz")).string();
  const std::string raw = (fs::path(dir) / stem).string();
  std::error_code ec;
  if (fs::exists(gz, ec)) return gz;
  if (fs::exists(raw, ec)) return raw;
  throw DataError("MNIST folder " + dir + ": neither " + gz + " nor " + raw +
                  " exists (datasets/download_mnist.sh DIR fetches MNIST)");
}

MnistDataset MnistDataset::load(const std::string& dir, MnistSplit split, const MnistOptions& opt) {
  namespace fs = std::filesystem;
  TRINE_CHECK_AS(UsageError, opt.limit >= 0, "MNIST: limit must be >= 0, got ", opt.limit);
  TRINE_CHECK_AS(UsageError, opt.num_classes >= 0 && opt.num_classes <= 256,
                 "MNIST: num_classes must be in 0..256, got ", opt.num_classes);
  TRINE_CHECK_AS(UsageError, opt.std > 0.f, "MNIST: std must be > 0, got ", opt.std);
  std::error_code ec;
  TRINE_CHECK_AS(DataError, fs::exists(dir, ec), "MNIST folder ", dir,
                 " does not exist (datasets/download_mnist.sh DIR fetches MNIST)");
  TRINE_CHECK_AS(DataError, fs::is_directory(dir, ec), "MNIST folder ", dir, " is not a directory");
  const std::string prefix = split == MnistSplit::Train ? "train" : "t10k";
  const std::string images_path = find_mnist_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_mnist_file(dir, prefix + "-labels-idx1-ubyte");

  IdxArray im = read_idx(images_path, kIdxImagesMagic);
  IdxArray lb = read_idx(labels_path, kIdxLabelsMagic);
  const int64_t n_im = im.dims[0], n_lb = lb.dims[0];
  TRINE_CHECK_AS(DataError, n_im == n_lb, "MNIST: ", images_path, " holds ", n_im, " images but ",
                 labels_path, " holds ", n_lb, " labels");
  TRINE_CHECK_AS(DataError, im.dims[1] > 0 && im.dims[2] > 0, "MNIST: ", images_path,
                 ": images are ", im.dims[1], "x", im.dims[2]);
  const int64_t n = opt.limit > 0 ? std::min(opt.limit, n_im) : n_im;
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = lb.data[i];
    TRINE_CHECK_AS(DataError, opt.num_classes == 0 || labels[i] < opt.num_classes,
                   "MNIST: ", labels_path, ": label ", labels[i], " at index ", i, " (byte ", 8 + i,
                   ") is outside 0..", opt.num_classes - 1);
  }
  im.data.resize(static_cast<size_t>(n * im.dims[1] * im.dims[2]));
  im.data.shrink_to_fit();
  return MnistDataset(std::move(im.data), std::move(labels), im.dims[1], im.dims[2], opt.mean,
                      opt.std, images_path);
}

MnistDataset::MnistDataset(std::vector<uint8_t> pixels, std::vector<int32_t> labels, int64_t rows,
                           int64_t cols, float mean, float std, std::string source)
    : pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      rows_(rows),
      cols_(cols),
      mean_(mean),
      std_(std),
      source_(std::move(source)) {
  TRINE_CHECK_AS(UsageError, rows > 0 && cols > 0, "MnistDataset: image size ", rows, "x", cols);
  TRINE_CHECK_AS(UsageError, static_cast<int64_t>(pixels_.size()) == size() * rows_ * cols_,
                 "MnistDataset: ", pixels_.size(), " pixel bytes for ", size(), " images of ", rows,
                 "x", cols);
  TRINE_CHECK_AS(UsageError, std > 0.f, "MnistDataset: std must be > 0, got ", std);
  for (int32_t l : labels_) {
    TRINE_CHECK_AS(UsageError, l >= 0, "MnistDataset: negative label ", l);
    num_classes_ = std::max(num_classes_, l + 1);
  }
  build_lut();
}

void MnistDataset::build_lut() {
  // float32 throughout, as ((X.astype(float32) / 255.0) - mean) / std in NumPy.
  for (int v = 0; v < 256; ++v) lut_[v] = (static_cast<float>(v) / 255.f - mean_) / std_;
}

std::vector<int64_t> MnistDataset::class_counts() const {
  std::vector<int64_t> counts(static_cast<size_t>(num_classes_), 0);
  for (int32_t l : labels_) ++counts[l];
  return counts;
}

template <typename I>
Tensor MnistDataset::gather(std::span<const I> indices, Device device,
                            const std::vector<int64_t>* shifts) const {
  const int64_t n = static_cast<int64_t>(indices.size()), plane = rows_ * cols_;
  for (int64_t j = 0; j < n; ++j)
    TRINE_CHECK_AS(UsageError, indices[j] >= 0 && indices[j] < size(), "MNIST images: index ",
                   indices[j], " at position ", j, " is outside [0, ", size(), ")");
  Tensor out = Tensor::empty({n, 1, rows_, cols_});
  float* dst = out.data();
  for (int64_t j = 0; j < n; ++j) {
    const uint8_t* src = pixels_.data() + static_cast<int64_t>(indices[j]) * plane;
    float* img = dst + j * plane;
    if (!shifts) {
      for (int64_t p = 0; p < plane; ++p) img[p] = lut_[src[p]];
      continue;
    }
    const int64_t dy = (*shifts)[2 * j], dx = (*shifts)[2 * j + 1];
    std::fill(img, img + plane, lut_[0]);
    // Destination columns [x0, x1) read source columns [x0 - dx, x1 - dx); rows likewise.
    const int64_t x0 = std::max<int64_t>(0, dx), x1 = std::min(cols_, cols_ + dx);
    for (int64_t y = std::max<int64_t>(0, dy); y < std::min(rows_, rows_ + dy); ++y) {
      const uint8_t* s = src + (y - dy) * cols_;
      float* d = img + y * cols_;
      for (int64_t x = x0; x < x1; ++x) d[x] = lut_[s[x - dx]];
    }
  }
  return device.is_cpu() ? out : out.to(device);
}

Tensor MnistDataset::images(std::span<const int64_t> indices, Device device) const {
  return gather(indices, device);
}

Tensor MnistDataset::images(std::span<const int32_t> indices, Device device) const {
  return gather(indices, device);
}

Tensor MnistDataset::shifted_images(std::span<const int64_t> indices, int64_t max_shift,
                                    Generator& gen, Device device) const {
  TRINE_CHECK_AS(UsageError, max_shift >= 0 && max_shift < rows_ && max_shift < cols_,
                 "MNIST images: shift ", max_shift, " must be in [0, ", std::min(rows_, cols_),
                 ") for ", rows_, "x", cols_, " images");
  if (max_shift == 0) return gather(indices, device);
  std::vector<int64_t> shifts(2 * indices.size());
  for (int64_t& s : shifts) s = gen.randint(2 * max_shift + 1) - max_shift;
  return gather(indices, device, &shifts);
}

Tensor MnistDataset::images_range(int64_t begin, int64_t end, Device device) const {
  TRINE_CHECK_AS(UsageError, 0 <= begin && begin <= end && end <= size(), "MNIST images: range [",
                 begin, ", ", end, ") is outside [0, ", size(), ")");
  std::vector<int64_t> idx(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) idx[i - begin] = i;
  return gather(std::span<const int64_t>(idx), device);
}

std::vector<int32_t> MnistDataset::labels_of(std::span<const int64_t> indices) const {
  std::vector<int32_t> out(indices.size());
  for (size_t j = 0; j < indices.size(); ++j) {
    TRINE_CHECK_AS(UsageError, indices[j] >= 0 && indices[j] < size(), "MNIST labels: index ",
                   indices[j], " at position ", j, " is outside [0, ", size(), ")");
    out[j] = labels_[indices[j]];
  }
  return out;
}

std::vector<int32_t> MnistDataset::labels_of(std::span<const int32_t> indices) const {
  std::vector<int64_t> wide(indices.begin(), indices.end());
  return labels_of(std::span<const int64_t>(wide));
}

std::string MnistDataset::describe() const {
  return std::to_string(size()) + " images " + std::to_string(rows_) + "x" + std::to_string(cols_) +
         ", " + std::to_string(num_classes_) + " classes, from " + source_;
}

}  // namespace trine
