// The backend registry: one backend per device, created on first use and never destroyed (so
// tensors released during static destruction still find their backend).
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/error.h"

namespace trine {

Backend& backend_for(const Device& device) {
  if (device.is_cpu()) {
    static Backend* cpu = new CpuBackend();
    return *cpu;
  }
  static std::mutex mutex;
  static auto* cuda = new std::map<int, Backend*>();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cuda->find(device.index);
  if (it == cuda->end()) it = cuda->emplace(device.index, make_cuda_backend(device.index)).first;
  return *it->second;
}

bool cuda_available() {
  return cuda_device_count() > 0;
}

namespace {

// Images per chunk of the generic convolution: as many as the backend's conv_workspace_bytes()
// (or TRINE_CONV_WORKSPACE) holds in the column buffer, at least one.
int64_t conv_chunk(const Backend& be, const ConvGeom& g, int64_t n) {
  int64_t budget = be.conv_workspace_bytes();
  if (const char* env = std::getenv("TRINE_CONV_WORKSPACE")) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(env, &end, 10);
    TRINE_CHECK_AS(UsageError, end != env && *end == '\0' && errno == 0 && v >= 1,
                   "TRINE_CONV_WORKSPACE must be a whole number of bytes >= 1, got '", env, "'");
    budget = v;
  }
  const int64_t per_image = g.col_rows() * g.OH * g.OW * 4;
  return std::clamp<int64_t>(budget / std::max<int64_t>(per_image, 1), 1, std::max<int64_t>(n, 1));
}

// The generic batch norms' last steps, composed: invstd = 1 / sqrt(var + eps) from var [C], then
// y = centered invstd weight + bias, with centered = x - mean viewed as [N, C, HW] (it may be y).
void bn_apply(Backend& be, const float* centered, int64_t N, int64_t C, int64_t HW,
              const float* var, float eps, const float* weight, const float* bias, bool relu,
              float* invstd, float* y) {
  be.unary(UnaryOp::AddScalar, var, invstd, C, eps, 0);
  be.unary(UnaryOp::Sqrt, invstd, invstd, C, 0, 0);
  be.unary(UnaryOp::Recip, invstd, invstd, C, 0, 0);
  const Shape shape = {N, C, HW}, strides = {C * HW, HW, 1}, chan = {0, 1, 0};
  be.binary(BinaryOp::Mul, {centered, strides}, {invstd, chan}, y, shape);
  if (weight) be.binary(BinaryOp::Mul, {y, strides}, {weight, chan}, y, shape);
  if (bias) be.binary(BinaryOp::Add, {y, strides}, {bias, chan}, y, shape);
  if (relu) be.unary(UnaryOp::Relu, y, y, N * C * HW, 0, 0);
}

}  // namespace

void Backend::set_conv_math(ConvMath math) {
  TRINE_CHECK_AS(UsageError, math == ConvMath::FP32, description(),
                 ": convolutions in TF32 need a CUDA device (tensor cores); this backend computes "
                 "them in FP32 only");
}

void Backend::conv2d_forward(const float* x, const float* w, const float* bias, const ConvGeom& g,
                             int64_t N, int64_t M, float* y) {
  const int64_t K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
  const int64_t chunk = conv_chunk(*this, g, N);
  Scratch col(*this, K * chunk * ohw), tmp(*this, M * chunk * ohw);
  for (int64_t i0 = 0; i0 < N; i0 += chunk) {
    const int64_t n = std::min(chunk, N - i0);
    const int64_t ld = n * ohw;  // im2col's row stride for n images
    im2col(x + i0 * chw, g, n, col.get());
    // tmp [M, n*ohw] = W [M, K] @ col [K, n*ohw], then y[i0+img, m, p] = tmp[m, img*ohw + p]
    gemm(false, false, M, ld, K, 1.f, w, K, col.get(), ld, 0.f, tmp.get(), ld);
    copy_strided(tmp.get(), {ohw, ld, 1}, y + i0 * M * ohw, {M * ohw, ohw, 1}, {n, M, ohw});
  }
  if (bias) binary(BinaryOp::Add, {y, {M * ohw, ohw, 1}}, {bias, {0, 1, 0}}, y, {N, M, ohw});
}

void Backend::conv2d_backward(const float* x, const float* w, const float* gy, const ConvGeom& g,
                              int64_t N, int64_t M, float* gx, float* gw, float* gb) {
  const int64_t K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
  const int64_t chunk = conv_chunk(*this, g, N);
  Scratch col(*this, K * chunk * ohw), gyt(*this, M * chunk * ohw);
  if (gw) fill(gw, M * K, 0.f);
  for (int64_t i0 = 0; i0 < N && (gx || gw); i0 += chunk) {
    const int64_t n = std::min(chunk, N - i0);
    const int64_t ld = n * ohw;
    // gyt [M, n*ohw] from gy[i0.., M, ohw]
    copy_strided(gy + i0 * M * ohw, {M * ohw, ohw, 1}, gyt.get(), {ohw, ld, 1}, {n, M, ohw});
    if (gw) {  // gW [M, K] += gyt @ col^T
      im2col(x + i0 * chw, g, n, col.get());
      gemm(false, true, M, K, ld, 1.f, gyt.get(), ld, col.get(), ld, 1.f, gw, K);
    }
    if (gx) {  // gcol [K, n*ohw] = W^T @ gyt, scattered back to the images
      gemm(true, false, K, ld, M, 1.f, w, K, gyt.get(), ld, 0.f, col.get(), ld);
      col2im(col.get(), g, n, gx + i0 * chw);
    }
  }
  if (gb) {  // sum over images and positions: [N*M, ohw] -> [N, M] -> [M]
    Scratch per(*this, N * M);
    reduce(ReduceOp::Sum, gy, per.get(), nullptr, N * M, ohw, 1);
    reduce(ReduceOp::Sum, per.get(), gb, nullptr, 1, N, M);
  }
}

void Backend::adam_step_many(const std::vector<AdamTensor>& tensors, const AdamStep& s) {
  for (const AdamTensor& t : tensors) {
    AdamStep own = s;
    own.step = t.step;
    adam_step(t.p, t.g, t.m, t.v, t.n, own);
  }
}

void Backend::batch_norm_forward(const float* x, int64_t N, int64_t C, int64_t HW,
                                 const float* weight, const float* bias, float eps, bool relu,
                                 float* y, float* mean, float* var, float* invstd) {
  const Shape shape = {N, C, HW}, strides = {C * HW, HW, 1}, chan = {0, 1, 0};
  const float inv_count = 1.f / static_cast<float>(N * HW);
  Scratch per(*this, N * C), centered(*this, N * C * HW);
  auto channel_mean = [&](const float* v, float* out) {  // [N, C, HW] -> [C]
    reduce(ReduceOp::Sum, v, per.get(), nullptr, N * C, HW, 1);
    reduce(ReduceOp::Sum, per.get(), out, nullptr, 1, N, C);
    unary(UnaryOp::MulScalar, out, out, C, inv_count, 0);
  };
  channel_mean(x, mean);
  binary(BinaryOp::Sub, {x, strides}, {mean, chan}, centered.get(), shape);
  unary(UnaryOp::Square, centered.get(), y, N * C * HW, 0, 0);  // y as scratch
  channel_mean(y, var);
  bn_apply(*this, centered.get(), N, C, HW, var, eps, weight, bias, relu, invstd, y);
}

void Backend::batch_norm_inference(const float* x, int64_t N, int64_t C, int64_t HW,
                                   const float* mean, const float* var, const float* weight,
                                   const float* bias, float eps, bool relu, float* y) {
  binary(BinaryOp::Sub, {x, {C * HW, HW, 1}}, {mean, {0, 1, 0}}, y, {N, C, HW});
  Scratch invstd(*this, C);
  bn_apply(*this, y, N, C, HW, var, eps, weight, bias, relu, invstd.get(), y);
}

void Backend::batch_norm_backward(const float* x, const float* relu_out, const float* gy, int64_t N,
                                  int64_t C, int64_t HW, const float* mean, const float* invstd,
                                  const float* weight, float* gx, float* gweight, float* gbias) {
  const Shape shape = {N, C, HW}, strides = {C * HW, HW, 1}, chan = {0, 1, 0};
  const float inv_count = 1.f / static_cast<float>(N * HW);
  Scratch per(*this, N * C), xhat(*this, N * C * HW), tmp(*this, N * C * HW);
  Scratch sum_g(*this, C), sum_gx(*this, C), masked(*this, relu_out ? N * C * HW : 0);
  if (relu_out) {  // the fused ReLU's backward first: y stands in for its input, as in relu()
    unary_backward(UnaryOp::Relu, relu_out, relu_out, gy, masked.get(), N * C * HW, 0, 0);
    gy = masked.get();
  }
  auto channel_sum = [&](const float* v, float* out) {
    reduce(ReduceOp::Sum, v, per.get(), nullptr, N * C, HW, 1);
    reduce(ReduceOp::Sum, per.get(), out, nullptr, 1, N, C);
  };
  binary(BinaryOp::Sub, {x, strides}, {mean, chan}, xhat.get(), shape);
  binary(BinaryOp::Mul, {xhat.get(), strides}, {invstd, chan}, xhat.get(), shape);
  channel_sum(gy, sum_g.get());
  binary(BinaryOp::Mul, {gy, strides}, {xhat.get(), strides}, tmp.get(), shape);
  channel_sum(tmp.get(), sum_gx.get());
  if (gweight) copy(gweight, sum_gx.get(), static_cast<size_t>(C) * 4);
  if (gbias) copy(gbias, sum_g.get(), static_cast<size_t>(C) * 4);
  if (!gx) return;
  // gx = scale (gy - sum_g / M - xhat sum_gx / M), scale = weight invstd
  unary(UnaryOp::MulScalar, sum_g.get(), sum_g.get(), C, inv_count, 0);
  unary(UnaryOp::MulScalar, sum_gx.get(), sum_gx.get(), C, inv_count, 0);
  binary(BinaryOp::Mul, {xhat.get(), strides}, {sum_gx.get(), chan}, tmp.get(), shape);
  binary(BinaryOp::Sub, {gy, strides}, {sum_g.get(), chan}, gx, shape);
  binary(BinaryOp::Sub, {gx, strides}, {tmp.get(), strides}, gx, shape);
  binary(BinaryOp::Mul, {gx, strides}, {invstd, chan}, gx, shape);
  if (weight) binary(BinaryOp::Mul, {gx, strides}, {weight, chan}, gx, shape);
}

}  // namespace trine
