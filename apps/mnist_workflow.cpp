// MNIST: data, W1 model, training, retrieval evaluation, run folder and report.
#include "apps/mnist_workflow.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "apps/embedding.h"
#include "apps/metric_setup.h"
#include "apps/run_report.h"
#include "apps/run_support.h"
#include "apps/trainer.h"
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

namespace {

std::string join(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : std::string(1, sep)) + s;
  return out;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int mnist_main(Args& args, bool bench) {
  // A resumed run takes its original flags; the command line may override some (e.g. --epochs).
  const auto resume = args.opt_str("resume", "continue the run in this folder from its checkpoint");
  Checkpoint resumed;
  if (resume) {
    const std::string ck_path = (fs::path(*resume) / "checkpoint.trine").string();
    resumed = load_checkpoint(ck_path);
    auto model = resumed.meta.find("model");
    TRINE_CHECK_AS(DataError, model == resumed.meta.end() || model->second == "mnist-w1", ck_path,
                   ": holds a ", model->second,
                   " model, not mnist-w1; resume it with trine faces --resume ", *resume);
    auto it = resumed.meta.find("flags");
    TRINE_CHECK_AS(DataError, it != resumed.meta.end(), ck_path, ": no stored flags to resume");
    args.inherit(split(it->second, '\n'));
  }
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
  const bool train_gallery = !args.flag(
      "no-train-gallery", "skip the 1-NN accuracy of test queries against the train set");
  const int64_t log_every = args.integer("log-every", 50, "steps between log lines", 1, INT64_MAX);
  const int64_t ckpt_every = args.integer(
      "checkpoint-every", 0, "steps between checkpoints (0: at each epoch end)", 0, INT64_MAX);
  const std::string on_nonfinite = args.choice(
      "on-nonfinite", "recover", {"recover", "stop"},
      "non-finite loss or gradient: reload the last good checkpoint with a lower learning rate, "
      "or stop");
  const auto inject = args.opt_str(
      "inject-nonfinite",
      "TESTING AID, not for real runs: at step STEP, once, fill the first layer's weights with "
      "NaN (weight:STEP), scale the input by 1e38 (input:STEP) or fill the last layer's "
      "gradient with Inf (grad:STEP), to exercise --on-nonfinite");
  const std::string device_name = args.str("device", "cpu", "cpu, cuda or cuda:N");
  MetricConfig defaults;  // workload W1: batch-hard triplet, Euclidean, margin 0.2, Adam 1e-3, 8x16
  MetricConfig mc = read_metric_flags(args, defaults);
  common_flags(args);
  const std::vector<std::string> flags = args.given_tokens();
  args.finish();
  TrainerOptions injection;  // checked now, before any data is read
  if (inject) parse_inject_nonfinite(*inject, injection);

  const Device device = Device::parse(device_name);
  backend_for(device);  // fails now, with a clear message, when the device is unavailable
  std::cerr << banner(device.str()) << "\n";
  const std::string run_dir = resume ? *resume : out_flag;
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
  std::shared_ptr<MetricLoss> loss = make_loss(mc, dim);
  std::vector<Tensor> params = model->parameters();
  for (Tensor& p : loss->parameters()) {
    p.impl()->storage = p.detach().to(device).impl()->storage;
    params.push_back(p);
  }
  std::unique_ptr<Optimizer> opt = make_optimizer(mc, params);
  PKSampler sampler(train.labels(), mc.P, mc.K, static_cast<uint64_t>(seed));
  if (sampler.small_classes() > 0)
    std::cerr << "warning: " << sampler.small_classes() << " classes have fewer than K=" << mc.K
              << " images and are repeated to fill their groups\n";
  const int64_t steps_per_epoch = static_cast<int64_t>(sampler.epoch(0).batches.size());
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
                                             {"flags", join(flags, '\n')}};

  // ---- train
  TrainerOptions to;
  to.run_dir =
      write_run
          ? run_dir
          : (fs::temp_directory_path() / ("trine-bench-" + std::to_string(::getpid()))).string();
  to.epochs = epochs;
  to.max_steps = steps;
  to.log_every = log_every;
  to.checkpoint_every = ckpt_every;
  to.recover_nonfinite = on_nonfinite == "recover";
  to.inject_step = injection.inject_step;
  to.inject_kind = injection.inject_kind;
  to.device = device;
  Trainer trainer(*model, *loss, *opt, schedule, curriculum.get(), to, meta);
  if (resume) {
    restore_or_explain(trainer, resumed, *resume);
    std::cerr << "resuming " << *resume << " at step " << trainer.step() << "\n";
  }
  const Trainer::Outcome outcome =
      trainer.run([&](int64_t epoch) { return sampler.epoch(epoch).batches; },
                  [&](const std::vector<int64_t>& idx, int64_t) {
                    return Batch{train.images(idx, device), train.labels_of(idx)};
                  });
  if (!write_run) fs::remove_all(to.run_dir);
  if (outcome == Trainer::Outcome::Interrupted) {
    std::cerr << "interrupted at step " << trainer.step() << "; the checkpoint is in " << run_dir
              << "\nresume with: trine mnist --resume " << run_dir << "\n";
    return 130;
  }

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
    std::printf("steps %lld\n", static_cast<long long>(trainer.step()));
    std::printf("train_img_per_s %.1f\n", train_rate);
    std::printf("embed_img_per_s %.1f\n", embed_rate);
    std::printf("test_precision_at_1 %.4f\n", loo.precision_at_1);
    std::printf("test_map_at_r %.4f\n", loo.map_at_r);
    if (train_gallery) std::printf("test_1nn_train_gallery %.4f\n", nn_train);
    std::printf("peak_rss_mb %.1f\n", rss);
  }
  if (!write_run) return 0;

  // ---- run folder
  save_model((fs::path(run_dir) / "model.trine").string(), *model, meta);
  write_npy((fs::path(run_dir) / "test_embeddings.npy").string(), test_emb);
  write_npy_labels((fs::path(run_dir) / "test_labels.npy").string(), test.labels());
  Json m, config;
  for (const std::string& t : flags) {
    const size_t eq = t.find('=');
    config.set(t.substr(2, eq == std::string::npos ? std::string::npos : eq - 2),
               eq == std::string::npos ? std::string("true") : t.substr(eq + 1));
  }
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
  m.set("test_1nn_train_gallery", nn_train)
      .set("train_img_per_s", train_rate)
      .set("embed_img_per_s", embed_rate)
      .set("peak_rss_mb", rss)
      .set("blas", blas::summary())
      .set("device", device.str())
      .set("setup", describe(mc))
      .set("flags", config);
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
  std::printf("peak_rss_mb %.1f\n", rss);
  std::cerr << "run folder: " << run_dir
            << " (report: " << (fs::path(run_dir) / "report.html").string() << ")\n";
  return 0;
}

}  // namespace trine::cli
