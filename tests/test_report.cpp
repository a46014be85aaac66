// Run reports: escaping, charts that survive NaN/Inf, empty, constant, single-point and huge
// inputs, histogram densities, smoothing, PCA recovering known directions, deterministic pages,
// atomic saves, and the page rendered in headless Chromium (skipped without /usr/bin/chromium).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

// The Chromium test decodes its screenshot with stb_image, file-local.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/report/html_report.h"
#include "engine/report/markup.h"

namespace trine::report {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + needle.size()))
    ++n;
  return n;
}

// Everything between the first "<svg" and the last "</svg>": the chart markup.
std::string svg_part(const std::string& html) {
  const size_t a = html.find("<svg"), b = html.rfind("</svg>");
  if (a == std::string::npos || b == std::string::npos) return "";
  return html.substr(a, b + 6 - a);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Tags balance: every opened element (other than void ones and <x/>) is closed in order.
// <style> content is skipped. Returns "" when well formed, else a description.
std::string tag_balance(const std::string& html) {
  static const std::vector<std::string> kVoid = {"meta", "img", "br", "hr", "input", "link"};
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = html.find('<', i)) != std::string::npos) {
    if (html.compare(i, 2, "<!") == 0) {
      i = html.find('>', i);
      continue;
    }
    const size_t end = html.find('>', i);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(i);
    const bool closing = html[i + 1] == '/';
    const size_t name_at = i + (closing ? 2 : 1);
    size_t name_end = name_at;
    while (name_end < end && (std::isalnum(static_cast<unsigned char>(html[name_end])) != 0))
      ++name_end;
    const std::string name = html.substr(name_at, name_end - name_at);
    if (name.empty()) return "bad tag at " + std::to_string(i);
    if (closing) {
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> at " + std::to_string(i) + " closes <" +
               (stack.empty() ? std::string("nothing") : stack.back()) + ">";
      stack.pop_back();
    } else if (html[end - 1] != '/' && std::find(kVoid.begin(), kVoid.end(), name) == kVoid.end()) {
      stack.push_back(name);
      if (name == "style") {  // raw text: jump to its end tag
        i = html.find("</style>", end);
        if (i == std::string::npos) return "unterminated <style>";
        continue;
      }
    }
    i = end + 1;
  }
  return stack.empty() ? "" : "<" + stack.back() + "> never closed";
}

// The value of attribute `name` in every tag starting at one of `tag`'s occurrences.
// (A plain scan: std::regex recurses per character and overflows the stack on long paths.)
std::vector<std::string> attribute_values(const std::string& html, const std::string& tag,
                                          const std::string& name) {
  std::vector<std::string> out;
  const std::string key = " " + name + "=\"";
  for (size_t p = html.find(tag); p != std::string::npos; p = html.find(tag, p + 1)) {
    const size_t end = html.find('>', p);
    const size_t a = html.find(key, p);
    if (a == std::string::npos || a > end) continue;
    const size_t from = a + key.size();
    out.push_back(html.substr(from, html.find('"', from) - from));
  }
  return out;
}

// The lines drawn: (number of subpaths, number of points) over every <path class="line">.
std::pair<size_t, size_t> line_points(const std::string& html) {
  size_t subpaths = 0, points = 0;
  for (const std::string& d : attribute_values(html, "<path class=\"line\"", "d")) {
    subpaths += count(d, "M");
    points += count(d, ",");
  }
  return {subpaths, points};
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::temp_directory_path() /
           ("trine_test_report_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// ------------------------------------------------------------------ text, numbers, ticks

TEST(ReportMarkup, EscapesHtmlSpecials) {
  EXPECT_EQ(escape_html("<b>&\"'x"), "&lt;b&gt;&amp;&quot;&#39;x");
  EXPECT_EQ(escape_html("plain"), "plain");
}

TEST(ReportMarkup, NumbersNeverNaN) {
  EXPECT_EQ(svg_number(kNaN), "0");
  EXPECT_EQ(svg_number(kInf), "0");
  EXPECT_EQ(svg_number(12.5), "12.5");
  EXPECT_EQ(svg_number(3.0), "3");
  EXPECT_EQ(svg_number(-0.01), "0");
  EXPECT_EQ(format_number(kNaN), "NaN");
  EXPECT_EQ(format_number(0.1234567), "0.1235");
  EXPECT_EQ(format_number(1234.5678, 4), "1235");
  EXPECT_EQ(format_number(1.5e-5, 3), "1.5e-5");
  EXPECT_EQ(format_number(2e7, 3), "2e7");
}

TEST(ReportTicks, LinearTicksAreNiceAndReadable) {
  const AxisTicks t = linear_ticks(0.03, 0.97);
  EXPECT_DOUBLE_EQ(t.lo, 0.0);
  EXPECT_DOUBLE_EQ(t.hi, 1.0);
  // Same decimals on every tick of an axis.
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
  EXPECT_EQ(linear_ticks(-0.3, 0.3).labels,
            (std::vector<std::string>{"-0.3", "-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3"}));

  const AxisTicks big = linear_ticks(0, 100000);
  ASSERT_GE(big.labels.size(), 3u);
  EXPECT_EQ(big.labels[1], "20k");

  const AxisTicks tiny = linear_ticks(0, 3e-5);
  for (size_t i = 0; i < tiny.values.size(); ++i) {
    EXPECT_EQ(tiny.labels[i].find("0.0000"), std::string::npos) << tiny.labels[i];
    if (i) {
      EXPECT_GT(tiny.values[i], tiny.values[i - 1]);
    }
  }

  // A constant still gives an axis of positive width with ticks around the value.
  const AxisTicks c = linear_ticks(5, 5);
  EXPECT_LT(c.lo, 5.0);
  EXPECT_GT(c.hi, 5.0);
  EXPECT_GE(c.values.size(), 2u);
  const AxisTicks z = linear_ticks(0, 0);
  EXPECT_LT(z.lo, z.hi);

  const AxisTicks lg = log_ticks(0.013, 2.4);
  EXPECT_DOUBLE_EQ(lg.lo, 0.01);
  EXPECT_DOUBLE_EQ(lg.hi, 10.0);
  EXPECT_NE(std::find(lg.labels.begin(), lg.labels.end(), "0.1"), lg.labels.end());
  EXPECT_EQ(log_ticks(2e-6, 1e-3).labels,
            (std::vector<std::string>{"1e-6", "1e-5", "1e-4", "1e-3"}));  // one style per axis
  EXPECT_THROW(log_ticks(0, 1), Error);
}

// ------------------------------------------------------------------ data preparation

TEST(ReportSeries, SmoothIsACenteredMeanThatSkipsNaN) {
  const std::vector<double> y = {1, 2, 3, 4, 5};
  EXPECT_EQ(smooth(y, 1), y);
  EXPECT_EQ(smooth(y, 3), (std::vector<double>{1.5, 2, 3, 4, 4.5}));
  const std::vector<double> c(100, 0.25);
  for (double v : smooth(c, 10)) EXPECT_DOUBLE_EQ(v, 0.25);
  const std::vector<double> g = smooth({1, kNaN, 3}, 3);
  EXPECT_EQ(g, (std::vector<double>{1, 2, 3}));
  const std::vector<double> all_nan = smooth({kNaN, kNaN}, 2);
  EXPECT_TRUE(std::isnan(all_nan[0]) && std::isnan(all_nan[1]));
}

TEST(ReportSeries, MinMaxDownsamplingKeepsEndsAndSpikes) {
  std::vector<double> y(100000);
  for (size_t i = 0; i < y.size(); ++i) y[i] = std::sin(i * 1e-3);
  y[54321] = 50.0;
  y[77777] = -50.0;
  const std::vector<size_t> keep = downsample_minmax(y, 2000);
  EXPECT_LE(keep.size(), 2000u);
  EXPECT_GE(keep.size(), 1900u);
  EXPECT_EQ(keep.front(), 0u);
  EXPECT_EQ(keep.back(), y.size() - 1);
  EXPECT_TRUE(std::is_sorted(keep.begin(), keep.end()));
  EXPECT_EQ(std::adjacent_find(keep.begin(), keep.end()), keep.end());
  EXPECT_NE(std::find(keep.begin(), keep.end(), 54321u), keep.end());
  EXPECT_NE(std::find(keep.begin(), keep.end(), 77777u), keep.end());
  EXPECT_EQ(downsample_minmax(std::vector<double>{1, 2, 3}, 2000).size(), 3u);
}

TEST(ReportSeries, HistogramDensitiesIntegrateToOneOverSharedBins) {
  std::mt19937 rng(7);
  std::normal_distribution<double> pos(0.4, 0.1), neg(1.1, 0.2);
  std::vector<double> a(3000), b(5000);
  for (double& v : a) v = pos(rng);
  for (double& v : b) v = neg(rng);
  a.push_back(kNaN);
  b.push_back(kInf);
  const Histogram h = histogram_density({a, b}, 40);
  ASSERT_EQ(h.density.size(), 2u);
  double mn = kInf, mx = -kInf;
  for (const auto* s : {&a, &b})
    for (double v : *s)
      if (std::isfinite(v)) mn = std::min(mn, v), mx = std::max(mx, v);
  EXPECT_DOUBLE_EQ(h.lo, mn);
  EXPECT_DOUBLE_EQ(h.hi, mx);
  EXPECT_EQ(h.counts, (std::vector<size_t>{3000, 5000}));
  EXPECT_EQ(h.skipped, (std::vector<size_t>{1, 1}));
  for (const auto& d : h.density) {
    double integral = 0;
    for (double v : d) integral += v * h.bin_width();
    EXPECT_NEAR(integral, 1.0, 1e-12);
  }
  // A constant sample: one full bin, still integrating to 1.
  const Histogram c = histogram_density({std::vector<double>(10, 2.0)}, 5);
  EXPECT_LT(c.lo, 2.0);
  EXPECT_GT(c.hi, 2.0);
  double integral = 0;
  for (double v : c.density[0]) integral += v * c.bin_width();
  EXPECT_NEAR(integral, 1.0, 1e-12);
}

// ------------------------------------------------------------------ PCA

Tensor line_cloud(int64_t n, uint64_t seed, std::vector<double>* t_out) {
  // Points along u = (1, 2, -1, 0.5, 3)/|u| in 5-D, t ~ N(0, 3), noise 0.01, offset 7.
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<double> t_dist(0, 3), noise(0, 0.01);
  std::vector<double> u = {1, 2, -1, 0.5, 3};
  double norm = 0;
  for (double v : u) norm += v * v;
  for (double& v : u) v /= std::sqrt(norm);
  std::vector<float> data;
  for (int64_t i = 0; i < n; ++i) {
    const double t = t_dist(rng);
    if (t_out) t_out->push_back(t);
    for (double c : u) data.push_back(static_cast<float>(7 + t * c + noise(rng)));
  }
  return Tensor::from_vector(data, {n, 5});
}

double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= a.size(), mb /= b.size();
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i)
    sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma),
        sbb += (b[i] - mb) * (b[i] - mb);
  return sab / std::sqrt(saa * sbb);
}

TEST(ReportPca, RecoversTheDominantDirection) {
  std::vector<double> t;
  const Pca2d p = pca_2d_projection(line_cloud(2000, 3, &t), 5000);
  ASSERT_EQ(p.points.size(), 2000u);
  std::vector<double> pc1, pc2;
  for (const auto& q : p.points) pc1.push_back(q[0]), pc2.push_back(q[1]);
  EXPECT_GT(std::fabs(correlation(pc1, t)), 0.9999);  // sign-invariant
  EXPECT_GT(p.explained_variance[0], 0.999);
  EXPECT_LT(p.explained_variance[1], 1e-3);
  double spread2 = 0;
  for (double v : pc2) spread2 = std::max(spread2, std::fabs(v));
  EXPECT_LT(spread2, 0.1);  // noise level, against a PC 1 spread of ~10
}

TEST(ReportPca, RecoversTwoAxesInOrder) {
  // Std 5 along a, 2 along b (orthonormal, rotated away from the basis), 0.05 elsewhere, 8-D.
  const int64_t n = 3000, d = 8;
  std::mt19937 rng(11);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> a(d), b(d);
  for (int64_t j = 0; j < d; ++j) a[j] = std::cos(0.3 * j + 0.1), b[j] = std::sin(0.7 * j + 0.4);
  auto normalize = [](std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x * x;
    for (double& x : v) x /= std::sqrt(s);
  };
  normalize(a);
  double ab = 0;
  for (int64_t j = 0; j < d; ++j) ab += a[j] * b[j];
  for (int64_t j = 0; j < d; ++j) b[j] -= ab * a[j];
  normalize(b);
  std::vector<float> data;
  std::vector<double> s1, s2;
  for (int64_t i = 0; i < n; ++i) {
    const double u = 5 * g(rng), v = 2 * g(rng);
    s1.push_back(u), s2.push_back(v);
    for (int64_t j = 0; j < d; ++j)
      data.push_back(static_cast<float>(u * a[j] + v * b[j] + 0.05 * g(rng)));
  }
  const Pca2d p = pca_2d_projection(Tensor::from_vector(data, {n, d}));
  std::vector<double> pc1, pc2;
  for (const auto& q : p.points) pc1.push_back(q[0]), pc2.push_back(q[1]);
  EXPECT_GT(std::fabs(correlation(pc1, s1)), 0.999);
  EXPECT_GT(std::fabs(correlation(pc2, s2)), 0.99);
  EXPECT_GT(p.explained_variance[0], p.explained_variance[1]);
}

TEST(ReportPca, SubsamplesEvenlyDropsNonFiniteRowsAndIsDeterministic) {
  Tensor x = line_cloud(12000, 5, nullptr);
  const std::vector<int64_t> rows = strided_rows(12000, 5000);
  ASSERT_EQ(rows.size(), 5000u);
  EXPECT_EQ(rows[0], 0);
  EXPECT_EQ(rows[1], 2);  // floor(12000 / 5000)
  EXPECT_EQ(rows.back(), 11997);
  const Pca2d a = pca_2d_projection(x);
  EXPECT_EQ(a.rows, rows);
  const Pca2d b = pca_2d_projection(x);
  EXPECT_EQ(a.points, b.points);  // bit-identical
  EXPECT_EQ(pca_2d(x), a.points);

  std::vector<float> v = x.to_vector();
  v[2 * 5 + 3] = std::numeric_limits<float>::quiet_NaN();  // row 2, one of the strided rows
  const Pca2d c = pca_2d_projection(Tensor::from_vector(v, {12000, 5}));
  EXPECT_EQ(c.rows.size(), 4999u);
  EXPECT_EQ(std::find(c.rows.begin(), c.rows.end(), 2), c.rows.end());

  EXPECT_TRUE(pca_2d(Tensor::zeros({0, 4})).empty());
  const auto one_d = pca_2d(Tensor::from_vector({1, 2, 3, 4}, {4, 1}));
  ASSERT_EQ(one_d.size(), 4u);
  EXPECT_NEAR(std::fabs(one_d[0][0]), 1.5, 1e-12);
  EXPECT_EQ(one_d[0][1], 0.0);
  const auto same = pca_2d(Tensor::ones({10, 3}));  // no variance: all at the origin
  for (const auto& q : same) EXPECT_TRUE(q[0] == 0.0 && q[1] == 0.0);
  EXPECT_THROW(pca_2d(Tensor::zeros({4})), Error);
}

// ------------------------------------------------------------------ charts in a page

TEST(ReportPage, EscapesTitlesClassNamesAndCaptions) {
  HtmlReport r("run <script>alert(1)</script>");
  r.add_scatter("classes & <things>", {{0, 0, 0}, {1, 1, 1}}, {"<b>&\"", "ok"});
  Thumbnail t{{0, 128, 255, 64}, 2, 2, 1};
  r.add_thumbnail_grid("pairs", {{t, t, "dist <0.5> & \"same\""}});
  r.add_key_values("k<v>", {{"a&b", "<i>"}});
  const std::string html = r.html();
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<b>&\""), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;&amp;&quot;"), std::string::npos);
  EXPECT_NE(html.find("classes &amp; &lt;things&gt;"), std::string::npos);
  EXPECT_NE(html.find("dist &lt;0.5&gt; &amp; &quot;same&quot;"), std::string::npos);
  EXPECT_NE(html.find("a&amp;b"), std::string::npos);
  EXPECT_EQ(tag_balance(html), "");
}

TEST(ReportPage, SkipsNonFiniteValuesAndBreaksTheLine) {
  HtmlReport r("nonfinite");
  Series s{"loss", {0, 1, 2, 3, 4, 5, 6}, {1.0, 0.9, kNaN, 0.7, kInf, 0.5, 0.4}};
  r.add_line_chart("curve", "step", "loss", {s});
  r.add_line_chart("log curve", "step", "loss", {s}, true);
  r.add_histograms("hist", "distance", {{"a", {0.1, kNaN, 0.3, -kInf}}, {"b", {0.2, 0.4}}});
  r.add_scatter("scatter", {{0, 0, 0}, {kNaN, 1, 1}, {2, kInf, 1}, {1, 1, 1}});
  const std::string html = r.html();
  const std::string svg = lower(svg_part(html));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  EXPECT_EQ(count(html, "<svg class=\"chart\""), 4u);
  // {1, 0.9} | {0.7} | {0.5, 0.4}: two line pieces and one lone dot, per chart.
  EXPECT_EQ(line_points(html), std::make_pair(size_t{4}, size_t{8}));
  EXPECT_NE(html.find("2 non-finite values skipped"), std::string::npos);
  EXPECT_NE(html.find("2 non-finite points skipped"), std::string::npos);
  EXPECT_EQ(tag_balance(html), "");
}

TEST(ReportPage, EmptyInputsGiveNoDataNotes) {
  HtmlReport r("empty");
  r.add_line_chart("no series", "x", "y", {});
  r.add_line_chart("empty series", "x", "y", {Series{"a", {}, {}}});
  r.add_line_chart("all NaN", "x", "y", {Series{"a", {0, 1}, {kNaN, kNaN}}});
  r.add_line_chart("log of zeros", "x", "y", {Series{"a", {0, 1}, {0, 0}}}, true);
  r.add_histograms("no samples", "d", {});
  r.add_histograms("empty samples", "d", {{"a", {}}, {"b", {kNaN}}});
  r.add_scatter("no points", {});
  r.add_thumbnail_grid("no pairs", {});
  r.add_table("no rows", {}, {});
  const std::string html = r.html();
  EXPECT_EQ(html.find("<svg"), std::string::npos);
  EXPECT_EQ(count(html, "<div class=\"nodata\">No data</div>"), 9u);
  EXPECT_EQ(tag_balance(html), "");
}

TEST(ReportPage, ConstantValuesAndSinglePointsDraw) {
  HtmlReport r("constant");
  r.add_line_chart("flat", "step", "v", {Series{"c", {0, 1, 2, 3}, {2, 2, 2, 2}}});
  r.add_line_chart("one point", "step", "v", {Series{"p", {5}, {0.25}}});
  r.add_line_chart("zeros", "step", "v", {Series{"z", {0, 0}, {0, 0}}});
  r.add_histograms("same value", "d", {{"a", std::vector<double>(50, 1.5)}});
  r.add_scatter("one place", {{3, 3, 0}, {3, 3, 1}});
  const std::string html = r.html();
  EXPECT_EQ(count(html, "<svg class=\"chart\""), 5u);
  const std::string svg = lower(svg_part(html));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  EXPECT_NE(html.find("<circle cx=\""), std::string::npos);  // the single point
  // Every coordinate inside the chart's viewBox.
  for (const char* tag : {"<circle", "<line"})
    for (const char* name : {"cx", "cy", "x1", "x2", "y1", "y2"})
      for (const std::string& v : attribute_values(html, tag, name)) {
        const double c = std::stod(v);
        EXPECT_TRUE(c >= -1 && c <= 641) << tag << " " << name << "=" << v;
      }
}

TEST(ReportPage, HugeSeriesAreDownsampledAndTheFileStaysSmall) {
  std::vector<double> x(100000), y(100000), z(100000);
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> noise(-0.1, 0.1);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<double>(i);
    y[i] = 2.0 * std::exp(-static_cast<double>(i) / 20000.0) + noise(rng);
    z[i] = i % 2 ? kNaN : y[i];  // a gap at every other step
  }
  HtmlReport r("huge");
  r.add_line_chart("loss", "step", "loss", {{"raw", x, y}, {"smoothed", x, smooth(y, 500)}});
  r.add_line_chart("gappy", "step", "loss", {{"gappy", x, z}});
  const std::string html = r.html();
  EXPECT_LT(html.size(), 200u * 1024) << "100 000-point series must not bloat the page";
  const auto [subpaths, points] = line_points(html);
  EXPECT_LE(points, 3u * 2000);
  EXPECT_GE(points, 3u * 1500);
  EXPECT_NE(html.find("100000 points, drawn as"), std::string::npos);
}

TEST(ReportPage, LegendsOnlyForFewClasses) {
  std::vector<ScatterPoint> few, many;
  for (int i = 0; i < 200; ++i) {
    few.push_back({std::cos(i), std::sin(i), i % 10});
    many.push_back({std::cos(i), std::sin(i), i % 150});
  }
  HtmlReport r("legends");
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) names.push_back("digit " + std::to_string(c));
  r.add_scatter("ten", few, names);
  const std::string ten = r.html();
  EXPECT_EQ(count(ten, "<i style=\"background:"), 10u);
  EXPECT_NE(ten.find("digit 7"), std::string::npos);
  // Ten classes, ten different colours.
  for (int c = 0; c < 10; ++c) EXPECT_NE(ten.find(palette_color(c)), std::string::npos);

  HtmlReport m("many");
  m.add_scatter("150 identities", many);
  const std::string lots = m.html();
  EXPECT_EQ(count(lots, "<i style=\"background:"), 0u);
  EXPECT_NE(lots.find("150 classes: colours repeat"), std::string::npos);
  EXPECT_EQ(count(lots, "<circle"), 200u);
}

TEST(ReportPage, RejectsInconsistentInput) {
  HtmlReport r("bad");
  EXPECT_THROW(r.add_line_chart("t", "x", "y", {Series{"a", {1, 2}, {1}}}), Error);
  EXPECT_THROW(r.add_histograms("t", "x", {{"a", {1}}}, 0), Error);
  EXPECT_THROW(r.add_table("t", {"a", "b"}, {{"1"}}), Error);
  EXPECT_THROW(r.add_thumbnail_grid("t", {{Thumbnail{{1, 2, 3}, 2, 2, 1}, {}, "c"}}), Error);
  EXPECT_THROW(r.add_thumbnail_grid("t", {{Thumbnail{{1, 2, 3, 4}, 2, 2, 2}, {}, "c"}}), Error);
}

TEST(ReportThumbnail, Base64AndPngRoundTrip) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x10", 3)), "/wAQ");

  Thumbnail rgb{{}, 5, 3, 3};
  for (int i = 0; i < 5 * 3 * 3; ++i) rgb.pixels.push_back(static_cast<uint8_t>(i * 17));
  const std::string png = encode_png(rgb);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  int w = 0, h = 0, c = 0;
  stbi_uc* back = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(png.data()),
                                        static_cast<int>(png.size()), &w, &h, &c, 0);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(std::vector<uint8_t>(back, back + w * h * c), rgb.pixels);
  stbi_image_free(back);
  EXPECT_EQ(png_data_uri(rgb).rfind("data:image/png;base64,", 0), 0u);

  // From a normalized CHW tensor: min..max stretched to 0..255, HWC order.
  const Thumbnail t = thumbnail_from_tensor(
      Tensor::from_vector({-1, 0, 1, 1, /* G */ -1, -1, -1, -1, /* B */ 1, 1, 1, 1}, {3, 2, 2}));
  EXPECT_EQ(t.width, 2);
  EXPECT_EQ(t.channels, 3);
  EXPECT_EQ(t.pixels, (std::vector<uint8_t>{0, 0, 255, 128, 0, 255, 255, 0, 255, 255, 0, 255}));
}

TEST_F(ReportTest, OutputIsDeterministicAndSavedAtomically) {
  auto build = [] {
    HtmlReport r("det");
    r.set_subtitle("trine mnist");
    r.add_summary({{"recall@1", "0.981"}});
    std::vector<double> x, y;
    for (int i = 0; i < 5000; ++i) x.push_back(i), y.push_back(std::sin(i * 0.01));
    r.add_line_chart("sin", "step", "v", {{"s", x, y}});
    r.add_scatter("pca", {{0, 1, 0}, {1, 0, 1}});
    return r;
  };
  const HtmlReport r = build();
  EXPECT_EQ(r.html(), build().html());
  r.save(path("report.html"));
  r.save(path("report.html"));  // replacing an existing file
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"report.html"});
  std::ifstream in(path("report.html"), std::ios::binary);
  const std::string saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(saved, r.html());
  EXPECT_THROW(r.save(path("missing_dir/report.html")), Error);
}

// ------------------------------------------------------------------ the example page

// A page like the ones `trine mnist` and `trine faces` write, from synthetic data: every kind
// of block, some hostile input, and both a few-class and a many-class scatter.
HtmlReport example_report() {
  std::mt19937 rng(2024);
  std::normal_distribution<double> g(0, 1);
  HtmlReport r("MNIST triplet run — resnet-s, batch-hard, margin 0.2");
  r.set_subtitle("trine mnist --epochs 10 --miner batch-hard --margin 0.2 · example data");
  r.add_summary({{"recall@1 (test)", "0.9874"},
                 {"mAP@R", "0.9412"},
                 {"LFW accuracy (fold 1)", "0.9650"},
                 {"ROC AUC", "0.9921"},
                 {"train time", "12 min 40 s"}});

  r.add_heading("Training");
  std::vector<double> step, loss, active;
  for (int i = 0; i < 6000; ++i) {
    step.push_back(i);
    const double base = 0.2 * std::exp(-i / 1500.0) + 0.01;
    loss.push_back(std::max(0.0, base + 0.03 * g(rng)));
    active.push_back(std::clamp(0.9 * std::exp(-i / 2000.0) + 0.05 + 0.03 * g(rng), 0.0, 1.0));
  }
  loss[3000] = kNaN;  // a diverged step must not break the chart
  r.add_line_chart("Training loss", "step", "triplet loss",
                   {{"loss", step, loss}, {"smoothed (200 steps)", step, smooth(loss, 200)}});
  r.add_line_chart("Active triplets", "step", "fraction with loss > 0",
                   {{"active fraction", step, active}});
  std::vector<double> ep, lr;
  for (int e = 1; e <= 10; ++e) ep.push_back(e), lr.push_back(1e-3 * std::pow(0.5, e - 1));
  r.add_line_chart("Learning rate", "epoch", "lr", {{"lr", ep, lr}}, true);

  r.add_heading("Test-set embeddings");
  std::vector<double> pos, neg;
  for (int i = 0; i < 4000; ++i) pos.push_back(std::fabs(0.45 + 0.15 * g(rng)));
  for (int i = 0; i < 8000; ++i) neg.push_back(std::fabs(1.2 + 0.2 * g(rng)));
  r.add_histograms("Pair distances (test)", "L2 distance",
                   {{"positive pairs", pos}, {"negative pairs", neg}}, 60,
                   {{"threshold 0.82", 0.82}});
  // Ten clusters in 32-D, projected.
  const int64_t n = 3000, d = 32;
  std::vector<std::vector<double>> centers(10, std::vector<double>(d));
  for (auto& c : centers)
    for (double& v : c) v = 2.0 * g(rng);
  std::vector<float> emb;
  std::vector<int32_t> label;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t l = static_cast<int32_t>(i % 10);
    label.push_back(l);
    for (int64_t j = 0; j < d; ++j) emb.push_back(static_cast<float>(centers[l][j] + 0.6 * g(rng)));
  }
  const Pca2d p = pca_2d_projection(Tensor::from_vector(emb, {n, d}));
  std::vector<ScatterPoint> pts;
  for (size_t i = 0; i < p.rows.size(); ++i)
    pts.push_back({p.points[i][0], p.points[i][1], label[static_cast<size_t>(p.rows[i])]});
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) names.push_back(std::to_string(c));
  names[3] = "<three> & \"3\"";  // escaped in the legend
  r.add_scatter("PCA of test embeddings (" + format_number(100 * p.explained_variance[0], 3) +
                    "% + " + format_number(100 * p.explained_variance[1], 3) + "% of variance)",
                pts, names);
  r.add_key_values("Retrieval metrics (test)", {{"recall@1", "0.9874"},
                                                {"recall@5", "0.9951"},
                                                {"mAP@R", "0.9412"},
                                                {"NMI", "0.9033"},
                                                {"queries", "10000"}});
  r.add_table(
      "Per-class recall@1", {"class", "recall@1", "queries"},
      {{"0", "0.995", "980"}, {"1", "0.996", "1135"}, {"<three> & \"3\"", "0.981", "1010"}});

  r.add_heading("Face verification (LFW)");
  std::vector<double> far, tar, same_d, diff_d;
  for (int i = 0; i <= 200; ++i) {
    const double f = i / 200.0;
    far.push_back(f), tar.push_back(std::pow(f, 0.08));
  }
  r.add_roc_curve("ROC (fold 1)", {{"faces-s, AUC 0.992", far, tar}});
  std::vector<double> far_log, tar_log;
  for (int i = 0; i <= 80; ++i) {
    const double f = std::pow(10.0, -4 + i * 0.05);
    far_log.push_back(f), tar_log.push_back(std::min(1.0, 0.55 + 0.11 * std::log10(f) + 0.45));
  }
  far_log.insert(far_log.begin(), 0.0), tar_log.insert(tar_log.begin(), 0.0);
  r.add_roc_curve("ROC, log FAR", {{"faces-s", far_log, tar_log}}, true);
  for (int i = 0; i < 300; ++i) same_d.push_back(std::fabs(0.7 + 0.2 * g(rng)));
  for (int i = 0; i < 300; ++i) diff_d.push_back(std::fabs(1.3 + 0.15 * g(rng)));
  r.add_histograms("Same vs different pairs", "L2 distance",
                   {{"same", same_d}, {"different", diff_d}}, 40, {{"t = 1.02", 1.02}});
  std::vector<ScatterPoint> ids;
  for (int i = 0; i < 2000; ++i) {
    const int32_t id = i % 400;
    ids.push_back(
        {std::cos(id * 0.7) * 3 + 0.3 * g(rng), std::sin(id * 1.3) * 3 + 0.3 * g(rng), id});
  }
  r.add_scatter("PCA of face embeddings (400 identities)", ids);
  auto face = [&](int seed, int size, int channels) {
    Thumbnail t{{}, size, size, channels};
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double dx = x - size / 2.0, dy = y - size / 2.0;
        const double r2 = (dx * dx + dy * dy) / (size * size / 4.0);
        for (int c = 0; c < channels; ++c)
          t.pixels.push_back(static_cast<uint8_t>(std::clamp(
              (r2 < 0.7 ? 200 - 90 * r2 : 40.0) + 25 * std::sin(seed + 0.3 * x + c), 0.0, 255.0)));
      }
    return t;
  };
  std::vector<ThumbnailPair> pairs;
  for (int i = 0; i < 6; ++i)
    pairs.push_back({face(i, 64, 3), face(i + 7, 64, 3),
                     (i < 3 ? "false match: d = " : "miss: d = ") +
                         format_number(0.5 + 0.1 * i, 3) + (i == 0 ? " <Aaron & \"Bob\">" : "")});
  pairs.push_back({face(20, 28, 1), face(21, 28, 1), "grey 28×28 pair"});
  r.add_thumbnail_grid("Hardest false matches and misses", pairs);
  r.add_paragraph("Distances are L2 between L2-normalized embeddings; smaller means more alike.");
  r.set_configuration({{"model", "resnet-s"},
                       {"embedding dim", "128"},
                       {"miner", "batch-hard"},
                       {"margin", "0.2"},
                       {"batch", "P=16 × K=8"},
                       {"optimizer", "adam, lr 1e-3, cosine"},
                       {"seed", "1"},
                       {"command", "trine mnist --epochs 10 --miner batch-hard --margin 0.2"}});
  return r;
}

TEST_F(ReportTest, ExamplePageIsWellFormedAndSelfContained) {
  const std::string html = example_report().html();
  EXPECT_EQ(tag_balance(html), "");
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  EXPECT_EQ(count(html, "<svg class=\"chart\""), 9u);
  for (const char* external : {"http:", "https:", "url(", "@import", "src=\"/", "src=\"file"})
    EXPECT_EQ(html.find(external), std::string::npos) << "external reference: " << external;
  EXPECT_EQ(count(html, " src=\""), count(html, " src=\"data:image/png;base64,"));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(count(html, "src=\"data:image/png;base64,"), 14u);
  EXPECT_LT(html.size(), 1024u * 1024);
  // Summary first, configuration last.
  EXPECT_LT(html.find("class=\"summary"), html.find("<svg"));
  EXPECT_GT(html.find("<h2>Configuration</h2>"), html.rfind("</svg>"));
}

// ------------------------------------------------------------------ headless Chromium

constexpr const char* kChromium = "/usr/bin/chromium";

struct BrowserRun {
  int status = -1;  // exit status (124/137: killed by the timeout)
  std::string dom;  // --dump-dom output
  std::string stderr_text;
  std::vector<std::string> console;  // page console lines (":CONSOLE" log lines)
  double seconds = 0;
};

std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Renders file `page` in headless Chromium with the probe's flags, dumping the DOM and taking a
// screenshot; never hangs: `timeout` kills it after 60 s.
BrowserRun render(const fs::path& page, const fs::path& screenshot, const fs::path& work) {
  const fs::path profile = work / "profile", out = work / "dom.html", err = work / "stderr.txt";
  fs::create_directories(profile);
  const std::string cmd =
      std::string("timeout -k 5 60 ") + kChromium +
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
      " --disable-background-networking --disable-component-update --disable-sync"
      " --user-data-dir='" +
      profile.string() +
      "' --enable-logging=stderr --v=0"
      " --hide-scrollbars --window-size=1200,3000 --screenshot='" +
      screenshot.string() + "' --dump-dom 'file://" + page.string() + "' >'" + out.string() +
      "' 2>'" + err.string() + "' </dev/null";
  const auto t0 = std::chrono::steady_clock::now();
  const int raw = std::system(cmd.c_str());
  BrowserRun run;
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  run.dom = read_all(out.string());
  run.stderr_text = read_all(err.string());
  size_t start = 0;
  while (start < run.stderr_text.size()) {
    size_t end = run.stderr_text.find('\n', start);
    if (end == std::string::npos) end = run.stderr_text.size();
    const std::string line = run.stderr_text.substr(start, end - start);
    if (line.find(":CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos)
      run.console.push_back(line);
    start = end + 1;
  }
  fs::remove_all(profile);
  return run;
}

TEST_F(ReportTest, RendersInHeadlessChromium) {
  if (!fs::exists(kChromium))
    GTEST_SKIP() << kChromium << " not found (apt-get install chromium): the render check needs it";
  const HtmlReport report = example_report();
  const std::string html = report.html();
  const fs::path page = dir_ / "report.html";
  report.save(page.string());
  if (const char* keep = std::getenv("TRINE_REPORT_EXAMPLE")) report.save(keep);

  // Control first: the probe must see a page's console errors, or a clean run proves nothing.
  // Here an external image and a script that the page's security policy refuses to load.
  std::string bad = html;
  bad.insert(
      bad.find("</main>"),
      "<img src=\"https://example.invalid/x.png\"><script>throw new Error('probe')</script>");
  write_file_atomic((dir_ / "bad.html").string(), bad);
  const BrowserRun control = render(dir_ / "bad.html", dir_ / "bad.png", dir_);
  ASSERT_EQ(control.status, 0) << control.stderr_text;
  EXPECT_FALSE(control.console.empty()) << "the console probe saw nothing on a broken page";

  const BrowserRun run = render(page, dir_ / "shot.png", dir_);
  ASSERT_EQ(run.status, 0) << "chromium failed or timed out:\n" << run.stderr_text;
  for (const std::string& line : run.console) ADD_FAILURE() << "page console: " << line;
  EXPECT_LT(run.seconds, 30.0);

  // The DOM Chromium built: every chart, with its title, and every thumbnail.
  const std::string& dom = run.dom;
  ASSERT_FALSE(dom.empty());
  EXPECT_EQ(count(dom, "<svg class=\"chart\""), count(html, "<svg class=\"chart\""));
  EXPECT_EQ(count(dom, "<svg"), count(dom, "</svg>"));
  for (const char* title : {"<title>Training loss</title>", "<title>Active triplets</title>",
                            "<title>Pair distances (test)</title>", "<title>ROC (fold 1)</title>",
                            "<title>Same vs different pairs</title>",
                            "<title>PCA of face embeddings (400 identities)</title>"})
    EXPECT_NE(dom.find(title), std::string::npos) << title;
  EXPECT_EQ(count(dom, "<img"), 14u);
  EXPECT_NE(dom.find("&lt;three&gt; &amp; \"3\""), std::string::npos);  // escaped, kept as text

  // The screenshot: the page painted, charts included.
  int w = 0, h = 0, c = 0;
  stbi_uc* px = stbi_load((dir_ / "shot.png").c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr) << "no readable screenshot";
  EXPECT_EQ(w, 1200);
  EXPECT_EQ(h, 3000);
  size_t header = 0, blue = 0, orange = 0, non_background = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const stbi_uc* p = px + 3 * (static_cast<size_t>(y) * w + x);
      auto near = [&](int r, int g, int b) {
        return std::abs(p[0] - r) + std::abs(p[1] - g) + std::abs(p[2] - b) < 30;
      };
      if (y < 40 && near(0x1e, 0x2a, 0x45)) ++header;
      if (near(0x1f, 0x77, 0xb4)) ++blue;    // palette colour 0: first series and class
      if (near(0xff, 0x7f, 0x0e)) ++orange;  // palette colour 1
      if (!near(0xf3, 0xf5, 0xf8) && !near(255, 255, 255)) ++non_background;
    }
  stbi_image_free(px);
  EXPECT_GT(header, 1200u * 20) << "the header bar did not paint (stylesheet not applied?)";
  EXPECT_GT(blue, 2000u) << "chart lines and dots in the first colour are missing";
  EXPECT_GT(orange, 1000u);
  EXPECT_GT(non_background, static_cast<size_t>(w) * h / 20);
}

}  // namespace
}  // namespace trine::report
