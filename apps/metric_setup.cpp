// Building losses and optimizers from flags.
#include "apps/metric_setup.h"

#include <sstream>

#include "engine/error.h"
#include "losses/contrastive_loss.h"
#include "losses/distance.h"
#include "losses/ntxent_loss.h"
#include "losses/triplet_loss.h"

namespace trine::cli {

MetricConfig read_metric_flags(Args& a, const MetricConfig& d, int64_t dim) {
  MetricConfig c;
  c.loss = a.choice("loss", d.loss, {"triplet", "contrastive", "ntxent", "supcon"}, "metric loss");
  c.distance = a.str("distance", d.distance,
                     std::string(kDistanceSpecs) + " (RANK from 1 to the embedding size)");
  c.miner = a.str("miner", d.miner,
                  "triplet miner: none | batch-all | batch-hard | semi-hard:facenet | "
                  "semi-hard:tfa | semi-hard:band | easy | hard | window:LO:HI");
  c.curriculum = a.str("curriculum", d.curriculum,
                       "miner schedule over training: curriculum | anti-curriculum | "
                       "MINER*W,MINER*W,... (overrides --miner)");
  c.reduction = a.choice("reduction", d.reduction, {"mean", "mean-nonzero", "sum"},
                         "how per-triplet losses are combined");
  c.margin = a.number("margin", d.margin, "triplet margin alpha", 0, 1e6);
  c.soft_margin =
      a.flag("soft-margin", "triplet: log(1 + exp(d(a,p) - d(a,n))) instead of the hinge");
  c.swap = a.flag("swap", "triplet: distance swap, min(d(a,n), d(p,n))");
  c.pos_margin = a.number("pos-margin", d.pos_margin, "contrastive: positive margin");
  c.neg_margin = a.number("neg-margin", d.neg_margin, "contrastive: negative margin");
  c.temperature = a.number("temperature", d.temperature, "ntxent/supcon temperature", 1e-6, 1e6);
  c.optimizer = a.choice("optimizer", d.optimizer, {"adam", "adamw", "sgd"}, "optimizer");
  c.lr = a.number("lr", d.lr, "learning rate", 0, 1e3);
  c.weight_decay = a.number("weight-decay", d.weight_decay, "weight decay", 0, 1e3);
  c.momentum = a.number("momentum", d.momentum, "SGD momentum", 0, 1);
  c.lr_schedule = a.str("lr-schedule", d.lr_schedule,
                        "constant | step:SIZE:GAMMA | cosine[:MIN], optionally +warmup:STEPS");
  c.P = a.integer("p", d.P, "classes per batch (P)", 2, 100000);
  c.K = a.integer("k", d.K, "samples per class in a batch (K)", 2, 100000);
  c.sampler = a.choice("sampler", d.sampler, {"balanced", "uniform"},
                       "P x K batches: balanced (every sample about once per epoch) or uniform "
                       "(P classes uniformly at random per batch, as the PyTorch peers)");
  // Validate the specs now, so a typo fails before any data is loaded.
  if (c.loss == "triplet") {
    if (c.curriculum.empty()) parse_miner(c.miner);
  }
  parse_distance(c.distance, dim);
  return c;
}

std::shared_ptr<MetricLoss> make_loss(const MetricConfig& c, int64_t dim) {
  auto distance = parse_distance(c.distance, dim);
  const Reduction red = parse_reduction(c.reduction);
  if (c.loss == "triplet") {
    TripletLossOptions o;
    o.margin = static_cast<float>(c.margin);
    o.soft_margin = c.soft_margin;
    o.swap = c.swap;
    o.reduction = red;
    std::shared_ptr<Miner> miner =
        c.curriculum.empty()
            ? parse_miner(c.miner)
            : Curriculum::parse(c.curriculum, Curriculum::Unit::Step, 1).miner_ptr_at(0, 0);
    return std::make_shared<TripletMarginLoss>(distance, miner, o);
  }
  TRINE_CHECK_AS(UsageError, c.curriculum.empty(), "--curriculum needs --loss triplet");
  if (c.loss == "contrastive") {
    ContrastiveLossOptions o;
    o.pos_margin = static_cast<float>(c.pos_margin);
    o.neg_margin = static_cast<float>(c.neg_margin);
    o.reduction = red;
    return std::make_shared<ContrastiveLoss>(distance, o);
  }
  NTXentOptions o;
  o.temperature = static_cast<float>(c.temperature);
  o.supervised_contrastive = c.loss == "supcon";
  o.reduction = red;
  return std::make_shared<NTXentLoss>(distance, o);
}

std::unique_ptr<Optimizer> make_optimizer(const MetricConfig& c, std::vector<Tensor> params) {
  if (c.optimizer == "sgd") {
    SgdOptions o;
    o.lr = static_cast<float>(c.lr);
    o.momentum = static_cast<float>(c.momentum);
    o.weight_decay = static_cast<float>(c.weight_decay);
    return std::make_unique<SGD>(std::move(params), o);
  }
  AdamOptions o;
  o.lr = static_cast<float>(c.lr);
  o.weight_decay = static_cast<float>(c.weight_decay);
  if (c.optimizer == "adamw") return std::make_unique<AdamW>(std::move(params), o);
  return std::make_unique<Adam>(std::move(params), o);
}

void loss_to(MetricLoss& loss, Device device) {
  for (Tensor& p : loss.parameters()) p.impl()->storage = p.detach().to(device).impl()->storage;
}

Objective make_objective(const MetricConfig& c, int64_t dim, Module& model, Device device) {
  Objective o;
  o.loss = make_loss(c, dim);
  loss_to(*o.loss, device);
  std::vector<Tensor> params = model.parameters();
  for (const Tensor& p : o.loss->parameters()) params.push_back(p);
  o.optimizer = make_optimizer(c, std::move(params));
  return o;
}

std::unique_ptr<Curriculum> make_curriculum(const MetricConfig& c, int64_t total_steps) {
  if (c.curriculum.empty()) return nullptr;
  return std::make_unique<Curriculum>(
      Curriculum::parse(c.curriculum, Curriculum::Unit::Step, std::max<int64_t>(1, total_steps)));
}

std::vector<std::vector<int64_t>> epoch_batches(const MetricConfig& c, const PKSampler& sampler,
                                                int64_t epoch, int64_t steps) {
  if (c.sampler == "uniform") return sampler.uniform_epoch(epoch, steps).batches;
  std::vector<std::vector<int64_t>> b = sampler.epoch(epoch).batches;
  if (static_cast<int64_t>(b.size()) > steps) b.resize(static_cast<size_t>(steps));
  return b;
}

std::string describe(const MetricConfig& c) {
  std::ostringstream os;
  os << c.loss << " loss, " << c.distance;
  if (c.loss == "triplet") {
    os << ", " << (c.curriculum.empty() ? c.miner : "curriculum " + c.curriculum);
    if (c.soft_margin)
      os << ", soft margin";
    else
      os << ", margin " << c.margin;
    if (c.swap) os << ", swap";
  } else if (c.loss == "contrastive") {
    os << ", margins " << c.pos_margin << "/" << c.neg_margin;
  } else {
    os << ", temperature " << c.temperature;
  }
  os << ", " << c.reduction << "; " << c.optimizer << " lr " << c.lr;
  if (c.weight_decay > 0) os << " wd " << c.weight_decay;
  if (c.lr_schedule != "constant") os << " (" << c.lr_schedule << ")";
  os << "; P x K = " << c.P << " x " << c.K << " (" << c.sampler << ")";
  return os.str();
}

}  // namespace trine::cli
