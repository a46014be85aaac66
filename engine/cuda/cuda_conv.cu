// CudaBackend: convolution (im2col/col2im kernels, cuBLAS GEMMs in FP32 or TF32), and 2-D pooling.
// The CPU references are in engine/cpu/cpu_conv.cpp. col2im and the pooling backward run as a
// gather per input pixel instead of the CPU's scatter, so they need no atomics, and they add the
// contributions in the CPU's order, so results are bit-identical to it.
#include <cmath>

#include "engine/cuda/cuda_backend.cuh"

namespace trine {

namespace {

// col [C*kh*kw, images*OH*OW]: one thread per column entry; neighbouring threads write
// neighbouring output pixels.
__global__ void im2col_kernel(const float* x, ConvGeom g, int64_t images, float* col) {
  const int64_t ohw = g.OH * g.OW, cols = images * ohw, rows = g.C * g.kh * g.kw;
  TRINE_CUDA_KERNEL_LOOP(t, rows * cols) {
    const int64_t r = t / cols, q = t % cols;
    const int64_t img = q / ohw, pix = q % ohw, oy = pix / g.OW, ox = pix % g.OW;
    const int64_t c = r / (g.kh * g.kw), ky = (r / g.kw) % g.kh, kx = r % g.kw;
    const int64_t iy = oy * g.sh - g.ph + ky, ix = ox * g.sw - g.pw + kx;
    col[t] = (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
                 ? x[((img * g.C + c) * g.H + iy) * g.W + ix]
                 : 0.f;
  }
}

// x [images, C, H, W] (overwritten): each pixel sums the column entries that read it, over
// (ky, kx) in increasing order as the CPU loop adds them.
__global__ void col2im_kernel(const float* col, ConvGeom g, int64_t images, float* x) {
  const int64_t ohw = g.OH * g.OW, cols = images * ohw;
  TRINE_CUDA_KERNEL_LOOP(t, images * g.C * g.H * g.W) {
    const int64_t ix = t % g.W, iy = (t / g.W) % g.H, c = (t / (g.W * g.H)) % g.C,
                  img = t / (g.W * g.H * g.C);
    float acc = 0.f;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t ty = iy + g.ph - ky;  // = oy * sh for the output row that reads (iy, ix)
      if (ty < 0) break;                  // only decreases with ky
      if (ty % g.sh != 0 || ty / g.sh >= g.OH) continue;
      const int64_t oy = ty / g.sh;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const int64_t tx = ix + g.pw - kx;
        if (tx < 0) break;
        if (tx % g.sw != 0 || tx / g.sw >= g.OW) continue;
        const int64_t ox = tx / g.sw;
        acc += col[((c * g.kh + ky) * g.kw + kx) * cols + img * ohw + oy * g.OW + ox];
      }
    }
    x[t] = acc;
  }
}

// One thread per output: the loop body of CpuBackend::pool2d_forward, NaN handling included
// (the first NaN of a window wins); with `relu`, of the values after a ReLU (NaN gives 0), and
// -1 where the maximum is 0.
__global__ void pool2d_forward_kernel(bool is_max, bool relu, const float* x, PoolGeom g,
                                      int64_t planes, float* out, int32_t* argmax) {
  const int64_t ohw = g.OH * g.OW;
  const float inv_area = 1.f / static_cast<float>(g.kh * g.kw);
  TRINE_CUDA_KERNEL_LOOP(o, planes * ohw) {
    const int64_t p = o / ohw, oy = (o % ohw) / g.OW, ox = o % g.OW;
    const float* plane = x + p * g.H * g.W;
    const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
    const int64_t ky0 = y0 < 0 ? -y0 : 0, ky1 = min(g.kh, g.H - y0);
    const int64_t kx0 = x0 < 0 ? -x0 : 0, kx1 = min(g.kw, g.W - x0);
    if (is_max && (ky0 >= ky1 || kx0 >= kx1)) {  // no real cell (never from the ops): no winner
      out[o] = relu ? 0.f : -INFINITY;
      argmax[o] = -1;
    } else if (is_max) {
      int32_t arg = static_cast<int32_t>((y0 + ky0) * g.W + x0 + kx0);  // the first real cell
      float best = plane[arg];
      if (relu && !(best > 0.f)) best = 0.f;
      for (int64_t ky = ky0; ky < ky1; ++ky)
        for (int64_t kx = kx0; kx < kx1; ++kx) {
          const int32_t at = static_cast<int32_t>((y0 + ky) * g.W + x0 + kx);
          float v = plane[at];
          if (relu && !(v > 0.f)) v = 0.f;
          // Strictly greater keeps the first maximum; a NaN wins and stays.
          if (v > best || (isnan(v) && !isnan(best))) best = v, arg = at;
        }
      out[o] = best;
      argmax[o] = relu && !(best > 0.f) ? -1 : arg;
    } else {
      float acc = 0.f;
      for (int64_t ky = ky0; ky < ky1; ++ky)
        for (int64_t kx = kx0; kx < kx1; ++kx) acc += plane[(y0 + ky) * g.W + x0 + kx];
      out[o] = acc * inv_area;
    }
  }
}

// One thread per input pixel: sums over the outputs whose window holds it, in increasing output
// order (the order of the CPU's scatter). Max: only outputs whose arg-max is this pixel (never
// -1).
__global__ void pool2d_backward_kernel(bool is_max, const float* gy, const int32_t* argmax,
                                       PoolGeom g, int64_t planes, float* gx) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W;
  const float inv_area = 1.f / static_cast<float>(g.kh * g.kw);
  TRINE_CUDA_KERNEL_LOOP(t, planes * hw) {
    const int64_t p = t / hw, q = t % hw, iy = q / g.W, ix = q % g.W;
    // Output rows whose window [oy*sh - ph, oy*sh - ph + kh) holds iy, likewise for columns.
    const int64_t ny = iy + g.ph - g.kh + 1, nx = ix + g.pw - g.kw + 1;
    const int64_t oy0 = ny <= 0 ? 0 : (ny + g.sh - 1) / g.sh;
    const int64_t ox0 = nx <= 0 ? 0 : (nx + g.sw - 1) / g.sw;
    const int64_t oy1 = min(g.OH - 1, (iy + g.ph) / g.sh);
    const int64_t ox1 = min(g.OW - 1, (ix + g.pw) / g.sw);
    const float* gplane = gy + p * ohw;
    float acc = 0.f;
    if (is_max) {
      const int32_t* aplane = argmax + p * ohw;
      for (int64_t oy = oy0; oy <= oy1; ++oy)
        for (int64_t ox = ox0; ox <= ox1; ++ox)
          if (aplane[oy * g.OW + ox] == q) acc += gplane[oy * g.OW + ox];
    } else {
      for (int64_t oy = oy0; oy <= oy1; ++oy)
        for (int64_t ox = ox0; ox <= ox1; ++ox)  // the CPU rounds gy / area first: no FMA
          acc += __fmul_rn(gplane[oy * g.OW + ox], inv_area);
    }
    gx[t] = acc;
  }
}

}  // namespace

CudaBackend::ConvMathScope::ConvMathScope(CudaBackend& be)
    : be_(be), tf32_(be.conv_math_ == ConvMath::TF32) {
  if (tf32_) TRINE_CUBLAS_CHECK(cublasSetMathMode(be_.cublas_, CUBLAS_TF32_TENSOR_OP_MATH));
}

CudaBackend::ConvMathScope::~ConvMathScope() {
  // Setting a handle's mode is host-side bookkeeping; a destructor cannot throw, and the next
  // GEMM would report a broken handle.
  if (tf32_) cublasSetMathMode(be_.cublas_, CUBLAS_DEFAULT_MATH);
}

// The generic composites (engine/backend.cpp: im2col or col2im around cuBLAS, per chunk of
// images), their GEMMs in the math of set_conv_math.
void CudaBackend::conv2d_forward(const float* x, const float* w, const float* bias,
                                 const ConvGeom& g, int64_t N, int64_t M, float* y) {
  ConvMathScope math(*this);
  Backend::conv2d_forward(x, w, bias, g, N, M, y);
}

void CudaBackend::conv2d_backward(const float* x, const float* w, const float* gy,
                                  const ConvGeom& g, int64_t N, int64_t M, float* gx, float* gw,
                                  float* gb) {
  ConvMathScope math(*this);
  Backend::conv2d_backward(x, w, gy, g, N, M, gx, gw, gb);
}

void CudaBackend::im2col(const float* x, const ConvGeom& g, int64_t images, float* col) {
  const int64_t total = g.col_rows() * images * g.OH * g.OW;
  if (total <= 0) return;
  activate();
  im2col_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(x, g, images, col);
  TRINE_CUDA_CHECK_LAUNCH("im2col_kernel");
}

void CudaBackend::col2im(const float* col, const ConvGeom& g, int64_t images, float* x) {
  const int64_t total = images * g.C * g.H * g.W;
  if (total <= 0) return;
  activate();
  col2im_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(col, g, images, x);
  TRINE_CUDA_CHECK_LAUNCH("col2im_kernel");
}

void CudaBackend::pool2d_forward(PoolKind kind, const float* x, const PoolGeom& g, int64_t planes,
                                 float* out, int32_t* argmax) {
  const int64_t total = planes * g.OH * g.OW;
  if (total <= 0) return;
  TRINE_CHECK(!is_max_pool(kind) || argmax, "pool2d_forward: max pooling needs an arg-max buffer");
  activate();
  pool2d_forward_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(
      is_max_pool(kind), kind == PoolKind::MaxRelu, x, g, planes, out, argmax);
  TRINE_CUDA_CHECK_LAUNCH("pool2d_forward_kernel");
}

void CudaBackend::pool2d_backward(PoolKind kind, const float* gy, const int32_t* argmax,
                                  const PoolGeom& g, int64_t planes, float* gx) {
  const int64_t total = planes * g.H * g.W;
  if (total <= 0) return;
  TRINE_CHECK(!is_max_pool(kind) || argmax,
              "pool2d_backward: max pooling needs the forward's arg-max buffer");
  activate();
  pool2d_backward_kernel<<<grid(total), cuda::kThreads, 0, stream_>>>(is_max_pool(kind), gy, argmax,
                                                                      g, planes, gx);
  TRINE_CUDA_CHECK_LAUNCH("pool2d_backward_kernel");
}

}  // namespace trine
