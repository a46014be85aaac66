// Batch embedding and model files.
#include "apps/embedding.h"

#include <filesystem>

#include "datasets/image_folder.h"
#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "layers/models.h"

namespace trine::cli {

Tensor embed_all(Sequential& model, int64_t n, int64_t batch_size,
                 const std::function<Tensor(int64_t, int64_t)>& batch) {
  TRINE_CHECK_AS(UsageError, batch_size > 0, "embedding batch size must be positive, got ",
                 batch_size);
  TRINE_CHECK(n > 0, "embed_all: nothing to embed");
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  // The next batch is made (and uploaded, for a GPU) on a loader thread while the model runs on
  // this one, and the embeddings stay on the model's device until the end: one download, so a
  // GPU is not left idle between batches waiting for the host.
  std::vector<Tensor> parts;
  {
    Prefetcher<Tensor> prefetch((n + batch_size - 1) / batch_size, [&](int64_t i) {
      const int64_t begin = i * batch_size;
      return batch(begin, std::min(n, begin + batch_size));
    });
    while (std::optional<Tensor> x = prefetch.next()) parts.push_back(model(*x));
  }
  model.train(was_training);
  Tensor all = parts.size() == 1 ? parts[0] : concat(parts, 0);
  return all.to(Device::cpu());
}

std::string SavedModel::get(const std::string& key) const {
  auto it = meta.find(key);
  TRINE_CHECK_AS(DataError, it != meta.end(), "model file: missing '", key, "'");
  return it->second;
}

std::vector<float> parse_floats(const std::string& text, const std::string& what) {
  std::vector<float> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    size_t used = 0;
    float v = 0;
    try {
      v = std::stof(item, &used);
    } catch (...) {
      used = 0;
    }
    TRINE_CHECK_AS(DataError, used > 0 && used == item.size(), what, ": expected numbers, got '",
                   text, "'");
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

Tensor embed_images(Sequential& model, const SavedModel& saved, const std::string& root,
                    int64_t batch_size, bool strict, Device device, std::vector<int32_t>* labels) {
  ImageFolderOptions fo;
  fo.channels = static_cast<int>(std::stoll(saved.get("in_channels")));
  fo.width = static_cast<int>(std::stoll(saved.get("input_width")));
  fo.height = static_cast<int>(std::stoll(saved.get("input_height")));
  auto filter = saved.meta.find("resize_filter");
  fo.filter = parse_resize_filter(filter == saved.meta.end() ? "triangle" : filter->second);
  fo.strict = strict;
  ImageFolder folder = ImageFolder::load(root, fo);
  BatchTransform t;
  t.normalize.mean = parse_floats(saved.get("normalize_mean"), "normalize_mean");
  t.normalize.std = parse_floats(saved.get("normalize_std"), "normalize_std");
  auto flip = saved.meta.find("flip_average");
  const bool flip_average = flip != saved.meta.end() && flip->second == "1";
  auto embed_pass = [&](bool mirrored) {
    BatchTransform bt = t;
    bt.flip_all = mirrored;
    return embed_all(model, folder.size(), batch_size, [&](int64_t b, int64_t e) {
      std::vector<int64_t> idx;
      for (int64_t i = b; i < e; ++i) idx.push_back(i);
      return make_batch(folder, idx, bt).to(device);
    });
  };
  Tensor emb = embed_pass(false);
  if (flip_average) {
    NoGradGuard ng;
    emb = l2_normalize(emb + embed_pass(true), 1);
  }
  if (labels) *labels = folder.labels();
  return emb;
}

void save_model(const std::string& path, Sequential& model,
                const std::map<std::string, std::string>& meta) {
  Checkpoint ck;
  ck.meta = meta;
  for (auto& [name, t] : model.state_dict()) ck.tensors["model." + name] = t;
  save_checkpoint(path, ck);
}

SavedModel load_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::string file = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    file = (fs::path(path) / "model.trine").string();
    if (!fs::exists(file, ec)) file = (fs::path(path) / "checkpoint.trine").string();
  }
  Checkpoint ck = load_checkpoint(file);
  SavedModel m;
  m.meta = ck.meta;
  auto number = [&](const std::string& key) {
    const std::string v = m.get(key);
    try {
      return std::stoll(v);
    } catch (...) {
      throw DataError("model file " + file + ": '" + key + "' is not a number: '" + v + "'");
    }
  };
  m.model = make_model(m.get("model"), number("embedding_dim"), number("in_channels"));
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : ck.tensors)
    if (name.rfind("model.", 0) == 0) state[name.substr(6)] = t;
  try {
    m.model->load_state_dict(state);
  } catch (const Error& e) {
    throw DataError("model file " + file + ": " + e.what());
  }
  return m;
}

}  // namespace trine::cli
