// `trine bench conv`: the CPU backend's conv2d, forward and backward, on the convolutions of the
// reference workloads (W1's two, W2's seven) at their batch sizes, by im2col + GEMM and by
// Winograd where that path applies, as `name value` lines (milliseconds, median of the repeats).
// A benchmark program, not a test.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/run_support.h"
#include "engine/backend.h"
#include "engine/cpu/winograd.h"
#include "engine/tensor.h"

namespace trine {
namespace {

struct Layer {
  const char* name;
  int64_t N, C, H, W, M, k, pad;
};

// W1: batch 128 of 28 x 28 MNIST; W2: batch 128 of 64 x 64 faces (FaceNetS), all stride 1.
const Layer kLayers[] = {
    {"w1_conv1", 128, 1, 28, 28, 32, 5, 2},  {"w1_conv2", 128, 32, 14, 14, 64, 5, 2},
    {"w2_conv1", 128, 3, 64, 64, 16, 3, 1},  {"w2_conv2", 128, 16, 64, 64, 16, 3, 1},
    {"w2_conv3", 128, 16, 32, 32, 32, 3, 1}, {"w2_conv4", 128, 32, 32, 32, 32, 3, 1},
    {"w2_conv5", 128, 32, 16, 16, 64, 3, 1}, {"w2_conv6", 128, 64, 16, 16, 64, 3, 1},
    {"w2_conv7", 128, 64, 8, 8, 128, 3, 1},
};

template <typename F>
double median_ms(int64_t reps, F&& f) {
  f();  // warm-up: caches, the allocator's free lists
  std::vector<double> ms;
  for (int64_t r = 0; r < reps; ++r) {
    const double t0 = cli::now_seconds();
    f();
    ms.push_back(1e3 * (cli::now_seconds() - t0));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int run(cli::Args& args) {
  const int64_t reps =
      args.integer("repeats", 7, "timed repetitions (the median is reported)", 1, 1000);
  const std::string only =
      args.str("layer", "", "only the layers whose name contains this (e.g. w1, w2_conv6)");
  cli::cpu_only_device_flag(args, "bench conv", "it measures the CPU backend's convolution");
  cli::common_flags(args);
  args.finish();
  std::cerr << cli::banner() << "\n";
  Backend& be = backend_for(Device::cpu());
  const bool was = cpu::winograd_enabled();
  for (const Layer& l : kLayers) {
    if (std::string(l.name).find(only) == std::string::npos) continue;
    const int64_t OH = l.H + 2 * l.pad - l.k + 1, OW = l.W + 2 * l.pad - l.k + 1;
    const ConvGeom g{l.C, l.H, l.W, l.k, l.k, 1, 1, l.pad, l.pad, OH, OW};
    Tensor x = Tensor::rand({l.N, l.C, l.H, l.W}), w = Tensor::rand({l.M, l.C, l.k, l.k});
    Tensor b = Tensor::rand({l.M}), gy = Tensor::rand({l.N, l.M, OH, OW});
    Tensor y = Tensor::empty(gy.shape()), gx = Tensor::empty(x.shape());
    Tensor gw = Tensor::empty(w.shape()), gb = Tensor::empty(b.shape());
    for (bool winograd : {false, true}) {
      cpu::set_winograd_enabled(winograd);
      if (winograd && !cpu::winograd_suits(g, l.M)) continue;
      const std::string tag = std::string("conv_") + l.name + (winograd ? "_winograd" : "_im2col");
      const double fwd = median_ms(
          reps, [&] { be.conv2d_forward(x.data(), w.data(), b.data(), g, l.N, l.M, y.data()); });
      const double bwd = median_ms(reps, [&] {
        be.conv2d_backward(x.data(), w.data(), gy.data(), g, l.N, l.M, gx.data(), gw.data(),
                           gb.data());
      });
      std::printf("%s_forward_ms %.2f\n%s_backward_ms %.2f\n", tag.c_str(), fwd, tag.c_str(), bwd);
      std::fflush(stdout);
    }
  }
  cpu::set_winograd_enabled(was);
  return 0;
}

cli::Register reg("bench conv",
                  "conv2d forward/backward ms on W1's and W2's layers, im2col vs Winograd", run);

}  // namespace
}  // namespace trine
