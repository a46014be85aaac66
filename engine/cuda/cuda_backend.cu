// CudaBackend: construction, the module's entry points (cuda_api.h), memory and copies,
// fills and casts, GEMM through cuBLAS, random numbers and optimizer updates.
// Elementwise/reduction/indexing kernels are in cuda_elementwise.cu, conv/pool in cuda_conv.cu,
// mining in cuda_mining.cu.
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/cuda/cuda_api.h"
#include "engine/cuda/cuda_backend.cuh"
#include "engine/philox.h"

namespace trine {

// ------------------------------------------------------------------------------ error checking

namespace cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw Error(detail::concat("CUDA error in ", call, ": ", cudaGetErrorName(err), ": ",
                             cudaGetErrorString(err)) +
              detail::where(file, line));
}

void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line) {
  throw Error(detail::concat("cuBLAS error in ", call, ": ", cublasGetStatusName(st), ": ",
                             cublasGetStatusString(st)) +
              detail::where(file, line));
}

}  // namespace cuda

}  // namespace trine

// ------------------------------------------------------------------------------ the seam
// The module's entry points (cuda_api.h); engine/cuda/cuda_loader.cpp finds them by name.

extern "C" int trine_cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {  // no driver, no device, or a broken install
    (void)cudaGetLastError();                   // clear it: this is an answer, not a fault
    return 0;
  }
  return n;
}

extern "C" trine::Backend* trine_cuda_make_backend(int index) {
  using namespace trine;
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw UsageError(detail::concat("device cuda:", index,
                                    " requested, but no CUDA GPU is visible (cudaGetDeviceCount: ",
                                    cudaGetErrorName(err), ": ", cudaGetErrorString(err), ")"));
  }
  if (n == 0)
    throw UsageError(detail::concat("device cuda:", index,
                                    " requested, but no CUDA GPU is visible (cudaGetDeviceCount: "
                                    "0 devices)"));
  if (index < 0 || index >= n)
    throw UsageError(detail::concat("device cuda:", index, " requested, but only ", n, " CUDA GPU",
                                    n == 1 ? " is" : "s are", " visible (cuda:0",
                                    n > 1 ? detail::concat("..cuda:", n - 1) : std::string(), ")"));
  return new CudaBackend(index);
}

namespace trine {

// ------------------------------------------------------------------------------ construction

CudaBackend::CudaBackend(int index)
    : index_(index),
      allocator_(
          "cuda:" + std::to_string(index),
          [this](size_t bytes) -> void* {
            activate();
            void* p = nullptr;
            const cudaError_t err = cudaMalloc(&p, bytes);
            if (err == cudaErrorMemoryAllocation) {  // the allocator frees its cache and retries
              (void)cudaGetLastError();
              return nullptr;
            }
            cuda::check_cuda(err, "cudaMalloc", __FILE__, __LINE__);
            return p;
          },
          [this](void* p, size_t) {
            activate();
            // A cached block may still be read by queued work: drain the stream first.
            TRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
            TRINE_CUDA_CHECK(cudaFree(p));
          }) {
  activate();
  TRINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  TRINE_CUBLAS_CHECK(cublasCreate(&cublas_));
  TRINE_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  // Full FP32 products (no TF32), so results match the CPU within float rounding; only a
  // convolution under set_conv_math(ConvMath::TF32) switches to TF32, for its own GEMMs.
  TRINE_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));

  int sms = 0, major = 0, minor = 0, optin = 0;
  TRINE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, index_));
  TRINE_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index_));
  TRINE_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index_));
  TRINE_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, index_));
  sm_count_ = std::max(1, sms);
  max_blocks_ = sm_count_ * 32;
  max_shared_optin_ = static_cast<size_t>(std::max(optin, 48 * 1024));

  cudaDeviceProp prop;
  TRINE_CUDA_CHECK(cudaGetDeviceProperties(&prop, index_));
  int cublas_version = 0;
  TRINE_CUBLAS_CHECK(cublasGetVersion(cublas_, &cublas_version));
  const double gib = static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
  description_ = detail::concat("cuda:", index_, " ", prop.name, " (sm_", major, minor, ", ",
                                static_cast<int64_t>(std::llround(gib)), " GiB, ", sm_count_,
                                " SMs), cuBLAS ", cublas_version / 10000, ".",
                                (cublas_version / 100) % 100, ".", cublas_version % 100);
}

CudaBackend::~CudaBackend() {
  // Backends in the registry live until exit; this runs for backends made directly. Errors are
  // dropped here: a destructor must not throw, and the process may be tearing CUDA down.
  try {
    synchronize();
    allocator_.empty_cache();
  } catch (const Error&) {
  }
  if (cublas_) cublasDestroy(cublas_);
  for (Staging& st : staging_) {
    if (st.copied) cudaEventDestroy(st.copied);
    if (st.host) cudaFreeHost(st.host);
  }
  if (queued_) cudaEventDestroy(queued_);
  if (upload_stream_) cudaStreamDestroy(upload_stream_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::activate() const {
  TRINE_CUDA_CHECK(cudaSetDevice(index_));
}

// ------------------------------------------------------------------------------ memory

void* CudaBackend::allocate(size_t bytes) {
  return allocator_.allocate(bytes);
}

void CudaBackend::deallocate(void* ptr, size_t) {
  allocator_.deallocate(ptr);
}

void CudaBackend::empty_cache() {
  activate();
  synchronize();
  allocator_.empty_cache();
}

void CudaBackend::wait_for_stream() {
  const auto t0 = std::chrono::steady_clock::now();
  TRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  ++waits_;
  wait_ns_ +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count();
}

void CudaBackend::synchronize() {
  activate();
  wait_for_stream();
}

bool CudaBackend::staging_ready() {
  if (staging_tried_) return upload_stream_ != nullptr;
  staging_tried_ = true;
  for (Staging& st : staging_) {
    if (cudaMallocHost(&st.host, kStagingBytes) != cudaSuccess) {
      (void)cudaGetLastError();
      for (Staging& t : staging_)
        if (t.host) cudaFreeHost(t.host), t.host = nullptr;
      return false;
    }
    TRINE_CUDA_CHECK(cudaEventCreateWithFlags(&st.copied, cudaEventDisableTiming));
  }
  TRINE_CUDA_CHECK(cudaEventCreateWithFlags(&queued_, cudaEventDisableTiming));
  TRINE_CUDA_CHECK(cudaStreamCreateWithFlags(&upload_stream_, cudaStreamNonBlocking));  // last
  return true;
}

void CudaBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  activate();
  std::lock_guard<std::mutex> lock(upload_mutex_);
  if (!staging_ready()) {
    TRINE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    // The caller may free or reuse `src` as soon as we return.
    TRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return;
  }
  // After the work queued so far (the last users of dst's block), on the upload stream, a chunk
  // at a time: the host fills one staging buffer while the other is copied out.
  TRINE_CUDA_CHECK(cudaEventRecord(queued_, stream_));
  TRINE_CUDA_CHECK(cudaStreamWaitEvent(upload_stream_, queued_, 0));
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  for (size_t done = 0, chunk = 0; done < bytes; ++chunk) {
    Staging& st = staging_[chunk % 2];
    const size_t n = std::min(kStagingBytes, bytes - done);
    TRINE_CUDA_CHECK(cudaEventSynchronize(st.copied));  // its previous chunk has left
    std::memcpy(st.host, from + done, n);
    TRINE_CUDA_CHECK(
        cudaMemcpyAsync(to + done, st.host, n, cudaMemcpyHostToDevice, upload_stream_));
    TRINE_CUDA_CHECK(cudaEventRecord(st.copied, upload_stream_));
    done += n;
  }
  // The data is on the device when this returns: work queued later on any stream sees it, and
  // src (and dst) may be reused at once.
  TRINE_CUDA_CHECK(cudaStreamSynchronize(upload_stream_));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  activate();
  TRINE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  wait_for_stream();  // the host reads dst next
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  activate();
  const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if (d < s + bytes && s < d + bytes) {  // overlapping (memmove semantics): through a scratch copy
    Scratch tmp(*this, bytes);
    TRINE_CUDA_CHECK(
        cudaMemcpyAsync(tmp.as<void>(), src, bytes, cudaMemcpyDeviceToDevice, stream_));
    TRINE_CUDA_CHECK(
        cudaMemcpyAsync(dst, tmp.as<void>(), bytes, cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  TRINE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

// ------------------------------------------------------------------------------ fills and casts

namespace {

template <typename T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  TRINE_CUDA_KERNEL_LOOP(i, n) out[i] = value;
}

__global__ void cast_i32_to_f32_kernel(const int32_t* x, float* out, int64_t n) {
  TRINE_CUDA_KERNEL_LOOP(i, n) out[i] = static_cast<float>(x[i]);
}

__global__ void cast_f32_to_i32_kernel(const float* x, int32_t* out, int64_t n) {
  // Toward zero, saturating, NaN -> 0 (PTX cvt.rzi.s32.f32), as the CPU backend spells out.
  TRINE_CUDA_KERNEL_LOOP(i, n) out[i] = __float2int_rz(x[i]);
}

// C [m, n] (row stride ldc), `batch` of them `stride` apart: C = beta * C (0 when beta is 0, so
// NaN garbage in C does not survive). The k = 0 case of GEMM.
__global__ void scale_matrix_kernel(float* c, int64_t m, int64_t n, int64_t ldc, int64_t stride,
                                    int64_t batch, float beta) {
  TRINE_CUDA_KERNEL_LOOP(t, batch * m * n) {
    const int64_t j = t % n, i = (t / n) % m, b = t / (m * n);
    float* p = c + b * stride + i * ldc + j;
    *p = beta == 0.f ? 0.f : beta * *p;
  }
}

}  // namespace

void CudaBackend::fill(float* out, int64_t n, float value) {
  if (n <= 0) return;
  activate();
  fill_kernel<float><<<grid(n), cuda::kThreads, 0, stream_>>>(out, n, value);
  TRINE_CUDA_CHECK_LAUNCH("fill_kernel<float>");
}

void CudaBackend::fill_i32(int32_t* out, int64_t n, int32_t value) {
  if (n <= 0) return;
  activate();
  fill_kernel<int32_t><<<grid(n), cuda::kThreads, 0, stream_>>>(out, n, value);
  TRINE_CUDA_CHECK_LAUNCH("fill_kernel<int32_t>");
}

void CudaBackend::cast_i32_to_f32(const int32_t* x, float* out, int64_t n) {
  if (n <= 0) return;
  activate();
  cast_i32_to_f32_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(x, out, n);
  TRINE_CUDA_CHECK_LAUNCH("cast_i32_to_f32_kernel");
}

void CudaBackend::cast_f32_to_i32(const float* x, int32_t* out, int64_t n) {
  if (n <= 0) return;
  activate();
  cast_f32_to_i32_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(x, out, n);
  TRINE_CUDA_CHECK_LAUNCH("cast_f32_to_i32_kernel");
}

// ------------------------------------------------------------------------------ GEMM

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a row-major matrix read
// column-major is its transpose: so cuBLAS gets B before A, with the same transpose flags, and
// the sizes n, m swapped.
void CudaBackend::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                       float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  activate();
  if (k == 0) {  // the product is empty: C = beta C, as the CPU backend does
    scale_matrix_kernel<<<grid(m * n), cuda::kThreads, 0, stream_>>>(c, m, n, ldc, 0, 1, beta);
    TRINE_CUDA_CHECK_LAUNCH("scale_matrix_kernel");
    return;
  }
  TRINE_CUBLAS_CHECK(cublasSgemm_64(cublas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a,
                                    lda, &beta, c, ldc));
}

void CudaBackend::gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                               float alpha, const float* a, int64_t lda, int64_t stride_a,
                               const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                               int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  activate();
  if (k == 0) {
    scale_matrix_kernel<<<grid(batch * m * n), cuda::kThreads, 0, stream_>>>(c, m, n, ldc, stride_c,
                                                                             batch, beta);
    TRINE_CUDA_CHECK_LAUNCH("scale_matrix_kernel");
    return;
  }
  TRINE_CUBLAS_CHECK(cublasSgemmStridedBatched_64(
      cublas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
      &alpha, b, ldb, stride_b, a, lda, stride_a, &beta, c, ldc, stride_c, batch));
}

// ------------------------------------------------------------------------------ random numbers

namespace {

__global__ void random_uniform_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  TRINE_CUDA_KERNEL_LOOP(i, n) out[i] = philox::uniform(seed, offset + static_cast<uint64_t>(i));
}

// Device twin of normal_from_uniforms (engine/random.cpp): Box-Muller, u1 in (0, 1].
__device__ __forceinline__ float normal_from_uniforms_dev(float u1, float u2) {
  const float r = sqrtf(-2.0f * logf(1.0f - u1));
  return r * cosf(6.2831853071795865f * u2);
}

__global__ void random_normal_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  TRINE_CUDA_KERNEL_LOOP(i, n) {
    const philox::U4 w = philox::draw(seed, offset + static_cast<uint64_t>(i));
    out[i] = normal_from_uniforms_dev(philox::to_unit(w.x[0]), philox::to_unit(w.x[1]));
  }
}

}  // namespace

void CudaBackend::random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  if (n <= 0) return;
  activate();
  random_uniform_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(out, n, seed, offset);
  TRINE_CUDA_CHECK_LAUNCH("random_uniform_kernel");
}

void CudaBackend::random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  if (n <= 0) return;
  activate();
  random_normal_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(out, n, seed, offset);
  TRINE_CUDA_CHECK_LAUNCH("random_normal_kernel");
}

// ------------------------------------------------------------------------------ optimizers

namespace {

// The loop body of CpuBackend::sgd_step.
__global__ void sgd_kernel(float* p, const float* g, float* buf, int64_t n, SgdStep s) {
  TRINE_CUDA_KERNEL_LOOP(i, n) {
    float d = g[i] + s.weight_decay * p[i];
    if (s.momentum != 0.f) {
      buf[i] = s.first ? d : s.momentum * buf[i] + (1.f - s.dampening) * d;
      d = s.nesterov ? d + s.momentum * buf[i] : buf[i];
    }
    p[i] -= s.lr * d;
  }
}

// The loop body of CpuBackend::adam_step; the bias corrections come from the host.
__device__ __forceinline__ void adam_element(float* p, const float* g, float* m, float* v,
                                             int64_t i, const AdamStep& s, float step_size,
                                             float inv_sqrt_bc2) {
  float grad = g[i];
  if (s.decoupled)
    p[i] *= 1.f - s.lr * s.weight_decay;
  else
    grad += s.weight_decay * p[i];
  m[i] = s.beta1 * m[i] + (1.f - s.beta1) * grad;
  v[i] = s.beta2 * v[i] + (1.f - s.beta2) * grad * grad;
  p[i] -= step_size * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + s.eps);
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, int64_t n, AdamStep s,
                            float step_size, float inv_sqrt_bc2) {
  TRINE_CUDA_KERNEL_LOOP(i, n) adam_element(p, g, m, v, i, s, step_size, inv_sqrt_bc2);
}

// Up to cuda::kMaxArrays parameters per launch (cuda::plan_blocks), kAdamPerBlock elements a block.
constexpr int64_t kAdamPerBlock = 4096;
struct AdamArrays {
  float* p[cuda::kMaxArrays];
  const float* g[cuda::kMaxArrays];
  float* m[cuda::kMaxArrays];
  float* v[cuda::kMaxArrays];
  int64_t n[cuda::kMaxArrays];
  float step_size[cuda::kMaxArrays];
  float inv_sqrt_bc2[cuda::kMaxArrays];
  int64_t first_block[cuda::kMaxArrays + 1];
};

__global__ void adam_many_kernel(AdamArrays a, AdamStep s) {
  int64_t begin;
  const int i = cuda::array_of_block(a.first_block, kAdamPerBlock, &begin);
  const int64_t end = min(a.n[i], begin + kAdamPerBlock);
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x)
    adam_element(a.p[i], a.g[i], a.m[i], a.v[i], j, s, a.step_size[i], a.inv_sqrt_bc2[i]);
}

// Same host arithmetic as CpuBackend::adam_step: lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t).
void adam_corrections(const AdamStep& s, int64_t step, float* step_size, float* inv_sqrt_bc2) {
  const float bc1 = 1.f - std::pow(s.beta1, static_cast<float>(step));
  const float bc2 = 1.f - std::pow(s.beta2, static_cast<float>(step));
  *step_size = s.lr / bc1;
  *inv_sqrt_bc2 = 1.f / std::sqrt(bc2);
}

}  // namespace

void CudaBackend::sgd_step(float* p, const float* g, float* momentum_buf, int64_t n,
                           const SgdStep& s) {
  if (n <= 0) return;
  activate();
  sgd_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(p, g, momentum_buf, n, s);
  TRINE_CUDA_CHECK_LAUNCH("sgd_kernel");
}

void CudaBackend::adam_step(float* p, const float* g, float* m, float* v, int64_t n,
                            const AdamStep& s) {
  if (n <= 0) return;
  activate();
  float step_size, inv_sqrt_bc2;
  adam_corrections(s, s.step, &step_size, &inv_sqrt_bc2);
  adam_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(p, g, m, v, n, s, step_size, inv_sqrt_bc2);
  TRINE_CUDA_CHECK_LAUNCH("adam_kernel");
}

void CudaBackend::adam_step_many(const std::vector<AdamTensor>& tensors, const AdamStep& s) {
  if (tensors.empty()) return;
  activate();
  for (size_t first = 0; first < tensors.size(); first += cuda::kMaxArrays) {
    AdamArrays a{};
    const int count = static_cast<int>(std::min<size_t>(cuda::kMaxArrays, tensors.size() - first));
    for (int k = 0; k < count; ++k) {
      const AdamTensor& t = tensors[first + k];
      a.p[k] = t.p, a.g[k] = t.g, a.m[k] = t.m, a.v[k] = t.v, a.n[k] = t.n;
      adam_corrections(s, t.step, &a.step_size[k], &a.inv_sqrt_bc2[k]);
    }
    const int64_t blocks = cuda::plan_blocks(a.n, count, kAdamPerBlock, a.first_block);
    if (blocks == 0) continue;
    TRINE_CHECK(blocks <= INT32_MAX, "adam_step_many: parameters too large for one launch");
    adam_many_kernel<<<static_cast<unsigned>(blocks), cuda::kThreads, 0, stream_>>>(a, s);
    TRINE_CUDA_CHECK_LAUNCH("adam_many_kernel");
  }
}

}  // namespace trine
