// `trine bench gemm`: SGEMM throughput through trine's CPU backend (OpenBLAS with the kernel
// trine chose), as `name value` lines. A benchmark program, not a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include "apps/cli.h"
#include "engine/backend.h"
#include "engine/cpu/blas.h"
#include "engine/tensor.h"

namespace trine {
namespace {

int run(cli::Args& args) {
  const int64_t n = args.integer("size", 1024, "matrix size n for n x n x n products", 16, 8192);
  const int64_t reps =
      args.integer("repeats", 9, "timed repetitions (the median is reported)", 1, 1000);
  cli::cpu_only_device_flag(args, "bench gemm", "it measures OpenBLAS SGEMM");
  cli::common_flags(args);
  args.finish();
  std::cerr << cli::banner() << "\n";
  Backend& be = backend_for(Device::cpu());
  Tensor a = Tensor::rand({n, n}), b = Tensor::rand({n, n}), c = Tensor::empty({n, n});
  be.gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);  // warm-up
  std::vector<double> gflops;
  for (int64_t r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    be.gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gflops.push_back(2.0 * n * n * n / s / 1e9);
  }
  std::sort(gflops.begin(), gflops.end());
  const blas::Info& info = blas::info();
  std::printf("blas_kernel %s\n", info.core.c_str());
  std::printf("blas_kernel_choice %s\n", info.choice.c_str());
  std::printf("blas_threads %d\n", info.threads);
  std::printf("sgemm_size %lld\n", static_cast<long long>(n));
  std::printf("sgemm_gflops_median %.1f\n", gflops[gflops.size() / 2]);
  std::printf("sgemm_gflops_best %.1f\n", gflops.back());
  return 0;
}

cli::Register reg("bench gemm", "SGEMM GFLOP/s with the OpenBLAS kernel in use", run);

}  // namespace
}  // namespace trine
