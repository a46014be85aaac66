// The seam between the engine and the optional CUDA backend. Built with CUDA, these come from
// engine/cuda/cuda_loader.cpp, which opens the backend's module (libtrine_cuda.so, built from
// engine/cuda/*.cu) the first time CUDA is asked about; built without, from
// engine/cuda/cuda_stub.cpp, which throws. No CUDA header is included here, so public headers
// stay CUDA-free.
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

// The CUDA module's entry points (engine/cuda/cuda_backend.cu), with C linkage so that the
// loader finds them by name: the device count (0 when there is no driver or GPU; never throws)
// and a new backend for GPU `index` (throws trine::UsageError saying why it cannot).
extern "C" int trine_cuda_device_count();
extern "C" trine::Backend* trine_cuda_make_backend(int index);
