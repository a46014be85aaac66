// The seam between the engine and the optional CUDA backend. Built with CUDA, these come from
// engine/cuda/*.cu; built without, from engine/cuda/cuda_stub.cpp, which throws. No CUDA header
// is included here, so public headers stay CUDA-free.
#pragma once

#include "engine/backend.h"

namespace trine {

// Creates the backend for GPU `index`; throws trine::Error when CUDA is not built in, no GPU is
// present, or the index is out of range. Never falls back to the CPU.
Backend* make_cuda_backend(int index);

// Number of visible GPUs (0 without CUDA or without a driver; never throws).
int cuda_device_count();

// True when this build contains the CUDA backend.
bool cuda_built();

}  // namespace trine
