// Test helpers: seeded inputs, closeness assertions and plain-loop references.
#include "support/test_util.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <utility>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"

namespace trine::test {

std::vector<float> random_values(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi, bool requires_grad) {
  Tensor t =
      Tensor::from_vector(random_values(static_cast<size_t>(numel_of(shape)), seed, lo, hi), shape);
  return t.set_requires_grad(requires_grad);
}

Tensor away_from_zero(const Shape& shape, uint64_t seed, float lo, float hi, bool requires_grad) {
  const size_t n = static_cast<size_t>(numel_of(shape));
  std::vector<float> mag = random_values(n, seed, lo, hi);
  std::vector<float> sign = random_values(n, seed + 1, -1.f, 1.f);
  for (size_t i = 0; i < n; ++i) mag[i] = sign[i] < 0 ? -mag[i] : mag[i];
  return Tensor::from_vector(mag, shape).set_requires_grad(requires_grad);
}

Tensor distinct_tensor(const Shape& shape, uint64_t seed, float spacing, bool requires_grad) {
  const size_t n = static_cast<size_t>(numel_of(shape));
  std::vector<float> v(n);
  // Integer multiples of spacing, so a copy shifted by spacing / 2 never ties with this one.
  const int64_t half = static_cast<int64_t>(n) / 2;
  for (size_t i = 0; i < n; ++i)
    v[i] = spacing * static_cast<float>(static_cast<int64_t>(i) - half);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::shuffle(v.begin(), v.end(), rng);
  return Tensor::from_vector(v, shape).set_requires_grad(requires_grad);
}

namespace {
template <typename T>
::testing::AssertionResult close_impl(const std::vector<float>& got, const std::vector<T>& want,
                                      double atol, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << "size " << got.size() << " != expected size " << want.size();
  size_t worst = 0, bad = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = static_cast<double>(want[i]);
    const double err = std::fabs(static_cast<double>(got[i]) - w);
    const double tol = atol + rtol * std::fabs(w);
    const double excess = std::isnan(err) ? INFINITY : err - tol;
    if (excess > 0) ++bad;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements differ; worst at " << worst << ": got "
         << got[worst] << ", expected " << static_cast<double>(want[worst]) << " (atol " << atol
         << ", rtol " << rtol << ")";
}
}  // namespace

::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<float>& want,
                                     double atol, double rtol) {
  return close_impl(got, want, atol, rtol);
}

::testing::AssertionResult close_in_norm(const std::vector<float>& got,
                                         const std::vector<float>& want, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << ", expected " << want.size();
  double norm2 = 0, diff2 = 0, worst = -1;
  size_t at = 0;
  for (size_t j = 0; j < want.size(); ++j) {
    const double d = double(got[j]) - want[j];
    norm2 += double(want[j]) * want[j];
    diff2 += d * d;
    if (std::fabs(d) > worst) worst = std::fabs(d), at = j;
  }
  if (norm2 == 0) return ::testing::AssertionFailure() << "the reference is all zeros";
  const double rel = std::sqrt(diff2 / norm2);
  if (rel <= rtol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "|got - want| / |want| = " << rel << " > " << rtol
                                       << "; the largest difference at element " << at << ": got "
                                       << got[at] << ", want " << want[at];
}

::testing::AssertionResult all_close_ref(const std::vector<float>& got,
                                         const std::vector<double>& want, double atol,
                                         double rtol) {
  return close_impl(got, want, atol, rtol);
}

::testing::AssertionResult all_finite(const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      return ::testing::AssertionFailure() << "element " << i << " is " << v[i];
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult gradcheck_ok(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                                        const GradcheckOptions& options) {
  GradcheckResult r = gradcheck(fn, inputs, options);
  if (r.ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.message << " (max |diff| " << r.max_abs_error << ")";
}

// ------------------------------------------------------------------------------ references

void ref_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      // beta = 0 never reads C (BLAS semantics), so garbage there cannot leak through.
      c[i * ldc + j] = alpha * acc + (beta == 0 ? 0.0 : beta * c[i * ldc + j]);
    }
}

std::vector<double> ref_conv2d(const ConvShape& s, const std::vector<float>& x,
                               const std::vector<float>& w, const std::vector<float>& b) {
  const int64_t OH = s.OH(), OW = s.OW();
  std::vector<double> y(static_cast<size_t>(s.N * s.M * OH * OW));
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t m = 0; m < s.M; ++m)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double acc = b.empty() ? 0.0 : b[m];
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t ky = 0; ky < s.kh; ++ky)
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                const int64_t iy = oy * s.sh - s.ph + ky, ix = ox * s.sw - s.pw + kx;
                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                acc += static_cast<double>(x[((n * s.C + c) * s.H + iy) * s.W + ix]) *
                       w[((m * s.C + c) * s.kh + ky) * s.kw + kx];
              }
          y[((n * s.M + m) * OH + oy) * OW + ox] = acc;
        }
  return y;
}

void ref_conv2d_backward(const ConvShape& s, const std::vector<float>& x,
                         const std::vector<float>& w, const std::vector<float>& gy,
                         std::vector<double>& gx, std::vector<double>& gw,
                         std::vector<double>& gb) {
  const int64_t OH = s.OH(), OW = s.OW();
  gx.assign(x.size(), 0.0);
  gw.assign(w.size(), 0.0);
  gb.assign(static_cast<size_t>(s.M), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t m = 0; m < s.M; ++m)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          const double g = gy[((n * s.M + m) * OH + oy) * OW + ox];
          gb[m] += g;
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t ky = 0; ky < s.kh; ++ky)
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                const int64_t iy = oy * s.sh - s.ph + ky, ix = ox * s.sw - s.pw + kx;
                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                const int64_t xi = ((n * s.C + c) * s.H + iy) * s.W + ix;
                const int64_t wi = ((m * s.C + c) * s.kh + ky) * s.kw + kx;
                gx[xi] += g * w[wi];
                gw[wi] += g * x[xi];
              }
        }
}

namespace {
// Flat index into the input of the first maximum of output (plane, oy, ox), or of its first NaN;
// -1 for none.
int64_t max_arg(const PoolShape& s, const std::vector<float>& x, int64_t plane, int64_t oy,
                int64_t ox) {
  int64_t arg = -1;
  for (int64_t ky = 0; ky < s.k; ++ky)
    for (int64_t kx = 0; kx < s.k; ++kx) {
      const int64_t iy = oy * s.s - s.p + ky, ix = ox * s.s - s.p + kx;
      if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
      const int64_t at = (plane * s.H + iy) * s.W + ix;
      if (arg < 0 || x[at] > x[arg] || (std::isnan(x[at]) && !std::isnan(x[arg]))) arg = at;
    }
  return arg;
}
}  // namespace

std::vector<double> ref_max_pool(const PoolShape& s, const std::vector<float>& x) {
  const int64_t OH = s.OH(), OW = s.OW();
  std::vector<double> y(static_cast<size_t>(s.N * s.C * OH * OW));
  for (int64_t p = 0; p < s.N * s.C; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) y[(p * OH + oy) * OW + ox] = x[max_arg(s, x, p, oy, ox)];
  return y;
}

std::vector<double> ref_max_pool_backward(const PoolShape& s, const std::vector<float>& x,
                                          const std::vector<float>& gy) {
  const int64_t OH = s.OH(), OW = s.OW();
  std::vector<double> gx(x.size(), 0.0);
  for (int64_t p = 0; p < s.N * s.C; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox)
        gx[max_arg(s, x, p, oy, ox)] += gy[(p * OH + oy) * OW + ox];
  return gx;
}

std::vector<double> ref_avg_pool(const PoolShape& s, const std::vector<float>& x) {
  const int64_t OH = s.OH(), OW = s.OW();
  std::vector<double> y(static_cast<size_t>(s.N * s.C * OH * OW));
  for (int64_t p = 0; p < s.N * s.C; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        double acc = 0;
        for (int64_t ky = 0; ky < s.k; ++ky)
          for (int64_t kx = 0; kx < s.k; ++kx) {
            const int64_t iy = oy * s.s - s.p + ky, ix = ox * s.s - s.p + kx;
            if (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W) acc += x[(p * s.H + iy) * s.W + ix];
          }
        y[(p * OH + oy) * OW + ox] = acc / static_cast<double>(s.k * s.k);
      }
  return y;
}

std::vector<double> ref_avg_pool_backward(const PoolShape& s, const std::vector<float>& gy) {
  const int64_t OH = s.OH(), OW = s.OW();
  std::vector<double> gx(static_cast<size_t>(s.N * s.C * s.H * s.W), 0.0);
  for (int64_t p = 0; p < s.N * s.C; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox)
        for (int64_t ky = 0; ky < s.k; ++ky)
          for (int64_t kx = 0; kx < s.k; ++kx) {
            const int64_t iy = oy * s.s - s.p + ky, ix = ox * s.s - s.p + kx;
            if (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W)
              gx[(p * s.H + iy) * s.W + ix] +=
                  gy[(p * OH + oy) * OW + ox] / static_cast<double>(s.k * s.k);
          }
  return gx;
}

TempDir::TempDir(const std::string& prefix) {
  static int counter = 0;
  path_ = std::filesystem::path(::testing::TempDir()) /
          ("trine_" + prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

std::pair<Tensor, std::vector<int32_t>> pattern_batch(int step, int64_t P, int64_t K) {
  std::mt19937 prng(7);  // the same class patterns in every batch
  std::normal_distribution<float> pd(0.f, 1.f);
  std::vector<std::vector<float>> pattern(10, std::vector<float>(28 * 28));
  for (auto& p : pattern)
    for (float& v : p) v = pd(prng);
  std::mt19937 rng(static_cast<uint32_t>(100 + step));
  std::normal_distribution<float> noise(0.f, 2.f);
  std::vector<float> x;
  std::vector<int32_t> labels;
  for (int64_t p = 0; p < P; ++p) {
    const int32_t c = static_cast<int32_t>((p + step) % 10);
    for (int64_t k = 0; k < K; ++k) {
      for (float v : pattern[c]) x.push_back(v + noise(rng));
      labels.push_back(c);
    }
  }
  return {Tensor::from_vector(x, {P * K, 1, 28, 28}), labels};
}

void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

std::string cuda_unavailable_reason() {
  static const std::string why = [] {  // the same for the whole process
    if (!cuda_built())
      return std::string("trine was built without CUDA (TRINE_CUDA=OFF or no nvcc)");
    try {
      (void)backend_for(Device::cuda(0));
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  }();
  return why;
}

}  // namespace trine::test
