// Error helpers.
#include "engine/error.h"

#include <cstring>

namespace trine::detail {

std::string where(const char* file, int line) {
  // Keep the path from the project's top-level folder on ("engine/ops.cpp:12").
  const char* tail = file;
  for (const char* top : {"engine/", "layers/", "losses/", "mining/", "datasets/", "apps/"}) {
    if (const char* p = std::strstr(file, top)) {
      tail = p;
      break;
    }
  }
  return concat(" [", tail, ":", line, "]");
}

}  // namespace trine::detail
