// The MNIST workflow behind `trine mnist` (train, evaluate, write a run folder with a report)
// and `trine bench w1` (the same run, printing the figures of ../peers/torch_mnist.py).
#pragma once

#include "apps/cli.h"

namespace trine::cli {

// bench: print the W1 benchmark figures instead of writing a run folder (unless --out is given).
int mnist_main(Args& args, bool bench);

// The MNIST folder to use when --data is not given: the first of ../shared/data/mnist,
// data/mnist and /usr/share/datasets/fashion-mnist that holds the four files; throws DataError
// listing what was tried (and how to get the data) when none does.
std::string default_mnist_dir();

}  // namespace trine::cli
