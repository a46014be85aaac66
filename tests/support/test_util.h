// Test helpers shared by the engine tests: seeded inputs, closeness assertions, a gradcheck
// assertion, and plain-loop reference implementations (GEMM, conv2d, pooling) in double.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/tensor.h"

namespace trine::test {

// n values uniform in [lo, hi) from a std::mt19937 seeded with `seed` (independent of trine's
// generator, so tests do not depend on each other's draws).
std::vector<float> random_values(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f);
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f,
                     bool requires_grad = false);
// Values whose magnitudes lie in [lo, hi) with a random sign: away from the kink at 0.
Tensor away_from_zero(const Shape& shape, uint64_t seed, float lo = 0.2f, float hi = 1.5f,
                      bool requires_grad = false);
// A random permutation of {spacing * (i - n/2)}: no two elements closer than `spacing` (max,
// min and max-pooling without ties, so finite differences do not cross an arg-max switch).
Tensor distinct_tensor(const Shape& shape, uint64_t seed, float spacing = 0.05f,
                       bool requires_grad = false);

// Every |got - want| <= atol + rtol * |want| (and the sizes agree); reports the worst element.
::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<float>& want,
                                     double atol, double rtol = 0);
::testing::AssertionResult all_close_ref(const std::vector<float>& got,
                                         const std::vector<double>& want, double atol,
                                         double rtol = 0);
::testing::AssertionResult all_finite(const std::vector<float>& v);
// |got - want| <= rtol |want| in Euclidean norm over the whole vector (not per element: for
// gradients, where rounding may route a max-pool near-tie to the other pixel); the sizes agree,
// and `want` is not all zeros. Reports the relative difference and the largest element's.
::testing::AssertionResult close_in_norm(const std::vector<float>& got,
                                         const std::vector<float>& want, double rtol);

// gradcheck() as an assertion: EXPECT_TRUE(gradcheck_ok(fn, inputs)).
::testing::AssertionResult gradcheck_ok(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                                        const GradcheckOptions& options = {});

// Why the CUDA tests cannot run here, as a skip reason; empty when a GPU is usable. Names the
// error that asking for cuda:0 gives (cudaGetDeviceCount's code, say, which tells a driver too
// old for the toolkit from no GPU at all).
std::string cuda_unavailable_reason();

// Runs `fn`, expects it to throw E, and checks that what() contains every string in `parts`.
template <typename E, typename F>
::testing::AssertionResult throws_with(F&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const E& e) {
    const std::string what = e.what();
    for (const std::string& p : parts)
      if (what.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << what << "\" lacks \"" << p << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw the wrong type: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// A fresh, empty folder under the test temp dir, unique to this process (several people and CI
// may run the suite on one machine at once), removed with everything in it when the object goes.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // path/name as a string.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Writes `bytes` to `path` (creating its folders), replacing it.
void write_bytes(const std::filesystem::path& path, const std::string& bytes);

// A stb_image_write callback (stbi_write_*_to_func) that appends to the std::string at `context`.
void append_to_string(void* context, void* data, int size);

// Workload W1's shape on synthetic data, for tests that need no data files: batch `step` of P
// classes x K images [P K, 1, 28, 28] and their labels. Class c is a fixed random 28 x 28 pattern
// plus noise (standard deviation 2, so the classes overlap and a triplet loss stays positive);
// batch `step` takes classes step, step + 1, ... (mod 10).
std::pair<Tensor, std::vector<int32_t>> pattern_batch(int step, int64_t P, int64_t K);

// ---- plain-loop references (double accumulation)

// C = alpha op(A) op(B) + beta C, row-major with leading dimensions; op(A) is m x k.
void ref_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
              const float* a, int64_t lda, const float* b, int64_t ldb, double beta, double* c,
              int64_t ldc);

struct ConvShape {
  int64_t N, C, H, W;  // input
  int64_t M, kh, kw;   // output channels, kernel
  int64_t sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t OH() const { return (H + 2 * ph - kh) / sh + 1; }
  int64_t OW() const { return (W + 2 * pw - kw) / sw + 1; }
};
// y [N,M,OH,OW] = conv(x [N,C,H,W], w [M,C,kh,kw]) + b [M] (b may be empty).
std::vector<double> ref_conv2d(const ConvShape& s, const std::vector<float>& x,
                               const std::vector<float>& w, const std::vector<float>& b);
// Gradients of sum(gy * y) with respect to x, w and b.
void ref_conv2d_backward(const ConvShape& s, const std::vector<float>& x,
                         const std::vector<float>& w, const std::vector<float>& gy,
                         std::vector<double>& gx, std::vector<double>& gw, std::vector<double>& gb);

struct PoolShape {
  int64_t N, C, H, W, k, s, p;
  int64_t OH() const { return (H + 2 * p - k) / s + 1; }
  int64_t OW() const { return (W + 2 * p - k) / s + 1; }
};
// Max pooling (padding never wins; ties go to the first maximum in row-major window order, and a
// NaN wins over any number, the first NaN over later ones) and
// average pooling with count_include_pad semantics (always divides by k*k), with the gradients of
// sum(gy * y).
std::vector<double> ref_max_pool(const PoolShape& s, const std::vector<float>& x);
std::vector<double> ref_max_pool_backward(const PoolShape& s, const std::vector<float>& x,
                                          const std::vector<float>& gy);
std::vector<double> ref_avg_pool(const PoolShape& s, const std::vector<float>& x);
std::vector<double> ref_avg_pool_backward(const PoolShape& s, const std::vector<float>& gy);

}  // namespace trine::test
