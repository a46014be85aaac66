// CudaBackend: fused batch normalization over x viewed as [N, C, HW], the CUDA twin of
// engine/cpu/cpu_norm.cpp (same formulas, statistics in double). Each training pass is a
// per-channel reduction (blocks over (channel, segment) pairs, folded per channel in segment
// order) and an elementwise kernel; inference is the elementwise kernel alone.
#include <cmath>

#include "engine/cuda/cuda_backend.cuh"

namespace trine {

namespace {

constexpr int kWarps = cuda::kThreads / 32;

// Block-wide sums of two doubles; thread 0 gets the totals. `sh` holds 2 * kWarps entries.
__device__ void block_sum2(double& a, double& b, double* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, off);
    b += __shfl_down_sync(0xffffffffu, b, off);
  }
  if (lane == 0) sh[warp] = a, sh[kWarps + warp] = b;
  __syncthreads();
  if (threadIdx.x == 0) {
    a = 0, b = 0;
    for (int w = 0; w < kWarps; ++w) a += sh[w], b += sh[kWarps + w];
  }
}

// Block (c, s) of a [C, splits] grid sums its segment of channel c's N*HW values:
// part[(c*splits + s)*2 + 0] = sum of f0, + 1 = sum of f1, with (f0, f1) from `terms`.
//   stats pass:    f0 = x, f1 = x^2
//   gradient pass: f0 = gy, f1 = gy (x - mean[c]), gy taken as 0 where a fused ReLU's output
//                  relu_out (when not null) is not positive
template <bool grad>
__global__ void __launch_bounds__(cuda::kThreads)
    bn_partial_kernel(const float* x, const float* relu_out, const float* gy, const float* mean,
                      int64_t N, int64_t C, int64_t HW, int64_t splits, int64_t seg, double* part) {
  __shared__ double sh[2 * kWarps];
  const int64_t c = blockIdx.x / splits, s = blockIdx.x % splits;
  const int64_t count = N * HW, t0 = s * seg, t1 = min(count, t0 + seg);
  const float m = grad ? mean[c] : 0.f;
  double f0 = 0, f1 = 0;
  for (int64_t t = t0 + threadIdx.x; t < t1; t += blockDim.x) {
    const int64_t at = ((t / HW) * C + c) * HW + t % HW;
    const float v = x[at];
    if constexpr (grad) {
      const float g = !relu_out || relu_out[at] > 0.f ? gy[at] : 0.f;
      f0 += g;
      f1 += static_cast<double>(g) * (v - m);
    } else {
      f0 += v;
      f1 += static_cast<double>(v) * v;
    }
  }
  block_sum2(f0, f1, sh);
  if (threadIdx.x == 0) {
    part[(c * splits + s) * 2] = f0;
    part[(c * splits + s) * 2 + 1] = f1;
  }
}

// Per channel: the statistics, as CpuBackend::batch_norm_forward computes them.
__global__ void bn_stats_kernel(const double* part, int64_t C, int64_t splits, double count,
                                float eps, float* mean, float* var, float* invstd) {
  TRINE_CUDA_KERNEL_LOOP(c, C) {
    double s = 0, ss = 0;
    for (int64_t k = 0; k < splits; ++k)
      s += part[(c * splits + k) * 2], ss += part[(c * splits + k) * 2 + 1];
    const double m = s / count, v = fmax(0.0, ss / count - m * m);
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(v);
    invstd[c] = static_cast<float>(1.0 / sqrt(v + eps));
  }
}

// y = x scale + shift with scale = weight invstd, shift = bias - mean scale, then with `relu`
// y = v > 0 ? v : 0 (UnaryOp::Relu's rule).
__global__ void bn_apply_kernel(const float* x, int64_t C, int64_t HW, int64_t total,
                                const float* weight, const float* bias, const float* mean,
                                const float* invstd, bool relu, float* y) {
  TRINE_CUDA_KERNEL_LOOP(t, total) {
    const int64_t c = (t / HW) % C;
    const float scale = (weight ? weight[c] : 1.f) * invstd[c];
    const float shift = (bias ? bias[c] : 0.f) - mean[c] * scale;
    const float v = x[t] * scale + shift;
    y[t] = !relu || v > 0.f ? v : 0.f;
  }
}

// Per channel, from given statistics: invstd as CpuBackend::batch_norm_inference computes it.
__global__ void bn_invstd_kernel(const float* var, int64_t C, float eps, float* invstd) {
  TRINE_CUDA_KERNEL_LOOP(c, C) {
    invstd[c] = static_cast<float>(1.0 / sqrt(double{var[c]} + eps));
  }
}

// Per channel: gweight, gbias, and the coefficients of gx = k (gy - a - (x - mean) b), as
// CpuBackend::batch_norm_backward computes them (coef [C, 3]).
__global__ void bn_grad_stats_kernel(const double* part, int64_t C, int64_t splits, double count,
                                     const float* invstd, const float* weight, float* gweight,
                                     float* gbias, float* coef) {
  TRINE_CUDA_KERNEL_LOOP(c, C) {
    double sg = 0, sgx = 0;
    for (int64_t k = 0; k < splits; ++k)
      sg += part[(c * splits + k) * 2], sgx += part[(c * splits + k) * 2 + 1];
    const float is = invstd[c];
    sgx *= is;  // sum(gy xhat)
    if (gweight) gweight[c] = static_cast<float>(sgx);
    if (gbias) gbias[c] = static_cast<float>(sg);
    coef[c * 3] = (weight ? weight[c] : 1.f) * is;
    coef[c * 3 + 1] = static_cast<float>(sg / count);
    coef[c * 3 + 2] = static_cast<float>(sgx / count) * is;
  }
}

// The loop body of CpuBackend::batch_norm_update_running.
__global__ void bn_running_kernel(const float* mean, const float* var, int64_t C, float momentum,
                                  float var_scale, float* running_mean, float* running_var) {
  const double keep = 1.0 - static_cast<double>(momentum);
  TRINE_CUDA_KERNEL_LOOP(c, C) {
    running_mean[c] = static_cast<float>(keep * running_mean[c] + double{momentum} * mean[c]);
    running_var[c] =
        static_cast<float>(keep * running_var[c] + double{momentum} * var_scale * var[c]);
  }
}

// gy masked by relu_out as in bn_partial_kernel.
__global__ void bn_grad_apply_kernel(const float* x, const float* relu_out, const float* gy,
                                     int64_t C, int64_t HW, int64_t total, const float* mean,
                                     const float* coef, float* gx) {
  TRINE_CUDA_KERNEL_LOOP(t, total) {
    const int64_t c = (t / HW) % C;
    const float k = coef[c * 3], a = coef[c * 3 + 1], b = coef[c * 3 + 2];
    const float g = !relu_out || relu_out[t] > 0.f ? gy[t] : 0.f;
    gx[t] = k * (g - a - (x[t] - mean[c]) * b);
  }
}

// Segments per channel: enough blocks to fill the GPU, at least 4096 values per block.
int64_t bn_splits(int64_t C, int64_t count, int64_t sm_count) {
  const int64_t want = (sm_count * 4 + C - 1) / C;
  return std::clamp<int64_t>(std::min(want, (count + 4095) / 4096), 1, 256);
}

}  // namespace

void CudaBackend::batch_norm_forward(const float* x, int64_t N, int64_t C, int64_t HW,
                                     const float* weight, const float* bias, float eps, bool relu,
                                     float* y, float* mean, float* var, float* invstd) {
  if (C <= 0) return;
  activate();
  const int64_t count = N * HW, splits = bn_splits(C, count, sm_count_);
  const int64_t seg = (count + splits - 1) / splits;
  Scratch part(*this, static_cast<size_t>(C * splits * 2) * sizeof(double));
  bn_partial_kernel<false><<<static_cast<unsigned>(C * splits), cuda::kThreads, 0, stream_>>>(
      x, nullptr, nullptr, nullptr, N, C, HW, splits, seg, part.as<double>());
  TRINE_CUDA_CHECK_LAUNCH("bn_partial_kernel<stats>");
  bn_stats_kernel<<<grid(C), cuda::kThreads, 0, stream_>>>(
      part.as<double>(), C, splits, static_cast<double>(count), eps, mean, var, invstd);
  TRINE_CUDA_CHECK_LAUNCH("bn_stats_kernel");
  const int64_t total = count * C;
  if (total == 0) return;
  bn_apply_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(x, C, HW, total, weight, bias, mean,
                                                               invstd, relu, y);
  TRINE_CUDA_CHECK_LAUNCH("bn_apply_kernel");
}

void CudaBackend::batch_norm_inference(const float* x, int64_t N, int64_t C, int64_t HW,
                                       const float* mean, const float* var, const float* weight,
                                       const float* bias, float eps, bool relu, float* y) {
  const int64_t total = N * C * HW;
  if (total <= 0) return;
  activate();
  Scratch invstd(*this, static_cast<size_t>(C) * sizeof(float));
  bn_invstd_kernel<<<grid(C), cuda::kThreads, 0, stream_>>>(var, C, eps, invstd.as<float>());
  TRINE_CUDA_CHECK_LAUNCH("bn_invstd_kernel");
  bn_apply_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(x, C, HW, total, weight, bias, mean,
                                                               invstd.as<float>(), relu, y);
  TRINE_CUDA_CHECK_LAUNCH("bn_apply_kernel");
}

void CudaBackend::batch_norm_backward(const float* x, const float* relu_out, const float* gy,
                                      int64_t N, int64_t C, int64_t HW, const float* mean,
                                      const float* invstd, const float* weight, float* gx,
                                      float* gweight, float* gbias) {
  if (C <= 0) return;
  activate();
  const int64_t count = N * HW, splits = bn_splits(C, count, sm_count_);
  const int64_t seg = (count + splits - 1) / splits;
  Scratch part(*this, static_cast<size_t>(C * splits * 2) * sizeof(double));
  Scratch coef(*this, static_cast<size_t>(C * 3) * sizeof(float));
  bn_partial_kernel<true><<<static_cast<unsigned>(C * splits), cuda::kThreads, 0, stream_>>>(
      x, relu_out, gy, mean, N, C, HW, splits, seg, part.as<double>());
  TRINE_CUDA_CHECK_LAUNCH("bn_partial_kernel<grad>");
  bn_grad_stats_kernel<<<grid(C), cuda::kThreads, 0, stream_>>>(
      part.as<double>(), C, splits, static_cast<double>(count), invstd, weight, gweight, gbias,
      coef.as<float>());
  TRINE_CUDA_CHECK_LAUNCH("bn_grad_stats_kernel");
  const int64_t total = count * C;
  if (!gx || total == 0) return;
  bn_grad_apply_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(x, relu_out, gy, C, HW, total,
                                                                    mean, coef.as<float>(), gx);
  TRINE_CUDA_CHECK_LAUNCH("bn_grad_apply_kernel");
}

void CudaBackend::batch_norm_update_running(const float* mean, const float* var, int64_t C,
                                            float momentum, float var_scale, float* running_mean,
                                            float* running_var) {
  if (C <= 0) return;
  activate();
  bn_running_kernel<<<grid(C), cuda::kThreads, 0, stream_>>>(mean, var, C, momentum, var_scale,
                                                             running_mean, running_var);
  TRINE_CUDA_CHECK_LAUNCH("bn_running_kernel");
}

}  // namespace trine
