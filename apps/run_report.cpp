// Run reports for the MNIST and face workflows.
#include "apps/run_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/report/html_report.h"

namespace trine::cli {

namespace {

using report::HtmlReport;
using report::KeyValues;
using report::Series;

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Loss and active-fraction curves over the steps (raw and smoothed), and the mean distances.
void add_training(HtmlReport& page, const std::vector<StepRecord>& log) {
  Series loss{"loss", {}, {}}, active{"active fraction", {}, {}}, pos{"mean d(a,p)", {}, {}},
      neg{"mean d(a,n)", {}, {}};
  for (const StepRecord& r : log) {
    const double x = static_cast<double>(r.step);
    loss.x.push_back(x), loss.y.push_back(r.loss);
    active.x.push_back(x), active.y.push_back(r.active_fraction);
    pos.x.push_back(x), pos.y.push_back(r.mean_pos);
    neg.x.push_back(x), neg.y.push_back(r.mean_neg);
  }
  const int window = std::max<int>(1, static_cast<int>(log.size() / 50));
  Series loss_smooth{"loss (running mean of " + std::to_string(window) + ")", loss.x,
                     report::smooth(loss.y, window)};
  Series active_smooth{"running mean", active.x, report::smooth(active.y, window)};
  page.add_heading("Training");
  page.add_line_chart("Loss per step", "step", "loss", {loss, loss_smooth});
  page.add_line_chart("Active fraction (triplets with a non-zero loss)", "step", "fraction",
                      {active, active_smooth});
  page.add_line_chart("Mean distances in the loss", "step", "distance", {pos, neg});
}

KeyValues configuration(const RunSummary& run) {
  KeyValues rows = {{"setup", run.setup}, {"BLAS", run.blas}, {"device", run.device}};
  for (const std::string& f : run.flags) {
    const size_t eq = f.find('=');
    rows.emplace_back(f.substr(0, eq), eq == std::string::npos ? "(set)" : f.substr(eq + 1));
  }
  return rows;
}

KeyValues speed(const RunSummary& run) {
  return {{"training images / s", fixed(run.train_img_per_s, 1)},
          {"embedding images / s", fixed(run.embed_img_per_s, 1)},
          {"peak memory (MiB)", fixed(run.peak_rss_mb, 1)},
          {"steps", std::to_string(run.log ? run.log->size() : 0)}};
}

}  // namespace

void write_mnist_report(const std::string& path, const MnistReportInput& in) {
  HtmlReport page("trine - " + in.dataset + " embedding");
  page.set_subtitle(in.run.setup);
  const RetrievalMetrics& m = *in.metrics;
  KeyValues summary = {{"test Precision@1", fixed(m.precision_at_1)},
                       {"test MAP@R", fixed(m.map_at_r)},
                       {"test R-Precision", fixed(m.r_precision)}};
  if (std::isfinite(in.nn_train_gallery))
    summary.emplace_back("1-NN vs train set", fixed(in.nn_train_gallery));
  summary.emplace_back("training images / s", fixed(in.run.train_img_per_s, 0));
  page.add_summary(summary);
  if (in.run.log && !in.run.log->empty()) add_training(page, *in.run.log);

  page.add_heading("Test set");
  // Pair distances among (at most) the first 2000 test embeddings: same class vs different.
  const Tensor& e = *in.test_embeddings;
  const int64_t n = std::min<int64_t>(2000, e.size(0));
  std::vector<double> same, different;
  {
    NoGradGuard ng;
    Tensor sub = e.slice(0, 0, n);
    // Centred: collapsed embeddings (distances of 1e-3) keep their digits in the histograms.
    std::vector<float> d = pairwise_distance(sub, sub, false, true).to_vector();
    const std::vector<int32_t>& y = *in.test_labels;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) (y[i] == y[j] ? same : different).push_back(d[i * n + j]);
  }
  page.add_histograms("Pair distances on " + std::to_string(n) + " test images",
                      "Euclidean distance", {{"same class", same}, {"different class", different}});
  report::Pca2d pca = report::pca_2d_projection(e, 5000);
  std::vector<report::ScatterPoint> points;
  for (size_t i = 0; i < pca.rows.size(); ++i)
    points.push_back({pca.points[i][0], pca.points[i][1], (*in.test_labels)[pca.rows[i]]});
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) names.push_back(std::to_string(c));
  page.add_scatter("Test embeddings, PCA (" + fixed(100 * pca.explained_variance[0], 1) + "% + " +
                       fixed(100 * pca.explained_variance[1], 1) + "% of the variance)",
                   points, names);
  KeyValues metrics = {{"Precision@1", fixed(m.precision_at_1)},
                       {"R-Precision", fixed(m.r_precision)},
                       {"MAP@R", fixed(m.map_at_r)}};
  for (size_t i = 0; i < m.recall_ks.size(); ++i)
    metrics.emplace_back("Recall@" + std::to_string(m.recall_ks[i]), fixed(m.recall_at_k[i]));
  metrics.emplace_back("1-NN accuracy against the train set", fixed(in.nn_train_gallery));
  metrics.emplace_back("queries", std::to_string(m.num_queries));
  page.add_key_values("Retrieval metrics (test set, leave-one-out)", metrics);
  page.add_key_values("Speed and memory", speed(in.run));
  page.set_configuration(configuration(in.run));
  page.save(path);
}

void write_faces_report(const std::string& path, const FacesReportInput& in) {
  HtmlReport page("trine - face verification");
  page.set_subtitle(in.run.setup);
  const HeldOutFigures& f = *in.figures;
  const std::string fold = "fold " + std::to_string(in.test_fold + 1);
  KeyValues summary = {{fold + " accuracy", fixed(f.accuracy)},
                       {fold + " AUC", fixed(f.auc)},
                       {fold + " TAR @ FAR 1e-2", fixed(f.tar.tar)}};
  if (in.fold_accuracy.size() > 1)
    summary.emplace_back(std::to_string(in.fold_accuracy.size()) + "-fold accuracy",
                         fixed(in.accuracy_mean) + " ± " + fixed(in.accuracy_std));
  summary.emplace_back("training images / s", fixed(in.run.train_img_per_s, 0));
  page.add_summary(summary);
  if (in.run.log && !in.run.log->empty()) add_training(page, *in.run.log);

  page.add_heading("Verification on " + fold);
  const ResolvedPairs& r = *in.resolved;
  const std::vector<double>& dist = *in.distance;
  std::vector<double> d, same_d, diff_d;
  std::vector<uint8_t> s;
  std::vector<int64_t> pairs;  // indices of the fold's pairs
  for (int64_t k = 0; k < r.size(); ++k) {
    if (r.fold[k] != in.test_fold) continue;
    pairs.push_back(k);
    d.push_back(dist[k]);
    s.push_back(r.same[k]);
    (r.same[k] ? same_d : diff_d).push_back(dist[k]);
  }
  Series roc{fold + " (AUC " + fixed(f.auc) + ")", {}, {}};
  for (const RocPoint& p : roc_curve(d, s)) {
    roc.x.push_back(p.far);
    roc.y.push_back(p.tar);
  }
  page.add_roc_curve("ROC curve", {roc});
  page.add_histograms("Pair distances", "Euclidean distance",
                      {{"same identity", same_d}, {"different identities", diff_d}}, 40,
                      {{"threshold", f.threshold}});
  KeyValues metrics = {{"accuracy (threshold from the other folds)", fixed(f.accuracy)},
                       {"threshold", fixed(f.threshold)},
                       {"oracle accuracy (best threshold on this fold)", fixed(f.oracle_accuracy)},
                       {"ROC AUC", fixed(f.auc)},
                       {"TAR @ FAR 1e-2", fixed(f.tar.tar)},
                       {"equal error rate", fixed(in.equal_error)},
                       {"mean distance, same", fixed(f.mean_same_distance)},
                       {"mean distance, different", fixed(f.mean_different_distance)}};
  page.add_key_values("Verification metrics", metrics);
  page.add_key_values("Speed and memory", speed(in.run));
  if (in.fold_accuracy.size() > 1) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [k, acc] : in.fold_accuracy)
      rows.push_back({std::to_string(k + 1), fixed(acc)});
    rows.push_back({"mean ± std", fixed(in.accuracy_mean) + " ± " + fixed(in.accuracy_std)});
    page.add_table("Accuracy per held-out fold (one model each)", {"fold", "accuracy"}, rows);
  }

  // The most confident mistakes at the chosen threshold.
  auto thumb = [&](int64_t image) {
    ImageView v = in.folder->image(image);
    report::Thumbnail t;
    t.pixels.assign(v.data, v.data + static_cast<int64_t>(v.height) * v.width * v.channels);
    t.width = v.width, t.height = v.height, t.channels = v.channels;
    return t;
  };
  auto name_of = [&](int64_t image) { return in.folder->identities()[in.folder->label(image)]; };
  std::vector<int64_t> false_matches, misses;
  for (int64_t k : pairs) {
    if (!r.same[k] && dist[k] < f.threshold) false_matches.push_back(k);
    if (r.same[k] && dist[k] >= f.threshold) misses.push_back(k);
  }
  std::sort(false_matches.begin(), false_matches.end(),
            [&](int64_t a, int64_t b) { return dist[a] < dist[b]; });
  std::sort(misses.begin(), misses.end(), [&](int64_t a, int64_t b) { return dist[a] > dist[b]; });
  auto grid = [&](const std::vector<int64_t>& ks, const std::string& title) {
    std::vector<report::ThumbnailPair> items;
    for (size_t i = 0; i < ks.size() && i < 12; ++i) {
      const int64_t k = ks[i];
      items.push_back(
          {thumb(r.image1[k]), thumb(r.image2[k]),
           name_of(r.image1[k]) + " / " + name_of(r.image2[k]) + ", d = " + fixed(dist[k], 3)});
    }
    if (!items.empty()) page.add_thumbnail_grid(title, items);
  };
  grid(false_matches, "Hardest false matches (different identities, smallest distances)");
  grid(misses, "Hardest misses (same identity, largest distances)");
  page.set_configuration(configuration(in.run));
  page.save(path);
}

}  // namespace trine::cli
