// `trine embed`: embeds MNIST-format data or an image folder with a trained model, writing the
// embeddings and labels as .npy (so any embeddings can be scored with `trine eval`).
#include <cstdio>
#include <iostream>

#include "apps/cli.h"
#include "apps/embedding.h"
#include "apps/run_support.h"
#include "datasets/image_folder.h"
#include "datasets/mnist.h"
#include "datasets/npy.h"
#include "engine/backend.h"
#include "engine/error.h"

namespace trine {
namespace {

int run(cli::Args& args) {
  const auto model_path =
      args.opt_str("model", "model file (model.trine) or run folder (required)");
  const auto mnist_dir = args.opt_str("mnist", "MNIST-format folder to embed (its test split)");
  const std::string split = args.choice("split", "test", {"test", "train"}, "MNIST split");
  const auto images_dir = args.opt_str("images", "image folder (one sub-folder per identity)");
  const auto out = args.opt_str("out", "embeddings .npy to write [N, D] (required)");
  const auto labels_out = args.opt_str("labels-out", "labels .npy to write [N]");
  const int64_t batch = args.integer("batch", 256, "batch size", 1, 1 << 20);
  const bool strict =
      args.flag("strict", "images: fail on an unreadable file instead of skipping it");
  const cli::DeviceChoice device_choice = cli::device_flags(args);
  cli::common_flags(args);
  args.finish();
  TRINE_CHECK_AS(UsageError, model_path && out, "embed: --model and --out are required");
  TRINE_CHECK_AS(UsageError, mnist_dir.has_value() != images_dir.has_value(),
                 "embed: give exactly one of --mnist DIR and --images DIR");
  const Device device = device_choice.device;
  cli::open_device(device_choice);

  cli::SavedModel m = cli::load_model(*model_path);
  m.model->to(device);
  const int64_t channels = std::stoll(m.get("in_channels"));
  const int64_t height = std::stoll(m.get("input_height")),
                width = std::stoll(m.get("input_width"));
  const float mean = std::stof(m.get("normalize_mean")), stdv = std::stof(m.get("normalize_std"));
  Tensor emb;
  std::vector<int32_t> labels;
  const double t0 = cli::now_seconds();
  if (mnist_dir) {
    TRINE_CHECK_AS(UsageError, channels == 1, "embed: the model takes ", channels,
                   "-channel input; MNIST images have 1 channel");
    MnistOptions o;
    o.mean = mean;
    o.std = stdv;
    MnistDataset ds =
        MnistDataset::load(*mnist_dir, split == "test" ? MnistSplit::Test : MnistSplit::Train, o);
    TRINE_CHECK_AS(UsageError, ds.rows() == height && ds.cols() == width, "embed: the model takes ",
                   height, "x", width, " images, ", *mnist_dir, " holds ", ds.rows(), "x",
                   ds.cols());
    emb = cli::embed_all(*m.model, ds.size(), batch,
                         [&](int64_t b, int64_t e) { return ds.images_range(b, e, device); });
    labels = ds.labels();
  } else {
    emb = cli::embed_images(*m.model, m, *images_dir, batch, strict, device, &labels);
  }
  const double seconds = cli::now_seconds() - t0;
  write_npy(*out, emb);
  if (labels_out) write_npy_labels(*labels_out, labels);
  std::printf("embedded %lld\ndim %lld\nembed_img_per_s %.1f\n",
              static_cast<long long>(emb.size(0)), static_cast<long long>(emb.size(1)),
              static_cast<double>(emb.size(0)) / seconds);
  return 0;
}

cli::Register reg("embed", "embed MNIST data or an image folder with a trained model (.npy out)",
                  run);

}  // namespace
}  // namespace trine
