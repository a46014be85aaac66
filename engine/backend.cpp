// The backend registry: one backend per device, created on first use and never destroyed (so
// tensors released during static destruction still find their backend).
#include <map>
#include <mutex>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/error.h"

namespace trine {

Backend& backend_for(const Device& device) {
  if (device.is_cpu()) {
    static Backend* cpu = new CpuBackend();
    return *cpu;
  }
  static std::mutex mutex;
  static auto* cuda = new std::map<int, Backend*>();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cuda->find(device.index);
  if (it == cuda->end()) it = cuda->emplace(device.index, make_cuda_backend(device.index)).first;
  return *it->second;
}

bool cuda_available() {
  return cuda_device_count() > 0;
}

}  // namespace trine
