// One thread pool for elementwise and loop work on the CPU (OpenBLAS keeps its own threads for
// GEMM). Idle workers sleep instead of spinning, so they do not steal the two cores of a small
// machine from OpenBLAS between calls.
#pragma once

#include <cstdint>
#include <functional>

namespace trine {

// Threads used by trine's loops and by OpenBLAS. Default: the machine's hardware threads, or
// the TRINE_THREADS environment variable.
int num_threads();
void set_num_threads(int n);

// Runs fn(begin, end) over [0, n) split into at most num_threads() contiguous chunks of at least
// `grain` iterations. Runs inline when the range is small, when called from inside another
// parallel_for, or when another thread is using the pool. Exceptions from fn are rethrown.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Runs fn(q, begin, end) for each part q in [0, parts), part q covering [n q / parts,
// n (q + 1) / parts) (possibly empty), the parts in parallel as parallel_for runs them. Which
// thread runs a part, and whether parts overlap in time, varies; the split does not. So buffers
// and partial sums set up before the call and indexed by q make the memory a call takes, and
// sums added in part order afterwards, independent of thread timing.
void parallel_parts(int64_t n, int64_t parts,
                    const std::function<void(int64_t, int64_t, int64_t)>& fn);

}  // namespace trine
