// Errors: every precondition on user input is a TRINE_CHECK that throws trine::Error naming
// the place, the op and the values at fault. Checks are never compiled out.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace trine {

// Base error. `what()` is a complete, human-readable message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// The user asked for something invalid (bad flag, bad value, bad combination). Apps exit 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A file or its contents are wrong (truncated, corrupt, mismatched). Apps exit 1.
class DataError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
std::string where(const char* file, int line);
}  // namespace detail

}  // namespace trine

// TRINE_CHECK(cond, parts...): throws trine::Error("parts... [file:line]") when cond is false.
#define TRINE_CHECK(cond, ...)                                          \
  do {                                                                  \
    if (!(cond))                                                        \
      throw ::trine::Error(::trine::detail::concat(__VA_ARGS__) +       \
                           ::trine::detail::where(__FILE__, __LINE__)); \
  } while (0)

// Same, throwing a specific Error subclass (UsageError, DataError).
#define TRINE_CHECK_AS(type, cond, ...)                       \
  do {                                                        \
    if (!(cond))                                              \
      throw type(::trine::detail::concat(__VA_ARGS__) +       \
                 ::trine::detail::where(__FILE__, __LINE__)); \
  } while (0)
