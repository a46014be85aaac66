// Running the built `trine` program from tests: its path, one invocation with stdout and stderr
// captured, and `name value` output parsing.
#pragma once

#include <map>
#include <string>

namespace trine::test {

struct ProgramResult {
  int status = -1;  // exit status; 128 + signal when killed by a signal
  std::string out, err;
};

// $TRINE_BINARY_DIR/trine ("" when it does not exist).
std::string trine_program();
// The repository's shared data folder ($TRINE_SOURCE_DIR/../shared/data), "" when absent.
std::string shared_data_dir();
// shared_data_dir()/mnist when it holds MNIST (its train images, gzipped), "" otherwise.
std::string shared_mnist_dir();
// Runs `trine <args>` through the shell (args are passed verbatim), capturing both streams.
ProgramResult run_trine(const std::string& args);
// "name value" lines -> map (later lines win).
std::map<std::string, std::string> parse_name_values(const std::string& text);

}  // namespace trine::test
