// HtmlReport: page assembly, cards, tables and the stylesheet.
#include "engine/report/html_report.h"

#include <cstdlib>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/report/markup.h"

namespace trine::report {

namespace {

// The whole stylesheet: system fonts only (nothing to fetch), light theme, print-friendly.
constexpr const char* kStyle = R"css(
:root{--fg:#1d2433;--muted:#5d6675;--bg:#f3f5f8;--card:#fff;--line:#e1e5eb;--accent:#3461c1}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1e2a45;color:#fff;padding:22px 32px 18px}
header h1{margin:0;font-size:23px;font-weight:600;letter-spacing:.2px}
header .sub{margin-top:4px;color:#c3cde0;font-size:13px}
main{max-width:1440px;margin:0 auto;padding:20px 24px 8px;display:grid;gap:16px;
 grid-template-columns:repeat(auto-fill,minmax(min(100%,540px),1fr));align-items:start}
.wide{grid-column:1/-1}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;
 box-shadow:0 1px 2px rgba(20,30,50,.04);min-width:0}
.card h3{margin:0 0 8px;font-size:15px;font-weight:600}
h2{grid-column:1/-1;margin:10px 0 -4px;font-size:18px;font-weight:600;
 border-bottom:2px solid var(--line);padding-bottom:5px}
p.text{grid-column:1/-1;margin:0;max-width:110ch}
.summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px}
.metric{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--accent);
 border-radius:8px;padding:10px 14px}
.metric .v{font-size:23px;font-weight:650;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.metric .k{color:var(--muted);font-size:12.5px}
svg.chart{display:block;width:100%;height:auto}
svg.chart text{font-size:11.5px;fill:#4b5363}
svg.chart text.label{font-size:12.5px;fill:#2b3242}
svg.chart .grid line{stroke:#edf0f4;stroke-width:1}
svg.chart .axis path{stroke:#8b93a1;fill:none;stroke-width:1}
svg.chart path.line{fill:none;stroke-width:1.7;stroke-linejoin:round;stroke-linecap:round}
svg.chart path.area{fill-opacity:.22;stroke-width:1.4;stroke-linejoin:round}
svg.chart path.ref{fill:none;stroke:#9aa1ad;stroke-width:1;stroke-dasharray:5 4}
svg.chart line.marker{stroke:#1d2433;stroke-width:1.2;stroke-dasharray:5 4}
svg.chart text.marker{fill:#1d2433}
svg.chart .dots circle{fill-opacity:.78}
.legend{display:flex;flex-wrap:wrap;gap:3px 16px;margin-top:6px;font-size:12.5px;color:#3a4252}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;
 vertical-align:-1px}
.note{margin:6px 0 0;font-size:12px;color:var(--muted)}
.nodata{padding:40px 0;text-align:center;color:var(--muted);background:#fafbfc;
 border:1px dashed var(--line);border-radius:6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;background:#f7f8fa}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv td:first-child{color:var(--muted);width:40%}
table.kv td:last-child{font-variant-numeric:tabular-nums}
table.kv td{overflow-wrap:anywhere}
.thumbs{display:flex;flex-wrap:wrap;gap:12px}
figure.pair{margin:0;padding:6px;background:#fafbfc;border:1px solid var(--line);border-radius:6px}
figure.pair div{display:flex;gap:4px}
figure.pair img{display:block;height:96px;width:auto;border-radius:3px;background:#000}
figure.pair img.px{image-rendering:pixelated}
figure.pair figcaption{margin-top:4px;font-size:11.5px;color:#3a4252;max-width:200px}
footer{max-width:1440px;margin:0 auto;padding:8px 24px 28px;color:var(--muted);font-size:12px}
@media print{body{background:#fff}.card{box-shadow:none;break-inside:avoid}}
)css";

// True when `s` reads as one number (optionally with a trailing %): such cells right-align.
bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  const char* begin = s.c_str();
  char* end = nullptr;
  std::strtod(begin, &end);
  if (end == begin) return false;
  if (*end == '%') ++end;
  return *end == '\0';
}

std::string key_value_table(const KeyValues& rows) {
  std::string o = "<table class=\"kv\">";
  for (const auto& [k, v] : rows)
    o += "<tr><td>" + escape_html(k) + "</td><td>" + escape_html(v) + "</td></tr>";
  return o + "</table>";
}

std::string card_open(const std::string& title, bool wide) {
  std::string o = wide ? "<section class=\"card wide\">" : "<section class=\"card\">";
  if (!title.empty()) o += "<h3>" + escape_html(title) + "</h3>";
  return o;
}

}  // namespace

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

void HtmlReport::set_subtitle(const std::string& text) {
  subtitle_ = text;
}

void HtmlReport::add_summary(const KeyValues& metrics) {
  summary_.insert(summary_.end(), metrics.begin(), metrics.end());
}

void HtmlReport::set_configuration(const KeyValues& rows) {
  configuration_ = rows;
}

void HtmlReport::add_heading(const std::string& text) {
  blocks_.push_back("<h2>" + escape_html(text) + "</h2>");
}

void HtmlReport::add_paragraph(const std::string& text) {
  blocks_.push_back("<p class=\"text\">" + escape_html(text) + "</p>");
}

void HtmlReport::add_key_values(const std::string& title, const KeyValues& rows) {
  std::string o = card_open(title, false);
  o += rows.empty() ? "<div class=\"nodata\">No data</div>" : key_value_table(rows);
  blocks_.push_back(o + "</section>");
}

void HtmlReport::add_table(const std::string& title, const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows) {
  for (size_t r = 0; r < rows.size(); ++r)
    TRINE_CHECK(header.empty() || rows[r].size() == header.size(), "table \"", title, "\": row ", r,
                " has ", rows[r].size(), " cells, the header ", header.size());
  std::string o = card_open(title, true);
  if (rows.empty() && header.empty()) {
    o += "<div class=\"nodata\">No data</div>";
  } else {
    // A column whose cells all read as numbers is right-aligned, header included.
    const size_t columns = header.empty() ? (rows.empty() ? 0 : rows[0].size()) : header.size();
    std::vector<bool> numeric(columns, !rows.empty());
    for (const auto& row : rows)
      for (size_t c = 0; c < columns && c < row.size(); ++c)
        if (!looks_numeric(row[c])) numeric[c] = false;
    auto open = [&](const char* tag, size_t c) {
      return std::string("<") + tag + (c < columns && numeric[c] ? " class=\"num\">" : ">");
    };
    o += "<div class=\"scroll\"><table>";
    if (!header.empty()) {
      o += "<thead><tr>";
      for (size_t c = 0; c < header.size(); ++c)
        o += open("th", c) + escape_html(header[c]) + "</th>";
      o += "</tr></thead>";
    }
    o += "<tbody>";
    for (const auto& row : rows) {
      o += "<tr>";
      for (size_t c = 0; c < row.size(); ++c) o += open("td", c) + escape_html(row[c]) + "</td>";
      o += "</tr>";
    }
    o += "</tbody></table></div>";
  }
  blocks_.push_back(o + "</section>");
}

void HtmlReport::add_chart(const std::string& title, const ChartMarkup& chart) {
  std::string o = card_open(title, false);
  if (chart.svg.empty()) {
    o += "<div class=\"nodata\">No data</div>";
  } else {
    o += chart.svg;
    if (!chart.legend.empty()) {
      o += "<div class=\"legend\">";
      for (const LegendEntry& e : chart.legend)
        o += "<span><i style=\"background:" + escape_html(e.color) + "\"></i>" +
             escape_html(e.label) + "</span>";
      o += "</div>";
    }
  }
  for (const std::string& n : chart.notes)
    if (!(chart.svg.empty() && n == "no data to plot"))
      o += "<p class=\"note\">" + escape_html(n) + "</p>";
  blocks_.push_back(o + "</section>");
}

void HtmlReport::add_line_chart(const std::string& title, const std::string& x_label,
                                const std::string& y_label, const std::vector<Series>& series,
                                bool log_y) {
  LineChartOptions options;
  options.log_y = log_y;
  add_line_chart(title, x_label, y_label, series, options);
}

void HtmlReport::add_line_chart(const std::string& title, const std::string& x_label,
                                const std::string& y_label, const std::vector<Series>& series,
                                const LineChartOptions& options) {
  add_chart(title, line_chart_svg(title, x_label, y_label, series, options));
}

void HtmlReport::add_roc_curve(const std::string& title, const std::vector<Series>& series,
                               bool log_far) {
  LineChartOptions options;
  options.log_x = log_far;
  options.x_min = log_far ? 1e-4 : 0.0;
  options.x_max = 1.0;
  options.y_min = 0.0;
  options.y_max = 1.0;
  options.diagonal = true;
  add_line_chart(title, "false accept rate", "true accept rate", series, options);
}

void HtmlReport::add_histograms(
    const std::string& title, const std::string& x_label,
    const std::vector<std::pair<std::string, std::vector<double>>>& samples, int bins,
    const std::vector<Marker>& markers) {
  add_chart(title, histogram_svg(title, x_label, samples, bins, markers));
}

void HtmlReport::add_scatter(const std::string& title, const std::vector<ScatterPoint>& points,
                             const std::vector<std::string>& class_names,
                             const std::string& x_label, const std::string& y_label) {
  add_chart(title, scatter_svg(title, points, class_names, x_label, y_label));
}

void HtmlReport::add_thumbnail_grid(const std::string& title,
                                    const std::vector<ThumbnailPair>& pairs) {
  std::string o = card_open(title, true);
  if (pairs.empty()) {
    o += "<div class=\"nodata\">No data</div>";
  } else {
    o += "<div class=\"thumbs\">";
    for (const ThumbnailPair& p : pairs) {
      const std::string caption = escape_html(p.caption);
      o += "<figure class=\"pair\"><div>";
      for (const Thumbnail* t : {&p.a, &p.b}) {
        // Small images scale up with hard pixel edges rather than blur.
        o += std::string("<img") + (t->height < 96 ? " class=\"px\"" : "") + " src=\"" +
             png_data_uri(*t) + "\" width=\"" + std::to_string(t->width) + "\" height=\"" +
             std::to_string(t->height) + "\" alt=\"" + caption + "\">";
      }
      o += "</div><figcaption>" + caption + "</figcaption></figure>";
    }
    o += "</div>";
  }
  blocks_.push_back(o + "</section>");
}

std::string HtmlReport::html() const {
  std::string o;
  o.reserve(4096 + 1024 * blocks_.size());
  o += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  // Self-contained by contract: the browser itself refuses anything but inline styles and
  // data: images, so a stray external reference shows up as an error, not a silent fetch.
  o += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'; img-src data:\">\n";
  o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  o += "<meta name=\"generator\" content=\"trine\">\n";
  o += "<title>" + escape_html(title_) + "</title>\n<style>" + kStyle + "</style></head>\n<body>\n";
  o += "<header><h1>" + escape_html(title_) + "</h1>";
  if (!subtitle_.empty()) o += "<div class=\"sub\">" + escape_html(subtitle_) + "</div>";
  o += "</header>\n<main>\n";
  if (!summary_.empty()) {
    o += "<section class=\"summary wide\" aria-label=\"summary\">";
    for (const auto& [k, v] : summary_)
      o += "<div class=\"metric\"><div class=\"v\">" + escape_html(v) + "</div><div class=\"k\">" +
           escape_html(k) + "</div></div>";
    o += "</section>\n";
  }
  for (const std::string& b : blocks_) o += b + "\n";
  if (!configuration_.empty()) {
    o += "<h2>Configuration</h2>\n<section class=\"card wide\">" + key_value_table(configuration_) +
         "</section>\n";
  }
  o += "</main>\n<footer>Generated by trine";
#ifdef TRINE_VERSION
  o += " " TRINE_VERSION;
#endif
  o += ". One self-contained file: inline SVG and CSS, no scripts, nothing fetched.</footer>\n";
  o += "</body></html>\n";
  return o;
}

void HtmlReport::save(const std::string& path) const {
  write_file_atomic(path, html());
}

}  // namespace trine::report
