// The CPU emulation behind scripts/cuda_emu/include/{cuda_runtime.h,cublas_v2.h}: fibers for
// the threads of a block, barriers for __syncthreads and the warp intrinsics, guarded host memory
// for device memory, and plain loops for cuBLAS. Test tool only (see run.sh).
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

namespace emu {
namespace {

constexpr size_t kStack = 256 * 1024;

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  dim3 tid;
  bool done = false;
};

struct BlockState {
  std::vector<Fiber> fibers;
  int current = 0;
  ucontext_t sched;
  dim3 bidx, bdim, gdim;
  std::vector<unsigned char> smem;
  int block_arrived = 0;
  uint64_t block_epoch = 0;
  std::vector<int> warp_arrived;
  std::vector<uint64_t> warp_epoch;
  std::vector<uint64_t> slots;
  uint64_t events = 0;  // arrivals, releases and completions: progress
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
};

BlockState S;

void yield() {
  swapcontext(&S.fibers[S.current].ctx, &S.sched);
}

void fiber_entry() {
  const int me = S.current;
  S.body(S.ctx);
  S.fibers[me].done = true;
  ++S.events;
}  // returns to S.sched through uc_link

}  // namespace

const dim3& thread_idx() {
  return S.fibers[S.current].tid;
}
const dim3& block_idx() {
  return S.bidx;
}
const dim3& block_dim() {
  return S.bdim;
}
const dim3& grid_dim() {
  return S.gdim;
}
unsigned char* dynamic_shared() {
  return S.smem.data();
}
int lane() {
  return S.current % 32;
}
uint64_t* warp_slots() {
  return &S.slots[static_cast<size_t>(S.current / 32) * 32];
}

void sync_block() {
  const uint64_t e = S.block_epoch;
  ++S.events;
  if (++S.block_arrived == static_cast<int>(S.fibers.size())) {
    S.block_arrived = 0;
    ++S.block_epoch;
    return;
  }
  while (S.block_epoch == e) yield();
}

void sync_warp() {
  const int w = S.current / 32;
  const int lanes = std::min(32, static_cast<int>(S.fibers.size()) - w * 32);
  const uint64_t e = S.warp_epoch[w];
  ++S.events;
  if (++S.warp_arrived[w] == lanes) {
    S.warp_arrived[w] = 0;
    ++S.warp_epoch[w];
    return;
  }
  while (S.warp_epoch[w] == e) yield();
}

unsigned ballot(bool pred) {
  uint64_t* slots = warp_slots();
  slots[lane()] = pred ? 1 : 0;
  sync_warp();
  unsigned mask = 0;
  const int base = (S.current / 32) * 32;
  for (int l = 0; l < 32 && base + l < static_cast<int>(S.fibers.size()); ++l)
    if (slots[l]) mask |= 1u << l;
  sync_warp();
  return mask;
}

// ---------------------------------------------------------------------------- API profile
// TRINE_EMU_PROFILE=N: count every launch, cuBLAS call, copy, memset, stream sync, cudaMalloc and
// cudaFree by kind and by the N innermost trine functions on its call stack (at most kDepth
// frames), and print the table at exit: what a GPU's time per step depends on when its kernels
// are small (launches, host waits), seen here.
namespace {

constexpr int kDepth = 24;             // frames kept per call
using Stack = std::vector<uintptr_t>;  // return addresses, as offsets into their object file

// "trine::(anonymous namespace)::f<int>(float) const" -> "trine::f<int>".
std::string short_name(std::string name) {
  const std::string anon = "(anonymous namespace)::";
  for (size_t at; (at = name.find(anon)) != std::string::npos;) name.erase(at, anon.size());
  if (const size_t paren = name.find('('); paren != std::string::npos) name.resize(paren);
  return name;
}

// The functions at code addresses (offsets into /proc/self/exe), innermost first where calls
// were inlined, from one addr2line run: static and anonymous-namespace functions, which dladdr
// cannot name, included.
std::map<uintptr_t, std::vector<std::string>> names_of(const std::vector<uintptr_t>& pcs) {
  std::map<uintptr_t, std::vector<std::string>> names;
  char list[] = "/tmp/emu-profile-XXXXXX";
  const int fd = mkstemp(list);
  if (fd < 0) return names;
  std::string text;
  char hex[32];
  for (const uintptr_t pc : pcs) {  // pc - 1: inside the call, not the instruction after it
    std::snprintf(hex, sizeof hex, "%#zx\n", static_cast<size_t>(pc - 1));
    text += hex;
  }
  (void)!write(fd, text.data(), text.size());
  close(fd);
  // -a: each address's line first, then a function and a file:line line per inlining level.
  const std::string cmd = "addr2line -a -i -f -C -e /proc/" + std::to_string(getpid()) + "/exe < " +
                          std::string(list) + " 2>/dev/null";
  if (FILE* out = popen(cmd.c_str(), "r")) {
    char line[8192];
    size_t at = 0;
    bool function_next = false;
    while (std::fgets(line, sizeof line, out)) {
      std::string text = line;
      text.erase(text.find_last_not_of("\n") + 1);
      if (text.rfind("0x", 0) == 0 &&
          text.find_first_not_of("0123456789abcdefx") == std::string::npos) {
        at = names.size() < pcs.size() ? names.size() : pcs.size() - 1;
        names[pcs[at]];
        function_next = true;
      } else if (function_next && !names.empty()) {
        names[pcs[at]].push_back(short_name(text));
        function_next = false;
      } else {
        function_next = true;  // a file:line line: a function comes next, if any
      }
    }
    pclose(out);
  }
  unlink(list);
  return names;
}

struct Profile {
  bool on = std::getenv("TRINE_EMU_PROFILE") != nullptr;
  int callers = on ? std::max(1, std::atoi(std::getenv("TRINE_EMU_PROFILE"))) : 0;
  uintptr_t base = 0;                                  // load address of the program
  std::map<std::string, std::map<Stack, long>> calls;  // kind -> call stack -> calls
  ~Profile() {
    if (!on) return;
    std::vector<uintptr_t> pcs;
    for (const auto& [kind, stacks] : calls)
      for (const auto& [stack, n] : stacks) pcs.insert(pcs.end(), stack.begin(), stack.end());
    std::sort(pcs.begin(), pcs.end());
    pcs.erase(std::unique(pcs.begin(), pcs.end()), pcs.end());
    const auto names = names_of(pcs);
    std::fprintf(stderr, "emu profile: calls by kind, then by the trine function that made them\n");
    for (const auto& [kind, stacks] : calls) {
      std::map<std::string, long> by_caller;
      long total = 0;
      for (const auto& [stack, n] : stacks) {
        std::string who;  // the innermost `callers` trine functions, innermost first
        int found = 0;
        for (const uintptr_t pc : stack) {
          const auto it = names.find(pc);
          if (it == names.end()) continue;
          for (const std::string& name : it->second) {
            if (name.rfind("trine::", 0) != 0 || name == "trine::") continue;
            if (found > 0 && who.ends_with(name)) continue;  // recursion, lambdas
            who += (found > 0 ? " < " : "") + name;
            if (++found == callers) break;
          }
          if (found == callers) break;
        }
        if (who.empty()) who = "(outside trine)";
        by_caller[who] += n;
        total += n;
      }
      std::fprintf(stderr, "%-16s %9ld\n", kind.c_str(), total);
      std::vector<std::pair<long, std::string>> rows;
      for (const auto& [who, n] : by_caller) rows.emplace_back(n, who);
      std::sort(rows.rbegin(), rows.rend());
      for (const auto& [n, who] : rows) std::fprintf(stderr, "  %9ld  %s\n", n, who.c_str());
    }
  }
};
Profile P;
std::mutex g_profile;

void note(const char* kind) {
  if (!P.on) return;
  void* frames[kDepth + 1];
  const int n = backtrace(frames, kDepth + 1);
  std::lock_guard<std::mutex> lock(g_profile);
  if (P.base == 0) {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&note), &info))
      P.base = reinterpret_cast<uintptr_t>(info.dli_fbase);
  }
  Stack stack;
  for (int i = 1; i < n; ++i) stack.push_back(reinterpret_cast<uintptr_t>(frames[i]) - P.base);
  ++P.calls[kind][stack];
}

}  // namespace

// ---------------------------------------------------------------------------- device memory
// "Device" memory comes from one reserved arena that host code cannot touch: it is mapped
// PROT_NONE except while a kernel, a copy, a memset or a cuBLAS call runs (DeviceAccess). Host
// code that reads a device pointer directly, which a real GPU would fault on or answer with
// garbage, stops here with a report naming the address and the call stack.
namespace {

constexpr size_t kArenaBytes = size_t{256} << 30;  // address space only (MAP_NORESERVE)
constexpr size_t kPage = 4096;

struct Arena {
  char* base = nullptr;
  size_t used = 0;                 // bump pointer: freed blocks are released, never reused
  std::map<char*, size_t> blocks;  // live allocations
  int open = 0;                    // nesting depth of DeviceAccess
};
Arena A;
std::recursive_mutex g_device;  // one device user at a time (the loader thread copies too)

void set_access(int prot) {
  if (A.used > 0 && mprotect(A.base, A.used, prot) != 0) {
    std::perror("emu: mprotect");
    std::abort();
  }
}

void on_segv(int sig, siginfo_t* info, void*) {
  const auto* addr = static_cast<const char*>(info->si_addr);
  if (A.base && addr >= A.base && addr < A.base + kArenaBytes) {
    char msg[256];
    const int n = std::snprintf(msg, sizeof msg,
                                "emu: host code touched device memory at %p (arena offset %zu) "
                                "outside a kernel, copy or cuBLAS call; a GPU would fault or "
                                "return garbage. Call stack:\n",
                                info->si_addr, static_cast<size_t>(addr - A.base));
    if (n > 0) (void)!write(2, msg, static_cast<size_t>(n));
    void* frames[64];
    backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
    _exit(86);
  }
  signal(sig, SIG_DFL);  // any other fault: the default crash, at the same instruction
}

void init_arena() {
  if (A.base) return;
  void* p =
      mmap(nullptr, kArenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("emu: reserving the device arena");
    std::abort();
  }
  A.base = static_cast<char*>(p);
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
}

}  // namespace

DeviceAccess::DeviceAccess() {
  g_device.lock();
  if (A.open++ == 0) set_access(PROT_READ | PROT_WRITE);
}

DeviceAccess::~DeviceAccess() {
  if (--A.open == 0) set_access(PROT_NONE);
  g_device.unlock();
}

void run_grid(const Config& cfg, void (*body)(void*), void* ctx) {
  note("kernel launch");
  DeviceAccess access;
  if (cfg.grid == 0 || cfg.block == 0 || cfg.block > 1024) {
    std::fprintf(stderr, "emu: invalid launch configuration grid %u block %u\n", cfg.grid,
                 cfg.block);
    std::abort();
  }
  S.body = body;
  S.ctx = ctx;
  S.bdim = dim3{cfg.block, 1, 1};
  S.gdim = dim3{cfg.grid, 1, 1};
  S.fibers.resize(cfg.block);
  for (Fiber& f : S.fibers)
    if (f.stack.empty()) f.stack.resize(kStack);
  const size_t warps = (cfg.block + 31) / 32;
  S.warp_arrived.assign(warps, 0);
  S.warp_epoch.assign(warps, 0);
  S.slots.assign(warps * 32, 0);
  for (unsigned b = 0; b < cfg.grid; ++b) {
    S.bidx = dim3{b, 1, 1};
    S.smem.assign(cfg.shared, 0xFF);  // garbage: NaN floats, -1 ints
    S.block_arrived = 0;
    for (unsigned t = 0; t < cfg.block; ++t) {
      Fiber& f = S.fibers[t];
      f.done = false;
      f.tid = dim3{t, 1, 1};
      getcontext(&f.ctx);
      f.ctx.uc_stack.ss_sp = f.stack.data();
      f.ctx.uc_stack.ss_size = f.stack.size();
      f.ctx.uc_link = &S.sched;
      makecontext(&f.ctx, fiber_entry, 0);
    }
    unsigned alive = cfg.block;
    while (alive > 0) {
      const uint64_t before = S.events;
      alive = 0;
      for (unsigned t = 0; t < cfg.block; ++t) {
        if (S.fibers[t].done) continue;
        S.current = static_cast<int>(t);
        swapcontext(&S.sched, &S.fibers[t].ctx);
        if (!S.fibers[t].done) ++alive;
      }
      if (alive > 0 && S.events == before) {
        std::fprintf(stderr,
                     "emu: deadlock in block %u: %u threads wait at a barrier the others never "
                     "reach (divergent __syncthreads or warp intrinsic)\n",
                     b, alive);
        std::abort();
      }
    }
  }
}

}  // namespace emu

// ---------------------------------------------------------------------------- runtime API

struct emu_stream {};
struct emu_event {};
struct emu_cublas {
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) {
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  return cudaSuccess;
}
const char* cudaGetErrorName(cudaError_t) {
  return "cudaErrorEmulated";
}
const char* cudaGetErrorString(cudaError_t) {
  return "emulated error";
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  emu::note("cudaMalloc");
  std::lock_guard<std::recursive_mutex> lock(emu::g_device);
  emu::init_arena();
  const size_t size = std::max<size_t>(1, (bytes + emu::kPage - 1) / emu::kPage) * emu::kPage;
  if (emu::A.used + size > emu::kArenaBytes) return cudaErrorMemoryAllocation;
  char* block = emu::A.base + emu::A.used;
  emu::A.used += size;
  emu::A.blocks[block] = size;
  if (emu::A.open > 0 && mprotect(block, size, PROT_READ | PROT_WRITE) != 0) std::abort();
  *p = block;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  emu::note("cudaFree");
  std::lock_guard<std::recursive_mutex> lock(emu::g_device);
  auto it = emu::A.blocks.find(static_cast<char*>(p));
  if (it == emu::A.blocks.end()) {
    std::fprintf(stderr, "emu: cudaFree of %p, which cudaMalloc did not return (or freed twice)\n",
                 p);
    std::abort();
  }
  madvise(it->first, it->second, MADV_DONTNEED);  // give the pages back; the range stays reserved
  emu::A.blocks.erase(it);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  emu::note(kind == cudaMemcpyHostToDevice   ? "copy to device"
            : kind == cudaMemcpyDeviceToHost ? "copy to host"
                                             : "copy on device");
  emu::DeviceAccess access;
  const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if (d < s + bytes && s < d + bytes && d != s) {  // cudaMemcpy's ranges must not overlap
    std::fprintf(stderr, "emu: cudaMemcpyAsync with overlapping ranges\n");
    std::abort();
  }
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  emu::note("memset");
  emu::DeviceAccess access;
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new emu_stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  emu::note("stream sync");
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new emu_event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  return e && s ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  emu::note("event sync");
  return e ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  return s && e ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  emu::note("cudaMallocHost");
  *p = std::malloc(std::max<size_t>(bytes, 1));
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrMultiProcessorCount:
      *value = 2;
      break;
    case cudaDevAttrComputeCapabilityMajor:
      *value = 9;
      break;
    case cudaDevAttrComputeCapabilityMinor:
      *value = 0;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = 232448;  // H100/H200
      break;
  }
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  std::snprintf(prop->name, sizeof(prop->name), "emulated GPU (CPU fibers)");
  prop->totalGlobalMem = size_t{1} << 30;
  return cudaSuccess;
}

// ---------------------------------------------------------------------------- cuBLAS

cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new emu_cublas;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) {
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  if (m != CUBLAS_DEFAULT_MATH && m != CUBLAS_TF32_TENSOR_OP_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  h->math = m;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetVersion(cublasHandle_t, int* v) {
  *v = 130100;
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusName(cublasStatus_t) {
  return "CUBLAS_STATUS_EMULATED";
}
const char* cublasGetStatusString(cublasStatus_t) {
  return "emulated cuBLAS error";
}

namespace {

// x rounded to TF32 (a 10-bit mantissa), to nearest with ties away from zero (PTX's
// cvt.rna.tf32.f32); inf and NaN pass through.
float to_tf32(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & ~0x1fffu;
  std::memcpy(&x, &bits, 4);
  return x;
}

// Column-major C [m, n] = alpha op(A) op(B) + beta C, with cuBLAS's argument checks; the inputs
// rounded to TF32 first when `tf32`.
cublasStatus_t sgemm(bool tf32, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                     int64_t k, const float* alpha, const float* A, int64_t lda, const float* B,
                     int64_t ldb, const float* beta, float* C, int64_t ldc) {
  emu::DeviceAccess access;
  const int64_t a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || lda < std::max<int64_t>(1, a_rows) ||
      ldb < std::max<int64_t>(1, b_rows) || ldc < std::max<int64_t>(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0;
      for (int64_t l = 0; l < k; ++l) {
        float a = ta == CUBLAS_OP_N ? A[i + l * lda] : A[l + i * lda];
        float b = tb == CUBLAS_OP_N ? B[l + j * ldb] : B[j + l * ldb];
        if (tf32) a = to_tf32(a), b = to_tf32(b);
        acc += static_cast<double>(a) * b;
      }
      float& c = C[i + j * ldc];
      c = static_cast<float>(*alpha * acc + (*beta == 0.f ? 0.0 : static_cast<double>(*beta) * c));
    }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasSgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                              int64_t m, int64_t n, int64_t k, const float* alpha, const float* A,
                              int64_t lda, const float* B, int64_t ldb, const float* beta, float* C,
                              int64_t ldc) {
  emu::note("cuBLAS gemm");
  return sgemm(h->math == CUBLAS_TF32_TENSOR_OP_MATH, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta,
               C, ldc);
}

cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t h, cublasOperation_t ta,
                                            cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                            const float* alpha, const float* A, int64_t lda,
                                            int64_t sa, const float* B, int64_t ldb, int64_t sb,
                                            const float* beta, float* C, int64_t ldc, int64_t sc,
                                            int64_t batch) {
  emu::note("cuBLAS batched");
  for (int64_t i = 0; i < batch; ++i) {
    const cublasStatus_t st = sgemm(h->math == CUBLAS_TF32_TENSOR_OP_MATH, ta, tb, m, n, k, alpha,
                                    A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
  }
  return CUBLAS_STATUS_SUCCESS;
}
