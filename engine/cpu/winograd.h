// Winograd convolution for the CPU backend (internal to engine/cpu).
//
// Winograd's minimal filtering algorithm F(m x m, r x r) (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", CVPR 2016) computes an m x m block of a stride-1 convolution's
// output from an a x a input tile, a = m + r - 1, with a*a multiplications per (input channel,
// output channel) pair instead of m*m*r*r:
//
//   Y = AT [ (G g G^T) (.) (BT d BT^T) ] AT^T      ((.) elementwise; g the r x r kernel)
//
// Summed over input channels, the elementwise products become a*a independent GEMMs
// [M x C] x [C x tiles], so a 5x5 convolution does 36 / 100 of the multiplications of im2col +
// GEMM with F(2, 5), and a 3x3 one 36 / 144 with F(4, 3). The transforms are the Toom-Cook ones
// for the points 0, 1, -1, 2, -2, ... and infinity, built in double when first used. The result
// equals direct convolution up to float rounding (tests/test_winograd.cpp states the tolerance).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend.h"

namespace trine::cpu {

// The three transforms of F(m, r), row-major, in float.
struct WinogradTransform {
  int m = 0, r = 0, a = 0;
  std::vector<float> AT;  // m x a: output transform
  std::vector<float> G;   // a x r: kernel transform
  std::vector<float> BT;  // a x a: input transform
};

// F(m, r) for any m, r >= 1 with m + r - 1 <= 8 (points 0, 1, -1, 2, -2, 3, -3 and infinity).
WinogradTransform make_winograd(int m, int r);

// The transform conv2d uses for an r x r kernel: F(2, 5) for 5x5, F(4, 3) for 3x3; nullptr for
// other kernels.
const WinogradTransform* winograd_for_kernel(int64_t r);

// F(5, 2) for 5x5 and F(3, 4) for 3x3: the weight gradient's transforms (nullptr for others).
const WinogradTransform* winograd_for_weight_grad(int64_t r);

// Whether CpuBackend's conv2d takes the Winograd path for geometry g with M output channels:
// the path is enabled, stride 1, a square 3x3 or 5x5 kernel, padding at most r - 1, and at least
// 16 input and output channels (fewer make GEMMs too thin to gain).
bool winograd_suits(const ConvGeom& g, int64_t M);

// Turns the path on or off for the whole process (for A/B measurements: `trine bench conv`).
// Initially on, unless the environment has TRINE_CONV=im2col.
void set_winograd_enabled(bool on);
bool winograd_enabled();

// y [N, M, OH, OW] = the stride-1 convolution of x [N, C, H, W] with w [M, C, r, r] (zero padding
// g.ph, g.pw) plus bias [M] (when not null), by F(m, r). Needs winograd_for_kernel(g.kh).
void winograd_conv2d_forward(Backend& be, const float* x, const float* w, const float* bias,
                             const ConvGeom& g, int64_t N, int64_t M, float* y);

// gx [N, C, H, W] (overwritten) = the gradient of conv2d with respect to x for gy [N, M, OH, OW]:
// a convolution of gy, padded by r - 1 - p, with the kernel flipped and its channels swapped.
void winograd_conv2d_input_grad(Backend& be, const float* w, const float* gy, const ConvGeom& g,
                                int64_t N, int64_t M, float* gx);

// gw [M, C, r, r] (overwritten) = the gradient of conv2d with respect to w for x and gy, by
// F(r, m) over the output's m x m tiles (see cpu_winograd.cpp). Sums per thread in fixed image
// ranges, like the im2col path: the result depends on the thread count, not on timing.
void winograd_conv2d_weight_grad(Backend& be, const float* x, const float* gy, const ConvGeom& g,
                                 int64_t N, int64_t M, float* gw);

}  // namespace trine::cpu
