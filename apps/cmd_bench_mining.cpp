// `trine bench mining`: the batch-all and batch-hard triplet losses with mining, forward and
// backward, on one large batch (FaceNet's B = 1800, D = 128 by default): milliseconds (median)
// and the peak memory the step allocates, which stays O(B^2) (the distance matrix and its
// gradient), never O(B^3). A benchmark program, not a test.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "apps/cli.h"
#include "apps/run_support.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/blas.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "losses/triplet_loss.h"

namespace trine {
namespace {

int run(cli::Args& args) {
  const int64_t B = args.integer("batch", 1800, "batch size B", 2, 1 << 16);
  const int64_t D = args.integer("dim", 128, "embedding size D", 1, 1 << 16);
  const int64_t per_class = args.integer("per-class", 40, "samples per class (K)", 1, 1 << 16);
  const int64_t reps =
      args.integer("repeats", 7, "timed repetitions (the median is reported)", 1, 1000);
  const std::string device_name = args.str("device", "cpu", "cpu, cuda or cuda:N");
  cli::common_flags(args);
  args.finish();
  const Device device = Device::parse(device_name);
  Backend& be = backend_for(device);
  std::cerr << cli::banner(device.str()) << "\n";
  manual_seed(1);
  Tensor x = l2_normalize(Tensor::randn({B, D}), 1).to(device);
  std::vector<int32_t> host_labels;
  for (int64_t i = 0; i < B; ++i) host_labels.push_back(static_cast<int32_t>(i / per_class));
  Tensor labels = Tensor::from_ints(host_labels, device);
  std::printf("device %s\nbatch %lld\ndim %lld\n", device.str().c_str(), static_cast<long long>(B),
              static_cast<long long>(D));
  if (device.is_cpu()) std::printf("blas_kernel %s\n", blas::info().core.c_str());
  for (const std::string miner : {"batch-hard", "batch-all"}) {
    TripletMarginLoss loss(parse_distance("euclidean"), parse_miner(miner), {});
    auto step = [&] {
      Tensor e = x.detach().set_requires_grad(true);
      Tensor l = loss.forward(e, labels);
      l.backward();
      be.synchronize();
      return l;
    };
    step();  // warm-up: the allocator's cache fills
    loss.stats();
    be.reset_peak_memory();
    const int64_t before = be.allocator_stats().bytes_in_use;
    std::vector<double> ms;
    for (int64_t r = 0; r < reps; ++r) {
      const double t0 = cli::now_seconds();
      step();
      ms.push_back(1e3 * (cli::now_seconds() - t0));
      loss.stats();  // the logging statistics' read, outside the timed forward and backward
    }
    std::sort(ms.begin(), ms.end());
    const double peak_mb =
        static_cast<double>(be.allocator_stats().peak_bytes_in_use - before) / (1 << 20);
    const std::string name = miner == "batch-hard" ? "batch_hard" : "batch_all";
    std::printf("%s_ms %.3f\n", name.c_str(), ms[ms.size() / 2]);
    std::printf("%s_peak_mb %.1f\n", name.c_str(), peak_mb);
    std::printf("%s_triplets %lld\n", name.c_str(),
                static_cast<long long>(loss.stats().considered));
  }
  std::printf("distance_matrix_mb %.1f\n", static_cast<double>(B * B * 4) / (1 << 20));
  return 0;
}

cli::Register reg("bench mining",
                  "batch-all and batch-hard loss + mining, forward and backward, at B = 1800", run);

}  // namespace
}  // namespace trine
