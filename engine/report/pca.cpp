// PCA onto two axes: covariance in double, block power iteration, Rayleigh-Ritz with a small
// Jacobi eigen-solver.
#include "engine/report/pca.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"

namespace trine::report {

namespace {

// Eigen-decomposition of a small symmetric matrix a [p, p] (row-major) by cyclic Jacobi
// rotations: on return a's diagonal holds the eigenvalues and v's columns the eigenvectors.
void jacobi_eigen(std::vector<double>& a, std::vector<double>& v, size_t p) {
  v.assign(p * p, 0.0);
  for (size_t i = 0; i < p; ++i) v[i * p + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (size_t i = 0; i < p; ++i)
      for (size_t j = 0; j < p; ++j) (i == j ? diag : off) += a[i * p + j] * a[i * p + j];
    if (off <= 1e-30 * diag || off == 0.0) return;
    for (size_t i = 0; i < p; ++i)
      for (size_t j = i + 1; j < p; ++j) {
        const double aij = a[i * p + j];
        if (aij == 0.0) continue;
        const double theta = (a[j * p + j] - a[i * p + i]) / (2 * aij);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::hypot(1.0, theta));
        const double c = 1 / std::hypot(1.0, t), s = t * c;
        for (size_t k = 0; k < p; ++k) {  // a <- a J (columns i, j)
          const double ki = a[k * p + i], kj = a[k * p + j];
          a[k * p + i] = c * ki - s * kj, a[k * p + j] = s * ki + c * kj;
        }
        for (size_t k = 0; k < p; ++k) {  // a <- J^T a (rows i, j)
          const double ik = a[i * p + k], jk = a[j * p + k];
          a[i * p + k] = c * ik - s * jk, a[j * p + k] = s * ik + c * jk;
        }
        for (size_t k = 0; k < p; ++k) {  // v <- v J
          const double ki = v[k * p + i], kj = v[k * p + j];
          v[k * p + i] = c * ki - s * kj, v[k * p + j] = s * ki + c * kj;
        }
      }
  }
}

// Orthonormalizes the p columns of q [d, p] in place (modified Gram-Schmidt, twice for
// accuracy); a column that collapses is replaced by a unit vector orthogonal to the others.
void orthonormalize(std::vector<double>& q, size_t d, size_t p) {
  for (size_t j = 0; j < p; ++j) {
    for (int pass = 0; pass < 2; ++pass)
      for (size_t k = 0; k < j; ++k) {
        double dot = 0;
        for (size_t r = 0; r < d; ++r) dot += q[r * p + j] * q[r * p + k];
        for (size_t r = 0; r < d; ++r) q[r * p + j] -= dot * q[r * p + k];
      }
    double norm = 0;
    for (size_t r = 0; r < d; ++r) norm += q[r * p + j] * q[r * p + j];
    norm = std::sqrt(norm);
    if (norm > 1e-300) {
      for (size_t r = 0; r < d; ++r) q[r * p + j] /= norm;
      continue;
    }
    // Degenerate (a rank-deficient covariance): try the unit vectors until one survives.
    for (size_t e = 0; e < d; ++e) {
      for (size_t r = 0; r < d; ++r) q[r * p + j] = r == e ? 1.0 : 0.0;
      for (size_t k = 0; k < j; ++k) {
        const double dot = q[e * p + k];
        for (size_t r = 0; r < d; ++r) q[r * p + j] -= dot * q[r * p + k];
      }
      double n2 = 0;
      for (size_t r = 0; r < d; ++r) n2 += q[r * p + j] * q[r * p + j];
      if (n2 > 1e-6) {
        for (size_t r = 0; r < d; ++r) q[r * p + j] /= std::sqrt(n2);
        break;
      }
    }
  }
}

}  // namespace

std::vector<int64_t> strided_rows(int64_t n, int64_t max_points) {
  TRINE_CHECK(n >= 0, "strided_rows: n must be >= 0, got ", n);
  TRINE_CHECK(max_points >= 1, "strided_rows: max_points must be >= 1, got ", max_points);
  const int64_t m = std::min(n, max_points);
  std::vector<int64_t> rows(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i)
    rows[static_cast<size_t>(i)] = i * (n / m) + i * (n % m) / m;  // floor(i n / m), no overflow
  return rows;
}

Pca2d pca_2d_projection(const Tensor& x, int64_t max_points) {
  TRINE_CHECK(x.defined(), "pca_2d: undefined tensor");
  TRINE_CHECK(x.dim() == 2, "pca_2d: need embeddings [N, D], got ", x.shape_str());
  TRINE_CHECK(x.dtype() == DType::F32, "pca_2d: need float32, got ", dtype_name(x.dtype()));
  TRINE_CHECK(max_points >= 1, "pca_2d: max_points must be >= 1, got ", max_points);
  const int64_t n = x.size(0);
  const auto d = static_cast<size_t>(x.size(1));
  TRINE_CHECK(d >= 1, "pca_2d: need at least one column, got ", x.shape_str());
  const std::vector<float> host = x.to_vector();

  Pca2d out;
  for (int64_t r : strided_rows(n, max_points)) {
    const float* row = host.data() + static_cast<size_t>(r) * d;
    if (std::all_of(row, row + d, [](float v) { return std::isfinite(v); })) out.rows.push_back(r);
  }
  const size_t m = out.rows.size();
  if (m == 0) return out;

  // Centered rows a [m, d] and covariance c [d, d] = a^T a / m (upper triangle, mirrored).
  std::vector<double> mean(d, 0.0), a(m * d);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < d; ++j) mean[j] += host[static_cast<size_t>(out.rows[i]) * d + j];
  for (double& v : mean) v /= static_cast<double>(m);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < d; ++j)
      a[i * d + j] = host[static_cast<size_t>(out.rows[i]) * d + j] - mean[j];
  std::vector<double> c(d * d, 0.0);
  for (size_t i = 0; i < m; ++i) {
    const double* ai = a.data() + i * d;
    for (size_t j = 0; j < d; ++j) {
      const double v = ai[j];
      if (v == 0.0) continue;
      double* cj = c.data() + j * d;
      for (size_t k = j; k < d; ++k) cj[k] += v * ai[k];
    }
  }
  double trace = 0.0;
  for (size_t j = 0; j < d; ++j) {
    for (size_t k = j; k < d; ++k) c[k * d + j] = c[j * d + k] /= static_cast<double>(m);
    trace += c[j * d + j];
  }

  // Block power iteration on p >= 2 vectors (extra ones speed convergence of the top two when
  // eigenvalues 2 and 3 are close), Rayleigh-Ritz each step. q [d, p]; fixed start values.
  const size_t p = std::min<size_t>(d, 4);
  std::vector<double> q(d * p), z(d * p), h(p * p), v;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (double& e : q) {  // splitmix64: deterministic, independent of trine's global generator
    uint64_t s = (state += 0x9E3779B97F4A7C15ull);
    s = (s ^ (s >> 30)) * 0xBF58476D1CE4E5B9ull;
    s = (s ^ (s >> 27)) * 0x94D049BB133111EBull;
    e = static_cast<double>((s ^ (s >> 31)) >> 11) / 9007199254740992.0 - 0.5;
  }
  orthonormalize(q, d, p);
  std::vector<double> theta(p, 0.0);
  constexpr int kMaxIterations = 1000;
  for (int iter = 0; iter < kMaxIterations; ++iter) {
    std::fill(z.begin(), z.end(), 0.0);  // z = c q
    for (size_t r = 0; r < d; ++r)
      for (size_t k = 0; k < d; ++k) {
        const double crk = c[r * d + k];
        if (crk == 0.0) continue;
        for (size_t j = 0; j < p; ++j) z[r * p + j] += crk * q[k * p + j];
      }
    // Rayleigh-Ritz: h = q^T c q, rotate q (and z = c q with it) onto h's eigenvectors.
    for (size_t i = 0; i < p; ++i)
      for (size_t j = 0; j < p; ++j) {
        double s = 0;
        for (size_t r = 0; r < d; ++r) s += q[r * p + i] * z[r * p + j];
        h[i * p + j] = s;
      }
    for (size_t i = 0; i < p; ++i)  // symmetrize rounding
      for (size_t j = i + 1; j < p; ++j)
        h[i * p + j] = h[j * p + i] = (h[i * p + j] + h[j * p + i]) / 2;
    jacobi_eigen(h, v, p);
    std::vector<size_t> order(p);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t i, size_t j) { return h[i * p + i] > h[j * p + j]; });
    std::vector<double> qr(d * p, 0.0), zr(d * p, 0.0);
    for (size_t r = 0; r < d; ++r)
      for (size_t j = 0; j < p; ++j)
        for (size_t k = 0; k < p; ++k) {
          qr[r * p + j] += q[r * p + k] * v[k * p + order[j]];
          zr[r * p + j] += z[r * p + k] * v[k * p + order[j]];
        }
    for (size_t j = 0; j < p; ++j) theta[j] = h[order[j] * p + order[j]];
    // Converged when the top two Ritz pairs have small residuals |c q - theta q|.
    double worst = 0.0;
    for (size_t j = 0; j < std::min<size_t>(p, 2); ++j) {
      double res = 0;
      for (size_t r = 0; r < d; ++r) {
        const double e = zr[r * p + j] - theta[j] * qr[r * p + j];
        res += e * e;
      }
      worst = std::max(worst, std::sqrt(res));
    }
    if (worst <= 1e-9 * std::max(theta[0], 1e-300) || trace == 0.0 || iter + 1 == kMaxIterations) {
      q = std::move(qr);
      break;
    }
    q = std::move(zr);  // next power step from c q, in the Ritz basis
    orthonormalize(q, d, p);
  }

  // Axes with a fixed sign: largest-magnitude component positive (first one on ties).
  std::array<std::vector<double>, 2> axis;
  for (size_t j = 0; j < 2; ++j) {
    axis[j].assign(d, 0.0);
    if (j >= p) continue;  // d == 1: no second axis
    size_t big = 0;
    for (size_t r = 0; r < d; ++r)
      if (std::fabs(q[r * p + j]) > std::fabs(q[big * p + j]) * (1 + 1e-12)) big = r;
    const double sign = q[big * p + j] < 0 ? -1.0 : 1.0;
    for (size_t r = 0; r < d; ++r) axis[j][r] = sign * q[r * p + j];
    out.explained_variance[j] = trace > 0 ? std::max(theta[j], 0.0) / trace : 0.0;
  }
  out.points.resize(m);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < 2; ++j) {
      double s = 0;
      for (size_t r = 0; r < d; ++r) s += a[i * d + r] * axis[j][r];
      out.points[i][j] = s;
    }
  return out;
}

std::vector<std::array<double, 2>> pca_2d(const Tensor& x, int64_t max_points) {
  return pca_2d_projection(x, max_points).points;
}

}  // namespace trine::report
