// The metric-learning flags every training command shares (loss, distance, miner, curriculum,
// reduction, margins, optimizer, learning-rate schedule, P x K), and building the objects from
// them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "layers/module.h"
#include "losses/loss.h"
#include "mining/curriculum.h"
#include "mining/pk_sampler.h"

namespace trine::cli {

struct MetricConfig {
  std::string loss = "triplet";  // triplet | contrastive | ntxent | supcon
  std::string distance = "euclidean";
  std::string miner = "batch-hard";
  std::string curriculum;  // empty: the fixed miner
  std::string reduction = "mean";
  double margin = 0.2;
  bool soft_margin = false;
  bool swap = false;
  double pos_margin = 0.0, neg_margin = 1.0;
  double temperature = 0.1;
  std::string optimizer = "adam";  // adam | adamw | sgd
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;  // sgd
  std::string lr_schedule = "constant";
  int64_t P = 8, K = 16;
  // balanced: each epoch shows every sample about once (PKSampler::epoch); uniform: each batch
  // takes P classes uniformly at random, as the reference peers do (PKSampler::uniform_epoch).
  std::string sampler = "balanced";
};

// Declares and reads the flags; `defaults` gives each command's defaults (its workload). The
// specs are checked at once, against embeddings of size `dim`, so a typo fails before any data
// is loaded.
MetricConfig read_metric_flags(Args& args, const MetricConfig& defaults, int64_t dim);

// The loss for `c`, for embeddings of size `dim`. The miner is the curriculum's first stage when
// a curriculum is set.
std::shared_ptr<MetricLoss> make_loss(const MetricConfig& c, int64_t dim);
// The optimizer over `params` (the model's, plus the loss's own, e.g. a Mahalanobis matrix).
std::unique_ptr<Optimizer> make_optimizer(const MetricConfig& c, std::vector<Tensor> params);
// Moves the loss's own parameters (e.g. a Mahalanobis matrix) to `device`, in place, so that the
// tensors the optimizer holds are the ones the loss uses.
void loss_to(MetricLoss& loss, Device device);

// What a training command optimizes: the loss for `c` on `device`, and the optimizer over the
// model's parameters followed by the loss's own.
struct Objective {
  std::shared_ptr<MetricLoss> loss;
  std::unique_ptr<Optimizer> optimizer;
};
Objective make_objective(const MetricConfig& c, int64_t dim, Module& model, Device device);
// The curriculum over `total_steps` (nullptr without --curriculum).
std::unique_ptr<Curriculum> make_curriculum(const MetricConfig& c, int64_t total_steps);
// The batches of one epoch of `steps` steps, as --sampler says.
std::vector<std::vector<int64_t>> epoch_batches(const MetricConfig& c, const PKSampler& sampler,
                                                int64_t epoch, int64_t steps);

// One line, for logs and reports: "triplet loss, euclidean, batch-hard, margin 0.2, mean".
std::string describe(const MetricConfig& c);

}  // namespace trine::cli
