// Shared by the libFuzzer targets: the readers under test take a path, so each input is written
// to one scratch file per fuzzing process (in /dev/shm when there is one: no disk traffic).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace trine::fuzz {

// The scratch file of this process, named `stem` plus the process id.
inline const std::string& scratch_path(const char* stem) {
  static const std::string path = [stem] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/trine_fuzz_" + stem + "_" + std::to_string(getpid());
  }();
  return path;
}

// Writes the input to the scratch file and returns its path.
inline const std::string& write_input(const char* stem, const uint8_t* data, size_t size) {
  const std::string& path = scratch_path(stem);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the harness itself is broken, not the reader
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace trine::fuzz
