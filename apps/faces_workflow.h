// The face-verification workflow behind `trine faces` (train on an image folder, evaluate on a
// pairs file, write a run folder with a report) and `trine bench w2` (the same run printing the
// figures of ../peers/torch_lfw.py).
#pragma once

#include "apps/cli.h"

namespace trine::cli {

int faces_main(Args& args, bool bench);

}  // namespace trine::cli
