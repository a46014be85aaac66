// OpenBLAS, loaded at run time so that trine can choose its kernel first.
//
// Debian's OpenBLAS is built with DYNAMIC_ARCH and picks a kernel when it loads. Version 0.3.21
// misdetects some newer CPUs (such Xeons get the SSE "Prescott" kernel, ~5x slower SGEMM).
// OpenBLAS reads OPENBLAS_CORETYPE only at load time, so trine loads the library itself (dlopen)
// after choosing a core from CPUID features and OS register support:
//   AVX-512 F/CD/BW/DQ/VL + BF16 -> Cooperlake, AVX-512 without BF16 -> SkylakeX,
//   AVX2 + FMA -> Haswell (Zen on AMD), AVX -> Sandybridge, otherwise OpenBLAS's own choice.
// Overrides, strongest first: OPENBLAS_CORETYPE in the environment (left untouched),
// TRINE_BLAS_CORE=<name> (or "openblas" to let OpenBLAS detect), set_core_override().
// TRINE_OPENBLAS=<path> picks the library file.
#pragma once

#include <cstdint>
#include <string>

namespace trine::blas {

struct Info {
  std::string library;  // the file loaded
  std::string config;   // openblas_get_config()
  std::string core;     // the kernel OpenBLAS runs (openblas_get_corename())
  std::string choice;   // why: "chosen from CPUID (avx512_bf16)", "OPENBLAS_CORETYPE=...", ...
  int threads = 1;
};

// Loads OpenBLAS on first call; throws trine::Error when it cannot be loaded.
const Info& info();
// "OpenBLAS 0.3.21, kernel Cooperlake (chosen from CPUID: avx512_bf16), 2 threads".
std::string summary();

// The core trine would choose on this CPU from CPUID, with the features that decided it
// ("" when it leaves the choice to OpenBLAS).
std::string core_from_cpuid(std::string* reason = nullptr);

// Chooses the core before OpenBLAS is loaded (e.g. a --blas-core flag). Throws if already loaded.
void set_core_override(const std::string& core);

// C = alpha op(A) op(B) + beta C, row-major.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Sets OpenBLAS's thread count (applied at load if not loaded yet).
void set_threads(int n);

// While alive, OpenBLAS runs every call on the calling thread only, so several of trine's own
// threads can each run small GEMMs side by side (the per-image convolution). Restores the
// configured thread count when destroyed. Not for nesting across threads: the main thread only.
class SingleThreaded {
 public:
  SingleThreaded();
  ~SingleThreaded();
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;
};

}  // namespace trine::blas
