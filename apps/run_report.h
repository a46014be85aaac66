// report.html of a training run (engine/report/HtmlReport): MNIST runs show the loss and
// active-fraction curves, positive vs negative pair distance histograms on the test set, a PCA
// projection of the test embeddings by class, the metrics and the configuration; face runs
// show the same curves, the ROC curve, same/different pair distance histograms with the
// threshold, the hardest false matches and misses as thumbnails, per-fold accuracies, the
// metrics and the configuration.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "apps/trainer.h"
#include "datasets/image_folder.h"
#include "datasets/lfw_pairs.h"
#include "engine/eval/retrieval.h"
#include "engine/eval/verification.h"

namespace trine::cli {

// What both reports show about the run.
struct RunSummary {
  const std::vector<StepRecord>* log = nullptr;
  double train_img_per_s = 0, embed_img_per_s = 0, peak_rss_mb = 0;
  std::string setup, blas, device;
  std::vector<std::string> flags;  // "--name=value"
};

struct MnistReportInput {
  RunSummary run;
  std::string dataset;  // "MNIST", "Fashion-MNIST"
  const Tensor* test_embeddings = nullptr;
  const std::vector<int32_t>* test_labels = nullptr;
  const RetrievalMetrics* metrics = nullptr;
  double nn_train_gallery = 0;  // NaN when not computed
};

struct FacesReportInput {
  RunSummary run;
  const ImageFolder* folder = nullptr;
  const ResolvedPairs* resolved = nullptr;
  int32_t test_fold = 0;                          // 0-based
  const std::vector<double>* distance = nullptr;  // every pair
  const HeldOutFigures* figures = nullptr;
  double equal_error = 0;
  std::vector<std::pair<int32_t, double>> fold_accuracy;  // (0-based fold, accuracy)
  double accuracy_mean = 0, accuracy_std = 0;
};

// Each writes the report atomically.
void write_mnist_report(const std::string& path, const MnistReportInput& in);
void write_faces_report(const std::string& path, const FacesReportInput& in);

}  // namespace trine::cli
