// Backend: the small set of device primitives every op is built from. One implementation per
// device (engine/cpu, engine/cuda); ops above this interface never branch on the device.
//
// All pointers are device pointers of the backend's device. Shapes are in elements. Unless a
// primitive says "accumulates", it overwrites its output. Every primitive must leave the output
// fully written, so callers may hand over uninitialized memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/shape.h"

namespace trine {

// Elementwise unary functions; p0/p1 are the parameters noted.
enum class UnaryOp {
  Neg,
  Exp,
  Log,
  Sqrt,
  Abs,
  Relu,
  LeakyRelu,  // p0 = negative slope
  Sigmoid,
  Tanh,
  Softplus,  // log(1 + e^x), computed stably
  Pow,       // x^p0
  Clamp,     // min(max(x, p0), p1)
  Square,
  Recip,      // 1/x
  AddScalar,  // x + p0
  MulScalar,  // x * p0
};

// Elementwise binary functions with broadcasting. Comparisons return 1 or 0.
enum class BinaryOp { Add, Sub, Mul, Div, Max, Min, Eq, Ne, Lt, Le, Gt, Ge };

enum class ReduceOp { Sum, Max, Min };

// Max: each window's maximum. MaxRelu: the maximum of the window's values after a ReLU (ReLU then
// max pooling, fused): the largest positive value, else 0 with arg-max -1 (no gradient). Avg: the
// mean.
enum class PoolKind { Max, MaxRelu, Avg };
inline bool is_max_pool(PoolKind kind) {
  return kind != PoolKind::Avg;
}

// The arithmetic of a backend's convolution products (conv2d_forward/backward).
// FP32: full single precision, the default and the only one the CPU backend has.
// TF32: each product's inputs rounded to TF32 (FP32's 8-bit exponent, a 10-bit mantissa) on
// tensor cores, summed in FP32, as PyTorch's cuDNN convolutions do by default
// (torch.backends.cudnn.allow_tf32). Dense layers, distances and mining stay FP32 either way.
enum class ConvMath { FP32, TF32 };

// A strided read of a broadcast operand: element [i0, i1, ...] is ptr[sum ik * strides[k]].
struct StridedIn {
  const float* ptr;
  Shape strides;
};

// Geometry of a 2-D convolution over one image (NCHW), and the size of its output.
struct ConvGeom {
  int64_t C, H, W;  // input channels and size
  int64_t kh, kw;   // kernel
  int64_t sh, sw;   // stride
  int64_t ph, pw;   // zero padding
  int64_t OH, OW;   // output size
  int64_t col_rows() const { return C * kh * kw; }
};

// Geometry of a 2-D pooling window over one (N*C) plane.
struct PoolGeom {
  int64_t H, W, kh, kw, sh, sw, ph, pw, OH, OW;
};

// Mining over a batch's distance matrix D [B, B] and labels [B] (int32). A valid triplet (a, p, n)
// has labels[p] == labels[a], p != a, labels[n] != labels[a]. Ties resolve to the lowest index.
enum class PositivePick { Hardest, Easiest };  // largest or smallest D[a, p]
enum class SemiHardMode {
  Facenet,  // closest n with D[a,p] < D[a,n] < D[a,p] + margin; none -> -1 (Schroff et al.)
  Tfa,      // closest n with D[a,n] > D[a,p]; none -> the farthest negative (TF Addons)
};

// A fused triplet loss over every valid triplet whose m = D[a,n] - D[a,p] lies in a window
// (lo/hi, each inclusive or not), never materializing the triplet list.
struct TripletSetParams {
  float margin;
  float lo, hi;  // window on m; -inf/+inf for every valid triplet (batch-all)
  bool lo_inclusive, hi_inclusive;
  bool soft;  // softplus(D[a,p] - D[a,n]) instead of max(0, D[a,p] - D[a,n] + margin)
  bool swap;  // the loss uses min(D[a,n], D[p,n]) (the window still uses D[a,n])
};

// Hyper-parameters of one optimizer update.
struct SgdStep {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first;  // first step: the momentum buffer is set to the gradient
};
struct AdamStep {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW: decay the weights directly instead of adding to the gradient
  int64_t step;    // 1-based, for bias correction
};

// One parameter of an adam_step_many call: its data, gradient, moments, size and own step count
// (1-based; each parameter counts the steps it took, so its bias correction is its own).
struct AdamTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
  int64_t step;
};

// Allocation counters of a backend's caching allocator.
struct AllocatorStats {
  int64_t system_allocs = 0;  // calls that reached malloc/cudaMalloc
  int64_t system_frees = 0;
  int64_t bytes_in_use = 0;
  int64_t bytes_cached = 0;  // free blocks held, ready for reuse
  int64_t peak_bytes_in_use = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // One line for banners and benchmarks, e.g. "cpu: OpenBLAS 0.3.21 kernel Cooperlake, 2 threads".
  virtual std::string description() const = 0;

  // ---- memory (cached: no system call for a size that was freed before)
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual AllocatorStats allocator_stats() const = 0;
  virtual void empty_cache() = 0;
  // Starts a new peak measurement (allocator_stats().peak_bytes_in_use = bytes in use now).
  virtual void reset_peak_memory() {}
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  // Copies after all work queued on this backend before it, and returns when dst holds the data:
  // one wait for the device, with no synchronize() needed first.
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void synchronize() {}
  // Seconds that callers have spent blocked in synchronize() and copy_to_host() waiting for the
  // device to finish queued work, since the backend was made (0 where work runs when it is
  // called, as on the CPU). A training step's share of it says whether the device (a large
  // share) or the host launching the work (a small one) sets the step's pace.
  virtual double device_wait_seconds() const { return 0; }
  // How many such waits callers have made (0 on the CPU). Each one drains the device's queue of
  // launched work, so a step that waits less lets the host launch ahead of the device.
  virtual int64_t device_waits() const { return 0; }

  // ---- fills and copies
  virtual void fill(float* out, int64_t n, float value) = 0;
  virtual void fill_i32(int32_t* out, int64_t n, int32_t value) = 0;
  virtual void cast_i32_to_f32(const int32_t* x, float* out, int64_t n) = 0;
  // Truncates toward zero; beyond int32's range it saturates to INT32_MIN / INT32_MAX, and NaN
  // gives 0 (a GPU's own conversion, which the CPU backend spells out).
  virtual void cast_f32_to_i32(const float* x, int32_t* out, int64_t n) = 0;
  // dst[i] = src[i] over `shape`, both read through strides (0 strides broadcast the source).
  virtual void copy_strided(const float* src, const Shape& src_strides, float* dst,
                            const Shape& dst_strides, const Shape& shape) = 0;

  // ---- elementwise
  virtual void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) = 0;
  // gx = gy * f'(x); `y` is f(x) (used by Exp, Sqrt, Sigmoid, Tanh).
  virtual void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy,
                              float* gx, int64_t n, float p0, float p1) = 0;
  // out (contiguous, `shape`) = op(a, b); a and b read through broadcast strides. `out` may
  // alias an operand that is read with contiguous strides (in-place update).
  virtual void binary(BinaryOp op, const StridedIn& a, const StridedIn& b, float* out,
                      const Shape& shape) = 0;
  // out = cond != 0 ? a : b, all contiguous of length n.
  virtual void where(const float* cond, const float* a, const float* b, float* out, int64_t n) = 0;

  // ---- reductions over the middle axis of x viewed as [outer, n, inner] -> out [outer, inner].
  // For Max/Min, `index` (may be null) receives the position along n (lowest on ties).
  virtual void reduce(ReduceOp op, const float* x, float* out, int32_t* index, int64_t outer,
                      int64_t n, int64_t inner) = 0;
  // out[i] = max |xs[i][j]| over j < sizes[i], for every i: NaN when xs[i] holds a NaN, +inf when
  // it holds an inf and no NaN, 0 when it is empty. Many arrays at once, in O(1) launches on a
  // GPU: a whole model's parameters or gradients (the trainer's finite check at every step).
  virtual void max_abs_each(const std::vector<const float*>& xs, const std::vector<int64_t>& sizes,
                            float* out) = 0;

  // ---- indexing, with x viewed as [outer, n, inner]. The ops check indices on the host when they
  // are there; a device backend must treat an index outside [0, n) as naming no element (out gets
  // 0, nothing is added), never touch memory for it.
  // out[o, j, i] = x[o, idx[j], i] for j < n_idx.
  virtual void index_select(const float* x, int64_t outer, int64_t n, int64_t inner,
                            const int32_t* idx, int64_t n_idx, float* out) = 0;
  // Accumulates: x[o, idx[j], i] += g[o, j, i].
  virtual void index_add(const float* g, int64_t outer, int64_t n, int64_t inner,
                         const int32_t* idx, int64_t n_idx, float* x) = 0;
  // out[o, j, i] = x[o, idx[o, j, i], i] for j < n_idx (torch.gather).
  virtual void gather(const float* x, int64_t outer, int64_t n, int64_t inner, const int32_t* idx,
                      int64_t n_idx, float* out) = 0;
  // Accumulates: x[o, idx[o, j, i], i] += g[o, j, i].
  virtual void scatter_add(const float* g, int64_t outer, int64_t n, int64_t inner,
                           const int32_t* idx, int64_t n_idx, float* x) = 0;

  // ---- dense linear algebra (row-major). C = alpha op(A) op(B) + beta C, op(A) is m x k.
  virtual void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc) = 0;
  // `batch` independent gemms, operand i starting at ptr + i * stride.
  virtual void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                            float alpha, const float* a, int64_t lda, int64_t stride_a,
                            const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                            int64_t ldc, int64_t stride_c, int64_t batch) = 0;

  // ---- convolution helpers over `images` consecutive NCHW images.
  // col is [C*kh*kw, images*OH*OW]: column (img*OH*OW + oy*OW + ox) holds that output's patch.
  virtual void im2col(const float* x, const ConvGeom& g, int64_t images, float* col) = 0;
  // Inverse scatter of im2col: x (overwritten) = sum of every patch entry that reads it.
  virtual void col2im(const float* col, const ConvGeom& g, int64_t images, float* x) = 0;

  // ---- convolution as a whole, with a generic default built from im2col, gemm and copies over
  // chunks of images (engine/backend.cpp); a backend may override it with a fused version.
  // y [N, M, OH, OW] = w [M, C*kh*kw] applied to every patch of x [N, C, H, W], plus bias [M]
  // (when not null).
  virtual void conv2d_forward(const float* x, const float* w, const float* bias, const ConvGeom& g,
                              int64_t N, int64_t M, float* y);
  // From gy [N, M, OH, OW]: gx [N, C, H, W], gw [M, C*kh*kw] and gb [M], each overwritten and
  // skipped when null.
  virtual void conv2d_backward(const float* x, const float* w, const float* gy, const ConvGeom& g,
                               int64_t N, int64_t M, float* gx, float* gw, float* gb);
  // Bytes the generic conv2d_forward/backward give one chunk's column buffer (at least one image
  // per chunk): more images per chunk make bigger GEMMs and fewer launches, for more memory.
  // TRINE_CONV_WORKSPACE=BYTES in the environment overrides it.
  virtual int64_t conv_workspace_bytes() const { return int64_t{16} << 20; }
  // The arithmetic of every later conv2d_forward/backward on this backend (ConvMath). A backend
  // without tensor cores throws UsageError for ConvMath::TF32, naming itself.
  virtual void set_conv_math(ConvMath math);
  virtual ConvMath conv_math() const { return ConvMath::FP32; }

  // ---- batch normalization in training over x viewed as [N, C, HW], statistics per channel
  // (composite, with a generic default in engine/backend.cpp; a backend may fuse it).
  // mean and biased var [C] of the batch, invstd = 1 / sqrt(var + eps), and
  // y = (x - mean) invstd weight + bias (weight and bias may be null: 1 and 0), then, with
  // `relu`, a fused ReLU in the same pass: y = v > 0 ? v : 0, as UnaryOp::Relu.
  virtual void batch_norm_forward(const float* x, int64_t N, int64_t C, int64_t HW,
                                  const float* weight, const float* bias, float eps, bool relu,
                                  float* y, float* mean, float* var, float* invstd);
  // With xhat = (x - mean) invstd and means/sums over N and HW: gx = weight invstd (gy -
  // mean(gy) - xhat mean(gy xhat)), gweight = sum(gy xhat), gbias = sum(gy). relu_out is the
  // forward's y when it fused a ReLU (else null): gy then counts only where relu_out > 0, as
  // ReLU's own backward would pass it on. Each output is overwritten, and skipped when null.
  virtual void batch_norm_backward(const float* x, const float* relu_out, const float* gy,
                                   int64_t N, int64_t C, int64_t HW, const float* mean,
                                   const float* invstd, const float* weight, float* gx,
                                   float* gweight, float* gbias);
  // Batch normalization in inference over x viewed as [N, C, HW], with given statistics per
  // channel (the running ones): y = (x - mean) invstd weight + bias, invstd = 1 / sqrt(var +
  // eps), then the fused ReLU with `relu` (composite, with a generic default; fused, it is one
  // pass: y = x scale + shift, as the training pass applies its statistics).
  virtual void batch_norm_inference(const float* x, int64_t N, int64_t C, int64_t HW,
                                    const float* mean, const float* var, const float* weight,
                                    const float* bias, float eps, bool relu, float* y);
  // The running statistics after a training batch, per channel c < C (PyTorch's rule; var_scale
  // is count / (count - 1) for the unbiased variance), in double, rounded once:
  // running_mean = (1 - momentum) running_mean + momentum mean,
  // running_var = (1 - momentum) running_var + momentum var_scale var.
  virtual void batch_norm_update_running(const float* mean, const float* var, int64_t C,
                                         float momentum, float var_scale, float* running_mean,
                                         float* running_var) = 0;

  // ---- pooling over `planes` = N*C planes. Max pooling records the arg-max (flat index into
  // the H*W plane, or -1 for a window that takes no gradient) per output; padded cells never
  // win. Average pooling divides by kh*kw.
  virtual void pool2d_forward(PoolKind kind, const float* x, const PoolGeom& g, int64_t planes,
                              float* out, int32_t* argmax) = 0;
  // gx (overwritten) from gy.
  virtual void pool2d_backward(PoolKind kind, const float* gy, const int32_t* argmax,
                               const PoolGeom& g, int64_t planes, float* gx) = 0;

  // ---- counter-based random numbers: element i depends only on (seed, offset + i), so every
  // backend draws the same stream: uniform bit for bit, normal up to the last bit or so of the
  // device's log/cos.
  virtual void random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) = 0;
  virtual void random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset) = 0;

  // ---- mining primitives (CPU reference: engine/cpu/cpu_mining.cpp)
  // Per anchor a: pos[a] = the positive picked by `pick`, neg[a] = the closest negative; -1 when
  // the anchor has none.
  virtual void mine_anchor_pairs(const float* D, const int32_t* labels, int64_t B,
                                 PositivePick pick, int32_t* pos, int32_t* neg) = 0;
  // Per pair (a, p), at neg[a*B + p]: the semi-hard negative of `mode`; -1 when (a, p) is not a
  // positive pair or has none.
  virtual void mine_semihard(const float* D, const int32_t* labels, int64_t B, float margin,
                             SemiHardMode mode, int32_t* neg) = 0;
  // A miner's picks as an index any op takes and a mask: safe[i] = idx[i] and valid[i] = 1 where
  // idx[i] >= 0; safe[i] = 0 and valid[i] = 0 where it is -1 ("none").
  virtual void split_indices(const int32_t* idx, int64_t n, int32_t* safe, float* valid) = 0;
  // Loss over the triplet set of `p`. Per anchor a, row_stats[a*5 + k] receives, for k =
  // 0 the summed loss, 1 the number of triplets, 2 the number with a non-zero loss (soft: all),
  // 3 the summed D[a,p] and 4 the summed negative distance over those triplets. grad_D (B x B,
  // overwritten) receives d(summed loss)/dD.
  virtual void triplet_set_loss(const float* D, const int32_t* labels, int64_t B,
                                const TripletSetParams& p, double* row_stats, float* grad_D) = 0;
  // The totals of those row_stats over the B anchors (in double), for the loss without a trip
  // to the host: out[0] = total 0 / denom (the loss), out[1] = 1 / denom (its gradient's scale)
  // and out[2..8) = totals 1, 2, 1, 3, 1, 4 (MetricLoss's statistics layout); denom = 1 when
  // denom_stat < 0, else max(1, total denom_stat) (1: mean over the triplets, 2: over the
  // non-zero ones). Floats: counts past 2^24 triplets carry float rounding.
  virtual void triplet_set_totals(const double* row_stats, int64_t B, int denom_stat,
                                  float* out) = 0;

  // ---- optimizer updates, in place on parameter p and its state buffers.
  virtual void sgd_step(float* p, const float* g, float* momentum_buf, int64_t n,
                        const SgdStep& s) = 0;
  virtual void adam_step(float* p, const float* g, float* m, float* v, int64_t n,
                         const AdamStep& s) = 0;
  // adam_step on each tensor with its own step count (s.step is not read): the same results as
  // one adam_step each, which the default makes; a GPU updates a whole model in O(1) launches.
  virtual void adam_step_many(const std::vector<AdamTensor>& tensors, const AdamStep& s);
};

// The backend for a device. CPU always exists; CUDA throws when trine was built without it or
// no GPU is present.
Backend& backend_for(const Device& device);

// True when this build has the CUDA backend and a GPU is visible.
bool cuda_available();

// Floats from a backend's caching allocator for the duration of a scope: one call's (or one
// thread's) scratch, without a fresh mmap and its page faults at every step.
class Scratch {
 public:
  Scratch(Backend& be, int64_t floats) : be_(be), bytes_(static_cast<size_t>(floats) * 4) {
    ptr_ = static_cast<float*>(be_.allocate(bytes_));
  }
  ~Scratch() { be_.deallocate(ptr_, bytes_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() const { return ptr_; }

 private:
  Backend& be_;
  size_t bytes_;
  float* ptr_;
};

}  // namespace trine
