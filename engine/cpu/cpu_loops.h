// Loop helpers for the CPU backend (internal).
#pragma once

#include <cstdint>

#include "engine/parallel.h"

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
