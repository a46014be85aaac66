// CPU-vs-CUDA parity of every Backend primitive: the same random inputs (odd shapes) go through
// the CPU backend (the reference) and the CUDA backend, whose outputs are pre-filled with
// garbage first to make sure each primitive writes all of its output. Each comparison states its
// tolerance: |cuda - cpu| <= atol + rtol * |cpu|, with NaN matching NaN.
//
// Skipped (GTEST_SKIP, with the reason) unless trine is built with CUDA and a GPU is visible.
// The tests of what happens when CUDA is asked for without a GPU, and of how the CUDA module
// is loaded, run everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "support/run_program.h"
#include "support/test_util.h"

namespace trine {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kGarbage = 1e30f;  // what outputs hold before a primitive runs

// ---------------------------------------------------------------------------- harness

std::vector<float> uniform(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Values from a few levels (ties on purpose).
std::vector<float> levels(size_t n, uint32_t seed, int count, float step = 0.25f) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, count - 1);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(d(rng)) * step;
  return v;
}

std::vector<int32_t> randint(size_t n, uint32_t seed, int32_t lo, int32_t hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = d(rng);
  return v;
}

// A raw buffer of n T's on one backend.
template <typename T>
class Buf {
 public:
  Buf(Backend& be, size_t n) : be_(&be), n_(n) {
    ptr_ = static_cast<T*>(be.allocate(std::max<size_t>(n, 1) * sizeof(T)));
  }
  ~Buf() { be_->deallocate(ptr_, std::max<size_t>(n_, 1) * sizeof(T)); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  T* get() const { return ptr_; }
  void upload(const std::vector<T>& v) {
    ASSERT_EQ(v.size(), n_);
    be_->copy_from_host(ptr_, v.data(), n_ * sizeof(T));
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    be_->synchronize();
    be_->copy_to_host(v.data(), ptr_, n_ * sizeof(T));
    return v;
  }

 private:
  Backend* be_;
  size_t n_;
  T* ptr_;
};

// The same buffer on the CPU (c) and on the GPU (g), filled with the same values.
template <typename T>
struct Pair {
  Pair(Backend& cpu, Backend& gpu, const std::vector<T>& v) : c(cpu, v.size()), g(gpu, v.size()) {
    c.upload(v);
    g.upload(v);
  }
  Buf<T> c, g;
};

template <typename T>
std::vector<T> filled(size_t n, T value) {
  return std::vector<T>(n, value);
}

bool same_value(double got, double want, double atol, double rtol) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (std::isinf(want) || std::isinf(got)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// Every |got - want| <= atol + rtol |want| (NaN matches NaN); reports the worst element.
template <typename T>
::testing::AssertionResult close(const std::vector<T>& got, const std::vector<T>& want, double atol,
                                 double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << want.size();
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (same_value(g, w, atol, rtol)) continue;
    ++bad;
    const double excess = std::isfinite(g - w) ? std::fabs(g - w) - atol - rtol * std::fabs(w)
                                               : std::numeric_limits<double>::infinity();
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements differ (atol " << atol << ", rtol " << rtol
         << "); worst at " << worst << ": cuda " << static_cast<double>(got[worst]) << ", cpu "
         << static_cast<double>(want[worst]);
}

template <typename T>
::testing::AssertionResult equal(const std::vector<T>& got, const std::vector<T>& want) {
  return close(got, want, 0.0, 0.0);
}

class CudaParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    cpu = &backend_for(Device::cpu());
    gpu = &backend_for(Device::cuda(0));
  }
  Backend* cpu = nullptr;
  Backend* gpu = nullptr;

  template <typename T>
  Pair<T> pair(const std::vector<T>& v) {
    return Pair<T>(*cpu, *gpu, v);
  }
};

// ---------------------------------------------------------------------------- runs everywhere

TEST(CudaDevice, RequestWithoutGpuIsAClearError) {
  EXPECT_GE(cuda_device_count(), 0);  // never throws
#ifdef TRINE_WITH_CUDA
  EXPECT_TRUE(cuda_built());
#else
  EXPECT_FALSE(cuda_built());
#endif
  if (cuda_available()) {
    // A GPU is here: CUDA tensors live on it, and an index past the last GPU is refused.
    Tensor t = Tensor::ones({3}, Device::cuda(0));
    EXPECT_TRUE(t.device().is_cuda());
    EXPECT_NE(backend_for(Device::cuda(0)).description().find("cuda:0"), std::string::npos);
    try {
      (void)Tensor::ones({3}, Device::cuda(cuda_device_count()));
      ADD_FAILURE() << "a tensor on a GPU index past the last one was created";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("visible"), std::string::npos) << e.what();
    }
    return;
  }
  // No GPU (or no CUDA build): every way of asking for CUDA throws trine::Error saying why, and
  // nothing quietly runs on the CPU instead.
  const std::string why = cuda_built() ? "no CUDA GPU is visible" : "built without CUDA";
  auto expect_error = [&](auto&& fn, const char* what) {
    try {
      fn();
      ADD_FAILURE() << what << " did not throw";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("cuda:0"), std::string::npos) << what << ": " << msg;
      EXPECT_NE(msg.find(why), std::string::npos) << what << ": " << msg;
    }
  };
  expect_error([] { (void)backend_for(Device::cuda()); }, "backend_for(cuda)");
  expect_error([] { (void)Tensor::zeros({2, 3}, Device::cuda()); }, "Tensor::zeros(cuda)");
  expect_error([] { (void)Tensor::ones({4}).to(Device::cuda()); }, "Tensor::to(cuda)");
  expect_error(
      [] {
        (void)Tensor::from_vector({1.f, 2.f}, {2}, Device::parse("cuda"));
      },
      "from_vector(cuda)");
  EXPECT_EQ(cuda_device_count(), 0);
}

// A shared libtrine built with CUDA keeps the backend in libtrine_cuda.so and opens it only when
// CUDA is asked about: a program that never uses a GPU loads neither it nor cuBLAS (the glibc
// loader lists what it loads under LD_DEBUG=files), and a module that cannot be loaded is a
// usage error naming it.
TEST(CudaModule, OpenedOnlyWhenCudaIsAskedFor) {
  const std::string program = test::trine_program();
  if (program.empty()) GTEST_SKIP() << "the trine program is not built";
  // The module libtrine opens: the one beside it (this test links the same libtrine).
  Dl_info libtrine{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&cuda_built), &libtrine), 0);
  const std::string lib = libtrine.dli_fname ? libtrine.dli_fname : "";
  const std::string module = lib.substr(0, lib.find_last_of('/') + 1) + "libtrine_cuda.so";
  if (!cuda_built() || !std::ifstream(module).good())
    GTEST_SKIP() << "no CUDA module (built without CUDA, or with a static libtrine)";
  // Where a GPU is visible, `asked` is a real run of one step on a few images.
  const std::string out = ::testing::TempDir() + "trine_cuda_module_" + std::to_string(::getpid());
  const std::string run_on_gpu =
      "mnist --device cuda --steps 1 --limit 256 --test-limit 256 "
      "--no-train-gallery --out " +
      out;
  ::setenv("LD_DEBUG", "files", 1);
  const test::ProgramResult cpu_only = test::run_trine("--version");
  const test::ProgramResult asked = test::run_trine(run_on_gpu);
  ::unsetenv("LD_DEBUG");
  std::filesystem::remove_all(out);
  EXPECT_EQ(cpu_only.status, 0) << cpu_only.err;
  EXPECT_NE(cpu_only.out.find("(with CUDA)"), std::string::npos) << cpu_only.out;
  EXPECT_NE(cpu_only.err.find("file="), std::string::npos) << "LD_DEBUG had no effect";
  for (const char* name : {"libtrine_cuda.so", "libcublas", "libcudart"})
    EXPECT_EQ(cpu_only.err.find(name), std::string::npos) << "`trine --version` loaded " << name;
  EXPECT_NE(asked.err.find("file=" + module), std::string::npos) << asked.err;
  EXPECT_NE(asked.err.find("libcublas.so"), std::string::npos) << asked.err;

  ::setenv("TRINE_CUDA_MODULE", "/nonexistent/libtrine_cuda.so", 1);
  const test::ProgramResult missing = test::run_trine(run_on_gpu);
  std::filesystem::remove_all(out);
  ::unsetenv("TRINE_CUDA_MODULE");
  EXPECT_EQ(missing.status, 2) << missing.err;
  EXPECT_NE(missing.err.find("device cuda:0 requested, but trine's CUDA module could not be "
                             "loaded (/nonexistent/libtrine_cuda.so: "),
            std::string::npos)
      << missing.err;
}

// ---------------------------------------------------------------------------- memory and copies

TEST_F(CudaParity, CopiesRoundTripExactly) {
  const std::vector<float> v = uniform(1237, 1);
  Buf<float> a(*gpu, v.size()), b(*gpu, v.size());
  a.upload(v);
  gpu->fill(b.get(), static_cast<int64_t>(v.size()), kGarbage);
  gpu->copy(b.get(), a.get(), v.size() * sizeof(float));
  EXPECT_TRUE(equal(b.download(), v));  // exact
  // Overlapping copy (memmove semantics), compared with the CPU.
  auto p = pair(v);
  const size_t n = 1000;
  cpu->copy(p.c.get() + 7, p.c.get(), n * sizeof(float));
  gpu->copy(p.g.get() + 7, p.g.get(), n * sizeof(float));
  EXPECT_TRUE(equal(p.g.download(), p.c.download()));  // exact
  cpu->copy(p.c.get(), p.c.get() + 5, n * sizeof(float));
  gpu->copy(p.g.get(), p.g.get() + 5, n * sizeof(float));
  EXPECT_TRUE(equal(p.g.download(), p.c.download()));  // exact
}

// Uploads go through two 8 MiB pinned staging buffers on a stream of their own: sizes below,
// at and across the chunk size (three chunks for 20 MiB) arrive exactly, from another thread too;
// the host buffer may be overwritten as soon as copy_from_host returns; and an upload into a
// cached block that queued work still writes starts after that work (a 256 MiB fill: without the
// wait, the fill would land on the uploaded data).
TEST_F(CudaParity, UploadsThroughStaging) {
  const size_t chunk = (size_t{8} << 20) / sizeof(float);
  for (size_t n : {size_t{1}, chunk - 1, chunk, chunk + 3, 2 * chunk + chunk / 2 + 1}) {
    SCOPED_TRACE("floats " + std::to_string(n));
    std::vector<float> v = uniform(n, static_cast<uint32_t>(n));
    const std::vector<float> want = v;
    Buf<float> d(*gpu, n);
    d.upload(v);
    std::fill(v.begin(), v.end(), kGarbage);  // the caller's buffer, reused at once
    EXPECT_TRUE(equal(d.download(), want));
    Buf<float> e(*gpu, n);
    std::thread loader([&] { e.upload(want); });
    loader.join();
    EXPECT_TRUE(equal(e.download(), want)) << "uploaded from another thread";
  }
  const size_t big = size_t{64} << 20;  // floats: 256 MiB
  void* block = gpu->allocate(big * sizeof(float));
  gpu->fill(static_cast<float*>(block), static_cast<int64_t>(big), kGarbage);  // queued, not done
  gpu->deallocate(block, big * sizeof(float));
  Buf<float> reused(*gpu, big);  // the same cached block
  EXPECT_EQ(static_cast<void*>(reused.get()), block);
  const std::vector<float> small = uniform(1000, 7);
  gpu->copy_from_host(reused.get(), small.data(), small.size() * sizeof(float));
  std::vector<float> head(small.size());
  gpu->synchronize();
  gpu->copy_to_host(head.data(), reused.get(), head.size() * sizeof(float));
  EXPECT_TRUE(equal(head, small)) << "the upload ran before the fill queued ahead of it";
}

TEST_F(CudaParity, AllocatorReusesBlocksAfterWarmUp) {
  const size_t sizes[] = {1, 513, 4096, 100003, 1 << 20};
  for (size_t s : sizes) gpu->deallocate(gpu->allocate(s), s);  // warm-up
  const AllocatorStats before = gpu->allocator_stats();
  for (int round = 0; round < 3; ++round)
    for (size_t s : sizes) gpu->deallocate(gpu->allocate(s), s);
  const AllocatorStats after = gpu->allocator_stats();
  EXPECT_EQ(after.system_allocs, before.system_allocs) << "cudaMalloc after warm-up";
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  gpu->empty_cache();
  EXPECT_EQ(gpu->allocator_stats().bytes_cached, 0);
  // A new peak measurement starts from what is in use now (`trine bench mining` measures each
  // miner's peak memory from there).
  EXPECT_GE(after.peak_bytes_in_use, before.bytes_in_use + (int64_t{1} << 20));
  gpu->reset_peak_memory();
  const AllocatorStats reset = gpu->allocator_stats();
  EXPECT_EQ(reset.peak_bytes_in_use, reset.bytes_in_use);
}

// ---------------------------------------------------------------------------- fills and casts

TEST_F(CudaParity, FillsAndCasts) {
  const int64_t n = 1001;
  auto f = pair(filled<float>(n, kGarbage));
  cpu->fill(f.c.get(), n, -2.5f);
  gpu->fill(f.g.get(), n, -2.5f);
  EXPECT_TRUE(equal(f.g.download(), f.c.download()));  // exact
  auto i = pair(filled<int32_t>(n, 12345));
  cpu->fill_i32(i.c.get(), n, -7);
  gpu->fill_i32(i.g.get(), n, -7);
  EXPECT_TRUE(equal(i.g.download(), i.c.download()));  // exact

  auto ints = pair(randint(n, 2, -100000, 100000));
  auto as_f = pair(filled<float>(n, kGarbage));
  cpu->cast_i32_to_f32(ints.c.get(), as_f.c.get(), n);
  gpu->cast_i32_to_f32(ints.g.get(), as_f.g.get(), n);
  EXPECT_TRUE(equal(as_f.g.download(), as_f.c.download()));  // exact

  // Truncation toward zero, both signs; saturation, infinities and NaN in the first entries.
  std::vector<float> flv = uniform(n, 3, -1000.f, 1000.f);
  const float special[] = {kNaN,         kInf,          -kInf,        3e9f,  -3e9f,
                           2147483520.f, -2147483648.f, 2147483648.f, -0.99f};
  std::copy(std::begin(special), std::end(special), flv.begin());
  auto fl = pair(flv);
  auto as_i = pair(filled<int32_t>(n, 12345));
  cpu->cast_f32_to_i32(fl.c.get(), as_i.c.get(), n);
  gpu->cast_f32_to_i32(fl.g.get(), as_i.g.get(), n);
  EXPECT_TRUE(equal(as_i.g.download(), as_i.c.download()));  // exact
}

// ---------------------------------------------------------------------------- strided copies

void strided_case(Backend& cpu, Backend& gpu, const Shape& shape, const Shape& src_strides,
                  int64_t src_len, const Shape& dst_strides, int64_t dst_len, uint32_t seed) {
  SCOPED_TRACE("shape " + shape_str(shape) + " src strides " + shape_str(src_strides) +
               " dst strides " + shape_str(dst_strides));
  Pair<float> src(cpu, gpu, uniform(static_cast<size_t>(src_len), seed));
  Pair<float> dst(cpu, gpu, filled<float>(static_cast<size_t>(dst_len), kGarbage));
  cpu.copy_strided(src.c.get(), src_strides, dst.c.get(), dst_strides, shape);
  gpu.copy_strided(src.g.get(), src_strides, dst.g.get(), dst_strides, shape);
  EXPECT_TRUE(equal(dst.g.download(), dst.c.download()));  // exact
}

TEST_F(CudaParity, CopyStrided) {
  // Transpose of [5, 7] into [7, 5].
  strided_case(*cpu, *gpu, {7, 5}, {1, 7}, 35, {5, 1}, 35, 1);
  // A permutation of [3, 5, 7, 2].
  strided_case(*cpu, *gpu, {3, 5, 7, 2}, {2, 42, 6, 1}, 210, {70, 14, 2, 1}, 210, 2);
  // Broadcast source (stride 0) into a padded destination (row stride 13 > 11).
  strided_case(*cpu, *gpu, {9, 11}, {0, 1}, 11, {13, 1}, 9 * 13, 3);
  // 11 dims that cannot be merged (reversed strides): more than one kernel's worth of dims.
  Shape shape(11, 2), src(11), dst(11);
  for (int d = 0; d < 11; ++d) src[d] = int64_t{1} << d, dst[d] = int64_t{1} << (10 - d);
  strided_case(*cpu, *gpu, shape, src, 2048, dst, 2048, 4);
  // The conv2d layout shuffle: [n, M, ohw] from [M, chunk*ohw].
  strided_case(*cpu, *gpu, {3, 4, 25}, {25, 100, 1}, 400, {100, 25, 1}, 300, 5);
}

// ---------------------------------------------------------------------------- elementwise

struct UnaryCase {
  UnaryOp op;
  const char* name;
  float lo, hi;  // input range
  float p0, p1;
  double atol, rtol;  // forward and backward tolerance
};

// Exact ops are correctly rounded on both devices; transcendental ones differ by a few ulp
// between glibc and CUDA's math library; backward adds a product or two (and FMA contraction).
const UnaryCase kUnaryCases[] = {
    {UnaryOp::Neg, "Neg", -3, 3, 0, 0, 0, 0},
    {UnaryOp::Exp, "Exp", -5, 5, 0, 0, 1e-6, 1e-5},
    {UnaryOp::Log, "Log", 0.01f, 10, 0, 0, 1e-6, 1e-5},
    {UnaryOp::Sqrt, "Sqrt", 0.01f, 10, 0, 0, 1e-6, 1e-6},
    {UnaryOp::Abs, "Abs", -3, 3, 0, 0, 0, 0},
    {UnaryOp::Relu, "Relu", -3, 3, 0, 0, 0, 0},
    {UnaryOp::LeakyRelu, "LeakyRelu", -3, 3, 0.07f, 0, 0, 0},
    {UnaryOp::Sigmoid, "Sigmoid", -8, 8, 0, 0, 1e-6, 1e-5},
    {UnaryOp::Tanh, "Tanh", -4, 4, 0, 0, 1e-6, 1e-5},
    {UnaryOp::Softplus, "Softplus", -8, 8, 0, 0, 1e-6, 1e-5},
    {UnaryOp::Pow, "Pow", 0.05f, 4, 2.7f, 0, 1e-6, 1e-5},
    {UnaryOp::Clamp, "Clamp", -3, 3, -0.5f, 1.25f, 0, 0},
    {UnaryOp::Square, "Square", -3, 3, 0, 0, 0, 1e-7},
    {UnaryOp::Recip, "Recip", 0.1f, 5, 0, 0, 0, 1e-6},
    {UnaryOp::AddScalar, "AddScalar", -3, 3, 1.75f, 0, 0, 0},
    {UnaryOp::MulScalar, "MulScalar", -3, 3, -0.3f, 0, 0, 0},
};

TEST_F(CudaParity, UnaryForwardAndBackward) {
  const int64_t n = 4099;
  uint32_t seed = 10;
  for (const UnaryCase& c : kUnaryCases) {
    SCOPED_TRACE(c.name);
    std::vector<float> xv = uniform(n, ++seed, c.lo, c.hi);
    if (c.op == UnaryOp::Relu || c.op == UnaryOp::Abs || c.op == UnaryOp::Clamp) {
      xv[0] = 0.f;  // the kinks
      xv[1] = c.p0;
      xv[2] = c.p1;
    }
    auto x = pair(xv);
    auto y = pair(filled<float>(n, kGarbage));
    cpu->unary(c.op, x.c.get(), y.c.get(), n, c.p0, c.p1);
    gpu->unary(c.op, x.g.get(), y.g.get(), n, c.p0, c.p1);
    const std::vector<float> y_ref = y.c.download();
    EXPECT_TRUE(close(y.g.download(), y_ref, c.atol, c.rtol)) << "forward";
    // Backward from the same x, y and gy on both.
    auto yy = pair(y_ref);
    auto gy = pair(uniform(n, ++seed));
    auto gx = pair(filled<float>(n, kGarbage));
    cpu->unary_backward(c.op, x.c.get(), yy.c.get(), gy.c.get(), gx.c.get(), n, c.p0, c.p1);
    gpu->unary_backward(c.op, x.g.get(), yy.g.get(), gy.g.get(), gx.g.get(), n, c.p0, c.p1);
    EXPECT_TRUE(close(gx.g.download(), gx.c.download(), c.atol, std::max(c.rtol, 1e-6)))
        << "backward";
  }
}

TEST_F(CudaParity, UnaryInPlace) {
  const int64_t n = 333;
  auto x = pair(uniform(n, 5));
  cpu->unary(UnaryOp::MulScalar, x.c.get(), x.c.get(), n, 3.f, 0);
  gpu->unary(UnaryOp::MulScalar, x.g.get(), x.g.get(), n, 3.f, 0);
  EXPECT_TRUE(equal(x.g.download(), x.c.download()));  // exact
}

const BinaryOp kBinaryOps[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div,
                               BinaryOp::Max, BinaryOp::Min, BinaryOp::Eq,  BinaryOp::Ne,
                               BinaryOp::Lt,  BinaryOp::Le,  BinaryOp::Gt,  BinaryOp::Ge};

// a [shape_a] op b [shape_b] broadcast to `out`; values from a few levels (ties for the
// comparisons and max/min) with NaNs mixed in. All exact: +-*/ are correctly rounded on both.
void binary_case(Backend& cpu, Backend& gpu, const Shape& sa, const Shape& sb, uint32_t seed) {
  const Shape out = broadcast_shapes(sa, sb, "test");
  SCOPED_TRACE(shape_str(sa) + " op " + shape_str(sb));
  std::vector<float> av = levels(numel_of(sa), seed, 7, 0.5f),
                     bv = levels(numel_of(sb), seed + 1, 7, 0.5f);
  for (float& v : bv) v += 0.25f;  // never 0: division
  if (av.size() > 3) av[3] = kNaN;
  if (bv.size() > 2) bv[1] = kNaN;
  Pair<float> a(cpu, gpu, av), b(cpu, gpu, bv);
  for (BinaryOp op : kBinaryOps) {
    SCOPED_TRACE("op " + std::to_string(static_cast<int>(op)));
    Pair<float> o(cpu, gpu, filled<float>(numel_of(out), kGarbage));
    cpu.binary(op, {a.c.get(), broadcast_strides(sa, out)}, {b.c.get(), broadcast_strides(sb, out)},
               o.c.get(), out);
    gpu.binary(op, {a.g.get(), broadcast_strides(sa, out)}, {b.g.get(), broadcast_strides(sb, out)},
               o.g.get(), out);
    EXPECT_TRUE(equal(o.g.download(), o.c.download()));
  }
}

TEST_F(CudaParity, BinaryBroadcasting) {
  binary_case(*cpu, *gpu, {1001}, {1001}, 1);                    // contiguous
  binary_case(*cpu, *gpu, {5, 1, 7}, {3, 1}, 2);                 // both broadcast
  binary_case(*cpu, *gpu, {4, 3, 9}, {}, 3);                     // scalar
  binary_case(*cpu, *gpu, {}, {2, 5}, 4);                        // scalar on the left
  binary_case(*cpu, *gpu, {2, 3, 1, 5, 1, 3}, {1, 5, 4, 1}, 5);  // many dims
  binary_case(*cpu, *gpu, {7, 1}, {1, 13}, 6);                   // outer product
  // 10 dims that stay separate after coalescing: a launch per leading index.
  Shape sa(10, 2), sb(10, 2);
  for (int d = 0; d < 10; d += 2) sb[d] = 1;
  binary_case(*cpu, *gpu, sa, sb, 7);
}

TEST_F(CudaParity, BinaryInPlaceAliasingTheOutput) {
  const Shape shape{6, 11};
  auto a = pair(uniform(66, 1));
  auto b = pair(uniform(11, 2));
  const Shape sa = contiguous_strides(shape), sb = broadcast_strides({11}, shape);
  cpu->binary(BinaryOp::Add, {a.c.get(), sa}, {b.c.get(), sb}, a.c.get(), shape);
  gpu->binary(BinaryOp::Add, {a.g.get(), sa}, {b.g.get(), sb}, a.g.get(), shape);
  EXPECT_TRUE(equal(a.g.download(), a.c.download()));  // exact
}

TEST_F(CudaParity, Where) {
  const int64_t n = 777;
  std::vector<float> cond = levels(n, 1, 3);
  cond[5] = kNaN;  // NaN != 0: picks a
  auto c = pair(cond);
  auto a = pair(uniform(n, 2));
  auto b = pair(uniform(n, 3));
  auto o = pair(filled<float>(n, kGarbage));
  cpu->where(c.c.get(), a.c.get(), b.c.get(), o.c.get(), n);
  gpu->where(c.g.get(), a.g.get(), b.g.get(), o.g.get(), n);
  EXPECT_TRUE(equal(o.g.download(), o.c.download()));  // exact
}

// ---------------------------------------------------------------------------- reductions

// Sums: the CPU adds in double (inner == 1) or in float in order (inner > 1), the GPU in double
// in another order: atol 1e-6 + 2e-7 n for inputs in [-1, 1], rtol 1e-6. Max/min values and
// arg-max indices (lowest on ties, first NaN) are exact.
void reduce_case(Backend& cpu, Backend& gpu, int64_t outer, int64_t n, int64_t inner, uint32_t seed,
                 bool with_nan) {
  SCOPED_TRACE("[outer, n, inner] = [" + std::to_string(outer) + ", " + std::to_string(n) + ", " +
               std::to_string(inner) + "]" + (with_nan ? " with NaN" : ""));
  const size_t total = static_cast<size_t>(outer * n * inner),
               outs = static_cast<size_t>(outer * inner);
  std::vector<float> xv = levels(total, seed, 9, 0.125f);  // ties
  for (float& v : xv) v -= 0.5f;
  if (with_nan && total > 10) xv[total / 2] = kNaN, xv[total / 3] = kNaN;
  Pair<float> x(cpu, gpu, xv);
  {
    std::vector<float> sv = uniform(total, seed + 1);
    Pair<float> xs(cpu, gpu, sv);
    Pair<float> o(cpu, gpu, filled<float>(outs, kGarbage));
    cpu.reduce(ReduceOp::Sum, xs.c.get(), o.c.get(), nullptr, outer, n, inner);
    gpu.reduce(ReduceOp::Sum, xs.g.get(), o.g.get(), nullptr, outer, n, inner);
    EXPECT_TRUE(close(o.g.download(), o.c.download(), 1e-6 + 2e-7 * static_cast<double>(n), 1e-6))
        << "sum";
  }
  for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min}) {
    const char* name = op == ReduceOp::Max ? "max" : "min";
    Pair<float> o(cpu, gpu, filled<float>(outs, kGarbage));
    Pair<int32_t> idx(cpu, gpu, filled<int32_t>(outs, -12345));
    cpu.reduce(op, x.c.get(), o.c.get(), idx.c.get(), outer, n, inner);
    gpu.reduce(op, x.g.get(), o.g.get(), idx.g.get(), outer, n, inner);
    EXPECT_TRUE(equal(o.g.download(), o.c.download())) << name;
    EXPECT_TRUE(equal(idx.g.download(), idx.c.download())) << name << " index";
    // Without an index buffer.
    Pair<float> o2(cpu, gpu, filled<float>(outs, kGarbage));
    gpu.reduce(op, x.g.get(), o2.g.get(), nullptr, outer, n, inner);
    EXPECT_TRUE(equal(o2.g.download(), o.c.download())) << name << " without index";
  }
}

TEST_F(CudaParity, Reductions) {
  reduce_case(*cpu, *gpu, 7, 13, 1, 1, false);
  reduce_case(*cpu, *gpu, 3, 1001, 1, 2, true);
  reduce_case(*cpu, *gpu, 5, 17, 9, 3, true);
  reduce_case(*cpu, *gpu, 1, 1, 5, 4, false);
  reduce_case(*cpu, *gpu, 33, 2, 1, 5, false);
  reduce_case(*cpu, *gpu, 1, 300007, 1, 6, true);  // one long row: split across warps
  reduce_case(*cpu, *gpu, 2, 20011, 3, 7, true);   // few long columns: split across threads
  reduce_case(*cpu, *gpu, 1, 4099, 1, 8, false);
  reduce_case(*cpu, *gpu, 2000, 3, 7, 9, false);
}

TEST_F(CudaParity, ReduceOverAnEmptyDim) {
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
    auto x = pair(filled<float>(1, 0.f));
    auto o = pair(filled<float>(6, kGarbage));
    auto idx = pair(filled<int32_t>(6, -12345));
    cpu->reduce(op, x.c.get(), o.c.get(), idx.c.get(), 2, 0, 3);
    gpu->reduce(op, x.g.get(), o.g.get(), idx.g.get(), 2, 0, 3);
    EXPECT_TRUE(equal(o.g.download(), o.c.download()));  // exact: 0 or -+inf
    if (op != ReduceOp::Sum) {
      EXPECT_TRUE(equal(idx.g.download(), idx.c.download()));
    }
  }
}

// 40 arrays (two launches of up to 32), empty ones and ones a block boundary apart, with NaN and
// inf planted at the start, the middle and the end of a block: the maxima are exact.
TEST_F(CudaParity, MaxAbsEach) {
  const std::vector<int64_t> sizes = {0,    1,  7, 8191,  8192,  8193,  0,  100003, 3,  16384, 2,
                                      5000, 1,  0, 32769, 9,     12345, 4,  8200,   77, 1000,  65,
                                      8191, 2,  3, 0,     40000, 5,     6,  8192,   1,  1,     9000,
                                      31,   33, 0, 17,    8193,  2,     100};
  std::vector<std::unique_ptr<Pair<float>>> arrays;
  std::vector<const float*> on_cpu, on_gpu;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<float> v =
        uniform(static_cast<size_t>(sizes[i]), static_cast<uint32_t>(i), -4.f, 4.f);
    const size_t n = v.size();
    if (i % 5 == 1 && n > 0) v[n - 1] = kNaN;                 // the last element
    if (i % 7 == 2 && n > 0) v[0] = -kInf;                    // the first
    if (i % 9 == 3 && n > 8192) v[8192] = kNaN, v[5] = kInf;  // a second block's first
    arrays.push_back(std::make_unique<Pair<float>>(*cpu, *gpu, v));
    on_cpu.push_back(arrays.back()->c.get());
    on_gpu.push_back(arrays.back()->g.get());
  }
  auto out = pair(filled<float>(sizes.size(), kGarbage));
  cpu->max_abs_each(on_cpu, sizes, out.c.get());
  gpu->max_abs_each(on_gpu, sizes, out.g.get());
  EXPECT_TRUE(equal(out.g.download(), out.c.download()));
}

// ---------------------------------------------------------------------------- indexing

TEST_F(CudaParity, IndexSelectAndIndexAdd) {
  const int64_t outer = 3, n = 11, inner = 5, n_idx = 17;
  auto x = pair(uniform(outer * n * inner, 1));
  auto idx = pair(randint(n_idx, 2, 0, n - 1));  // repeats
  auto out = pair(filled<float>(outer * n_idx * inner, kGarbage));
  cpu->index_select(x.c.get(), outer, n, inner, idx.c.get(), n_idx, out.c.get());
  gpu->index_select(x.g.get(), outer, n, inner, idx.g.get(), n_idx, out.g.get());
  EXPECT_TRUE(equal(out.g.download(), out.c.download()));  // exact
  // index_add accumulates into x; repeated indices add in another order: atol 1e-6, rtol 1e-6.
  auto g = pair(uniform(outer * n_idx * inner, 3));
  cpu->index_add(g.c.get(), outer, n, inner, idx.c.get(), n_idx, x.c.get());
  gpu->index_add(g.g.get(), outer, n, inner, idx.g.get(), n_idx, x.g.get());
  EXPECT_TRUE(close(x.g.download(), x.c.download(), 1e-6, 1e-6));
}

TEST_F(CudaParity, GatherAndScatterAdd) {
  const int64_t outer = 4, n = 9, inner = 7, n_idx = 6;
  auto x = pair(uniform(outer * n * inner, 1));
  auto idx = pair(randint(outer * n_idx * inner, 2, 0, n - 1));
  auto out = pair(filled<float>(outer * n_idx * inner, kGarbage));
  cpu->gather(x.c.get(), outer, n, inner, idx.c.get(), n_idx, out.c.get());
  gpu->gather(x.g.get(), outer, n, inner, idx.g.get(), n_idx, out.g.get());
  EXPECT_TRUE(equal(out.g.download(), out.c.download()));  // exact
  // scatter_add accumulates: atol 1e-6, rtol 1e-6 (collisions add in another order).
  auto g = pair(uniform(outer * n_idx * inner, 3));
  cpu->scatter_add(g.c.get(), outer, n, inner, idx.c.get(), n_idx, x.c.get());
  gpu->scatter_add(g.g.get(), outer, n, inner, idx.g.get(), n_idx, x.g.get());
  EXPECT_TRUE(close(x.g.download(), x.c.download(), 1e-6, 1e-6));
}

// backend.h: on a device, an index outside [0, n) names no element (the ops check only indices on
// the CPU): it reads as 0 and adds nothing, and touches no memory. Expected values: plain loops.
TEST_F(CudaParity, IndexKernelsSkipIndicesOutOfRange) {
  const int64_t outer = 2, n = 3, inner = 2;
  const std::vector<int32_t> idx = {1, -1, 3, 0, INT32_MAX, INT32_MIN};
  const auto n_idx = static_cast<int64_t>(idx.size());
  const std::vector<float> x = uniform(outer * n * inner, 5), g = uniform(outer * n_idx * inner, 6);
  std::vector<float> want(g.size()), want_x = x;
  std::vector<int32_t> per_element(g.size());  // gather's indices: idx[j] at every [o, j, i]
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n_idx; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t p = (o * n_idx + j) * inner + i, k = idx[j];
        per_element[p] = idx[j];
        if (k < 0 || k >= n) continue;
        want[p] = x[(o * n + k) * inner + i];
        want_x[(o * n + k) * inner + i] += g[p];
      }
  auto grads = pair(g);
  // index_select + index_add with idx, then gather + scatter_add with per_element: the same values.
  for (bool gathers : {false, true}) {
    SCOPED_TRACE(gathers ? "gather, scatter_add" : "index_select, index_add");
    auto xs = pair(x);
    auto index = pair(gathers ? per_element : idx);
    auto out = pair(filled<float>(g.size(), kGarbage));
    if (gathers)
      gpu->gather(xs.g.get(), outer, n, inner, index.g.get(), n_idx, out.g.get());
    else
      gpu->index_select(xs.g.get(), outer, n, inner, index.g.get(), n_idx, out.g.get());
    EXPECT_TRUE(equal(out.g.download(), want));
    if (gathers)
      gpu->scatter_add(grads.g.get(), outer, n, inner, index.g.get(), n_idx, xs.g.get());
    else
      gpu->index_add(grads.g.get(), outer, n, inner, index.g.get(), n_idx, xs.g.get());
    EXPECT_TRUE(equal(xs.g.download(), want_x));  // one add per element: exact
  }
}

// ---------------------------------------------------------------------------- GEMM

// cuBLAS (FP32, no TF32) and OpenBLAS sum in different orders: atol 1e-5 sqrt(k), rtol 1e-5 for
// inputs in [-1, 1].
TEST_F(CudaParity, Gemm) {
  const int64_t m = 37, n = 29, k = 41;
  uint32_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.f, 0.5f}) {
        SCOPED_TRACE(std::string("trans_a ") + (ta ? "1" : "0") + " trans_b " + (tb ? "1" : "0") +
                     " beta " + std::to_string(beta));
        // Leading dimensions wider than needed (padded rows).
        const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
        auto a = pair(uniform((ta ? k : m) * lda, ++seed));
        auto b = pair(uniform((tb ? n : k) * ldb, ++seed));
        std::vector<float> cv = uniform(m * ldc, ++seed);
        if (beta == 0.f)  // C's old values must not leak in, NaN included
          for (size_t i = 0; i < cv.size(); ++i)
            if (i % (ldc) < static_cast<size_t>(n)) cv[i] = kNaN;
        auto c = pair(cv);
        cpu->gemm(ta, tb, m, n, k, 0.7f, a.c.get(), lda, b.c.get(), ldb, beta, c.c.get(), ldc);
        gpu->gemm(ta, tb, m, n, k, 0.7f, a.g.get(), lda, b.g.get(), ldb, beta, c.g.get(), ldc);
        EXPECT_TRUE(close(c.g.download(), c.c.download(), 1e-5 * std::sqrt(double(k)), 1e-5));
      }
}

TEST_F(CudaParity, GemmWithEmptyInnerDimScalesC) {
  for (float beta : {0.f, 2.f}) {
    std::vector<float> cv = uniform(5 * 7, 1);
    cv[3] = kNaN;
    auto c = pair(cv);
    auto dummy = pair(filled<float>(1, 0.f));
    cpu->gemm(false, false, 5, 7, 0, 1.f, dummy.c.get(), 1, dummy.c.get(), 7, beta, c.c.get(), 7);
    gpu->gemm(false, false, 5, 7, 0, 1.f, dummy.g.get(), 1, dummy.g.get(), 7, beta, c.g.get(), 7);
    EXPECT_TRUE(equal(c.g.download(), c.c.download()));  // exact
  }
}

TEST_F(CudaParity, GemmBatched) {
  const int64_t m = 13, n = 11, k = 19, batch = 5;
  uint32_t seed = 200;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string("trans_a ") + (ta ? "1" : "0") + " trans_b " + (tb ? "1" : "0"));
      const int64_t lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
      const int64_t sa = m * k + 7, sb = k * n + 3, sc = m * n + 1;  // gaps between operands
      auto a = pair(uniform(sa * batch, ++seed));
      auto b = pair(uniform(sb * batch, ++seed));
      auto c = pair(filled<float>(sc * batch, kNaN));
      cpu->gemm_batched(ta, tb, m, n, k, 1.3f, a.c.get(), lda, sa, b.c.get(), ldb, sb, 0.f,
                        c.c.get(), ldc, sc, batch);
      gpu->gemm_batched(ta, tb, m, n, k, 1.3f, a.g.get(), lda, sa, b.g.get(), ldb, sb, 0.f,
                        c.g.get(), ldc, sc, batch);
      // atol 1e-5 sqrt(k), rtol 1e-5; the gaps keep their NaN on both.
      EXPECT_TRUE(close(c.g.download(), c.c.download(), 1e-5 * std::sqrt(double(k)), 1e-5));
    }
}

// ---------------------------------------------------------------------------- conv and pooling

// im2col copies: exact. col2im adds each pixel's patch entries in the CPU's (ky, kx) order:
// bit-identical, checked exactly.
TEST_F(CudaParity, Im2colAndCol2im) {
  const ConvGeom geoms[] = {
      {3, 7, 9, 3, 2, 2, 1, 1, 0, 0, 0},  // odd everything, stride 2 rows, padded rows
      {2, 6, 5, 3, 3, 1, 1, 1, 1, 0, 0},  // "same" 3x3
      {1, 5, 5, 5, 5, 1, 1, 0, 0, 0, 0},  // kernel = image
      {4, 8, 7, 2, 3, 3, 2, 1, 2, 0, 0},  // strides > 1 both ways, wide padding
  };
  uint32_t seed = 300;
  for (ConvGeom g : geoms) {
    g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
    g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
    const int64_t images = 3, cols = images * g.OH * g.OW;
    SCOPED_TRACE("C " + std::to_string(g.C) + " H " + std::to_string(g.H) + " W " +
                 std::to_string(g.W) + " k " + std::to_string(g.kh) + "x" + std::to_string(g.kw));
    auto x = pair(uniform(images * g.C * g.H * g.W, ++seed));
    auto col = pair(filled<float>(g.col_rows() * cols, kGarbage));
    cpu->im2col(x.c.get(), g, images, col.c.get());
    gpu->im2col(x.g.get(), g, images, col.g.get());
    EXPECT_TRUE(equal(col.g.download(), col.c.download())) << "im2col";
    auto gcol = pair(uniform(g.col_rows() * cols, ++seed));
    auto gx = pair(filled<float>(images * g.C * g.H * g.W, kGarbage));
    cpu->col2im(gcol.c.get(), g, images, gx.c.get());
    gpu->col2im(gcol.g.get(), g, images, gx.g.get());
    EXPECT_TRUE(equal(gx.g.download(), gx.c.download())) << "col2im";
  }
}

// Max pooling: values and arg-max exact (ties and a NaN included); average pooling adds in the
// CPU's order: atol 1e-6, rtol 1e-6. Both backward passes add in the CPU's order, the average's
// terms each rounded as the CPU rounds them (no fused multiply-add): bit-identical, checked
// exactly.
TEST_F(CudaParity, Pooling) {
  const PoolGeom geoms[] = {
      {7, 9, 3, 3, 2, 2, 1, 1, 0, 0},
      {6, 6, 2, 2, 2, 2, 0, 0, 0, 0},
      {5, 8, 3, 2, 1, 3, 1, 1, 0, 0},
      {4, 4, 4, 4, 1, 1, 2, 2, 0, 0},
  };
  uint32_t seed = 400;
  for (PoolGeom g : geoms) {
    g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
    g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
    const int64_t planes = 5, outs = planes * g.OH * g.OW, ins = planes * g.H * g.W;
    SCOPED_TRACE("H " + std::to_string(g.H) + " W " + std::to_string(g.W) + " k " +
                 std::to_string(g.kh) + "x" + std::to_string(g.kw) + " s " + std::to_string(g.sh) +
                 "x" + std::to_string(g.sw) + " p " + std::to_string(g.ph) + "x" +
                 std::to_string(g.pw));
    std::vector<float> xv = levels(ins, ++seed, 5);
    xv[ins / 2] = kNaN;
    auto x = pair(xv);
    for (PoolKind kind : {PoolKind::Max, PoolKind::MaxRelu, PoolKind::Avg}) {
      const bool is_max = is_max_pool(kind);
      SCOPED_TRACE(kind == PoolKind::Max ? "max" : is_max ? "max relu" : "avg");
      auto out = pair(filled<float>(outs, kGarbage));
      auto arg = pair(filled<int32_t>(outs, -12345));
      cpu->pool2d_forward(kind, x.c.get(), g, planes, out.c.get(), is_max ? arg.c.get() : nullptr);
      gpu->pool2d_forward(kind, x.g.get(), g, planes, out.g.get(), is_max ? arg.g.get() : nullptr);
      EXPECT_TRUE(close(out.g.download(), out.c.download(), is_max ? 0 : 1e-6, is_max ? 0 : 1e-6));
      if (is_max) {
        EXPECT_TRUE(equal(arg.g.download(), arg.c.download())) << "arg-max";
      }
      // Backward from the CPU's arg-max on both.
      auto argc = pair(arg.c.download());
      auto gy = pair(uniform(outs, ++seed));
      auto gx = pair(filled<float>(ins, kGarbage));
      cpu->pool2d_backward(kind, gy.c.get(), is_max ? argc.c.get() : nullptr, g, planes,
                           gx.c.get());
      gpu->pool2d_backward(kind, gy.g.get(), is_max ? argc.g.get() : nullptr, g, planes,
                           gx.g.get());
      EXPECT_TRUE(equal(gx.g.download(), gx.c.download())) << "backward";
    }
  }
}

// Sets an environment variable while in scope (a null value leaves it unset), then unsets it:
// TRINE_CONV_WORKSPACE (the generic convolution's chunk budget), TRINE_CUDA_MINING_WORKSPACE.
struct ScopedEnv {
  ScopedEnv(const char* var, const char* value) : name(var) {
    if (value) setenv(var, value, 1);
  }
  ~ScopedEnv() { unsetenv(name); }
  const char* name;
};

// conv2d_forward/backward (composites): the CPU's per-image path against the CUDA backend's
// chunked im2col + cuBLAS: atol 1e-5 sqrt(K), rtol 1e-4, K = C kh kw the GEMM's inner size
// (the bias gradient is a plain sum over N OH OW: the same tolerance). Each shape runs in one
// chunk (the backend's budget) and in chunks of 2 images (2, 2, 1: a short last chunk).
TEST_F(CudaParity, Conv2dComposite) {
  const ConvGeom geoms[] = {
      {3, 9, 8, 3, 2, 2, 1, 1, 0, 0, 0},
      {2, 7, 7, 3, 3, 1, 1, 1, 1, 0, 0},
      {4, 6, 5, 1, 1, 1, 1, 0, 0, 0, 0},
  };
  uint32_t seed = 350;
  for (ConvGeom g : geoms) {
    g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
    g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
    for (int64_t per_chunk : {0, 2}) {  // images per chunk (0: the backend's budget)
      const int64_t N = 5, M = 5, K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
      const double atol = 1e-5 * std::sqrt(static_cast<double>(K)), rtol = 1e-4;
      SCOPED_TRACE("C " + std::to_string(g.C) + " H " + std::to_string(g.H) + " W " +
                   std::to_string(g.W) + " k " + std::to_string(g.kh) + "x" + std::to_string(g.kw) +
                   (per_chunk ? ", chunks of " + std::to_string(per_chunk) + " images" : ""));
      const std::string bytes = std::to_string(per_chunk * K * ohw * 4);
      ScopedEnv budget("TRINE_CONV_WORKSPACE", per_chunk ? bytes.c_str() : nullptr);
      auto x = pair(uniform(N * chw, ++seed));
      auto w = pair(uniform(M * K, ++seed));
      auto bias = pair(uniform(M, ++seed));
      for (bool with_bias : {true, false}) {
        auto y = pair(filled<float>(N * M * ohw, kGarbage));
        cpu->conv2d_forward(x.c.get(), w.c.get(), with_bias ? bias.c.get() : nullptr, g, N, M,
                            y.c.get());
        gpu->conv2d_forward(x.g.get(), w.g.get(), with_bias ? bias.g.get() : nullptr, g, N, M,
                            y.g.get());
        EXPECT_TRUE(close(y.g.download(), y.c.download(), atol, rtol))
            << "forward" << (with_bias ? " with bias" : "");
      }
      auto gy = pair(uniform(N * M * ohw, ++seed));
      for (bool want_gx : {true, false}) {
        auto gx = pair(filled<float>(N * chw, kGarbage));
        auto gw = pair(filled<float>(M * K, kGarbage));
        auto gb = pair(filled<float>(M, kGarbage));
        cpu->conv2d_backward(x.c.get(), w.c.get(), gy.c.get(), g, N, M,
                             want_gx ? gx.c.get() : nullptr, gw.c.get(), gb.c.get());
        gpu->conv2d_backward(x.g.get(), w.g.get(), gy.g.get(), g, N, M,
                             want_gx ? gx.g.get() : nullptr, gw.g.get(), gb.g.get());
        if (want_gx) {
          EXPECT_TRUE(close(gx.g.download(), gx.c.download(), atol, rtol)) << "gx";
        } else {
          EXPECT_TRUE(equal(gx.g.download(), gx.c.download())) << "gx (not asked for: untouched)";
        }
        EXPECT_TRUE(close(gw.g.download(), gw.c.download(), atol, rtol)) << "gw";
        EXPECT_TRUE(close(gb.g.download(), gb.c.download(), atol, rtol)) << "gb";
      }
    }
  }
}

// Every |got - want| <= atol + factor * bound (elementwise); reports the worst element.
::testing::AssertionResult within(const std::vector<float>& got, const std::vector<float>& want,
                                  const std::vector<float>& bound, double factor, double atol) {
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double excess = std::fabs(static_cast<double>(got[i]) - want[i]) - atol -
                          factor * std::fabs(static_cast<double>(bound[i]));
    if (!(excess <= 0)) {  // NaN counts as a miss
      ++bad;
      if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements off by more than " << atol << " + " << factor
         << " x bound; worst at " << worst << ": cuda " << got[worst] << ", cpu " << want[worst]
         << ", bound " << bound[worst];
}

// Restores a backend's FP32 convolutions when it goes out of scope (a failed check included).
struct Fp32ConvsAfter {
  explicit Fp32ConvsAfter(Backend& b) : be(b) {}
  ~Fp32ConvsAfter() { be.set_conv_math(ConvMath::FP32); }
  Backend& be;
};

// set_conv_math(ConvMath::TF32): each product's inputs keep 10 of their 23 mantissa bits
// (relative error under 2^-10 each, rounded or truncated), so an output may miss the CPU's FP32
// by 2^-9 of the sum of its products' magnitudes, which the same convolution over |x|, |w| and
// |gy| gives: atol 1e-5 + 2^-9 that sum. The GEMMs do run in TF32: the results differ from the
// GPU's own FP32 ones. Back in FP32, the convolution and a plain GEMM match the CPU again with
// the tolerances of Conv2dComposite and Gemm, which TF32's error (about 2^-11 sqrt(K) |x w|)
// would exceed.
TEST_F(CudaParity, Conv2dInTf32) {
  ConvGeom g{16, 13, 11, 3, 3, 1, 1, 1, 1, 0, 0};
  g.OH = 13, g.OW = 11;
  const int64_t N = 3, M = 24, K = g.col_rows(), ohw = g.OH * g.OW, chw = g.C * g.H * g.W;
  const double factor = 1.0 / 512, atol = 1e-5;
  const std::vector<float> xv = uniform(N * chw, 370), wv = uniform(M * K, 371),
                           bv = uniform(M, 372), gyv = uniform(N * M * ohw, 373);
  auto magnitudes = [](std::vector<float> v) {
    for (float& e : v) e = std::fabs(e);
    return v;
  };
  auto x = pair(xv), w = pair(wv), bias = pair(bv), gy = pair(gyv);
  auto ax = pair(magnitudes(xv)), aw = pair(magnitudes(wv)), agy = pair(magnitudes(gyv));

  // CPU references (FP32) and the bounds: |y| from |x|, |w| (the bias is added in FP32);
  // |gx|, |gw|, |gb| from |x|, |w|, |gy|.
  auto y = pair(filled<float>(N * M * ohw, kGarbage)),
       y_bound = pair(filled<float>(N * M * ohw, 0));
  auto gx = pair(filled<float>(N * chw, kGarbage)), gx_bound = pair(filled<float>(N * chw, 0));
  auto gw = pair(filled<float>(M * K, kGarbage)), gw_bound = pair(filled<float>(M * K, 0));
  auto gb = pair(filled<float>(M, kGarbage)), gb_bound = pair(filled<float>(M, 0));
  cpu->conv2d_forward(x.c.get(), w.c.get(), bias.c.get(), g, N, M, y.c.get());
  cpu->conv2d_forward(ax.c.get(), aw.c.get(), nullptr, g, N, M, y_bound.c.get());
  cpu->conv2d_backward(x.c.get(), w.c.get(), gy.c.get(), g, N, M, gx.c.get(), gw.c.get(),
                       gb.c.get());
  cpu->conv2d_backward(ax.c.get(), aw.c.get(), agy.c.get(), g, N, M, gx_bound.c.get(),
                       gw_bound.c.get(), gb_bound.c.get());

  std::vector<float> tf32[4];  // y, gx, gw, gb
  {
    Fp32ConvsAfter restore(*gpu);
    gpu->set_conv_math(ConvMath::TF32);
    EXPECT_EQ(gpu->conv_math(), ConvMath::TF32);
    gpu->conv2d_forward(x.g.get(), w.g.get(), bias.g.get(), g, N, M, y.g.get());
    gpu->conv2d_backward(x.g.get(), w.g.get(), gy.g.get(), g, N, M, gx.g.get(), gw.g.get(),
                         gb.g.get());
    tf32[0] = y.g.download(), tf32[1] = gx.g.download(), tf32[2] = gw.g.download(),
    tf32[3] = gb.g.download();
  }
  EXPECT_EQ(gpu->conv_math(), ConvMath::FP32);
  EXPECT_TRUE(within(tf32[0], y.c.download(), y_bound.c.download(), factor, atol)) << "y";
  EXPECT_TRUE(within(tf32[1], gx.c.download(), gx_bound.c.download(), factor, atol)) << "gx";
  EXPECT_TRUE(within(tf32[2], gw.c.download(), gw_bound.c.download(), factor, atol)) << "gw";
  EXPECT_TRUE(within(tf32[3], gb.c.download(), gb_bound.c.download(), factor, atol)) << "gb";

  // FP32 again: the same convolution on the GPU, then a GEMM.
  const double fp32_atol = 1e-5 * std::sqrt(static_cast<double>(K)), fp32_rtol = 1e-4;
  gpu->conv2d_forward(x.g.get(), w.g.get(), bias.g.get(), g, N, M, y.g.get());
  gpu->conv2d_backward(x.g.get(), w.g.get(), gy.g.get(), g, N, M, gx.g.get(), gw.g.get(),
                       gb.g.get());
  const std::vector<float> fp32[4] = {y.g.download(), gx.g.download(), gw.g.download(),
                                      gb.g.download()};
  EXPECT_TRUE(close(fp32[0], y.c.download(), fp32_atol, fp32_rtol)) << "y in FP32";
  EXPECT_TRUE(close(fp32[1], gx.c.download(), fp32_atol, fp32_rtol)) << "gx in FP32";
  EXPECT_TRUE(close(fp32[2], gw.c.download(), fp32_atol, fp32_rtol)) << "gw in FP32";
  EXPECT_NE(tf32[0], fp32[0]) << "the forward GEMMs did not run in TF32";
  EXPECT_NE(tf32[1], fp32[1]) << "the input-gradient GEMMs did not run in TF32";
  EXPECT_NE(tf32[2], fp32[2]) << "the weight-gradient GEMMs did not run in TF32";

  const int64_t m = 29, n = 31, k = 64;
  auto a = pair(uniform(m * k, 374)), b = pair(uniform(k * n, 375));
  auto c = pair(filled<float>(m * n, kGarbage));
  cpu->gemm(false, false, m, n, k, 1.f, a.c.get(), k, b.c.get(), n, 0.f, c.c.get(), n);
  gpu->gemm(false, false, m, n, k, 1.f, a.g.get(), k, b.g.get(), n, 0.f, c.g.get(), n);
  EXPECT_TRUE(close(c.g.download(), c.c.download(), 1e-5 * std::sqrt(double(k)), 1e-5))
      << "a GEMM after a TF32 convolution";
}

TEST_F(CudaParity, Conv2dWorkspaceFromTheEnvironmentIsChecked) {
  ConvGeom g{1, 4, 4, 3, 3, 1, 1, 1, 1, 0, 0};
  g.OH = g.OW = 4;
  auto x = pair(uniform(16, 360));
  auto w = pair(uniform(9, 361));
  auto y = pair(filled<float>(16, kGarbage));
  for (const char* bad : {"abc", "0", "-5", "12x", ""}) {
    ScopedEnv budget("TRINE_CONV_WORKSPACE", bad);
    EXPECT_THROW(
        {
          try {
            gpu->conv2d_forward(x.g.get(), w.g.get(), nullptr, g, 1, 1, y.g.get());
          } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find("TRINE_CONV_WORKSPACE"), std::string::npos)
                << e.what();
            throw;
          }
        },
        UsageError)
        << "TRINE_CONV_WORKSPACE='" << bad << "'";
  }
}

// batch_norm_forward/backward (composites, fused on both), with and without the fused ReLU:
// statistics in double on both, added in another order; outputs through float products (FMA on
// the GPU): atol 1e-5, rtol 1e-5 for the statistics and y, atol 1e-5, rtol 1e-4 for the
// gradients. The backward masks by the CPU's output on both.
TEST_F(CudaParity, BatchNormComposite) {
  struct Case {
    int64_t N, C, HW;
  };
  const Case cases[] = {{4, 3, 25}, {7, 5, 1}, {2, 2, 150001}, {3, 130, 7}};
  uint32_t seed = 370;
  for (const Case& k : cases) {
    SCOPED_TRACE("N " + std::to_string(k.N) + " C " + std::to_string(k.C) + " HW " +
                 std::to_string(k.HW));
    const int64_t total = k.N * k.C * k.HW;
    std::vector<float> xv = uniform(total, ++seed, -2.f, 3.f);
    auto x = pair(xv);
    auto weight = pair(uniform(k.C, ++seed, 0.5f, 1.5f));
    auto bias = pair(uniform(k.C, ++seed));
    // (affine, fused ReLU)
    for (auto [affine, relu] :
         {std::pair(true, false), std::pair(false, false), std::pair(true, true)}) {
      SCOPED_TRACE(std::string(affine ? "affine" : "no weight/bias") + (relu ? ", ReLU" : ""));
      auto y = pair(filled<float>(total, kGarbage));
      auto mean = pair(filled<float>(k.C, kGarbage));
      auto var = pair(filled<float>(k.C, kGarbage));
      auto invstd = pair(filled<float>(k.C, kGarbage));
      cpu->batch_norm_forward(x.c.get(), k.N, k.C, k.HW, affine ? weight.c.get() : nullptr,
                              affine ? bias.c.get() : nullptr, 1e-5f, relu, y.c.get(), mean.c.get(),
                              var.c.get(), invstd.c.get());
      gpu->batch_norm_forward(x.g.get(), k.N, k.C, k.HW, affine ? weight.g.get() : nullptr,
                              affine ? bias.g.get() : nullptr, 1e-5f, relu, y.g.get(), mean.g.get(),
                              var.g.get(), invstd.g.get());
      EXPECT_TRUE(close(mean.g.download(), mean.c.download(), 1e-5, 1e-5)) << "mean";
      EXPECT_TRUE(close(var.g.download(), var.c.download(), 1e-5, 1e-5)) << "var";
      EXPECT_TRUE(close(invstd.g.download(), invstd.c.download(), 1e-5, 1e-5)) << "invstd";
      EXPECT_TRUE(close(y.g.download(), y.c.download(), 1e-5, 1e-5)) << "y";
      // Backward from the CPU's statistics on both.
      auto m = pair(mean.c.download());
      auto is = pair(invstd.c.download());
      auto mask = pair(y.c.download());
      const float* mask_c = relu ? mask.c.get() : nullptr;
      const float* mask_g = relu ? mask.g.get() : nullptr;
      auto gy = pair(uniform(total, ++seed));
      auto gx = pair(filled<float>(total, kGarbage));
      auto gw = pair(filled<float>(k.C, kGarbage));
      auto gb = pair(filled<float>(k.C, kGarbage));
      cpu->batch_norm_backward(x.c.get(), mask_c, gy.c.get(), k.N, k.C, k.HW, m.c.get(), is.c.get(),
                               affine ? weight.c.get() : nullptr, gx.c.get(), gw.c.get(),
                               gb.c.get());
      gpu->batch_norm_backward(x.g.get(), mask_g, gy.g.get(), k.N, k.C, k.HW, m.g.get(), is.g.get(),
                               affine ? weight.g.get() : nullptr, gx.g.get(), gw.g.get(),
                               gb.g.get());
      EXPECT_TRUE(close(gx.g.download(), gx.c.download(), 1e-5, 1e-4)) << "gx";
      EXPECT_TRUE(close(gw.g.download(), gw.c.download(), 1e-5, 1e-4)) << "gweight";
      EXPECT_TRUE(close(gb.g.download(), gb.c.download(), 1e-5, 1e-4)) << "gbias";
    }
  }
}

// batch_norm_inference with given statistics, with and without the fused ReLU: invstd in double
// on both, rounded once, then y = x scale + shift in float (an FMA on the GPU): atol 1e-5, rtol
// 1e-5.
TEST_F(CudaParity, BatchNormInference) {
  struct Case {
    int64_t N, C, HW;
  };
  const Case cases[] = {{4, 3, 25}, {7, 5, 1}, {2, 2, 150001}, {3, 130, 7}};
  uint32_t seed = 470;
  for (const Case& k : cases) {
    SCOPED_TRACE("N " + std::to_string(k.N) + " C " + std::to_string(k.C) + " HW " +
                 std::to_string(k.HW));
    const int64_t total = k.N * k.C * k.HW;
    auto x = pair(uniform(total, ++seed, -2.f, 3.f));
    auto mean = pair(uniform(k.C, ++seed, -1.f, 1.f));
    auto var = pair(uniform(k.C, ++seed, 0.f, 4.f));
    auto weight = pair(uniform(k.C, ++seed, 0.5f, 1.5f));
    auto bias = pair(uniform(k.C, ++seed));
    // (affine, fused ReLU)
    for (auto [affine, relu] :
         {std::pair(true, false), std::pair(false, false), std::pair(true, true)}) {
      SCOPED_TRACE(std::string(affine ? "affine" : "no weight/bias") + (relu ? ", ReLU" : ""));
      auto y = pair(filled<float>(total, kGarbage));
      cpu->batch_norm_inference(x.c.get(), k.N, k.C, k.HW, mean.c.get(), var.c.get(),
                                affine ? weight.c.get() : nullptr, affine ? bias.c.get() : nullptr,
                                1e-5f, relu, y.c.get());
      gpu->batch_norm_inference(x.g.get(), k.N, k.C, k.HW, mean.g.get(), var.g.get(),
                                affine ? weight.g.get() : nullptr, affine ? bias.g.get() : nullptr,
                                1e-5f, relu, y.g.get());
      EXPECT_TRUE(close(y.g.download(), y.c.download(), 1e-5, 1e-5));
    }
  }
}

// In place, in double on both, rounded once: exact but for a last-bit difference where a double
// rounds differently after an FMA (atol 0, rtol 1e-7).
TEST_F(CudaParity, BatchNormUpdateRunning) {
  for (int64_t C : {1, 7, 1000}) {
    SCOPED_TRACE("C " + std::to_string(C));
    auto mean = pair(uniform(C, 11, -3.f, 3.f)), var = pair(uniform(C, 12, 0.f, 5.f));
    auto rm = pair(uniform(C, 13)), rv = pair(uniform(C, 14, 0.5f, 2.f));
    for (int step = 0; step < 2; ++step) {
      cpu->batch_norm_update_running(mean.c.get(), var.c.get(), C, 0.1f, 64.f / 63.f, rm.c.get(),
                                     rv.c.get());
      gpu->batch_norm_update_running(mean.g.get(), var.g.get(), C, 0.1f, 64.f / 63.f, rm.g.get(),
                                     rv.g.get());
    }
    EXPECT_TRUE(close(rm.g.download(), rm.c.download(), 0, 1e-7)) << "running mean";
    EXPECT_TRUE(close(rv.g.download(), rv.c.download(), 0, 1e-7)) << "running var";
  }
}

// ---------------------------------------------------------------------------- random numbers

TEST_F(CudaParity, RandomStreams) {
  const int64_t n = 100003;
  for (uint64_t offset : {uint64_t{0}, uint64_t{12345}, (uint64_t{1} << 32) - 7}) {
    auto u = pair(filled<float>(n, kGarbage));
    cpu->random_uniform(u.c.get(), n, 42, offset);
    gpu->random_uniform(u.g.get(), n, 42, offset);
    EXPECT_TRUE(equal(u.g.download(), u.c.download())) << "uniform: bit-identical";
    // Normal: the same Box-Muller formula over identical uniforms; log/sqrt/cos differ by an ulp
    // or two between libraries: atol 1e-5, rtol 1e-5.
    auto z = pair(filled<float>(n, kGarbage));
    cpu->random_normal(z.c.get(), n, 7, offset);
    gpu->random_normal(z.g.get(), n, 7, offset);
    EXPECT_TRUE(close(z.g.download(), z.c.download(), 1e-5, 1e-5)) << "normal";
  }
}

// ---------------------------------------------------------------------------- optimizers

// A few steps of each update from identical state: fused multiply-adds on the GPU round a little
// differently: atol 1e-6, rtol 1e-5.
TEST_F(CudaParity, OptimizerSteps) {
  const int64_t n = 1031;
  const SgdStep sgds[] = {
      {0.1f, 0.f, 0.f, 0.f, false, true},
      {0.05f, 0.9f, 0.f, 1e-4f, false, true},
      {0.05f, 0.9f, 0.1f, 1e-4f, true, false},
  };
  uint32_t seed = 500;
  for (const SgdStep& s : sgds) {
    auto p = pair(uniform(n, ++seed));
    auto buf = pair(uniform(n, ++seed));
    for (int step = 0; step < 3; ++step) {
      auto g = pair(uniform(n, ++seed));
      SgdStep st = s;
      st.first = s.first && step == 0;
      cpu->sgd_step(p.c.get(), g.c.get(), buf.c.get(), n, st);
      gpu->sgd_step(p.g.get(), g.g.get(), buf.g.get(), n, st);
    }
    EXPECT_TRUE(close(p.g.download(), p.c.download(), 1e-6, 1e-5)) << "sgd param";
    EXPECT_TRUE(close(buf.g.download(), buf.c.download(), 1e-6, 1e-5)) << "sgd momentum";
  }
  for (bool decoupled : {false, true}) {
    auto p = pair(uniform(n, ++seed));
    auto m = pair(filled<float>(n, 0.f));
    auto v = pair(filled<float>(n, 0.f));
    for (int64_t step = 1; step <= 3; ++step) {
      auto g = pair(uniform(n, ++seed));
      const AdamStep s{1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, decoupled, step};
      cpu->adam_step(p.c.get(), g.c.get(), m.c.get(), v.c.get(), n, s);
      gpu->adam_step(p.g.get(), g.g.get(), m.g.get(), v.g.get(), n, s);
    }
    EXPECT_TRUE(close(p.g.download(), p.c.download(), 1e-6, 1e-5)) << "adam param";
    EXPECT_TRUE(close(m.g.download(), m.c.download(), 1e-6, 1e-5)) << "adam m";
    EXPECT_TRUE(close(v.g.download(), v.c.download(), 1e-7, 1e-5)) << "adam v";
  }
}

// 37 parameters (two launches of up to 32), empty ones and ones a block boundary apart, each with
// its own step count, against the CPU's one adam_step each: as OptimizerSteps.
TEST_F(CudaParity, AdamStepMany) {
  const std::vector<int64_t> sizes = {
      1, 4096, 4097, 0, 300001, 7, 4095, 12, 1, 8192, 5000, 3,  2,  17, 65, 0,  4098, 33, 100,
      1, 2,    3,    4, 5,      6, 7,    8,  9, 10,   11,   12, 13, 14, 15, 16, 17,   18};
  std::vector<std::unique_ptr<Pair<float>>> bufs;  // p, g, m, v of each parameter
  std::vector<AdamTensor> on_cpu, on_gpu;
  uint32_t seed = 900;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t n = static_cast<size_t>(sizes[i]);
    for (int k = 0; k < 4; ++k)
      bufs.push_back(std::make_unique<Pair<float>>(
          *cpu, *gpu, k == 3 ? uniform(n, ++seed, 0.f, 0.01f) : uniform(n, ++seed)));
    auto at = [&](int k) -> Pair<float>& { return *bufs[bufs.size() - 4 + k]; };
    const int64_t step = 1 + static_cast<int64_t>(i % 5);
    on_cpu.push_back({at(0).c.get(), at(1).c.get(), at(2).c.get(), at(3).c.get(), sizes[i], step});
    on_gpu.push_back({at(0).g.get(), at(1).g.get(), at(2).g.get(), at(3).g.get(), sizes[i], step});
  }
  for (bool decoupled : {false, true}) {
    const AdamStep s{1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, decoupled, -7};  // its step: unread
    for (AdamTensor& t : on_cpu)
      cpu->adam_step(t.p, t.g, t.m, t.v, t.n,
                     {s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, decoupled, t.step});
    gpu->adam_step_many(on_gpu, s);
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i) + " of " + std::to_string(sizes[i]));
    EXPECT_TRUE(close(bufs[4 * i]->g.download(), bufs[4 * i]->c.download(), 1e-6, 1e-5)) << "p";
    EXPECT_TRUE(close(bufs[4 * i + 2]->g.download(), bufs[4 * i + 2]->c.download(), 1e-6, 1e-5))
        << "m";
    EXPECT_TRUE(close(bufs[4 * i + 3]->g.download(), bufs[4 * i + 3]->c.download(), 1e-7, 1e-5))
        << "v";
  }
}

// ---------------------------------------------------------------------------- mining

// A B x B distance matrix from few levels (ties), with NaNs at `nan_every` (0: none), and
// labels with `classes` classes plus one singleton class (an anchor without positives).
struct MiningBatch {
  int64_t B;
  std::vector<float> D;
  std::vector<int32_t> labels;
};

MiningBatch mining_batch(int64_t B, int classes, uint32_t seed, int nan_every) {
  MiningBatch m{B, levels(static_cast<size_t>(B * B), seed, 40, 0.05f),
                randint(static_cast<size_t>(B), seed + 1, 0, classes - 1)};
  for (int64_t i = 0; i < B; ++i) m.D[i * B + i] = 0.f;
  if (nan_every > 0)
    for (size_t i = 5; i < m.D.size(); i += static_cast<size_t>(nan_every)) m.D[i] = kNaN;
  if (B > 3) m.labels[B - 1] = classes + 7;  // singleton
  return m;
}

std::vector<MiningBatch> mining_batches(bool with_nan = true) {
  std::vector<MiningBatch> v;
  v.push_back(mining_batch(37, 4, 1, 0));
  if (with_nan) v.push_back(mining_batch(61, 6, 2, 17));  // with NaN distances
  v.push_back(mining_batch(257, 9, 3, 0));                // more anchors than threads per block
  v.push_back(mining_batch(1, 1, 4, 0));                  // one anchor: no positive, no negative
  MiningBatch one_class = mining_batch(23, 1, 5, 0);
  std::fill(one_class.labels.begin(), one_class.labels.end(), 3);  // no negatives anywhere
  v.push_back(one_class);
  return v;
}

// Exact: -1 ("none") becomes index 0 with mask 0, any other index stays with mask 1.
TEST_F(CudaParity, SplitIndices) {
  for (int64_t n : {1, 37, 100003}) {
    SCOPED_TRACE("n " + std::to_string(n));
    auto idx = pair(randint(static_cast<size_t>(n), static_cast<uint32_t>(n), -1, 50));
    auto safe = pair(filled<int32_t>(static_cast<size_t>(n), -12345));
    auto valid = pair(filled<float>(static_cast<size_t>(n), kGarbage));
    cpu->split_indices(idx.c.get(), n, safe.c.get(), valid.c.get());
    gpu->split_indices(idx.g.get(), n, safe.g.get(), valid.g.get());
    EXPECT_TRUE(equal(safe.g.download(), safe.c.download())) << "index";
    EXPECT_TRUE(equal(valid.g.download(), valid.c.download())) << "mask";
  }
}

// Indices are exact: the same picks, lowest index on ties.
TEST_F(CudaParity, MineAnchorPairs) {
  for (const MiningBatch& m : mining_batches()) {
    SCOPED_TRACE("B " + std::to_string(m.B));
    auto D = pair(m.D);
    auto labels = pair(m.labels);
    for (PositivePick pick : {PositivePick::Hardest, PositivePick::Easiest}) {
      auto pos = pair(filled<int32_t>(m.B, -12345));
      auto neg = pair(filled<int32_t>(m.B, -12345));
      cpu->mine_anchor_pairs(D.c.get(), labels.c.get(), m.B, pick, pos.c.get(), neg.c.get());
      gpu->mine_anchor_pairs(D.g.get(), labels.g.get(), m.B, pick, pos.g.get(), neg.g.get());
      EXPECT_TRUE(equal(pos.g.download(), pos.c.download())) << "positives";
      EXPECT_TRUE(equal(neg.g.download(), neg.c.download())) << "negatives";
    }
  }
}

void semihard_cases(Backend& cpu, Backend& gpu, const std::vector<MiningBatch>& batches,
                    const std::vector<SemiHardMode>& modes = {SemiHardMode::Facenet,
                                                              SemiHardMode::Tfa}) {
  for (const MiningBatch& m : batches) {
    SCOPED_TRACE("B " + std::to_string(m.B));
    Pair<float> D(cpu, gpu, m.D);
    Pair<int32_t> labels(cpu, gpu, m.labels);
    for (SemiHardMode mode : modes) {
      Pair<int32_t> neg(cpu, gpu, filled<int32_t>(m.B * m.B, -12345));
      cpu.mine_semihard(D.c.get(), labels.c.get(), m.B, 0.2f, mode, neg.c.get());
      gpu.mine_semihard(D.g.get(), labels.g.get(), m.B, 0.2f, mode, neg.g.get());
      EXPECT_TRUE(equal(neg.g.download(), neg.c.download()))  // exact
          << (mode == SemiHardMode::Facenet ? "facenet" : "tfa");
    }
  }
}

TEST_F(CudaParity, MineSemihard) {
  semihard_cases(*cpu, *gpu, mining_batches());
}

TEST_F(CudaParity, MineSemihardThroughTheWorkspace) {
  // The global-memory workspace of the mining kernels (for batches too big for shared memory).
  ScopedEnv force("TRINE_CUDA_MINING_WORKSPACE", "1");
  semihard_cases(*cpu, *gpu, mining_batches());
}

// Row statistics are double sums of float terms in another order (soft terms go through the
// device's expf/log1pf): atol 1e-6, rtol 1e-5. grad_D entries are sums of weights (integers in the
// hard modes): atol 1e-5, rtol 1e-5. Their totals (triplet_set_totals, from the CPU's row
// statistics on both devices, for each denominator; out pre-filled with garbage) are double sums
// in another order, rounded to float: atol 1e-6, rtol 1e-6.
void triplet_set_cases(Backend& cpu, Backend& gpu, const std::vector<MiningBatch>& batches,
                       bool with_swap = true) {
  struct Config {
    const char* name;
    TripletSetParams p;
  };
  const Config configs[] = {
      {"batch-all", {0.2f, -kInf, kInf, false, false, false, false}},
      {"semi-hard window", {0.2f, 0.f, 0.2f, false, false, false, false}},
      {"hard window inclusive", {0.2f, -kInf, 0.f, false, true, false, false}},
      {"soft", {0.f, -kInf, kInf, false, false, true, false}},
      {"swap", {0.2f, -kInf, kInf, false, false, false, true}},
      {"soft swap window", {0.f, -0.1f, 0.3f, true, false, true, true}},
  };
  for (const MiningBatch& m : batches) {
    SCOPED_TRACE("B " + std::to_string(m.B));
    Pair<float> D(cpu, gpu, m.D);
    Pair<int32_t> labels(cpu, gpu, m.labels);
    for (const Config& c : configs) {
      if (c.p.swap && !with_swap) continue;
      SCOPED_TRACE(c.name);
      Pair<double> stats(cpu, gpu, filled<double>(m.B * 5, 1e300));
      Pair<float> grad(cpu, gpu, filled<float>(m.B * m.B, kGarbage));
      cpu.triplet_set_loss(D.c.get(), labels.c.get(), m.B, c.p, stats.c.get(), grad.c.get());
      gpu.triplet_set_loss(D.g.get(), labels.g.get(), m.B, c.p, stats.g.get(), grad.g.get());
      EXPECT_TRUE(close(stats.g.download(), stats.c.download(), 1e-6, 1e-5)) << "row stats";
      EXPECT_TRUE(close(grad.g.download(), grad.c.download(), 1e-5, 1e-5)) << "grad_D";
      Pair<double> rows(cpu, gpu, stats.c.download());
      for (int denom_stat : {-1, 1, 2}) {
        Pair<float> out(cpu, gpu, filled<float>(8, kGarbage));
        cpu.triplet_set_totals(rows.c.get(), m.B, denom_stat, out.c.get());
        gpu.triplet_set_totals(rows.g.get(), m.B, denom_stat, out.g.get());
        EXPECT_TRUE(close(out.g.download(), out.c.download(), 1e-6, 1e-6))
            << "totals, denominator " << denom_stat;
      }
    }
  }
}

TEST_F(CudaParity, TripletSetLoss) {
  triplet_set_cases(*cpu, *gpu, mining_batches(false));
}

TEST_F(CudaParity, TripletSetLossThroughTheWorkspace) {
  // The global-memory workspace of the mining kernels (for batches too big for shared memory).
  ScopedEnv force("TRINE_CUDA_MINING_WORKSPACE", "1");
  triplet_set_cases(*cpu, *gpu, mining_batches(false));
}

// NaN distances: m = D[a,n] - D[a,p] is NaN, so the triplet is outside every window and does not
// count (backend.h), in the CPU's reference loop (soft, swap), its vectorized hinge loop and the
// CUDA kernel alike.
TEST_F(CudaParity, TripletSetLossWithNaNDistances) {
  triplet_set_cases(*cpu, *gpu, {mining_batch(61, 6, 2, 17)});
}

// Batches whose per-anchor working set (12 B bytes of dynamic shared memory) is past what a block
// gets without opting in: B = 4500 needs more than 48 KiB; at B = 4096 the dynamic part alone is
// exactly 48 KiB, which fits only if the kernels' static shared arrays are counted too. 4096 goes
// first: once a bigger batch has raised a kernel's limit, it stays raised for the process.
// (Without swap: the CPU reference runs those serially, too slowly here.)
TEST_F(CudaParity, MiningOnALargeBatch) {
  std::vector<MiningBatch> big;
  big.push_back(mining_batch(4096, 128, 10, 0));
  big.push_back(mining_batch(4500, 150, 9, 0));
  triplet_set_cases(*cpu, *gpu, big, false);
  semihard_cases(*cpu, *gpu, big, {SemiHardMode::Tfa});
}

}  // namespace
}  // namespace trine
