// Smoothing, min/max downsampling and shared-bin density histograms.
#include "engine/report/series.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"

namespace trine::report {

std::vector<double> smooth(const std::vector<double>& y, int window) {
  if (window <= 1 || y.size() < 2) return y;
  const size_t n = y.size();
  // Prefix sums over finite values only, so one NaN does not poison its neighbours.
  std::vector<double> sum(n + 1, 0.0);
  std::vector<size_t> count(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    const bool ok = std::isfinite(y[i]);
    sum[i + 1] = sum[i] + (ok ? y[i] : 0.0);
    count[i + 1] = count[i] + (ok ? 1 : 0);
  }
  const size_t before = static_cast<size_t>(window - 1) / 2;
  const size_t after = static_cast<size_t>(window) / 2;
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t a = i >= before ? i - before : 0;
    const size_t b = std::min(n, i + after + 1);
    const size_t c = count[b] - count[a];
    out[i] =
        c ? (sum[b] - sum[a]) / static_cast<double>(c) : std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

std::vector<size_t> downsample_minmax(std::span<const double> y, size_t max_points) {
  TRINE_CHECK(max_points >= 4, "downsample_minmax: max_points must be at least 4, got ",
              max_points);
  const size_t n = y.size();
  std::vector<size_t> keep;
  if (n <= max_points) {
    keep.resize(n);
    for (size_t i = 0; i < n; ++i) keep[i] = i;
    return keep;
  }
  const size_t buckets = (max_points - 2) / 2;
  const size_t inner = n - 2;  // indices 1 .. n-2 go into buckets
  keep.reserve(max_points);
  keep.push_back(0);
  for (size_t k = 0; k < buckets; ++k) {
    const size_t a = 1 + k * inner / buckets;
    const size_t b = 1 + (k + 1) * inner / buckets;
    if (a >= b) continue;
    size_t lo = a, hi = a;
    for (size_t i = a + 1; i < b; ++i) {
      if (y[i] < y[lo]) lo = i;
      if (y[i] > y[hi]) hi = i;
    }
    keep.push_back(std::min(lo, hi));
    if (lo != hi) keep.push_back(std::max(lo, hi));
  }
  keep.push_back(n - 1);
  return keep;
}

Histogram histogram_density(const std::vector<std::span<const double>>& samples, int bins) {
  TRINE_CHECK(bins >= 1, "histogram_density: bins must be at least 1, got ", bins);
  Histogram h;
  h.bins = bins;
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  for (const auto& s : samples)
    for (double v : s)
      if (std::isfinite(v)) mn = std::min(mn, v), mx = std::max(mx, v);
  if (mn > mx) {
    h.lo = 0.0, h.hi = 1.0;
  } else if (mn == mx) {
    const double half = mn != 0 ? 0.1 * std::fabs(mn) : 0.5;
    h.lo = mn - half, h.hi = mn + half;
  } else {
    h.lo = mn, h.hi = mx;
  }
  const double w = h.bin_width();
  for (const auto& s : samples) {
    std::vector<double> d(static_cast<size_t>(bins), 0.0);
    size_t n = 0, bad = 0;
    for (double v : s) {
      if (!std::isfinite(v)) {
        ++bad;
        continue;
      }
      auto b = static_cast<int64_t>(std::floor((v - h.lo) / w));
      b = std::clamp<int64_t>(b, 0, bins - 1);  // the maximum itself, and rounding at the edges
      d[static_cast<size_t>(b)] += 1.0;
      ++n;
    }
    if (n)
      for (double& x : d) x /= static_cast<double>(n) * w;
    h.density.push_back(std::move(d));
    h.counts.push_back(n);
    h.skipped.push_back(bad);
  }
  return h;
}

}  // namespace trine::report
