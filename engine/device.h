// Devices: where a tensor's storage lives.
#pragma once

#include <string>

namespace trine {

enum class DeviceType { CPU, CUDA };

// A device: CPU, or a CUDA GPU by index.
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;

  // "cpu", "cuda:0".
  std::string str() const;
  // Parses "cpu", "cuda", "cuda:N"; throws UsageError naming the text otherwise.
  static Device parse(const std::string& text);
};

}  // namespace trine
