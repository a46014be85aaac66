// `trine faces`: train a face embedding on an image folder (workload W2 by default: FaceNetS at
// 64x64 on LFW, batch-hard triplets) and evaluate it on LFW-style verification pairs, writing a
// run folder with report.html.
#include "apps/faces_workflow.h"

namespace trine::cli {
namespace {
Register reg("faces", "train and evaluate a face-verification embedding (W2 by default)",
             [](Args& args) { return faces_main(args, false); });
}  // namespace
}  // namespace trine::cli
