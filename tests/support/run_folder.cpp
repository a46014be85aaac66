// Reading run folders for comparisons.
#include "support/run_folder.h"

#include <sstream>

#include "support/child_process.h"

namespace trine::test {

namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string f; std::getline(ss, f, ',');) out.push_back(f);
  return out;
}

std::vector<std::vector<std::string>> read_csv(const std::string& run_dir) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_text(run_dir + "/train_log.csv"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(split_csv(line));
  return rows;
}

}  // namespace

std::vector<std::vector<std::string>> step_log_without_timing(const std::string& run_dir) {
  std::vector<std::vector<std::string>> rows = read_csv(run_dir);
  if (rows.empty()) return rows;
  size_t timing = rows[0].size();
  for (size_t i = 0; i < rows[0].size(); ++i)
    if (rows[0][i] == "images_per_s") timing = i;
  for (auto& row : rows)
    if (timing < row.size()) row.erase(row.begin() + static_cast<std::ptrdiff_t>(timing));
  return rows;
}

std::vector<std::string> step_log_column(const std::string& run_dir, const std::string& name) {
  std::vector<std::vector<std::string>> rows = read_csv(run_dir);
  std::vector<std::string> out;
  if (rows.empty()) return out;
  size_t col = rows[0].size();
  for (size_t i = 0; i < rows[0].size(); ++i)
    if (rows[0][i] == name) col = i;
  for (size_t r = 1; r < rows.size(); ++r) out.push_back(col < rows[r].size() ? rows[r][col] : "");
  return out;
}

std::map<std::string, std::string> metrics_numbers(const std::string& run_dir) {
  std::map<std::string, std::string> out;
  std::istringstream in(read_text(run_dir + "/metrics.json"));
  for (std::string line; std::getline(in, line);) {
    // Top-level entries are indented by two spaces: `  "key": value,`
    if (line.rfind("  \"", 0) != 0 || line.rfind("   ", 0) == 0) continue;
    const size_t close = line.find("\":", 3);
    if (close == std::string::npos) continue;
    std::string value = line.substr(close + 2);
    while (!value.empty() && (value.front() == ' ')) value.erase(value.begin());
    while (!value.empty() && (value.back() == ',' || value.back() == ' ')) value.pop_back();
    if (value.empty() || value[0] == '"' || value[0] == '{' || value[0] == '[') continue;
    out[line.substr(3, close - 3)] = value;
  }
  return out;
}

bool is_timing_metric(const std::string& key) {
  return key.find("per_s") != std::string::npos || key.find("seconds") != std::string::npos ||
         key.find("rss") != std::string::npos || key.ends_with("_s");
}

}  // namespace trine::test
