// Helpers the `trine` subcommands share for their outputs: a small JSON writer, process memory,
// run folders, terminal progress, durations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "engine/device.h"

namespace trine::cli {

// A flat-or-nested JSON object built in insertion order; numbers that are not finite become
// null (JSON has no NaN).
class Json {
 public:
  Json& set(const std::string& key, double v);
  Json& set(const std::string& key, int64_t v);
  Json& set(const std::string& key, int v) { return set(key, static_cast<int64_t>(v)); }
  Json& set(const std::string& key, bool v);
  Json& set(const std::string& key, const std::string& v);
  Json& set(const std::string& key, const char* v) { return set(key, std::string(v)); }
  Json& set(const std::string& key, const Json& object);
  std::string dump(int indent = 2) const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;  // key -> rendered value
};

// JSON string literal with escapes.
std::string json_quote(const std::string& s);

// Peak resident set size of this process in MiB (getrusage).
double peak_rss_mb();
// Prints `peak_rss_mb RSS` and, for a GPU, `peak_gpu_mb X`: the most bytes the device's caching
// allocator had handed out at once (the PyTorch peers' torch.cuda.max_memory_allocated()).
void print_peak_memory(double rss_mb, const Device& device);
// Creates `dir` (and parents); throws Error naming it on failure or when it is a file.
void ensure_dir(const std::string& dir);
// True when stderr is a terminal (progress bars) rather than a file or pipe (log lines).
bool stderr_is_tty();
// "1:02:03" / "2:03".
std::string format_duration(double seconds);

// Progress on stderr: a redrawn bar on a terminal, otherwise one line every `log_every` calls
// to update() and on finish().
class Progress {
 public:
  Progress(std::string what, int64_t total, int64_t log_every);
  // `done` of total; `fields` are shown after the counter ("loss 0.1234").
  void update(int64_t done, const std::string& fields);
  void finish(const std::string& fields);

 private:
  std::string what_;
  int64_t total_, log_every_;
  bool tty_;
  double start_;
  int64_t last_logged_ = -1;
  double last_draw_ = -1;
};

// Monotonic seconds.
double now_seconds();

}  // namespace trine::cli
