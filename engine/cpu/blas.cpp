// Run-time loading of OpenBLAS with a CPUID-chosen kernel.
#include "engine/cpu/blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#ifndef TRINE_OPENBLAS_PATH
#define TRINE_OPENBLAS_PATH ""
#endif

namespace trine::blas {

namespace {

// CBLAS enum values (cblas.h).
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
using SetThreadsFn = void (*)(int);
using GetStringFn = char* (*)();

struct Library {
  Info info;
  SgemmFn sgemm = nullptr;
  SetThreadsFn set_threads = nullptr;
};

std::mutex g_mutex;
Library* g_lib = nullptr;
std::string g_override;
int g_threads = 0;  // 0: not set by trine

#if defined(__x86_64__)
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

Library* load() {
  auto* lib = new Library;
  Info& info = lib->info;
  // 1. Decide the core before the library's constructor reads the environment.
  if (const char* env = std::getenv("OPENBLAS_CORETYPE")) {
    info.choice = std::string("OPENBLAS_CORETYPE=") + env + " from the environment";
  } else {
    std::string core = g_override, reason;
    if (!core.empty()) {
      reason = "requested by the program (--blas-core)";
    } else if (const char* t = std::getenv("TRINE_BLAS_CORE"); t && *t) {
      core = t;
      reason = "TRINE_BLAS_CORE";
    } else {
      core = core_from_cpuid(&reason);
      reason = "chosen from CPUID: " + reason;
    }
    if (core == "openblas" || core.empty()) {
      info.choice = "OpenBLAS's own detection" + (reason.empty() ? "" : " (" + reason + ")");
    } else {
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      info.choice = reason;
    }
  }
  // Idle OpenBLAS threads spin for 2^28 cycles by default, stealing a core from trine's own
  // loops between GEMM calls on small machines; let them sleep sooner unless told otherwise.
  setenv("OPENBLAS_THREAD_TIMEOUT", "12", 0);

  // 2. Load.
  std::string tried, err;
  void* handle = nullptr;
  std::vector<std::string> candidates;
  if (const char* p = std::getenv("TRINE_OPENBLAS"); p && *p) candidates.push_back(p);
  candidates.push_back("libopenblas.so.0");
  if (*TRINE_OPENBLAS_PATH) candidates.push_back(TRINE_OPENBLAS_PATH);
  for (const std::string& c : candidates) {
    if (void* already = dlopen(c.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
      handle = already;
      info.choice += "; note: OpenBLAS was already loaded by the program, so its own choice stands";
    } else {
      handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    }
    if (handle) {
      info.library = c;
      break;
    }
    const char* e = dlerror();
    tried += (tried.empty() ? "" : "; ") + c + ": " + (e ? e : "not found");
  }
  if (!handle) {
    delete lib;
    throw Error("could not load OpenBLAS (" + tried +
                "). Install it (apt-get install libopenblas0) or set TRINE_OPENBLAS to the path "
                "of libopenblas.so.0");
  }
  lib->sgemm = reinterpret_cast<SgemmFn>(dlsym(handle, "cblas_sgemm"));
  lib->set_threads = reinterpret_cast<SetThreadsFn>(dlsym(handle, "openblas_set_num_threads"));
  auto corename = reinterpret_cast<GetStringFn>(dlsym(handle, "openblas_get_corename"));
  auto config = reinterpret_cast<GetStringFn>(dlsym(handle, "openblas_get_config"));
  if (!lib->sgemm) {
    delete lib;
    throw Error("the library " + info.library + " has no cblas_sgemm: is it OpenBLAS?");
  }
  info.core = corename ? corename() : "unknown";
  info.config = config ? config() : "unknown";
  int threads = g_threads > 0 ? g_threads : std::max(1u, std::thread::hardware_concurrency());
  if (const char* t = std::getenv("TRINE_THREADS"); t && std::atoi(t) > 0 && g_threads == 0)
    threads = std::atoi(t);
  if (lib->set_threads) lib->set_threads(threads);
  info.threads = threads;
  return lib;
}

Library& lib() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_lib) g_lib = load();
  return *g_lib;
}

}  // namespace

std::string core_from_cpuid(std::string* reason) {
  std::string why, core;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, nullptr) < 7) return "";
  __cpuid(0, a, b, c, d);
  const bool amd = b == 0x68747541;  // "Auth"(enticAMD)
  __cpuid(1, a, b, c, d);
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;    // SSE + AVX state
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM_Hi256, Hi16_ZMM
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = (b >> 5) & 1;
  const bool avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 28) & 1) && ((b >> 30) & 1) &&
                      ((b >> 31) & 1);  // F, DQ, CD, BW, VL
  __cpuid_count(7, 1, a, b, c, d);
  const bool bf16 = (a >> 5) & 1;
  if (avx512 && os_zmm && bf16) {
    core = "Cooperlake", why = "avx512f/cd/bw/dq/vl + avx512_bf16";
  } else if (avx512 && os_zmm) {
    core = "SkylakeX", why = "avx512f/cd/bw/dq/vl";
  } else if (avx2 && fma && os_ymm) {
    core = amd ? "Zen" : "Haswell", why = amd ? "AMD with avx2 + fma" : "avx2 + fma";
  } else if (avx && os_ymm) {
    core = "Sandybridge", why = "avx";
  } else {
    why = "no AVX support the OS enables";
  }
#else
  why = "not an x86-64 CPU";
#endif
  if (reason) *reason = why;
  return core;
}

void set_core_override(const std::string& core) {
  std::lock_guard<std::mutex> lock(g_mutex);
  TRINE_CHECK(!g_lib, "the OpenBLAS kernel must be chosen before the first matrix product");
  g_override = core;
}

const Info& info() {
  return lib().info;
}

std::string summary() {
  const Info& i = info();
  std::string version = i.config.rfind("OpenBLAS ", 0) == 0
                            ? i.config.substr(0, i.config.find(' ', 9))
                            : std::string("OpenBLAS");
  return version + ", kernel " + i.core + " (" + i.choice + "), " + std::to_string(i.threads) +
         " threads";
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  TRINE_CHECK(m < INT32_MAX && n < INT32_MAX && k < INT32_MAX && lda < INT32_MAX &&
                  ldb < INT32_MAX && ldc < INT32_MAX,
              "sgemm: dimensions ", m, "x", n, "x", k, " exceed the 32-bit BLAS interface");
  lib().sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void set_threads(int n) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_threads = n;
  if (g_lib) {
    if (g_lib->set_threads) g_lib->set_threads(n);
    g_lib->info.threads = n;
  }
}

SingleThreaded::SingleThreaded() {
  Library& l = lib();
  if (l.set_threads && l.info.threads > 1) l.set_threads(1);
}

SingleThreaded::~SingleThreaded() {
  Library& l = lib();
  if (l.set_threads && l.info.threads > 1) l.set_threads(l.info.threads);
}

}  // namespace trine::blas
