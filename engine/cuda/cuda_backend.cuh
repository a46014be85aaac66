// CudaBackend: the CUDA implementation of Backend (internal: included only by engine/cuda/*.cu,
// never by a public header, and not installed). GEMM goes to cuBLAS; every other primitive is a
// kernel in cuda_elementwise.cu, cuda_conv.cu, cuda_norm.cu or cuda_mining.cu, each a port of the
// CPU loop of the same name in engine/cpu/ (the reference its parity test compares against).
//
// One stream and one cuBLAS handle per backend: every kernel, copy and GEMM is queued on that
// stream, so memory returned to the caching allocator can be handed out again at once (later work
// on the same stream is ordered after earlier work). Every CUDA and cuBLAS call is checked and
// turns into trine::Error naming the call, file and line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "engine/allocator.h"
#include "engine/backend.h"
#include "engine/error.h"

namespace trine {
namespace cuda {

// Throw trine::Error("CUDA error in <call>: <name>: <text> [file:line]").
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* call, const char* file,
                                     int line);

inline void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, call, file, line);
}
inline void check_cublas(cublasStatus_t st, const char* call, const char* file, int line) {
  if (st != CUBLAS_STATUS_SUCCESS) throw_cublas_error(st, call, file, line);
}

// Threads per block of every elementwise kernel (a multiple of the warp size).
constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than needed.
inline unsigned grid_for(int64_t n, int64_t max_blocks) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, max_blocks));
}

// Launches over many arrays at once (a model's parameters), their pointers passed by value as
// the kernel's parameter: array i is worked on by blocks [first_block[i], first_block[i + 1]),
// `per_block` elements each. Sets first_block[0..count] (kMaxArrays + 1 entries; the unused ones
// repeat the total) and returns the total number of blocks.
constexpr int kMaxArrays = 32;
inline int64_t plan_blocks(const int64_t* sizes, int count, int64_t per_block,
                           int64_t* first_block) {
  int64_t blocks = 0;
  for (int k = 0; k <= kMaxArrays; ++k) {
    first_block[k] = blocks;
    if (k < count) blocks += (sizes[k] + per_block - 1) / per_block;
  }
  return blocks;
}

// In a kernel launched by plan_blocks: the array this block works on (the same for all its
// threads) and the first element of its share.
__device__ __forceinline__ int array_of_block(const int64_t* first_block, int64_t per_block,
                                              int64_t* begin) {
  const int64_t block = blockIdx.x;
  int i = 0;
  while (block >= first_block[i + 1]) ++i;
  *begin = (block - first_block[i]) * per_block;
  return i;
}

// Grid-stride loop over [0, n) with 64-bit indices.
#define TRINE_CUDA_KERNEL_LOOP(i, n)                                                     \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace cuda

// TRINE_CUDA_CHECK(cudaMalloc(...)): throws trine::Error naming the call, file and line.
#define TRINE_CUDA_CHECK(call) ::trine::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define TRINE_CUBLAS_CHECK(call) ::trine::cuda::check_cublas((call), #call, __FILE__, __LINE__)
// After every kernel launch: a bad configuration (or a sticky earlier fault) surfaces here.
#define TRINE_CUDA_CHECK_LAUNCH(kernel_name) \
  ::trine::cuda::check_cuda(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda(index_); }
  std::string description() const override { return description_; }

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  AllocatorStats allocator_stats() const override { return allocator_.stats(); }
  void reset_peak_memory() override { allocator_.reset_peak(); }
  void empty_cache() override;
  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  double device_wait_seconds() const override { return 1e-9 * static_cast<double>(wait_ns_); }
  int64_t device_waits() const override { return waits_; }

  void fill(float* out, int64_t n, float value) override;
  void fill_i32(int32_t* out, int64_t n, int32_t value) override;
  void cast_i32_to_f32(const int32_t* x, float* out, int64_t n) override;
  void cast_f32_to_i32(const float* x, int32_t* out, int64_t n) override;
  void copy_strided(const float* src, const Shape& src_strides, float* dst,
                    const Shape& dst_strides, const Shape& shape) override;

  void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) override;
  void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                      int64_t n, float p0, float p1) override;
  void binary(BinaryOp op, const StridedIn& a, const StridedIn& b, float* out,
              const Shape& shape) override;
  void where(const float* cond, const float* a, const float* b, float* out, int64_t n) override;
  void reduce(ReduceOp op, const float* x, float* out, int32_t* index, int64_t outer, int64_t n,
              int64_t inner) override;
  void max_abs_each(const std::vector<const float*>& xs, const std::vector<int64_t>& sizes,
                    float* out) override;

  void index_select(const float* x, int64_t outer, int64_t n, int64_t inner, const int32_t* idx,
                    int64_t n_idx, float* out) override;
  void index_add(const float* g, int64_t outer, int64_t n, int64_t inner, const int32_t* idx,
                 int64_t n_idx, float* x) override;
  void gather(const float* x, int64_t outer, int64_t n, int64_t inner, const int32_t* idx,
              int64_t n_idx, float* out) override;
  void scatter_add(const float* g, int64_t outer, int64_t n, int64_t inner, const int32_t* idx,
                   int64_t n_idx, float* x) override;

  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
            const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
            int64_t ldc) override;
  void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                    int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                    int64_t batch) override;

  void im2col(const float* x, const ConvGeom& g, int64_t images, float* col) override;
  void col2im(const float* col, const ConvGeom& g, int64_t images, float* x) override;
  // conv2d_forward/backward: the generic default (im2col + cuBLAS over chunks of images), with
  // up to 128 MB of columns per chunk, not the default 16 MB: W2's seven convolutions of a
  // 128-image batch take 10 chunks instead of 48 (1 to 3 per layer instead of 2 to 19), and
  // each chunk is 3 launches forward and up to 5 backward.
  int64_t conv_workspace_bytes() const override { return int64_t{128} << 20; }
  // ConvMath::TF32 puts the cuBLAS handle in CUBLAS_TF32_TENSOR_OP_MATH for the GEMMs of each
  // conv2d_forward/backward call, and back in full FP32 for everything else.
  void set_conv_math(ConvMath math) override { conv_math_ = math; }
  ConvMath conv_math() const override { return conv_math_; }
  void conv2d_forward(const float* x, const float* w, const float* bias, const ConvGeom& g,
                      int64_t N, int64_t M, float* y) override;
  void conv2d_backward(const float* x, const float* w, const float* gy, const ConvGeom& g,
                       int64_t N, int64_t M, float* gx, float* gw, float* gb) override;
  void batch_norm_forward(const float* x, int64_t N, int64_t C, int64_t HW, const float* weight,
                          const float* bias, float eps, bool relu, float* y, float* mean,
                          float* var, float* invstd) override;
  void batch_norm_backward(const float* x, const float* relu_out, const float* gy, int64_t N,
                           int64_t C, int64_t HW, const float* mean, const float* invstd,
                           const float* weight, float* gx, float* gweight, float* gbias) override;
  void batch_norm_inference(const float* x, int64_t N, int64_t C, int64_t HW, const float* mean,
                            const float* var, const float* weight, const float* bias, float eps,
                            bool relu, float* y) override;
  void batch_norm_update_running(const float* mean, const float* var, int64_t C, float momentum,
                                 float var_scale, float* running_mean, float* running_var) override;
  void pool2d_forward(PoolKind kind, const float* x, const PoolGeom& g, int64_t planes, float* out,
                      int32_t* argmax) override;
  void pool2d_backward(PoolKind kind, const float* gy, const int32_t* argmax, const PoolGeom& g,
                       int64_t planes, float* gx) override;

  void random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) override;
  void random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset) override;

  void mine_anchor_pairs(const float* D, const int32_t* labels, int64_t B, PositivePick pick,
                         int32_t* pos, int32_t* neg) override;
  void mine_semihard(const float* D, const int32_t* labels, int64_t B, float margin,
                     SemiHardMode mode, int32_t* neg) override;
  void split_indices(const int32_t* idx, int64_t n, int32_t* safe, float* valid) override;
  void triplet_set_loss(const float* D, const int32_t* labels, int64_t B, const TripletSetParams& p,
                        double* row_stats, float* grad_D) override;
  void triplet_set_totals(const double* row_stats, int64_t B, int denom_stat, float* out) override;

  void sgd_step(float* p, const float* g, float* momentum_buf, int64_t n,
                const SgdStep& s) override;
  void adam_step_many(const std::vector<AdamTensor>& tensors, const AdamStep& s) override;
  void adam_step(float* p, const float* g, float* m, float* v, int64_t n,
                 const AdamStep& s) override;

 private:
  // Makes this backend's GPU current on the calling thread (every entry point calls it).
  void activate() const;
  // cudaStreamSynchronize(stream_), its time added to wait_ns_ (device_wait_seconds) and counted
  // in waits_ (device_waits).
  void wait_for_stream();
  // Blocks for a grid-stride loop over n elements.
  unsigned grid(int64_t n) const { return cuda::grid_for(n, max_blocks_); }
  // Per-anchor working set of the mining kernels: in shared memory when it fits there (opting in
  // to more than 48 KiB when the device allows), else in a global workspace, a chunk of anchors
  // at a time. Returns the anchors per launch and sets *shared_bytes (0: use the workspace).
  int64_t mining_plan(int64_t B, size_t* shared_bytes) const;

  int index_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  int64_t max_blocks_ = 1;       // grid-stride grids: SMs x 32 blocks
  int64_t sm_count_ = 1;         // streaming multiprocessors
  size_t max_shared_optin_ = 0;  // bytes of shared memory a block may opt in to
  ConvMath conv_math_ = ConvMath::FP32;
  std::atomic<int64_t> wait_ns_{0}, waits_{0};

  // Uploads (copy_from_host) go through two pinned staging buffers on a stream of their own,
  // made at the first upload. Each starts after the work queued on stream_ before it (its
  // destination may be a cached block that work still reads) and returns when the data is on the
  // device, so the work queued after it, from another thread too, neither waits for it nor is
  // delayed by it: the loader thread's batch uploads overlap the training step. Without pinned
  // memory (cudaMallocHost failed), uploads go through stream_ as plain copies.
  static constexpr size_t kStagingBytes = size_t{8} << 20;  // per buffer
  struct Staging {
    void* host = nullptr;          // pinned, kStagingBytes
    cudaEvent_t copied = nullptr;  // recorded after the last copy out of it
  };
  // Makes the stream, events and buffers at the first call; false without pinned memory.
  bool staging_ready();
  std::mutex upload_mutex_;
  cudaStream_t upload_stream_ = nullptr;  // set once the staging is ready
  cudaEvent_t queued_ = nullptr;          // recorded on stream_ at each upload
  Staging staging_[2];
  bool staging_tried_ = false;
  std::string description_;
  CachingAllocator allocator_;

  // The cuBLAS math mode of conv_math_ while in scope, full FP32 again after.
  class ConvMathScope {
   public:
    explicit ConvMathScope(CudaBackend& be);
    ~ConvMathScope();
    ConvMathScope(const ConvMathScope&) = delete;
    ConvMathScope& operator=(const ConvMathScope&) = delete;

   private:
    CudaBackend& be_;
    bool tf32_;
  };

  // A scratch buffer from the caching allocator, returned when it goes out of scope. Safe to
  // release right after queueing the kernels that use it: later users run after them in stream
  // order.
  class Scratch {
   public:
    Scratch(CudaBackend& be, size_t bytes) : be_(be), ptr_(be.allocator_.allocate(bytes)) {}
    ~Scratch() { be_.allocator_.deallocate(ptr_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    template <typename T>
    T* as() const {
      return static_cast<T*>(ptr_);
    }

   private:
    CudaBackend& be_;
    void* ptr_;
  };
};

}  // namespace trine
