// Output helpers for the `trine` subcommands.
#include "apps/run_support.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "engine/backend.h"
#include "engine/error.h"

namespace trine::cli {

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

Json& Json::set(const std::string& key, double v) {
  if (!std::isfinite(v)) {
    items_.emplace_back(key, "null");
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    items_.emplace_back(key, buf);
  }
  return *this;
}
Json& Json::set(const std::string& key, int64_t v) {
  items_.emplace_back(key, std::to_string(v));
  return *this;
}
Json& Json::set(const std::string& key, bool v) {
  items_.emplace_back(key, v ? "true" : "false");
  return *this;
}
Json& Json::set(const std::string& key, const std::string& v) {
  items_.emplace_back(key, json_quote(v));
  return *this;
}
Json& Json::set(const std::string& key, const Json& object) {
  std::string nested(1, '\x01');  // \x01: nested, re-indented on dump
  nested += object.dump(-1);
  items_.emplace_back(key, std::move(nested));
  return *this;
}

std::string Json::dump(int indent) const {
  // indent < 0: compact (used for nesting, then re-indented by the parent).
  std::string out = "{";
  for (size_t i = 0; i < items_.size(); ++i) {
    std::string value = items_[i].second;
    if (!value.empty() && value[0] == '\x01') value = value.substr(1);
    out += (i ? "," : "");
    if (indent >= 0) out.append(1, '\n').append(static_cast<size_t>(indent), ' ');
    out += json_quote(items_[i].first) + (indent >= 0 ? ": " : ":");
    if (indent >= 0) {  // indent nested objects one level further
      std::string nested;
      for (char c : value) {
        nested += c;
        if (c == '\n') nested += std::string(static_cast<size_t>(indent), ' ');
      }
      value = nested;
    }
    out += value;
  }
  if (indent >= 0 && !items_.empty()) out += "\n";
  return out + "}";
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void print_peak_memory(double rss_mb, const Device& device) {
  std::printf("peak_rss_mb %.1f\n", rss_mb);
  if (!device.is_cpu())
    std::printf(
        "peak_gpu_mb %.1f\n",
        static_cast<double>(backend_for(device).allocator_stats().peak_bytes_in_use) / (1 << 20));
}

void ensure_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    TRINE_CHECK(fs::is_directory(dir, ec), "output folder ", dir, " exists and is not a folder");
    return;
  }
  fs::create_directories(dir, ec);
  TRINE_CHECK(!ec, "cannot create folder ", dir, ": ", ec.message());
}

bool stderr_is_tty() {
  return ::isatty(STDERR_FILENO) == 1;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return buf;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::string what, int64_t total, int64_t log_every)
    : what_(std::move(what)),
      total_(total),
      log_every_(std::max<int64_t>(1, log_every)),
      tty_(stderr_is_tty()),
      start_(now_seconds()) {}

void Progress::update(int64_t done, const std::string& fields) {
  const double t = now_seconds();
  const double elapsed = t - start_;
  const double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / done : NAN;
  if (tty_) {
    if (t - last_draw_ < 0.1 && done < total_) return;  // redraw at most 10 times a second
    last_draw_ = t;
    const int width = 24;
    const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : 0;
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
    std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s ETA %s", what_.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), fields.c_str(),
                 format_duration(eta).c_str());
    std::fflush(stderr);
  } else if (done / log_every_ != last_logged_ / log_every_ || last_logged_ < 0) {
    last_logged_ = done;
    std::fprintf(stderr, "%s %lld/%lld %s elapsed %s ETA %s\n", what_.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), fields.c_str(),
                 format_duration(elapsed).c_str(), format_duration(eta).c_str());
  }
}

void Progress::finish(const std::string& fields) {
  const double elapsed = now_seconds() - start_;
  if (tty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s done %lld/%lld %s in %s\n", what_.c_str(),
               static_cast<long long>(total_), static_cast<long long>(total_), fields.c_str(),
               format_duration(elapsed).c_str());
}

}  // namespace trine::cli
