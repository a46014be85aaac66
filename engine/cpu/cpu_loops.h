// Loop helpers for the CPU backend (internal).
#pragma once

#include <cstdint>

#include "engine/backend.h"
#include "engine/parallel.h"

// Compiles a hot loop also for AVX2 and AVX-512 machines and picks the widest at load time
// (GCC function multiversioning); the library itself stays built for baseline x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TRINE_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TRINE_VECTOR_CLONES
#endif

namespace trine::cpu {

// Elementwise work per thread chunk: large enough that waking a thread pays off.
constexpr int64_t kGrain = 1 << 15;

// Runs f(i) for i in [0, n), split across the pool; f is inlined into each chunk's loop.
template <typename F>
void map_n(int64_t n, F f, int64_t grain = kGrain) {
  parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

// `parts` buffers of `floats` floats each, from the backend's caching allocator for the duration
// of a scope, each starting on a 64-byte line of its own: the per-part scratch of a
// parallel_parts call, taken before the parts run so that the memory taken does not depend on
// whether they overlap in time.
class PartScratch {
 public:
  PartScratch(Backend& be, int64_t parts, int64_t floats)
      : stride_((floats + 15) / 16 * 16), buffer_(be, parts * stride_) {}
  float* part(int64_t q) const { return buffer_.get() + q * stride_; }

 private:
  int64_t stride_;  // declared before buffer_: initialized first
  Scratch buffer_;
};

}  // namespace trine::cpu
