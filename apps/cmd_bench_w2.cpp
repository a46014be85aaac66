// `trine bench w2`: workload W2 with the figures of ../peers/torch_lfw.py (train_img_per_s,
// embed_img_per_s, fold1_accuracy, fold1_auc, ...) and the BLAS kernel; --steps N for a short
// timing run.
#include "apps/faces_workflow.h"

namespace trine::cli {
namespace {
Register reg("bench w2", "benchmark workload W2 (LFW) with the PyTorch peer's figure names",
             [](Args& args) { return faces_main(args, true); });
}  // namespace
}  // namespace trine::cli
