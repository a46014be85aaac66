// `trine bench w1`: workload W1 with the figures of ../peers/torch_mnist.py (train_img_per_s,
// embed_img_per_s, peak_rss_mb, test_precision_at_1, test_map_at_r, test_1nn_train_gallery) and
// the BLAS kernel; --steps N for a short timing run.
#include "apps/mnist_workflow.h"

namespace trine::cli {
namespace {
Register reg("bench w1", "benchmark workload W1 (MNIST) with the PyTorch peer's figure names",
             [](Args& args) { return mnist_main(args, true); });
}  // namespace
}  // namespace trine::cli
