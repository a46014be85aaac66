// SVG charts for the HTML report: line charts, overlaid density histograms and scatter plots on
// axes with readable ("nice") tick values, drawn as inline SVG markup with no script.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/report/series.h"

namespace trine::report {

// One point of a scatter plot; `label` picks its colour (and its legend entry).
struct ScatterPoint {
  double x = 0.0, y = 0.0;
  int32_t label = 0;
};

// A vertical reference line on a histogram (a decision threshold, say), with a short label.
struct Marker {
  std::string label;
  double x = 0.0;
};

struct LegendEntry {
  std::string label;  // plain text (escaped when drawn)
  std::string color;  // "#rrggbb"
};

// A drawn chart: the <svg class="chart"> element, its legend (drawn by the page in HTML, where
// long names wrap) and notes for the reader (values skipped, points downsampled). svg is empty
// when there was nothing to draw, and notes then say so.
struct ChartMarkup {
  std::string svg;
  std::vector<LegendEntry> legend;
  std::vector<std::string> notes;
};

struct LineChartOptions {
  bool log_x = false, log_y = false;  // a log axis skips values <= 0
  // Fixed axis ends (ROC: 0 and 1); NaN takes the end from the data, rounded out to a tick.
  double x_min = std::numeric_limits<double>::quiet_NaN();
  double x_max = std::numeric_limits<double>::quiet_NaN();
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
  bool diagonal = false;     // dashed y = x reference (chance level of a ROC curve)
  size_t max_points = 2000;  // per series, drawn (min/max downsampling beyond it); >= 4
};

// Ticks for an axis: the axis ends [lo, hi] (lo < hi always), tick values inside them and
// their labels.
struct AxisTicks {
  double lo = 0.0, hi = 1.0;
  std::vector<double> values;
  std::vector<std::string> labels;
};

// About `target` ticks at 1, 2 or 5 times a power of ten. With extend, lo/hi round outward to a
// tick; otherwise they are min/max. min == max widens to a small range around the value; labels
// use only the decimals the step needs, "k"/"M"/"G" for large values and exponents for tiny
// ones. min and max must be finite, min <= max.
AxisTicks linear_ticks(double min, double max, int target = 6, bool extend = true);

// Ticks at powers of ten (and 2x, 5x when the range spans at most two decades); lo/hi round out
// to powers of ten unless fixed. 0 < min <= max, finite.
AxisTicks log_ticks(double min, double max, bool extend = true);

// Colour `index` of a 20-colour palette (Tableau 10, then its light tints), cycling.
const char* palette_color(int64_t index);

// Lines of `series` against shared axes. Non-finite points (and points <= 0 on a log axis) are
// skipped and break the line; a point alone between gaps is drawn as a dot.
ChartMarkup line_chart_svg(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series,
                           const LineChartOptions& options = {});

// Density histograms of the named samples over shared bins (histogram_density), overlaid as
// translucent step areas, plus dashed markers. bins >= 1.
ChartMarkup histogram_svg(const std::string& title, const std::string& x_label,
                          const std::vector<std::pair<std::string, std::vector<double>>>& samples,
                          int bins, const std::vector<Marker>& markers = {});

// Points coloured by label. At most 20 distinct labels get one colour each and a legend entry
// named class_names[label] (the label number when out of range); more labels cycle the palette
// by label (LFW has thousands of identities) and get no legend. Non-finite points are skipped;
// beyond 10 000 points an even stride is drawn.
ChartMarkup scatter_svg(const std::string& title, const std::vector<ScatterPoint>& points,
                        const std::vector<std::string>& class_names, const std::string& x_label,
                        const std::string& y_label);

}  // namespace trine::report
