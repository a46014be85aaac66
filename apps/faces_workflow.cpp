// Faces: image folder, LFW-style pairs, FaceNetS training per held-out fold, verification
// metrics, run folder and report.
#include "apps/faces_workflow.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "apps/embedding.h"
#include "apps/metric_setup.h"
#include "apps/run_report.h"
#include "apps/run_support.h"
#include "apps/trainer.h"
#include "apps/training_run.h"
#include "datasets/image_folder.h"
#include "datasets/lfw_pairs.h"
#include "datasets/npy.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/blas.h"
#include "engine/error.h"
#include "engine/eval/verification.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "layers/models.h"
#include "mining/pk_sampler.h"

namespace trine::cli {

namespace fs = std::filesystem;

namespace {

// Everything one held-out fold's run produces.
struct FoldResult {
  int32_t fold = 0;
  HeldOutFigures figures;
  std::vector<double> distance;  // every pair, under this fold's model
  double equal_error = 0;
  double train_img_per_s = 0, embed_img_per_s = 0, embed_pairimg_per_s = 0, train_seconds = 0;
  double loader_wait_share = 0, device_wait_share = 0;  // of the training time (Trainer)
  double device_waits_per_step = 0;
  int64_t steps = 0, train_images = 0, train_identities = 0;
  std::vector<StepRecord> log;
  Tensor pair_embeddings;  // [unique images, dim]
  bool interrupted = false;
};

}  // namespace

int faces_main(Args& args, bool bench) {
  // A resumed run takes its original flags; the command line may override some (e.g. --epochs).
  const std::optional<ResumePoint> resume = read_resume(args, "facenet-s", "mnist");
  const std::string faces = args.str("faces", "../shared/data/faces",
                                     "folder holding lfw/ (identity folders) and pairs.txt");
  const auto images_flag = args.opt_str("images", "identity folders to use instead of FACES/lfw");
  const auto pairs_flag = args.opt_str("pairs", "pairs file instead of FACES/pairs.txt");
  const std::string out_flag =
      args.str("out", bench ? "" : "runs/faces",
               "run folder: checkpoint, metrics.json, train_log.csv, embeddings .npy, report.html");
  const std::string folds_flag =
      args.str("folds", "1", "held-out fold to test on (1-10), or 'all' for the 10-fold protocol");
  const int64_t epochs = args.integer("epochs", 20, "training epochs", 1, 100000);
  const int64_t steps =
      args.integer("steps", 0, "stop after this many steps (0: all epochs)", 0, INT64_MAX);
  const int64_t seed =
      args.integer("seed", 0, "random seed (weights, batches, flips)", 0, INT64_MAX);
  const int64_t dim = args.integer("dim", 128, "embedding size", 1, 65536);
  const int64_t size = args.integer("size", 64, "images are resized to SIZE x SIZE", 8, 4096);
  const int64_t crop = args.integer(
      "crop", 0, "train on random CROP x CROP crops, test on centre crops (0: no crop)", 0, 4096);
  const std::string resize = args.choice(
      "resize", "pil", {"pil", "triangle", "default", "box", "catmullrom", "mitchell", "bspline"},
      "resize filter (pil: Pillow's bilinear, as the W2 peer)");
  const double flip = args.number("flip", 0.5, "probability of mirroring a training image", 0, 1);
  const bool strict = args.flag("strict", "fail on an unreadable image instead of skipping it");
  // 256 as `trine embed`: at 64x64 a batch of 500 embedded at most 3% faster, and its widest
  // layers held 108 MB more at the run's peak (docs/benchmarks.md, W2).
  const int64_t eval_batch =
      args.integer("eval-batch", 256, "batch size for embedding", 1, 1 << 20);
  TrainerOptions loop = read_loop_flags(args);
  const DeviceChoice device_choice = device_flags(args);
  loop.device = device_choice.device;
  MetricConfig defaults;  // workload W2: batch-hard, Euclidean, margin 0.2, Adam 1e-3, 32 x 4
  defaults.P = 32;
  defaults.K = 4;
  defaults.sampler = "uniform";  // as the W2 peer: LFW's identities are very unequal in size
  MetricConfig mc = read_metric_flags(args, defaults, dim);
  common_flags(args);
  const std::vector<std::string> flags = args.given_tokens();
  args.finish();

  const Device device = loop.device;
  open_device(device_choice);  // fails now, with a clear message, when it is unavailable
  TRINE_CHECK_AS(UsageError, crop <= size, "--crop ", crop, " is larger than --size ", size);
  std::vector<int32_t> test_folds;
  if (folds_flag == "all") {
    TRINE_CHECK_AS(UsageError, !resume, "--resume works with one held-out fold, not --folds all");
  } else {
    int64_t f = 0;
    try {
      f = std::stoll(folds_flag);
    } catch (...) {
    }
    TRINE_CHECK_AS(UsageError, f >= 1, "--folds must be a fold number >= 1 or 'all', got '",
                   folds_flag, "'");
    test_folds.push_back(static_cast<int32_t>(f - 1));
  }
  const std::string run_dir = resume ? resume->run_dir : out_flag;
  const bool write_run = !run_dir.empty();

  // ---- data: decode once
  const std::string root = images_flag ? *images_flag : (fs::path(faces) / "lfw").string();
  const std::string pairs_path =
      pairs_flag ? *pairs_flag : (fs::path(faces) / "pairs.txt").string();
  PairsFile pairs = read_pairs(pairs_path);
  if (folds_flag == "all")
    for (int32_t k = 0; k < pairs.folds; ++k) test_folds.push_back(k);
  TRINE_CHECK_AS(UsageError, test_folds.back() < pairs.folds, "--folds ", folds_flag, ": ",
                 pairs_path, " has ", pairs.folds, " folds");
  const double t_decode0 = now_seconds();
  ImageFolderOptions fo;
  fo.channels = 3;
  fo.width = fo.height = static_cast<int>(size);
  fo.filter = parse_resize_filter(resize);
  fo.strict = strict;
  ImageFolder folder = ImageFolder::load(root, fo);
  const double decode_seconds = now_seconds() - t_decode0;
  ResolvedPairs resolved = resolve_pairs(pairs, folder);
  const std::vector<int64_t> pair_images = resolved.unique_images();
  std::cerr << "images: " << folder.size() << " in " << folder.num_identities()
            << " identities from " << root << ", decoded in " << decode_seconds
            << " s; pairs: " << resolved.size() << " in " << pairs.folds << " folds ("
            << pair_images.size() << " distinct images)\n";

  const int64_t crop_size = crop > 0 ? crop : size;
  BatchTransform eval_t;
  eval_t.normalize = {{0.5f}, {0.5f}};
  if (crop > 0) eval_t.crop_width = eval_t.crop_height = static_cast<int>(crop);
  BatchTransform train_t = eval_t;
  train_t.flip_probability = static_cast<float>(flip);
  train_t.random_crop = crop > 0;

  std::map<std::string, std::string> base_meta = {{"model", "facenet-s"},
                                                  {"embedding_dim", std::to_string(dim)},
                                                  {"in_channels", "3"},
                                                  {"input_height", std::to_string(crop_size)},
                                                  {"input_width", std::to_string(crop_size)},
                                                  {"resize_filter", resize},
                                                  {"normalize_mean", "0.5"},
                                                  {"normalize_std", "0.5"},
                                                  {"flip_average", "1"},
                                                  {"flags", flags_to_meta(flags)}};

  std::vector<FoldResult> results;
  for (int32_t test_fold : test_folds) {
    const std::string fold_dir =
        !write_run
            ? scratch_run_dir("bench-w2")
            : (test_folds.size() == 1
                   ? run_dir
                   : (fs::path(run_dir) / ("fold-" + std::to_string(test_fold + 1))).string());
    // Train on every identity with >= 2 images that appears in no pair of the test fold.
    std::set<std::string> held;
    for (const std::string& n : fold_identities(pairs, test_fold)) held.insert(n);
    std::vector<int64_t> train_index;
    std::vector<int32_t> train_labels;
    int64_t identities = 0;
    for (int32_t l = 0; l < folder.num_identities(); ++l) {
      if (folder.count(l) < 2 || held.count(folder.identities()[l])) continue;
      ++identities;
      for (int64_t i = folder.first_image(l); i < folder.first_image(l + 1); ++i) {
        train_index.push_back(i);
        train_labels.push_back(l);
      }
    }
    std::cerr << "fold " << test_fold + 1 << ": training on " << train_index.size() << " images of "
              << identities << " identities absent from its pairs\n";

    manual_seed(static_cast<uint64_t>(seed));
    std::shared_ptr<Sequential> model = make_facenet_s(dim, 3);
    model->to(device);
    Objective objective = make_objective(mc, dim, *model, device);
    PKSampler sampler(train_labels, mc.P, mc.K, static_cast<uint64_t>(seed));
    // An epoch is floor(images / (P K)) steps, as the W2 peer counts it (the balanced sampler's
    // plan is longer when small identities are repeated up to K).
    int64_t per_epoch =
        std::max<int64_t>(1, static_cast<int64_t>(train_index.size()) / (mc.P * mc.K));
    if (mc.sampler == "balanced")
      per_epoch = std::min(per_epoch, static_cast<int64_t>(sampler.epoch(0).batches.size()));
    auto epoch_plan = [&](int64_t epoch) { return epoch_batches(mc, sampler, epoch, per_epoch); };
    const int64_t total_steps =
        steps > 0 ? std::min(steps, epochs * per_epoch) : epochs * per_epoch;
    std::shared_ptr<LrSchedule> schedule =
        parse_lr_schedule(mc.lr_schedule, static_cast<float>(mc.lr), total_steps);
    std::unique_ptr<Curriculum> curriculum = make_curriculum(mc, total_steps);
    if (results.empty())
      std::cerr << "model: facenet-s, " << model->num_parameters() << " parameters; "
                << describe(mc) << "; " << per_epoch << " steps per epoch\n";

    std::map<std::string, std::string> meta = base_meta;
    meta["test_fold"] = std::to_string(test_fold + 1);
    TrainerOptions to = loop;
    to.run_dir = fold_dir;
    to.epochs = epochs;
    to.max_steps = steps;
    Trainer trainer(*model, *objective.loss, *objective.optimizer, schedule, curriculum.get(), to,
                    meta);
    if (resume) restore_or_explain(trainer, resume->checkpoint, resume->run_dir);
    const Trainer::Outcome outcome =
        trainer.run(epoch_plan, [&](const std::vector<int64_t>& positions, int64_t step) {
          Generator g = step_generator(seed, step);  // flips and crops
          std::vector<int64_t> idx;
          std::vector<int32_t> labels;
          for (int64_t p : positions) {
            idx.push_back(train_index[p]);
            labels.push_back(train_labels[p]);
          }
          return Batch{make_batch(folder, idx, train_t, &g).to(device), labels};
        });
    FoldResult r;
    r.fold = test_fold;
    if (outcome == Trainer::Outcome::Interrupted)
      return report_interrupted(trainer, fold_dir, "faces");
    backend_for(device).empty_cache();  // the training step's cached blocks are not needed again
    r.train_img_per_s = trainer.train_images_per_s();
    r.loader_wait_share = trainer.loader_wait_share();
    r.device_wait_share = trainer.device_wait_share();
    r.device_waits_per_step = trainer.device_waits_per_step();
    r.steps = trainer.step();
    r.train_images = static_cast<int64_t>(train_index.size());
    r.train_identities = identities;
    r.log = trainer.log();

    // ---- evaluate: embedding = normalize(f(x) + f(mirror(x))) of every distinct pair image
    const double t0 = now_seconds();
    auto embed_pass = [&](bool mirrored) {
      BatchTransform t = eval_t;
      t.flip_all = mirrored;
      return embed_all(*model, static_cast<int64_t>(pair_images.size()), eval_batch,
                       [&](int64_t b, int64_t e) {
                         std::vector<int64_t> idx(pair_images.begin() + b, pair_images.begin() + e);
                         return make_batch(folder, idx, t).to(device);
                       });
    };
    {
      NoGradGuard ng;
      r.pair_embeddings = l2_normalize(embed_pass(false) + embed_pass(true), 1);
    }
    const double embed_seconds = now_seconds() - t0;
    r.embed_img_per_s = 2.0 * static_cast<double>(pair_images.size()) / embed_seconds;
    r.embed_pairimg_per_s = static_cast<double>(pair_images.size()) / embed_seconds;
    std::vector<float> e = r.pair_embeddings.to_vector();
    const int64_t d = r.pair_embeddings.size(1);
    auto row_of = [&](int64_t image) {
      return std::lower_bound(pair_images.begin(), pair_images.end(), image) - pair_images.begin();
    };
    r.distance.resize(static_cast<size_t>(resolved.size()));
    for (int64_t k = 0; k < resolved.size(); ++k) {
      const float* a = e.data() + row_of(resolved.image1[k]) * d;
      const float* b = e.data() + row_of(resolved.image2[k]) * d;
      double acc = 0;
      for (int64_t j = 0; j < d; ++j) acc += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
      r.distance[k] = std::sqrt(acc);
    }
    r.figures = held_out_figures(r.distance, resolved.same, resolved.fold, test_fold);
    std::vector<double> fd;
    std::vector<uint8_t> fs_;
    for (int64_t k = 0; k < resolved.size(); ++k)
      if (resolved.fold[k] == test_fold)
        fd.push_back(r.distance[k]), fs_.push_back(resolved.same[k]);
    r.equal_error = equal_error_rate(fd, fs_);
    std::fprintf(stderr,
                 "fold %d: accuracy %.4f (threshold %.4f from the other folds), AUC %.4f, "
                 "TAR@FAR=1e-2 %.4f\n",
                 test_fold + 1, r.figures.accuracy, r.figures.threshold, r.figures.auc,
                 r.figures.tar.tar);
    if (write_run) {
      save_model((fs::path(fold_dir) / "model.trine").string(), *model, meta);
    } else {
      fs::remove_all(fold_dir);
    }
    results.push_back(std::move(r));
  }

  // ---- summary
  const FoldResult& first = results.front();
  double mean_acc = 0, sq = 0;
  for (const FoldResult& r : results) mean_acc += r.figures.accuracy;
  mean_acc /= static_cast<double>(results.size());
  for (const FoldResult& r : results)
    sq += (r.figures.accuracy - mean_acc) * (r.figures.accuracy - mean_acc);
  const double std_acc = std::sqrt(sq / static_cast<double>(results.size()));
  const double rss = peak_rss_mb();
  double train_seconds = 0;
  for (const FoldResult& r : results)
    train_seconds +=
        r.train_img_per_s > 0 ? static_cast<double>(r.steps * mc.P * mc.K) / r.train_img_per_s : 0;
  const std::string prefix = "fold" + std::to_string(first.fold + 1) + "_";

  std::printf("train_img_per_s %.1f\n", first.train_img_per_s);
  print_wait_shares(first.loader_wait_share, first.device_wait_share, first.device_waits_per_step,
                    device);
  std::printf("embed_img_per_s %.1f\n", first.embed_img_per_s);
  std::printf("embed_pairimg_per_s %.1f\n", first.embed_pairimg_per_s);
  std::printf("%saccuracy %.4f\n", prefix.c_str(), first.figures.accuracy);
  std::printf("%sauc %.4f\n", prefix.c_str(), first.figures.auc);
  std::printf("%star_at_far_1e-2 %.4f\n", prefix.c_str(), first.figures.tar.tar);
  std::printf("%soracle_accuracy %.4f\n", prefix.c_str(), first.figures.oracle_accuracy);
  if (results.size() > 1) {
    std::printf("accuracy_mean %.4f\naccuracy_std %.4f\n", mean_acc, std_acc);
  }
  std::printf("train_seconds %.1f\n", train_seconds);
  std::printf("decode_seconds %.1f\n", decode_seconds);
  std::printf("train_steps %lld\n", static_cast<long long>(first.steps));
  print_peak_memory(rss, device);
  if (bench) {
    std::printf("blas_kernel %s\n", blas::info().core.c_str());
    std::printf("conv_math %s\n", conv_math_name(device_choice.conv_math));
  }
  if (!write_run) return 0;

  // ---- run folder
  write_npy((fs::path(run_dir) / "pair_embeddings.npy").string(), first.pair_embeddings);
  std::vector<int32_t> pair_labels;
  for (int64_t i : pair_images) pair_labels.push_back(folder.label(i));
  write_npy_labels((fs::path(run_dir) / "pair_labels.npy").string(), pair_labels);
  Json m;
  m.set("workload", "faces")
      .set("images", root)
      .set("pairs", pairs_path)
      .set("epochs", epochs)
      .set("steps", first.steps)
      .set("train_images", first.train_images)
      .set("train_identities", first.train_identities)
      .set(prefix + "accuracy", first.figures.accuracy)
      .set(prefix + "threshold", first.figures.threshold)
      .set(prefix + "auc", first.figures.auc)
      .set(prefix + "tar_at_far_1e-2", first.figures.tar.tar)
      .set(prefix + "oracle_accuracy", first.figures.oracle_accuracy)
      .set(prefix + "equal_error_rate", first.equal_error)
      .set(prefix + "mean_same_distance", first.figures.mean_same_distance)
      .set(prefix + "mean_different_distance", first.figures.mean_different_distance);
  if (results.size() > 1) {
    Json per;
    for (const FoldResult& r : results)
      per.set("fold" + std::to_string(r.fold + 1), r.figures.accuracy);
    m.set("accuracy_mean", mean_acc).set("accuracy_std", std_acc).set("fold_accuracy", per);
  }
  m.set("embed_pairimg_per_s", first.embed_pairimg_per_s).set("decode_seconds", decode_seconds);
  add_run_summary(m, first.train_img_per_s, first.embed_img_per_s, rss, device.str(), describe(mc),
                  flags);
  write_file_atomic((fs::path(run_dir) / "metrics.json").string(), m.dump() + "\n");

  FacesReportInput in;
  in.run = {&first.log,   first.train_img_per_s, first.embed_img_per_s, rss,
            describe(mc), blas::summary(),       device.str(),          flags};
  in.folder = &folder;
  in.resolved = &resolved;
  in.test_fold = first.fold;
  in.distance = &first.distance;
  in.figures = &first.figures;
  in.equal_error = first.equal_error;
  for (const FoldResult& r : results) in.fold_accuracy.emplace_back(r.fold, r.figures.accuracy);
  in.accuracy_mean = mean_acc;
  in.accuracy_std = std_acc;
  write_faces_report((fs::path(run_dir) / "report.html").string(), in);
  std::cerr << "run folder: " << run_dir
            << " (report: " << (fs::path(run_dir) / "report.html").string() << ")\n";
  return 0;
}

}  // namespace trine::cli
