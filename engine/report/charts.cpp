// SVG charts: nice-number axes, line charts, density histograms and scatter plots.
#include "engine/report/charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "engine/error.h"
#include "engine/report/markup.h"

namespace trine::report {

namespace {

// Chart geometry in SVG user units; the page scales the whole viewBox to the card width.
constexpr double kWidth = 640, kHeight = 360;
constexpr double kLeft = 64, kRight = 18, kTop = 14, kBottom = 46;
constexpr double kPlotX0 = kLeft, kPlotX1 = kWidth - kRight;
constexpr double kPlotY0 = kTop, kPlotY1 = kHeight - kBottom;  // y0 is the top edge
constexpr double kClipPad = 4;  // the data area clips this far outside the axes (whole dots)

constexpr const char* kPalette[20] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                      "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
                                      "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"};

int decimals_for(double step) {
  return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 12);
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  std::string s(buf);
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // "-0.0"
  return s;
}

std::vector<std::string> linear_labels(const std::vector<double>& values, double step) {
  double m = 0;
  for (double v : values) m = std::max(m, std::fabs(v));
  std::vector<std::string> out;
  for (double v : values) {
    if (m >= 1e4) {
      // 20000 -> "20k": step counts on a training curve stay short.
      const double unit = m >= 1e9 ? 1e9 : m >= 1e6 ? 1e6 : 1e3;
      const char* suffix = m >= 1e9 ? "G" : m >= 1e6 ? "M" : "k";
      out.push_back(fixed(v / unit, decimals_for(step / unit)) + suffix);
    } else if (m < 1e-3) {
      const int digits = std::clamp(static_cast<int>(std::ceil(std::log10(m / step))) + 1, 1, 6);
      out.push_back(v == 0 ? "0" : format_number(v, digits));
    } else {
      out.push_back(fixed(v, decimals_for(step)));
    }
  }
  return out;
}

// Maps data values to SVG coordinates on one axis (linear or log10).
struct Scale {
  double d0, d1, p0, p1;
  bool log;
  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(d0)) / (std::log10(d1) - std::log10(d0))
                         : (v - d0) / (d1 - d0);
    return p0 + t * (p1 - p0);
  }
};

std::string svg_open(const std::string& title) {
  const std::string t = escape_html(title);
  return "<svg class=\"chart\" viewBox=\"0 0 " + svg_number(kWidth) + " " + svg_number(kHeight) +
         "\" role=\"img\" aria-label=\"" + t + "\"><title>" + t + "</title>";
}

// Grid, axis lines, tick labels and axis titles.
void draw_frame(std::string& o, const Scale& xs, const Scale& ys, const AxisTicks& xt,
                const AxisTicks& yt, const std::string& x_label, const std::string& y_label) {
  o += "<g class=\"grid\">";
  for (double v : yt.values) {
    const std::string y = svg_number(ys(v));
    o += "<line x1=\"" + svg_number(kPlotX0) + "\" x2=\"" + svg_number(kPlotX1) + "\" y1=\"" + y +
         "\" y2=\"" + y + "\"/>";
  }
  for (double v : xt.values) {
    const std::string x = svg_number(xs(v));
    o += "<line x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + svg_number(kPlotY0) + "\" y2=\"" +
         svg_number(kPlotY1) + "\"/>";
  }
  o += "</g><g class=\"axis\"><path d=\"M" + svg_number(kPlotX0) + "," + svg_number(kPlotY0) + "V" +
       svg_number(kPlotY1) + "H" + svg_number(kPlotX1) + "\"/>";
  for (size_t i = 0; i < yt.values.size(); ++i)
    o += "<text x=\"" + svg_number(kPlotX0 - 6) + "\" y=\"" + svg_number(ys(yt.values[i]) + 4) +
         "\" text-anchor=\"end\">" + escape_html(yt.labels[i]) + "</text>";
  for (size_t i = 0; i < xt.values.size(); ++i)
    o += "<text x=\"" + svg_number(xs(xt.values[i])) + "\" y=\"" + svg_number(kPlotY1 + 17) +
         "\" text-anchor=\"middle\">" + escape_html(xt.labels[i]) + "</text>";
  o += "<text class=\"label\" x=\"" + svg_number((kPlotX0 + kPlotX1) / 2) + "\" y=\"" +
       svg_number(kHeight - 8) + "\" text-anchor=\"middle\">" + escape_html(x_label) + "</text>";
  o += "<text class=\"label\" transform=\"rotate(-90)\" x=\"" +
       svg_number(-(kPlotY0 + kPlotY1) / 2) + "\" y=\"15\" text-anchor=\"middle\">" +
       escape_html(y_label) + "</text></g>";
}

// Opens the clipped data area: a nested <svg> whose viewBox equals its own box, so the data
// keeps the chart's coordinates (no ids needed, unlike a clipPath).
std::string data_area_open() {
  const double x = kPlotX0 - kClipPad, y = kPlotY0 - kClipPad;
  const double w = kPlotX1 - kPlotX0 + 2 * kClipPad, h = kPlotY1 - kPlotY0 + 2 * kClipPad;
  const std::string box =
      svg_number(x) + " " + svg_number(y) + " " + svg_number(w) + " " + svg_number(h);
  return "<svg x=\"" + svg_number(x) + "\" y=\"" + svg_number(y) + "\" width=\"" + svg_number(w) +
         "\" height=\"" + svg_number(h) + "\" viewBox=\"" + box + "\">";
}

Scale x_scale(const AxisTicks& t, bool log) {
  return {t.lo, t.hi, kPlotX0, kPlotX1, log};
}
Scale y_scale(const AxisTicks& t, bool log) {
  return {t.lo, t.hi, kPlotY1, kPlotY0, log};
}

std::string plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Axis ticks over [mn, mx] with optional fixed ends (NaN = from the data).
AxisTicks axis_for(double mn, double mx, double fixed_lo, double fixed_hi, bool log, int target) {
  const bool has_lo = std::isfinite(fixed_lo), has_hi = std::isfinite(fixed_hi);
  if (has_lo) mn = fixed_lo;
  if (has_hi) mx = fixed_hi;
  if (mn > mx) std::swap(mn, mx);
  if (log) {
    AxisTicks t = log_ticks(mn, mx, !(has_lo && has_hi));
    if (has_lo) t.lo = mn;
    if (has_hi) t.hi = mx;
    if (!(t.lo < t.hi)) t = log_ticks(mn, mx, true);
    return t;
  }
  AxisTicks t = linear_ticks(mn, mx, target, !(has_lo && has_hi));
  if (has_lo != has_hi) {  // one fixed end: keep it exactly, the other one rounded out
    AxisTicks u = linear_ticks(has_lo ? mn : t.lo, has_hi ? mx : t.hi, target, false);
    if (u.lo < u.hi) t = u;
  }
  return t;
}

}  // namespace

const char* palette_color(int64_t index) {
  const int64_t n = 20;
  return kPalette[((index % n) + n) % n];
}

AxisTicks linear_ticks(double min, double max, int target, bool extend) {
  TRINE_CHECK(std::isfinite(min) && std::isfinite(max) && min <= max,
              "linear_ticks: need finite min <= max, got ", min, " and ", max);
  target = std::max(target, 2);
  const double scale = std::max(std::fabs(min), std::fabs(max));
  if (max - min <= 1e-12 * scale || max == min) {
    // A constant: a range of +-10% around it (+-1 around 0), never a zero-width axis.
    const double half = scale > 0 ? 0.1 * scale : 1.0;
    min -= half, max += half;
    extend = true;
  }
  const double raw = (max - min) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  AxisTicks t;
  t.lo = extend ? std::floor(min / step + 1e-9) * step : min;
  t.hi = extend ? std::ceil(max / step - 1e-9) * step : max;
  const auto k0 = static_cast<int64_t>(std::ceil(t.lo / step - 1e-9));
  const auto k1 = static_cast<int64_t>(std::floor(t.hi / step + 1e-9));
  for (int64_t k = k0; k <= k1 && k - k0 < 100; ++k) {
    const double v = static_cast<double>(k) * step;
    t.values.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  t.labels = linear_labels(t.values, step);
  return t;
}

AxisTicks log_ticks(double min, double max, bool extend) {
  TRINE_CHECK(std::isfinite(min) && std::isfinite(max) && min > 0 && min <= max,
              "log_ticks: need finite 0 < min <= max, got ", min, " and ", max);
  AxisTicks t;
  if (extend) {
    const double a = std::floor(std::log10(min) + 1e-12);
    double b = std::ceil(std::log10(max) - 1e-12);
    if (b <= a) b = a + 1;
    t.lo = std::pow(10.0, a), t.hi = std::pow(10.0, b);
  } else {
    t.lo = min, t.hi = max;
    if (!(t.lo < t.hi)) t.lo = min / std::sqrt(10.0), t.hi = max * std::sqrt(10.0);
  }
  const auto a = static_cast<int64_t>(std::floor(std::log10(t.lo) + 1e-12));
  const auto b = static_cast<int64_t>(std::ceil(std::log10(t.hi) - 1e-12));
  const int64_t every = std::max<int64_t>(1, (b - a + 7) / 8);
  const auto inside = [&](double v) { return v >= t.lo * (1 - 1e-9) && v <= t.hi * (1 + 1e-9); };
  for (int64_t k = a; k <= b; ++k) {
    const double p = std::pow(10.0, static_cast<double>(k));
    if ((k - a) % every == 0 && inside(p)) t.values.push_back(p);
    if (b - a <= 2)  // few decades: 2x and 5x ticks too
      for (double m : {2.0, 5.0})
        if (inside(m * p)) t.values.push_back(m * p);
  }
  std::sort(t.values.begin(), t.values.end());
  // One style per axis: exponents for all ticks when any needs one ("1e-3 ... 1e-6").
  const bool exponents = t.lo < 1e-3 * (1 - 1e-9) || t.hi >= 1e4 * (1 + 1e-9);
  for (double v : t.values) {
    const int k = static_cast<int>(std::floor(std::log10(v) + 1e-9));
    const double m = std::round(v / std::pow(10.0, k));  // 1, 2 or 5
    if (!exponents)
      t.labels.push_back(format_number(v, 3));
    else if (k == 0)
      t.labels.push_back(svg_number(m, 0));  // "1", not "1e0"
    else
      t.labels.push_back(svg_number(m, 0) + "e" + std::to_string(k));
  }
  return t;
}

ChartMarkup line_chart_svg(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series,
                           const LineChartOptions& options) {
  TRINE_CHECK(options.max_points >= 4, "line chart \"", title,
              "\": max_points must be at least 4, got ", options.max_points);
  ChartMarkup out;
  using Segment = std::vector<std::pair<double, double>>;
  std::vector<std::vector<Segment>> lines(series.size());
  size_t non_finite = 0, non_positive = 0;
  double x_mn = INFINITY, x_mx = -INFINITY, y_mn = INFINITY, y_mx = -INFINITY;
  for (size_t s = 0; s < series.size(); ++s) {
    const Series& sr = series[s];
    TRINE_CHECK(sr.x.size() == sr.y.size(), "line chart \"", title, "\": series \"", sr.name,
                "\" has ", sr.x.size(), " x values but ", sr.y.size(), " y values");
    // Split into runs of drawable points; a skipped point is a gap in the line.
    std::vector<Segment>& segs = lines[s];
    bool open = false;
    size_t drawable = 0;
    for (size_t i = 0; i < sr.x.size(); ++i) {
      const double x = sr.x[i], y = sr.y[i];
      bool ok = std::isfinite(x) && std::isfinite(y);
      if (!ok) ++non_finite;
      if (ok && ((options.log_x && x <= 0) || (options.log_y && y <= 0)))
        ok = false, ++non_positive;
      if (!ok) {
        open = false;
        continue;
      }
      if (!open) segs.emplace_back(), open = true;
      segs.back().emplace_back(x, y);
      ++drawable;
    }
    // Downsample long series, each run in proportion to its length. Thousands of tiny runs
    // (a NaN every other step) could not stay under the budget: join them, dropping the gaps.
    if (drawable > options.max_points) {
      if (segs.size() > options.max_points / 8) {
        Segment all;
        for (const Segment& g : segs) all.insert(all.end(), g.begin(), g.end());
        segs.assign(1, std::move(all));
        out.notes.push_back("\"" + sr.name + "\": gaps between non-finite values not shown");
      }
      // Shares of what is left after every run's minimum of 4: the total stays <= max_points.
      const size_t spare = options.max_points - 4 * segs.size();
      size_t kept = 0;
      for (Segment& g : segs) {
        const size_t budget = 4 + spare * g.size() / drawable;
        if (g.size() > budget) {
          std::vector<double> ys(g.size());
          for (size_t i = 0; i < g.size(); ++i) ys[i] = g[i].second;
          Segment d;
          for (size_t i : downsample_minmax(ys, budget)) d.push_back(g[i]);
          g = std::move(d);
        }
        kept += g.size();
      }
      out.notes.push_back("\"" + sr.name + "\": " + std::to_string(drawable) +
                          " points, drawn as " + std::to_string(kept) + " (min/max per bucket)");
    }
    for (const Segment& g : segs)
      for (const auto& [x, y] : g) {
        x_mn = std::min(x_mn, x), x_mx = std::max(x_mx, x);
        y_mn = std::min(y_mn, y), y_mx = std::max(y_mx, y);
      }
    out.legend.push_back(
        {drawable ? sr.name : sr.name + " (no data)", palette_color(static_cast<int64_t>(s))});
  }
  if (non_finite)
    out.notes.push_back(plural(non_finite, "non-finite value", "non-finite values") + " skipped");
  if (non_positive)
    out.notes.push_back(plural(non_positive, "value", "values") + " <= 0 skipped on the log axis");
  if (!(x_mn <= x_mx)) {
    out.notes.insert(out.notes.begin(), "no data to plot");
    return out;
  }

  const AxisTicks xt = axis_for(x_mn, x_mx, options.x_min, options.x_max, options.log_x, 7);
  const AxisTicks yt = axis_for(y_mn, y_mx, options.y_min, options.y_max, options.log_y, 5);
  const Scale xs = x_scale(xt, options.log_x), ys = y_scale(yt, options.log_y);
  std::string& o = out.svg;
  o = svg_open(title);
  draw_frame(o, xs, ys, xt, yt, x_label, y_label);
  o += data_area_open();
  if (options.diagonal) {
    // y = x across the visible range, sampled so that it also reads right on log axes.
    const double lo = std::max(xt.lo, yt.lo), hi = std::min(xt.hi, yt.hi);
    if (lo < hi) {
      o += "<path class=\"ref\" d=\"M";
      for (int i = 0; i <= 64; ++i) {
        const double t = i / 64.0;
        const double v =
            options.log_x || options.log_y ? lo * std::pow(hi / lo, t) : lo + t * (hi - lo);
        if (i) o += ' ';
        o += svg_number(xs(v));
        o += ',';
        o += svg_number(ys(v));
      }
      o += "\"/>";
    }
  }
  for (size_t s = 0; s < lines.size(); ++s) {
    const std::string color = palette_color(static_cast<int64_t>(s));
    std::string d;
    for (const Segment& g : lines[s]) {
      if (g.size() == 1) {  // a lone point draws no line: a dot instead
        o += "<circle cx=\"" + svg_number(xs(g[0].first)) + "\" cy=\"" +
             svg_number(ys(g[0].second)) + "\" r=\"3\" fill=\"" + color + "\"/>";
        continue;
      }
      for (size_t i = 0; i < g.size(); ++i) {
        d += i ? ' ' : 'M';
        d += svg_number(xs(g[i].first));
        d += ',';
        d += svg_number(ys(g[i].second));
      }
    }
    if (!d.empty()) o += "<path class=\"line\" stroke=\"" + color + "\" d=\"" + d + "\"/>";
  }
  o += "</svg></svg>";
  return out;
}

ChartMarkup histogram_svg(const std::string& title, const std::string& x_label,
                          const std::vector<std::pair<std::string, std::vector<double>>>& samples,
                          int bins, const std::vector<Marker>& markers) {
  TRINE_CHECK(bins >= 1 && bins <= 100000, "histogram \"", title,
              "\": bins must be in [1, 100000], got ", bins);
  ChartMarkup out;
  std::vector<std::span<const double>> spans;
  for (const auto& s : samples) spans.emplace_back(s.second);
  const Histogram h = histogram_density(spans, bins);
  size_t total = 0, skipped = 0;
  double d_mx = 0;
  for (size_t s = 0; s < samples.size(); ++s) {
    total += h.counts[s], skipped += h.skipped[s];
    for (double d : h.density[s]) d_mx = std::max(d_mx, d);
    double sum = 0;
    for (double v : samples[s].second)
      if (std::isfinite(v)) sum += v;
    std::string label = samples[s].first + " (n=" + std::to_string(h.counts[s]);
    if (h.counts[s]) label += ", mean " + format_number(sum / static_cast<double>(h.counts[s]));
    out.legend.push_back({label + ")", palette_color(static_cast<int64_t>(s))});
  }
  if (skipped)
    out.notes.push_back(plural(skipped, "non-finite value", "non-finite values") + " skipped");
  if (!total) {
    out.notes.insert(out.notes.begin(), "no data to plot");
    return out;
  }
  double x_mn = h.lo, x_mx = h.hi;
  for (const Marker& m : markers)
    if (std::isfinite(m.x)) x_mn = std::min(x_mn, m.x), x_mx = std::max(x_mx, m.x);
  const AxisTicks xt = linear_ticks(x_mn, x_mx, 7, true);
  const AxisTicks yt = linear_ticks(0.0, d_mx, 5, true);
  const Scale xs = x_scale(xt, false), ys = y_scale(yt, false);
  std::string& o = out.svg;
  o = svg_open(title);
  draw_frame(o, xs, ys, xt, yt, x_label, "density");
  o += data_area_open();
  const std::string base = svg_number(ys(0.0));
  for (size_t s = 0; s < samples.size(); ++s) {
    if (!h.counts[s]) continue;
    const std::string color = palette_color(static_cast<int64_t>(s));
    // A step outline closed along the baseline: M x0,0 V d0 H x1 V d1 H x2 ... V 0 Z.
    std::string d = "M" + svg_number(xs(h.lo)) + "," + base;
    for (int b = 0; b < bins; ++b) {
      d += 'V';  // (char appends: GCC 12 misreads "V" + temporary as an overlapping memcpy)
      d += svg_number(ys(h.density[s][static_cast<size_t>(b)]));
      d += 'H';
      d += svg_number(xs(b + 1 == bins ? h.hi : h.lo + (b + 1) * h.bin_width()));
    }
    d += "V" + base + "Z";
    o += "<path class=\"area\" fill=\"" + color + "\" stroke=\"" + color + "\" d=\"" + d + "\"/>";
  }
  o += "</svg>";
  for (const Marker& m : markers) {
    if (!std::isfinite(m.x)) continue;
    const std::string x = svg_number(xs(m.x));
    o += "<line class=\"marker\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + svg_number(kPlotY0) +
         "\" y2=\"" + svg_number(kPlotY1) + "\"/><text class=\"marker\" x=\"" +
         svg_number(xs(m.x) + 4) + "\" y=\"" + svg_number(kPlotY0 + 12) + "\">" +
         escape_html(m.label) + "</text>";
  }
  o += "</svg>";
  return out;
}

ChartMarkup scatter_svg(const std::string& title, const std::vector<ScatterPoint>& points,
                        const std::vector<std::string>& class_names, const std::string& x_label,
                        const std::string& y_label) {
  constexpr size_t kMaxDrawn = 10000;
  ChartMarkup out;
  std::vector<ScatterPoint> pts;
  pts.reserve(points.size());
  for (const ScatterPoint& p : points)
    if (std::isfinite(p.x) && std::isfinite(p.y)) pts.push_back(p);
  if (pts.size() < points.size())
    out.notes.push_back(
        plural(points.size() - pts.size(), "non-finite point", "non-finite points") + " skipped");
  if (pts.empty()) {
    out.notes.insert(out.notes.begin(), "no data to plot");
    return out;
  }
  if (pts.size() > kMaxDrawn) {
    std::vector<ScatterPoint> every;
    for (size_t i = 0; i < kMaxDrawn; ++i) every.push_back(pts[i * pts.size() / kMaxDrawn]);
    out.notes.push_back(std::to_string(pts.size()) + " points, an even subsample of " +
                        std::to_string(kMaxDrawn) + " drawn");
    pts = std::move(every);
  }
  std::set<int32_t> labels;
  for (const ScatterPoint& p : pts) labels.insert(p.label);
  // Up to 20 classes: one colour each, by rank; beyond that colours cycle by label.
  const bool few = labels.size() <= 20;
  std::map<int32_t, std::string> color;
  int64_t rank = 0;
  for (int32_t l : labels) {
    color[l] = palette_color(few ? rank++ : l);
    if (few) {
      const bool named = l >= 0 && static_cast<size_t>(l) < class_names.size();
      out.legend.push_back(
          {named ? class_names[static_cast<size_t>(l)] : std::to_string(l), color[l]});
    }
  }
  if (!few)
    out.notes.push_back(std::to_string(labels.size()) +
                        " classes: colours repeat (20-colour palette), no legend");
  double x_mn = INFINITY, x_mx = -INFINITY, y_mn = INFINITY, y_mx = -INFINITY;
  for (const ScatterPoint& p : pts) {
    x_mn = std::min(x_mn, p.x), x_mx = std::max(x_mx, p.x);
    y_mn = std::min(y_mn, p.y), y_mx = std::max(y_mx, p.y);
  }
  const AxisTicks xt = linear_ticks(x_mn, x_mx, 7, true);
  const AxisTicks yt = linear_ticks(y_mn, y_mx, 5, true);
  const Scale xs = x_scale(xt, false), ys = y_scale(yt, false);
  std::string& o = out.svg;
  o = svg_open(title);
  draw_frame(o, xs, ys, xt, yt, x_label, y_label);
  o += data_area_open();
  const std::string r = pts.size() > 2000 ? "1.8" : "2.6";
  o += "<g class=\"dots\">";
  for (const ScatterPoint& p : pts)  // input order: no class is always painted on top
    o += "<circle cx=\"" + svg_number(xs(p.x)) + "\" cy=\"" + svg_number(ys(p.y)) + "\" r=\"" + r +
         "\" fill=\"" + color[p.label] + "\"/>";
  o += "</g></svg></svg>";
  return out;
}

}  // namespace trine::report
