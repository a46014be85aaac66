// Built when trine is configured without CUDA (TRINE_CUDA=OFF, or AUTO without nvcc).
#include "engine/cuda/cuda_api.h"
#include "engine/error.h"

namespace trine {

Backend* make_cuda_backend(int index) {
  throw UsageError("device cuda:" + std::to_string(index) +
                   " requested, but trine was built without CUDA; reconfigure with "
                   "-DTRINE_CUDA=ON (needs the CUDA Toolkit) and rebuild");
}

int cuda_device_count() {
  return 0;
}

bool cuda_built() {
  return false;
}

}  // namespace trine
