// MNIST: data, W1 model, training, retrieval evaluation, run folder and report.
#include "apps/mnist_workflow.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/embedding.h"
#include "apps/metric_setup.h"
#include "apps/run_report.h"
#include "apps/run_support.h"
#include "apps/trainer.h"
#include "apps/training_run.h"
#include "datasets/mnist.h"
#include "datasets/npy.h"
#include "engine/backend.h"
#include "engine/cpu/blas.h"
#include "engine/error.h"
#include "engine/eval/retrieval.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "layers/models.h"
#include "losses/triplet_loss.h"
#include "mining/pk_sampler.h"

namespace trine::cli {

namespace fs = std::filesystem;

std::string default_mnist_dir() {
  const std::vector<std::string> candidates = {"../shared/data/mnist", "data/mnist",
                                               "/usr/share/datasets/fashion-mnist"};
  for (const std::string& dir : candidates) {
    try {
      find_mnist_file(dir, "train-images-idx3-ubyte");
      find_mnist_file(dir, "t10k-labels-idx1-ubyte");
      return dir;
    } catch (const DataError&) {
    }
  }
  throw DataError(
      "no MNIST data found in ../shared/data/mnist, data/mnist or "
      "/usr/share/datasets/fashion-mnist; fetch MNIST with `datasets/download_mnist.sh data/mnist`"
      " or install Fashion-MNIST with `apt-get install dataset-fashion-mnist`, or pass --data DIR");
}

int mnist_main(Args& args, bool bench) {
  // A resumed run takes its original flags; the command line may override some (e.g. --epochs).
  const std::optional<ResumePoint> resume = read_resume(args, "mnist-w1", "faces");
  const std::string data_flag =
      args.str("data", "",
               "folder with the four MNIST-format IDX files (.gz or raw); default: "
               "../shared/data/mnist, data/mnist, /usr/share/datasets/fashion-mnist");
  const std::string out_flag = args.str("out", bench ? "" : "runs/mnist",
                                        "run folder: checkpoint, metrics.json, train_log.csv, "
                                        "embeddings .npy, report.html");
  const int64_t epochs = args.integer("epochs", 1, "training epochs", 1, 100000);
  const int64_t steps =
      args.integer("steps", 0, "stop after this many steps (0: all epochs)", 0, INT64_MAX);
  const int64_t seed = args.integer("seed", 0, "random seed (weights, batches)", 0, INT64_MAX);
  const int64_t dim = args.integer("dim", 64, "embedding size", 1, 65536);
  const int64_t limit =
      args.integer("limit", 0, "use the first N training images (0: all)", 0, INT64_MAX);
  const int64_t test_limit =
      args.integer("test-limit", 0, "use the first N test images (0: all)", 0, INT64_MAX);
  const int64_t eval_batch =
      args.integer("eval-batch", 1000, "batch size for embedding", 1, 1 << 20);
  const int64_t shift = args.integer(
      "shift", 0,
      "augmentation: move each training image by a random offset of up to N pixels in x and y "
      "(0: off)",
      0, 27);
  const bool train_gallery = !args.flag(
      "no-train-gallery", "skip the 1-NN accuracy of test queries against the train set");
  TrainerOptions to = read_loop_flags(args);
  const DeviceChoice device_choice = device_flags(args);
  to.device = device_choice.device;
  MetricConfig defaults;  // workload W1: batch-hard triplet, Euclidean, margin 0.2, Adam 1e-3, 8x16
  defaults.sampler = "uniform";  // as the W1 peer: P classes uniformly per batch, N / (P K) steps
  MetricConfig mc = read_metric_flags(args, defaults, dim);
  common_flags(args);
  const std::vector<std::string> flags = args.given_tokens();
  args.finish();

  const Device device = to.device;
  open_device(device_choice);  // fails now, with a clear message, when it is unavailable
  const std::string run_dir = resume ? resume->run_dir : out_flag;
  const bool write_run = !run_dir.empty();

  // ---- data
  const std::string data_dir = data_flag.empty() ? default_mnist_dir() : data_flag;
  const bool fashion = data_dir.find("fashion") != std::string::npos;
  if (fashion) std::cerr << "note: using Fashion-MNIST from " << data_dir << "\n";
  MnistOptions mo;
  if (fashion) mo.mean = 0.2860f, mo.std = 0.3530f;
  mo.limit = limit;
  MnistDataset train = MnistDataset::load(data_dir, MnistSplit::Train, mo);
  mo.limit = test_limit;
  MnistDataset test = MnistDataset::load(data_dir, MnistSplit::Test, mo);
  std::cerr << "train: " << train.describe() << "\ntest:  " << test.describe() << "\n";

  // ---- model, loss, optimizer
  manual_seed(static_cast<uint64_t>(seed));
  std::shared_ptr<Sequential> model = make_mnist_w1(dim);
  model->to(device);
  Objective objective = make_objective(mc, dim, *model, device);
  PKSampler sampler(train.labels(), mc.P, mc.K, static_cast<uint64_t>(seed));
  if (sampler.small_classes() > 0)
    std::cerr << "warning: " << sampler.small_classes() << " classes have fewer than K=" << mc.K
              << " images and are repeated to fill their groups\n";
  // Balanced: the sampler's plan (every image about once); uniform: N / (P K), as the W1 peer.
  const int64_t steps_per_epoch = mc.sampler == "uniform"
                                      ? std::max<int64_t>(1, train.size() / (mc.P * mc.K))
                                      : static_cast<int64_t>(sampler.epoch(0).batches.size());
  const int64_t total_steps =
      steps > 0 ? std::min(steps, epochs * steps_per_epoch) : epochs * steps_per_epoch;
  std::shared_ptr<LrSchedule> schedule =
      parse_lr_schedule(mc.lr_schedule, static_cast<float>(mc.lr), total_steps);
  std::unique_ptr<Curriculum> curriculum = make_curriculum(mc, total_steps);
  std::cerr << "model: mnist-w1, " << model->num_parameters() << " parameters; " << describe(mc)
            << "; " << steps_per_epoch << " steps per epoch\n";
  if (curriculum) std::cerr << "curriculum: " << curriculum->describe() << "\n";

  std::map<std::string, std::string> meta = {{"model", "mnist-w1"},
                                             {"embedding_dim", std::to_string(dim)},
                                             {"in_channels", "1"},
                                             {"input_height", std::to_string(train.rows())},
                                             {"input_width", std::to_string(train.cols())},
                                             {"normalize_mean", std::to_string(train.mean())},
                                             {"normalize_std", std::to_string(train.std())},
                                             {"dataset", fashion ? "fashion-mnist" : "mnist"},
                                             {"flags", flags_to_meta(flags)}};

  // ---- train
  to.run_dir = write_run ? run_dir : scratch_run_dir("bench-w1");
  to.epochs = epochs;
  to.max_steps = steps;
  Trainer trainer(*model, *objective.loss, *objective.optimizer, schedule, curriculum.get(), to,
                  meta);
  if (resume) restore_or_explain(trainer, resume->checkpoint, resume->run_dir);
  const Trainer::Outcome outcome =
      trainer.run([&](int64_t epoch) { return epoch_batches(mc, sampler, epoch, steps_per_epoch); },
                  [&](const std::vector<int64_t>& idx, int64_t step) {
                    Generator g = step_generator(seed, step);  // shifts
                    return Batch{train.shifted_images(idx, shift, g, device), train.labels_of(idx)};
                  });
  if (!write_run) fs::remove_all(to.run_dir);
  if (outcome == Trainer::Outcome::Interrupted)
    return report_interrupted(trainer, run_dir, "mnist");
  backend_for(device).empty_cache();  // the training step's cached blocks are not needed again

  // ---- evaluate
  const double t0 = now_seconds();
  Tensor test_emb = embed_all(*model, test.size(), eval_batch, [&](int64_t b, int64_t e) {
    return test.images_range(b, e, device);
  });
  Tensor train_emb;
  if (train_gallery)
    train_emb = embed_all(*model, train.size(), eval_batch,
                          [&](int64_t b, int64_t e) { return train.images_range(b, e, device); });
  const double embed_seconds = now_seconds() - t0;
  const double embed_rate =
      static_cast<double>(test.size() + (train_gallery ? train.size() : 0)) / embed_seconds;
  RetrievalMetrics loo = evaluate_leave_one_out(test_emb, test.labels());
  double nn_train = NAN;
  if (train_gallery) {
    RetrievalOptions ro;
    ro.map_at_r = false;
    ro.recall_ks = {1};
    nn_train = evaluate_against_gallery(test_emb, test.labels(), train_emb, train.labels(), ro)
                   .precision_at_1;
  }
  const double train_rate = trainer.train_images_per_s();
  const double rss = peak_rss_mb();

  if (bench) {
    std::printf("blas_kernel %s\n", blas::info().core.c_str());
    std::printf("threads %d\n", blas::info().threads);
    std::printf("conv_math %s\n", conv_math_name(device_choice.conv_math));
    std::printf("steps %lld\n", static_cast<long long>(trainer.step()));
    std::printf("train_img_per_s %.1f\n", train_rate);
    print_wait_shares(trainer.loader_wait_share(), trainer.device_wait_share(),
                      trainer.device_waits_per_step(), device);
    std::printf("embed_img_per_s %.1f\n", embed_rate);
    std::printf("test_precision_at_1 %.4f\n", loo.precision_at_1);
    std::printf("test_map_at_r %.4f\n", loo.map_at_r);
    if (train_gallery) std::printf("test_1nn_train_gallery %.4f\n", nn_train);
    print_peak_memory(rss, device);
  }
  if (!write_run) return 0;

  // ---- run folder
  save_model((fs::path(run_dir) / "model.trine").string(), *model, meta);
  write_npy((fs::path(run_dir) / "test_embeddings.npy").string(), test_emb);
  write_npy_labels((fs::path(run_dir) / "test_labels.npy").string(), test.labels());
  Json m;
  m.set("workload", fashion ? "fashion-mnist" : "mnist")
      .set("data", data_dir)
      .set("epochs", epochs)
      .set("steps", trainer.step())
      .set("final_loss", trainer.log().empty() ? NAN : trainer.log().back().loss)
      .set("test_precision_at_1", loo.precision_at_1)
      .set("test_r_precision", loo.r_precision)
      .set("test_map_at_r", loo.map_at_r);
  for (size_t i = 0; i < loo.recall_ks.size(); ++i)
    m.set("test_recall_at_" + std::to_string(loo.recall_ks[i]), loo.recall_at_k[i]);
  m.set("test_1nn_train_gallery", nn_train);
  add_run_summary(m, train_rate, embed_rate, rss, device.str(), describe(mc), flags);
  write_file_atomic((fs::path(run_dir) / "metrics.json").string(), m.dump() + "\n");

  MnistReportInput r;
  r.run = {&trainer.log(), train_rate,      embed_rate,   rss,
           describe(mc),   blas::summary(), device.str(), flags};
  r.dataset = fashion ? "Fashion-MNIST" : "MNIST";
  r.test_embeddings = &test_emb;
  r.test_labels = &test.labels();
  r.metrics = &loo;
  r.nn_train_gallery = nn_train;
  write_mnist_report((fs::path(run_dir) / "report.html").string(), r);

  std::printf("test_precision_at_1 %.4f\n", loo.precision_at_1);
  std::printf("test_r_precision %.4f\n", loo.r_precision);
  std::printf("test_map_at_r %.4f\n", loo.map_at_r);
  if (train_gallery) std::printf("test_1nn_train_gallery %.4f\n", nn_train);
  std::printf("train_img_per_s %.1f\n", train_rate);
  std::printf("embed_img_per_s %.1f\n", embed_rate);
  print_peak_memory(rss, device);
  std::cerr << "run folder: " << run_dir
            << " (report: " << (fs::path(run_dir) / "report.html").string() << ")\n";
  return 0;
}

}  // namespace trine::cli
