// The CUDA seam of a build with CUDA (cuda_api.h). A shared libtrine keeps the CUDA backend in a
// module of its own, libtrine_cuda.so, next to libtrine.so, and opens it the first time CUDA is
// asked about: cuBLAS alone is over half a gigabyte of code, and linking it into libtrine made
// every program start (every `trine` command, every test) wait a third of a second for the
// loader even when it never used a GPU; a machine without the CUDA runtime could not start the
// program at all. A static libtrine (TRINE_CUDA_DIRECT) links the backend in and calls it.
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/cuda/cuda_api.h"
#include "engine/error.h"

#ifndef TRINE_CUDA_DIRECT
#include <dlfcn.h>
#endif

namespace trine {

namespace {

struct Module {
  decltype(&trine_cuda_device_count) device_count = nullptr;
  decltype(&trine_cuda_make_backend) make_backend = nullptr;
  std::string error;  // why it could not be loaded ("" when loaded)
};

#ifdef TRINE_CUDA_DIRECT

const Module& module() {
  static const Module m{&trine_cuda_device_count, &trine_cuda_make_backend, ""};
  return m;
}

#else

// The folder of the libtrine this code is in, with its final '/', or "" when unknown.
std::string own_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cuda_built), &info) == 0 || !info.dli_fname) return "";
  const std::string path = info.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

Module load() {
  // TRINE_CUDA_MODULE names the module; otherwise the one beside libtrine, then wherever the
  // dynamic loader finds one (LD_LIBRARY_PATH, the program's run path).
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("TRINE_CUDA_MODULE"); env && *env) {
    candidates.push_back(env);
  } else {
    if (const std::string own = own_folder(); !own.empty())
      candidates.push_back(own + "libtrine_cuda.so");
    candidates.push_back("libtrine_cuda.so");
  }
  std::string tried;
  auto note = [&](const std::string& why) { tried += (tried.empty() ? "" : "; ") + why; };
  for (const std::string& c : candidates) {
    void* handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* e = dlerror();
      note(e ? e : c + ": not found");
      continue;
    }
    auto count =
        reinterpret_cast<decltype(Module::device_count)>(dlsym(handle, "trine_cuda_device_count"));
    auto make =
        reinterpret_cast<decltype(Module::make_backend)>(dlsym(handle, "trine_cuda_make_backend"));
    if (count && make) return Module{count, make, ""};
    dlclose(handle);
    note(c + ": not trine's CUDA module (no entry points)");
  }
  return Module{nullptr, nullptr,
                "trine's CUDA module could not be loaded (" + tried +
                    "); it needs the CUDA 13 runtime and cuBLAS (libcudart.so.13, "
                    "libcublas.so.13) on the library path"};
}

const Module& module() {
  static const Module m = load();
  return m;
}

#endif

}  // namespace

int cuda_device_count() {
  const Module& m = module();
  return m.device_count ? m.device_count() : 0;
}

bool cuda_built() {
  return true;
}

Backend* make_cuda_backend(int index) {
  const Module& m = module();
  if (!m.make_backend)
    throw UsageError("device cuda:" + std::to_string(index) + " requested, but " + m.error);
  return m.make_backend(index);
}

}  // namespace trine
