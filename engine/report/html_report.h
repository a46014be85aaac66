// HtmlReport: a run report as ONE self-contained HTML file (inline CSS and SVG, images as PNG
// data URIs, no script, nothing fetched) with metric tiles, charts, tables and thumbnails.
//
// Page layout, top to bottom: a header with the run title (and subtitle); the summary tiles
// (add_summary, always first, whenever they were added); every other block in the order it was
// added, charts and key-value cards flowing in a responsive two-column grid, headings, tables
// and thumbnail grids across the full width; the configuration (set_configuration, always
// last); a footer. All text given is plain text and is escaped.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/report/charts.h"
#include "engine/report/pca.h"
#include "engine/report/series.h"
#include "engine/report/thumbnail.h"

namespace trine::report {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  // A line under the title: the command, the dataset, the date (the page adds no clock time of
  // its own, so the same calls give the same bytes).
  void set_subtitle(const std::string& text);

  // Key metrics as large tiles at the top of the page (label, value). Calls append.
  void add_summary(const KeyValues& metrics);

  // The run's configuration, shown as the page's last section. Replaces an earlier one.
  void set_configuration(const KeyValues& rows);

  // A section heading across the full width.
  void add_heading(const std::string& text);
  // A paragraph of text across the full width.
  void add_paragraph(const std::string& text);

  // A two-column card (label, value).
  void add_key_values(const std::string& title, const KeyValues& rows);

  // A full-width table; columns of numbers are right-aligned. Every row has header.size()
  // cells (when there is a header).
  void add_table(const std::string& title, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

  // Lines on shared axes (line_chart_svg): gaps at non-finite values, over 2000 points per
  // series downsampled. Apply smooth() to noisy per-step values first if wanted.
  void add_line_chart(const std::string& title, const std::string& x_label,
                      const std::string& y_label, const std::vector<Series>& series,
                      bool log_y = false);
  void add_line_chart(const std::string& title, const std::string& x_label,
                      const std::string& y_label, const std::vector<Series>& series,
                      const LineChartOptions& options);

  // ROC curves: series x = false accept rate, y = true accept rate (verification's
  // roc_curve), both axes fixed to [0, 1] with the chance diagonal; log_far puts FAR on a log
  // axis from 1e-4 (points with FAR 0 are then left out).
  void add_roc_curve(const std::string& title, const std::vector<Series>& series,
                     bool log_far = false);

  // Overlaid density histograms of the named samples over `bins` shared bins (positive vs
  // negative pair distances, say), with optional dashed markers (a threshold).
  void add_histograms(const std::string& title, const std::string& x_label,
                      const std::vector<std::pair<std::string, std::vector<double>>>& samples,
                      int bins = 50, const std::vector<Marker>& markers = {});

  // A scatter plot coloured by label (scatter_svg): a legend with class_names for up to 20
  // classes, a cycling palette beyond.
  void add_scatter(const std::string& title, const std::vector<ScatterPoint>& points,
                   const std::vector<std::string>& class_names = {},
                   const std::string& x_label = "PC 1", const std::string& y_label = "PC 2");

  // Image pairs side by side with captions (hardest false matches, misses), as PNG data URIs.
  void add_thumbnail_grid(const std::string& title, const std::vector<ThumbnailPair>& pairs);

  // The whole page.
  std::string html() const;
  // Writes html() to `path` atomically (temporary file, fsync, rename). Throws Error.
  void save(const std::string& path) const;

 private:
  void add_chart(const std::string& title, const ChartMarkup& chart);

  std::string title_, subtitle_;
  KeyValues summary_, configuration_;
  std::vector<std::string> blocks_;  // rendered in order of the add_* calls
};

}  // namespace trine::report
