// Data preparation for the report's charts: smoothing noisy curves, downsampling long ones for
// file size, and density histograms over shared bins.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace trine::report {

// One line of a line chart: points (x[i], y[i]) joined in index order. Non-finite points are
// gaps in the line. x and y must have the same length.
struct Series {
  std::string name;
  std::vector<double> x, y;
};

// Centered running mean: out[i] is the mean of the finite values among
// y[i - (window-1)/2 .. i + window/2] (the window shrinks at the ends, so there is no lag and
// no edge bias toward zero), NaN where that range holds no finite value. window <= 1 returns y
// unchanged. O(n).
std::vector<double> smooth(const std::vector<double>& y, int window);

// At most max_points (>= 4) points of a polyline with finite values, in index order, for
// drawing: the first and last points, and for each of (max_points - 2) / 2 equal index buckets
// in between, the points with the smallest and the largest y. Unlike striding, spikes survive.
// Returns the kept indices (ascending); all of them when n <= max_points.
std::vector<size_t> downsample_minmax(std::span<const double> y, size_t max_points);

// Histograms of several samples over one shared set of bins, each normalized to a density
// (sum of density * bin width = 1 for a sample with finite values).
struct Histogram {
  double lo = 0.0, hi = 1.0;  // range of the bins; bin b covers [lo + b w, lo + (b+1) w)
  int bins = 0;
  std::vector<std::vector<double>> density;  // [sample][bin]
  std::vector<size_t> counts;                // finite values per sample
  std::vector<size_t> skipped;               // non-finite values per sample (left out)
  double bin_width() const { return (hi - lo) / bins; }
};

// The bins span [min, max] of the finite values of all samples (the maximum lands in the last
// bin); a single distinct value v gets a range of width 0.2 |v| (1 when v = 0) centered on it;
// no finite values at all gives [0, 1] with zero densities. bins >= 1.
Histogram histogram_density(const std::vector<std::span<const double>>& samples, int bins);

}  // namespace trine::report
