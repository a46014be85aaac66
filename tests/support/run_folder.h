// Reading what a `trine mnist`/`trine faces` run leaves in its folder, for tests that compare
// runs: the step log without its timing column, and the top-level numbers of metrics.json.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace trine::test {

// train_log.csv as rows of fields, without the images_per_s column (timing differs run to run).
std::vector<std::vector<std::string>> step_log_without_timing(const std::string& run_dir);
// One column of train_log.csv by name, as text (exact digits as written).
std::vector<std::string> step_log_column(const std::string& run_dir, const std::string& name);
// metrics.json's top-level "key": value pairs whose value is a number (or null), as text.
std::map<std::string, std::string> metrics_numbers(const std::string& run_dir);
// The timing and memory figures of metrics.json, which differ between identical runs.
bool is_timing_metric(const std::string& key);

}  // namespace trine::test
