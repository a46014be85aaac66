// Loop helpers for the CPU backend (internal).
#pragma once

#include <cstdint>

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

}  // namespace trine::cpu
