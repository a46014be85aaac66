// GEMM (Backend::gemm, gemm_batched, matmul) against a plain triple loop, and blas::info(). ctest
// also runs it with TRINE_BLAS_CORE=openblas, under OpenBLAS's own kernel choice.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "engine/backend.h"
#include "engine/cpu/blas.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "support/test_util.h"

namespace trine {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSentinel = 12345.f;  // in C's padding: must survive untouched

struct GemmCase {
  int64_t m, n, k;
};

const std::vector<GemmCase> kShapes = {
    {1, 1, 1},   {7, 13, 5},   {13, 7, 11}, {1, 300, 1}, {300, 1, 1}, {1, 1, 257},
    {2, 3, 600}, {64, 96, 80}, {5, 3, 0},   {0, 4, 3},   {4, 0, 3},
};

// Row-major storage of a rows x cols matrix with leading dimension ld; padding holds `pad`.
std::vector<float> padded(int64_t rows, int64_t cols, int64_t ld, uint64_t seed, float pad) {
  std::vector<float> v(static_cast<size_t>(std::max<int64_t>(rows * ld, 1)), pad);
  std::vector<float> r = test::random_values(static_cast<size_t>(rows * cols), seed);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) v[i * ld + j] = r[i * cols + j];
  return v;
}

// Runs one gemm through the backend and compares with ref_gemm; `extra` pads every leading
// dimension. A and B padding holds NaN (it must never be read); C padding holds a sentinel.
void check_gemm(const GemmCase& s, bool ta, bool tb, float alpha, float beta, int64_t extra,
                uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << s.m << "x" << s.n << "x" << s.k << " ta=" << ta << " tb=" << tb
               << " alpha=" << alpha << " beta=" << beta << " ld+" << extra);
  const int64_t a_rows = ta ? s.k : s.m, a_cols = ta ? s.m : s.k;
  const int64_t b_rows = tb ? s.n : s.k, b_cols = tb ? s.k : s.n;
  const int64_t lda = std::max<int64_t>(a_cols, 1) + extra;
  const int64_t ldb = std::max<int64_t>(b_cols, 1) + extra;
  const int64_t ldc = std::max<int64_t>(s.n, 1) + extra;
  std::vector<float> a = padded(a_rows, a_cols, lda, seed, kNaN);
  std::vector<float> b = padded(b_rows, b_cols, ldb, seed + 1, kNaN);
  std::vector<float> c = padded(s.m, s.n, ldc, seed + 2, kSentinel);
  if (beta == 0.f)  // BLAS semantics: C is not read, so NaN garbage there must not leak out
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) c[i * ldc + j] = kNaN;
  std::vector<double> want(c.begin(), c.end());
  test::ref_gemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, want.data(),
                 ldc);
  backend_for(Device::cpu())
      .gemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  // float32 accumulation over k terms of size <= 1.
  EXPECT_TRUE(test::all_close_ref(c, want, 2e-6 * static_cast<double>(s.k + 1), 1e-5));
}

TEST(Gemm, MatchesTripleLoopOnOddShapes) {
  uint64_t seed = 1;
  for (const GemmCase& s : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) check_gemm(s, ta, tb, 1.f, 0.f, 0, seed += 3);
}

TEST(Gemm, PaddedLeadingDimensions) {
  uint64_t seed = 100;
  for (const GemmCase& s : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) check_gemm(s, ta, tb, 1.f, 0.f, 3, seed += 3);
}

TEST(Gemm, AlphaBeta) {
  uint64_t seed = 200;
  const std::vector<std::pair<float, float>> ab = {
      {0.5f, 2.f}, {-1.5f, 0.25f}, {0.f, 1.f}, {2.f, -1.f}, {0.f, 0.f}};
  for (const GemmCase& s : kShapes)
    for (auto [alpha, beta] : ab)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) check_gemm(s, ta, tb, alpha, beta, 2, seed += 3);
}

TEST(Gemm, BatchedMatchesPerMatrixLoop) {
  const int64_t batch = 3, m = 5, n = 7, k = 4;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "ta=" << ta << " tb=" << tb);
      const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
      const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
      const int64_t lda = a_cols + 1, ldb = b_cols + 2, ldc = n + 1;
      // Strides leave gaps between the matrices, which must stay untouched.
      const int64_t sa = a_rows * lda + 3, sb = b_rows * ldb + 5, sc = m * ldc + 4;
      std::vector<float> a = test::random_values(static_cast<size_t>(batch * sa), 300 + ta);
      std::vector<float> b = test::random_values(static_cast<size_t>(batch * sb), 310 + tb);
      std::vector<float> c(static_cast<size_t>(batch * sc), kSentinel);
      std::vector<float> c0 = test::random_values(c.size(), 320);
      for (int64_t i = 0; i < batch; ++i)
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < n; ++j) c[i * sc + r * ldc + j] = c0[i * sc + r * ldc + j];
      std::vector<double> want(c.begin(), c.end());
      for (int64_t i = 0; i < batch; ++i)
        test::ref_gemm(ta, tb, m, n, k, 0.75, a.data() + i * sa, lda, b.data() + i * sb, ldb, 0.5,
                       want.data() + i * sc, ldc);
      backend_for(Device::cpu())
          .gemm_batched(ta, tb, m, n, k, 0.75f, a.data(), lda, sa, b.data(), ldb, sb, 0.5f,
                        c.data(), ldc, sc, batch);
      EXPECT_TRUE(test::all_close_ref(c, want, 1e-5, 1e-5));
    }
}

TEST(Gemm, MatmulOp) {
  Tensor a = test::random_tensor({7, 13}, 400), b = test::random_tensor({13, 5}, 401);
  std::vector<double> want(35, 0.0);
  std::vector<float> av = a.to_vector(), bv = b.to_vector();
  test::ref_gemm(false, false, 7, 5, 13, 1.0, av.data(), 13, bv.data(), 5, 0.0, want.data(), 5);
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{7, 5}));
  EXPECT_TRUE(test::all_close_ref(c.to_vector(), want, 1e-5, 1e-5));

  // [B,m,k] @ [k,n] and [B,m,k] @ [B,k,n].
  Tensor x = test::random_tensor({3, 4, 6}, 402);
  Tensor w = test::random_tensor({6, 5}, 403), wb = test::random_tensor({3, 6, 5}, 404);
  std::vector<float> xv = x.to_vector(), wv = w.to_vector(), wbv = wb.to_vector();
  std::vector<double> want2(60, 0.0), want3(60, 0.0);
  for (int i = 0; i < 3; ++i) {
    test::ref_gemm(false, false, 4, 5, 6, 1.0, xv.data() + i * 24, 6, wv.data(), 5, 0.0,
                   want2.data() + i * 20, 5);
    test::ref_gemm(false, false, 4, 5, 6, 1.0, xv.data() + i * 24, 6, wbv.data() + i * 30, 5, 0.0,
                   want3.data() + i * 20, 5);
  }
  Tensor y2 = matmul(x, w), y3 = matmul(x, wb);
  EXPECT_EQ(y2.shape(), (Shape{3, 4, 5}));
  EXPECT_EQ(y3.shape(), (Shape{3, 4, 5}));
  EXPECT_TRUE(test::all_close_ref(y2.to_vector(), want2, 1e-5, 1e-5));
  EXPECT_TRUE(test::all_close_ref(y3.to_vector(), want3, 1e-5, 1e-5));

  // k = 0: an empty sum is 0.
  EXPECT_EQ(matmul(Tensor::zeros({3, 0}), Tensor::zeros({0, 4})).to_vector(),
            std::vector<float>(12, 0.f));
  EXPECT_TRUE(test::throws_with<Error>(
      [] {
        matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 2}));
      },
      {"matmul", "[2, 3]", "[4, 2]"}));
  EXPECT_THROW(matmul(Tensor::zeros({3}), Tensor::zeros({3})), Error);
  EXPECT_THROW(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 2})), Error);
}

TEST(Gemm, LinearMatchesLoop) {
  Tensor x = test::random_tensor({6, 9}, 410), w = test::random_tensor({4, 9}, 411);
  Tensor b = test::random_tensor({4}, 412);
  std::vector<float> xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector();
  std::vector<double> want(24);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 4; ++j) want[i * 4 + j] = bv[j];
  test::ref_gemm(false, true, 6, 4, 9, 1.0, xv.data(), 9, wv.data(), 9, 1.0, want.data(), 4);
  EXPECT_TRUE(test::all_close_ref(linear(x, w, b).to_vector(), want, 1e-5, 1e-5));
  EXPECT_THROW(linear(x, test::random_tensor({4, 8}, 413), b), Error);
  EXPECT_THROW(linear(x, w, test::random_tensor({5}, 414)), Error);
}

// The environment as the test started: loading OpenBLAS sets OPENBLAS_CORETYPE itself.
struct EnvAtStart {
  bool has_coretype = std::getenv("OPENBLAS_CORETYPE") != nullptr;
  const char* trine_core_env = std::getenv("TRINE_BLAS_CORE");
  std::string trine_core = trine_core_env ? trine_core_env : "";
  bool has_trine_core = trine_core_env != nullptr;
};
const EnvAtStart kEnvAtStart;

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

TEST(Blas, InfoReportsTheLoadedKernel) {
  const blas::Info& info = blas::info();
  EXPECT_FALSE(info.library.empty());
  EXPECT_FALSE(info.core.empty());
  EXPECT_NE(info.core, "unknown");
  EXPECT_FALSE(info.choice.empty());
  EXPECT_GE(info.threads, 1);
  EXPECT_NE(blas::summary().find(info.core), std::string::npos) << blas::summary();
  EXPECT_NE(backend_for(Device::cpu()).description().find("OpenBLAS"), std::string::npos);
  // Too late to choose a kernel once the library is loaded.
  EXPECT_THROW(blas::set_core_override("Haswell"), Error);
}

TEST(Blas, CpuidChoiceIsAKnownCore) {
  std::string reason;
  const std::string core = blas::core_from_cpuid(&reason);
  const std::set<std::string> known = {"",        "Cooperlake", "SkylakeX",
                                       "Haswell", "Zen",        "Sandybridge"};
  EXPECT_TRUE(known.count(core)) << "core_from_cpuid returned '" << core << "'";
  EXPECT_FALSE(reason.empty());
  EXPECT_EQ(blas::core_from_cpuid(), core);  // deterministic, reason optional

  // Whatever was chosen is what OpenBLAS runs, unless an environment variable decided.
  const blas::Info& info = blas::info();
  if (kEnvAtStart.has_coretype) {
    EXPECT_NE(info.choice.find("OPENBLAS_CORETYPE"), std::string::npos) << info.choice;
  } else if (kEnvAtStart.trine_core == "openblas") {
    EXPECT_NE(info.choice.find("own detection"), std::string::npos) << info.choice;
  } else if (!kEnvAtStart.has_trine_core && !core.empty()) {
    EXPECT_EQ(lower(info.core), lower(core)) << info.choice;
    EXPECT_NE(info.choice.find("CPUID"), std::string::npos) << info.choice;
  }
}

}  // namespace
}  // namespace trine
