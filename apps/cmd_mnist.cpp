// `trine mnist`: train a triplet-loss embedding of MNIST (workload W1 by default), evaluate it
// (Precision@1, R-Precision, MAP@R, 1-NN against the train set) and write a run folder with
// report.html.
#include "apps/mnist_workflow.h"

namespace trine::cli {
namespace {
Register reg("mnist", "train and evaluate an MNIST embedding (W1 by default), with a report",
             [](Args& args) { return mnist_main(args, false); });
}  // namespace
}  // namespace trine::cli
