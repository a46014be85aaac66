// Embedding a whole dataset with a trained model, in evaluation mode and batches, and the model
// file the training commands write (weights + what is needed to rebuild and feed the model).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "engine/tensor.h"
#include "layers/sequential.h"

namespace trine::cli {

// Embeds items [0, n) in batches; batch(begin, end) returns the inputs of items begin..end-1 on
// the model's device, and is called on a loader thread, one batch ahead of the model (so it must
// not touch what the model's thread changes). Returns the embeddings [n, dim] on the CPU. Eval
// mode, no graph.
Tensor embed_all(Sequential& model, int64_t n, int64_t batch_size,
                 const std::function<Tensor(int64_t, int64_t)>& batch);

// A trained model as stored in MODEL files: weights plus metadata (meta keys "model",
// "embedding_dim", "in_channels", "input_height", "input_width", "normalize_mean",
// "normalize_std", and anything else the command adds).
struct SavedModel {
  std::shared_ptr<Sequential> model;
  std::map<std::string, std::string> meta;
  std::string get(const std::string& key) const;  // throws DataError naming a missing key
};

// Parses a meta value of one or more comma-separated floats ("0.5,0.5,0.5").
std::vector<float> parse_floats(const std::string& text, const std::string& what);

// Embeds every image of the folder `root` (one sub-folder per identity) with the model's input
// preprocessing from its metadata: channels (grey images expanded to RGB and the reverse), size
// (other sizes resized with meta "resize_filter", default triangle), per-channel normalization,
// and the flip-averaged embedding when meta "flip_average" is "1" (the normalized mean of the
// image's and its mirror's embeddings). Labels are the folder indices in sorted order.
Tensor embed_images(Sequential& model, const SavedModel& saved, const std::string& root,
                    int64_t batch_size, bool strict, Device device, std::vector<int32_t>* labels);

// Writes model.trine (atomically).
void save_model(const std::string& path, Sequential& model,
                const std::map<std::string, std::string>& meta);
// Loads a model file or the model part of a training checkpoint; `path` may also be a run
// folder (its model.trine, else its checkpoint.trine).
SavedModel load_model(const std::string& path);

}  // namespace trine::cli
