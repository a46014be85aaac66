// `trine loss`: evaluates a metric loss on saved embeddings and labels (.npy) and prints its
// value and statistics; --grad-out writes d(loss)/d(embeddings). For people porting a loss
// definition from another library and comparing on their own data.
#include <cstdio>
#include <iostream>

#include "apps/cli.h"
#include "apps/metric_setup.h"
#include "datasets/npy.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "losses/contrastive_loss.h"
#include "losses/distance.h"
#include "losses/ntxent_loss.h"
#include "losses/triplet_loss.h"

namespace trine {
namespace {

int run(cli::Args& args) {
  const auto emb_path = args.opt_str("embeddings", "embeddings, float32 .npy [N, D] (required)");
  const auto lab_path = args.opt_str("labels", "labels, int32 or int64 .npy [N] (required)");
  const std::string loss_name =
      args.choice("loss", "triplet", {"triplet", "contrastive", "ntxent", "supcon"}, "the loss");
  const std::string dist =
      args.str("distance", "euclidean",
               std::string(kDistanceSpecs) +
                   " (untrained here: L is the identity, or with RANK a seeded random RANK x D "
                   "projection)");
  const double margin = args.number("margin", 0.2, "triplet margin", 0, 1e6);
  const std::string miner = args.str(
      "miner", "batch-all",
      "none | batch-all | batch-hard | semi-hard:facenet | semi-hard:tfa | semi-hard:band | easy | "
      "hard | window:LO:HI");
  const std::string reduction = args.choice("reduction", "mean", {"mean", "mean-nonzero", "sum"},
                                            "mean | mean-nonzero | sum");
  const bool soft = args.flag("soft-margin", "triplet: soft margin log(1 + exp(d(a,p) - d(a,n)))");
  const bool swap = args.flag("swap", "triplet: distance swap");
  const double pos_margin = args.number("pos-margin", 0, "contrastive: positive margin");
  const double neg_margin = args.number("neg-margin", 1, "contrastive: negative margin");
  const double temperature =
      args.number("temperature", 0.1, "ntxent/supcon temperature", 1e-6, 1e6);
  const auto grad_out = args.opt_str("grad-out", "write d(loss)/d(embeddings) here (.npy [N, D])");
  const std::string device_name = args.str("device", "cpu", "cpu, cuda or cuda:N");
  args.finish();
  const Device device = Device::parse(device_name);
  backend_for(device);  // a clear error when the device is not available
  TRINE_CHECK_AS(UsageError, emb_path && lab_path, "loss: --embeddings and --labels are required");

  Tensor emb = read_npy_floats(*emb_path);
  TRINE_CHECK_AS(DataError, emb.dim() == 2, *emb_path, ": embeddings must be [N, D], got ",
                 emb.shape_str());
  std::vector<int32_t> labels = read_npy_labels(*lab_path);
  TRINE_CHECK_AS(DataError, static_cast<int64_t>(labels.size()) == emb.size(0), *emb_path,
                 " holds ", emb.size(0), " embeddings but ", *lab_path, " holds ", labels.size(),
                 " labels");
  auto distance = parse_distance(dist, emb.size(1));
  const Reduction red = parse_reduction(reduction);
  std::unique_ptr<MetricLoss> loss;
  if (loss_name == "triplet") {
    TripletLossOptions o{static_cast<float>(margin), soft, swap, red};
    loss = std::make_unique<TripletMarginLoss>(distance, parse_miner(miner), o);
  } else if (loss_name == "contrastive") {
    ContrastiveLossOptions o;
    o.pos_margin = static_cast<float>(pos_margin);
    o.neg_margin = static_cast<float>(neg_margin);
    o.reduction = red;
    loss = std::make_unique<ContrastiveLoss>(distance, o);
  } else {
    NTXentOptions o;
    o.temperature = static_cast<float>(temperature);
    o.supervised_contrastive = loss_name == "supcon";
    o.reduction = red;
    loss = std::make_unique<NTXentLoss>(distance, o);
  }
  emb = emb.to(device).detach().set_requires_grad(true);
  cli::loss_to(*loss, device);
  Tensor value = loss->forward(emb, labels);
  const LossStats& s = loss->stats();
  std::printf("loss %.9g\n", value.item());
  std::printf("%s %lld\n", s.unit.c_str(), static_cast<long long>(s.considered));
  std::printf("active %lld\n", static_cast<long long>(s.active));
  std::printf("mean_pos %.9g\nmean_neg %.9g\n", s.mean_pos, s.mean_neg);
  if (grad_out) {
    value.backward();
    Tensor g = emb.grad().defined() ? emb.grad() : Tensor::zeros(emb.shape(), device);
    write_npy(*grad_out, g.to(Device::cpu()));
  }
  return 0;
}

cli::Register reg("loss", "evaluate a metric loss on saved embeddings (.npy) and its gradient",
                  run);

}  // namespace
}  // namespace trine
