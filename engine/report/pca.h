// 2-D projection of embeddings for the report's scatter plot: principal component analysis onto
// the top two axes, in double precision, deterministic.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace trine::report {

// Rows kept when subsampling n rows to at most max_points (>= 1): all of them when n <=
// max_points, else the evenly strided rows floor(i * n / max_points), i = 0 .. max_points-1.
std::vector<int64_t> strided_rows(int64_t n, int64_t max_points);

struct Pca2d {
  std::vector<int64_t> rows;                   // rows of x projected (ascending)
  std::vector<std::array<double, 2>> points;   // points[i]: row rows[i] on (PC 1, PC 2)
  std::array<double, 2> explained_variance{};  // fraction of the total variance on each axis
};

// PCA of x [N, D] (float32, any device; copied to the CPU) on the rows strided_rows(N,
// max_points), less any row holding a non-finite value: the rows are centered on their mean and
// projected onto the top two eigenvectors of their D x D covariance (block power iteration with
// Rayleigh-Ritz, double precision). Each axis's sign is fixed so that its largest-magnitude
// component is positive, so the result is deterministic. D = 1 gives a zero second coordinate;
// N = 0 gives no points.
Pca2d pca_2d_projection(const Tensor& x, int64_t max_points = 5000);

// pca_2d_projection(x, max_points).points; strided_rows(N, max_points) tells which rows they
// are when x holds only finite values.
std::vector<std::array<double, 2>> pca_2d(const Tensor& x, int64_t max_points = 5000);

}  // namespace trine::report
