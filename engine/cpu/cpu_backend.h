// CpuBackend: the CPU implementation of Backend. GEMM goes to OpenBLAS (engine/cpu/blas.h);
// every other primitive is a plain loop, split across cores with parallel_for.
#pragma once

#include "engine/allocator.h"
#include "engine/backend.h"

namespace trine {

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  Device device() const override { return Device::cpu(); }
  std::string description() const override;

  void* allocate(size_t bytes) override { return allocator_.allocate(bytes); }
  void deallocate(void* ptr, size_t) override { allocator_.deallocate(ptr); }
  AllocatorStats allocator_stats() const override { return allocator_.stats(); }
  void empty_cache() override { allocator_.empty_cache(); }
  void reset_peak_memory() override { allocator_.reset_peak(); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;

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
  // Stride-1 3x3 and 5x5 convolutions with at least 16 channels in and out (the output and the
  // input gradient) by Winograd's F(4, 3) / F(2, 5) over chunks of images (engine/cpu/winograd.h).
  // Otherwise per image on the pool's threads, each with single-threaded OpenBLAS: the image's
  // column buffer stays in cache between im2col and GEMM, and no permutation copy is needed.
  void conv2d_forward(const float* x, const float* w, const float* bias, const ConvGeom& g,
                      int64_t N, int64_t M, float* y) override;
  void conv2d_backward(const float* x, const float* w, const float* gy, const ConvGeom& g,
                       int64_t N, int64_t M, float* gx, float* gw, float* gb) override;
  // One pass for the statistics and one for the output per channel (backward likewise).
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
  void adam_step(float* p, const float* g, float* m, float* v, int64_t n,
                 const AdamStep& s) override;

 private:
  CachingAllocator allocator_;
};

}  // namespace trine
