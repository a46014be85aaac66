// Device names.
#include "engine/device.h"

#include "engine/error.h"

namespace trine {

std::string Device::str() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string num = text.substr(5);
    bool digits =
        !num.empty() && num.size() < 4 && num.find_first_not_of("0123456789") == std::string::npos;
    if (digits) return cuda(std::stoi(num));
  }
  throw UsageError("unknown device '" + text + "': expected cpu, cuda or cuda:N");
}

}  // namespace trine
