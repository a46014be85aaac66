// Running the trine program from tests.
#include "support/run_program.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace trine::test {

namespace fs = std::filesystem;

std::string trine_program() {
  const char* bin = std::getenv("TRINE_BINARY_DIR");
  const std::string exe = std::string(bin ? bin : ".") + "/trine";
  return fs::exists(exe) ? exe : "";
}

std::string shared_data_dir() {
  const char* src = std::getenv("TRINE_SOURCE_DIR");
  const fs::path dir = fs::path(src ? src : ".") / ".." / "shared" / "data";
  return fs::exists(dir) ? dir.lexically_normal().string() : "";
}

std::string shared_mnist_dir() {
  const std::string data = shared_data_dir();
  if (data.empty() || !fs::exists(data + "/mnist/train-images-idx3-ubyte.gz")) return "";
  return data + "/mnist";
}

ProgramResult run_trine(const std::string& args) {
  static int counter = 0;
  const fs::path err_file =
      fs::temp_directory_path() /
      ("trine_test_stderr_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  const std::string cmd = trine_program() + " " + args + " 2> " + err_file.string();
  ProgramResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : (WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
  std::ifstream e(err_file);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  std::error_code ec;
  fs::remove(err_file, ec);
  return r;
}

std::map<std::string, std::string> parse_name_values(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t sp = line.find(' ');
    if (sp != std::string::npos) out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

}  // namespace trine::test
