// CudaBackend: mining primitives over a batch distance matrix D [B, B] and labels [B]. One block
// per anchor; no host round trip and O(B) working memory per anchor (never a triplet list).
// The CPU references are the loops in engine/cpu/cpu_mining.cpp; these kernels reproduce their
// picks exactly, lowest-index ties and NaN distances included.
#include <cmath>
#include <cstdlib>
#include <optional>

#include "engine/cuda/cuda_backend.cuh"
#include "engine/triplet_totals.h"

namespace trine {

namespace {

constexpr int kMineThreads = 256;  // every mining kernel is launched with this block size
constexpr int kWarps = kMineThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

// ------------------------------------------------------------------------------ picking

// A candidate index with its distance; i = -1 when there is none. Only non-NaN distances enter
// a Cand; NaNs are handled through the first candidate (see resolve_pick).
struct Cand {
  float v;
  int32_t i;
};

// The better of two candidates: the larger (or smaller) distance, the lower index on ties.
template <bool larger>
__device__ __forceinline__ Cand cand_better(Cand a, Cand b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  if (larger ? a.v > b.v : a.v < b.v) return a;
  if (larger ? b.v > a.v : b.v < a.v) return b;
  return a.i < b.i ? a : b;
}

template <bool larger>
__device__ __forceinline__ Cand warp_cand(Cand c) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const Cand o{__shfl_down_sync(kFull, c.v, off), __shfl_down_sync(kFull, c.i, off)};
    c = cand_better<larger>(c, o);
  }
  return c;
}

// Block-wide best candidate, returned to every thread. `sh` holds kWarps entries.
template <bool larger>
__device__ Cand block_cand(Cand c, Cand* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  c = warp_cand<larger>(c);
  if (lane == 0) sh[warp] = c;
  __syncthreads();
  if (warp == 0) {
    c = lane < kWarps ? sh[lane] : Cand{0.f, -1};
    c = warp_cand<larger>(c);
    if (lane == 0) sh[0] = c;
  }
  __syncthreads();
  const Cand r = sh[0];
  __syncthreads();  // sh may be reused at once
  return r;
}

// Block-wide minimum of v, returned to every thread. `sh` holds kWarps entries.
__device__ int32_t block_min(int32_t v, int32_t* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_down_sync(kFull, v, off));
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? sh[lane] : INT32_MAX;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_down_sync(kFull, v, off));
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  const int32_t r = sh[0];
  __syncthreads();
  return r;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(kFull, v, off);
  return v;
}

// The CPU loops keep the first candidate and replace it only by a strictly better distance: the
// result is the first candidate when its distance is NaN (nothing compares better than NaN),
// else the lowest-index extreme among the non-NaN distances. `first` is INT32_MAX when there is
// no candidate.
__device__ __forceinline__ int32_t resolve_pick(const float* row, int32_t first, Cand best) {
  if (first == INT32_MAX) return -1;
  return isnan(row[first]) ? first : best.i;
}

// ------------------------------------------------------------------------------ anchor lists

// Per-anchor working set: the anchor's row of D, its positives and its negatives, in increasing
// index order (3 * B words), in shared memory or in a global workspace.
struct AnchorLists {
  float* row;
  int32_t* pos;
  int32_t* neg;
  int32_t P, N;
};

// Fills `l` for anchor a with a stable block-wide compaction (ballots within warps, counts across
// warps). `sh_counts` holds 2 * kWarps entries. Every thread returns with the same P and N, the
// buffers complete and visible to the whole block.
__device__ void build_lists(const float* D, const int32_t* labels, int64_t B, int64_t a,
                            AnchorLists& l, int32_t* sh_counts) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int32_t la = labels[a];
  const unsigned below = (1u << lane) - 1u;  // lanes before this one
  int32_t P = 0, N = 0;
  for (int64_t base = 0; base < B; base += kMineThreads) {
    const int64_t j = base + threadIdx.x;
    bool is_pos = false, is_neg = false;
    if (j < B) {
      l.row[j] = D[a * B + j];
      const bool same = labels[j] == la;
      is_pos = same && j != a;
      is_neg = !same;
    }
    const unsigned pm = __ballot_sync(kFull, is_pos), nm = __ballot_sync(kFull, is_neg);
    if (lane == 0) {
      sh_counts[warp] = __popc(pm);
      sh_counts[kWarps + warp] = __popc(nm);
    }
    __syncthreads();
    int32_t p_at = P, n_at = N;
    for (int w = 0; w < kWarps; ++w) {
      const int32_t pc = sh_counts[w], nc = sh_counts[kWarps + w];
      if (w < warp) p_at += pc, n_at += nc;
      P += pc, N += nc;
    }
    if (is_pos) l.pos[p_at + __popc(pm & below)] = static_cast<int32_t>(j);
    if (is_neg) l.neg[n_at + __popc(nm & below)] = static_cast<int32_t>(j);
    __syncthreads();  // sh_counts is rewritten next round; the lists are complete after the last
  }
  l.P = P;
  l.N = N;
}

// The buffers of block `blockIdx.x`: dynamic shared memory when ws is null, else its slice of ws.
extern __shared__ __align__(16) unsigned char mining_smem[];

__device__ __forceinline__ AnchorLists lists_storage(int64_t B, int32_t* ws) {
  int32_t* base =
      ws ? ws + static_cast<int64_t>(blockIdx.x) * 3 * B : reinterpret_cast<int32_t*>(mining_smem);
  return AnchorLists{reinterpret_cast<float*>(base), base + B, base + 2 * B, 0, 0};
}

// ------------------------------------------------------------------------------ kernels

// pos[a], neg[a]: one block per anchor.
__global__ void __launch_bounds__(kMineThreads)
    mine_anchor_pairs_kernel(const float* D, const int32_t* labels, int64_t B, bool hardest,
                             int32_t* pos, int32_t* neg) {
  __shared__ Cand sh_c[kWarps];
  __shared__ int32_t sh_i[kWarps];
  const int64_t a = blockIdx.x;
  const float* row = D + a * B;
  const int32_t la = labels[a];
  int32_t p_first = INT32_MAX, n_first = INT32_MAX;
  Cand p_best{0.f, -1}, n_best{0.f, -1};
  for (int64_t j = threadIdx.x; j < B; j += kMineThreads) {
    if (j == a) continue;
    const float v = row[j];
    const int32_t jj = static_cast<int32_t>(j);
    if (labels[j] == la) {
      p_first = min(p_first, jj);
      if (!isnan(v))
        p_best = hardest ? cand_better<true>(p_best, Cand{v, jj})
                         : cand_better<false>(p_best, Cand{v, jj});
    } else {
      n_first = min(n_first, jj);
      if (!isnan(v)) n_best = cand_better<false>(n_best, Cand{v, jj});
    }
  }
  p_first = block_min(p_first, sh_i);
  n_first = block_min(n_first, sh_i);
  // `hardest` is the same for the whole block, so every thread takes the same branch.
  p_best = hardest ? block_cand<true>(p_best, sh_c) : block_cand<false>(p_best, sh_c);
  n_best = block_cand<false>(n_best, sh_c);
  if (threadIdx.x == 0) {
    pos[a] = resolve_pick(row, p_first, p_best);
    neg[a] = resolve_pick(row, n_first, n_best);
  }
}

// neg[a*B + p] for the anchors a0 .. a0 + gridDim.x - 1: one warp per positive pair (a, p), its
// lanes over the anchor's negatives.
__global__ void __launch_bounds__(kMineThreads)
    mine_semihard_kernel(const float* D, const int32_t* labels, int64_t B, int64_t a0, float margin,
                         bool facenet, int32_t* neg_out, int32_t* ws) {
  __shared__ int32_t sh_counts[2 * kWarps];
  __shared__ Cand sh_c[kWarps];
  const int64_t a = a0 + blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  AnchorLists l = lists_storage(B, ws);
  build_lists(D, labels, B, a, l, sh_counts);

  // TF Addons' fallback: the farthest negative (the CPU's running-max pick over the negatives).
  int32_t farthest = -1;
  if (!facenet) {
    Cand c{0.f, -1};
    for (int32_t t = threadIdx.x; t < l.N; t += kMineThreads) {
      const int32_t n = l.neg[t];
      if (!isnan(l.row[n])) c = cand_better<true>(c, Cand{l.row[n], n});
    }
    c = block_cand<true>(c, sh_c);
    if (l.N > 0) farthest = resolve_pick(l.row, l.neg[0], c);  // neg[0]: the first negative
  }

  int32_t* out = neg_out + a * B;
  const int32_t la = labels[a];
  for (int64_t j = threadIdx.x; j < B; j += kMineThreads)
    if (j == a || labels[j] != la) out[j] = -1;   // not a positive pair
  for (int32_t k = warp; k < l.P; k += kWarps) {  // the same trip count for a whole warp
    const int32_t p = l.pos[k];
    const float dap = l.row[p];
    Cand c{0.f, -1};
    for (int32_t t = lane; t < l.N; t += 32) {
      const int32_t n = l.neg[t];
      const float dan = l.row[n];
      const bool inside = facenet ? (dan > dap && dan < dap + margin) : dan > dap;
      if (inside) c = cand_better<false>(c, Cand{dan, n});  // inside: never NaN
    }
    c = warp_cand<false>(c);
    if (lane == 0) out[p] = c.i >= 0 ? c.i : (facenet ? -1 : farthest);
  }
}

// One triplet (a, p, n) of the set, as the CPU loop computes it: false when m = D[a,n] - D[a,p]
// is outside the window; else the loss l, its weight w = dl/dD[a,p] (= -dl/d(negative distance)),
// the negative distance used (min(D[a,n], D[p,n]) with swap) and whether it was D[p,n].
__device__ __forceinline__ bool triplet_term(const TripletSetParams& prm, float dap, float dan_a,
                                             float dpn, double& l, double& w, float& dan,
                                             bool& swapped) {
  const float m = dan_a - dap;
  const bool above = prm.lo_inclusive ? m >= prm.lo : m > prm.lo;
  const bool below = prm.hi_inclusive ? m <= prm.hi : m < prm.hi;
  if (!above || !below) return false;
  dan = dan_a;
  swapped = false;
  if (prm.swap && dpn < dan) {
    dan = dpn;
    swapped = true;
  }
  const float z = dap - dan;
  if (prm.soft) {
    l = z > 0 ? z + log1pf(expf(-z)) : log1pf(expf(z));
    w = 1.0 / (1.0 + exp(-static_cast<double>(z)));
  } else {
    const float lf = z + prm.margin;
    l = lf > 0 ? static_cast<double>(lf) : 0.0;
    w = l > 0 ? 1.0 : 0.0;
  }
  return true;
}

// row_stats[a*5 ..] and row a of grad_D for the anchors a0 .. a0 + gridDim.x - 1. Row a's entry
// at a positive p (the sum of w over the negatives) comes from the warp that walks p's triplets;
// the entry at a negative n (minus the sum of w over the positives) from the thread that owns n,
// which recomputes those triplets instead of sharing them through memory. Without swap every
// entry of row a is written once by this block; with swap, rows of other anchors receive the
// swapped terms by atomicAdd (grad_D is zeroed first).
__global__ void __launch_bounds__(kMineThreads)
    triplet_set_loss_kernel(const float* D, const int32_t* labels, int64_t B, int64_t a0,
                            TripletSetParams prm, double* row_stats, float* grad, int32_t* ws) {
  __shared__ int32_t sh_counts[2 * kWarps];
  __shared__ double sh_stats[kWarps][5];
  const int64_t a = a0 + blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  AnchorLists l = lists_storage(B, ws);
  build_lists(D, labels, B, a, l, sh_counts);
  float* grow = grad + a * B;

  double st[5] = {0, 0, 0, 0, 0};  // loss, count, active, sum D[a,p], sum negative distance
  for (int32_t k = warp; k < l.P; k += kWarps) {  // the same trip count for a whole warp
    const int32_t pi = l.pos[k];
    const float dap = l.row[pi];
    const float* prow = D + static_cast<int64_t>(pi) * B;
    double gpos = 0;
    for (int32_t t = lane; t < l.N; t += 32) {
      const int32_t n = l.neg[t];
      double lo, w;
      float dan;
      bool swapped;
      if (!triplet_term(prm, dap, l.row[n], prm.swap ? prow[n] : 0.f, lo, w, dan, swapped))
        continue;
      st[0] += lo;
      st[1] += 1;
      st[2] += prm.soft ? 1.0 : w;
      st[3] += dap;
      st[4] += dan;
      if (w != 0) {
        gpos += w;
        if (swapped) atomicAdd(grad + static_cast<int64_t>(pi) * B + n, -static_cast<float>(w));
      }
    }
    gpos = warp_sum(gpos);
    if (lane == 0) grow[pi] = static_cast<float>(gpos);  // no other block writes here
  }
  for (int32_t t = threadIdx.x; t < l.N; t += kMineThreads) {
    const int32_t n = l.neg[t];
    const float dan_a = l.row[n];
    double g = 0;
    for (int32_t k = 0; k < l.P; ++k) {
      const int32_t pi = l.pos[k];
      double lo, w;
      float dan;
      bool swapped;
      const float dpn = prm.swap ? D[static_cast<int64_t>(pi) * B + n] : 0.f;
      if (triplet_term(prm, l.row[pi], dan_a, dpn, lo, w, dan, swapped) && !swapped) g += w;
    }
    const float v = g != 0 ? -static_cast<float>(g) : 0.f;
    if (prm.swap)
      atomicAdd(grow + n, v);  // other anchors' swapped terms land here too
    else
      grow[n] = v;
  }
  if (threadIdx.x == 0) grow[a] = 0.f;

  for (int k = 0; k < 5; ++k) {
    const double s = warp_sum(st[k]);
    if (lane == 0) sh_stats[warp][k] = s;
  }
  __syncthreads();
  if (threadIdx.x < 5) {
    double s = 0;
    for (int w = 0; w < kWarps; ++w) s += sh_stats[w][threadIdx.x];
    row_stats[a * 5 + threadIdx.x] = s;
  }
}

// The totals of triplet_set_loss's row statistics (one block): each thread sums a strided share
// of the anchors in double, then a tree over the block; thread 0 writes the outputs.
__global__ void __launch_bounds__(kMineThreads)
    triplet_set_totals_kernel(const double* row_stats, int64_t B, int denom_stat, float* out) {
  __shared__ double sh[kMineThreads][5];
  double acc[5] = {0, 0, 0, 0, 0};
  for (int64_t a = threadIdx.x; a < B; a += kMineThreads)
    for (int k = 0; k < 5; ++k) acc[k] += row_stats[a * 5 + k];
  for (int k = 0; k < 5; ++k) sh[threadIdx.x][k] = acc[k];
  __syncthreads();
  for (int half = kMineThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half)
      for (int k = 0; k < 5; ++k) sh[threadIdx.x][k] += sh[threadIdx.x + half][k];
    __syncthreads();
  }
  if (threadIdx.x == 0) triplet_set_outputs(sh[0], denom_stat, out);
}

}  // namespace

// ------------------------------------------------------------------------------ entry points

int64_t CudaBackend::mining_plan(int64_t B, size_t* shared_bytes) const {
  const size_t bytes = static_cast<size_t>(3 * B) * sizeof(int32_t);
  // TRINE_CUDA_MINING_WORKSPACE=1 takes the workspace path at any size (for its parity test).
  const char* force = std::getenv("TRINE_CUDA_MINING_WORKSPACE");
  const bool forced = force && force[0] == '1';
  // 1 KiB of headroom for the kernels' static shared memory.
  if (!forced && bytes + 1024 <= max_shared_optin_) {
    *shared_bytes = bytes;
    return B;
  }
  *shared_bytes = 0;  // a global workspace of `chunk` anchors at a time, at most ~256 MiB
  return std::clamp<int64_t>((int64_t{256} << 20) / static_cast<int64_t>(bytes), 1, B);
}

void CudaBackend::mine_anchor_pairs(const float* D, const int32_t* labels, int64_t B,
                                    PositivePick pick, int32_t* pos, int32_t* neg) {
  if (B <= 0) return;
  TRINE_CHECK(B <= INT32_MAX, "mine_anchor_pairs: batch of ", B, " exceeds int32 indices");
  activate();
  mine_anchor_pairs_kernel<<<static_cast<unsigned>(B), kMineThreads, 0, stream_>>>(
      D, labels, B, pick == PositivePick::Hardest, pos, neg);
  TRINE_CUDA_CHECK_LAUNCH("mine_anchor_pairs_kernel");
}

namespace {

// The loop body of CpuBackend::split_indices.
__global__ void split_indices_kernel(const int32_t* idx, int64_t n, int32_t* safe, float* valid) {
  TRINE_CUDA_KERNEL_LOOP(i, n) {
    safe[i] = idx[i] >= 0 ? idx[i] : 0;
    valid[i] = idx[i] >= 0 ? 1.f : 0.f;
  }
}

}  // namespace

void CudaBackend::split_indices(const int32_t* idx, int64_t n, int32_t* safe, float* valid) {
  if (n <= 0) return;
  activate();
  split_indices_kernel<<<grid(n), cuda::kThreads, 0, stream_>>>(idx, n, safe, valid);
  TRINE_CUDA_CHECK_LAUNCH("split_indices_kernel");
}

namespace {

// Lets `kernel` use `bytes` of dynamic shared memory. Without opting in, a block's static and
// dynamic shared memory together must fit in 48 KiB, so the static part counts too: at B = 4096
// the dynamic 48 KiB alone fit, but not beside the kernels' static arrays.
template <typename K>
void allow_shared(K kernel, size_t bytes) {
  cudaFuncAttributes attr{};
  TRINE_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  if (attr.sharedSizeBytes + bytes > 48 * 1024)
    TRINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(bytes)));
}

}  // namespace

void CudaBackend::mine_semihard(const float* D, const int32_t* labels, int64_t B, float margin,
                                SemiHardMode mode, int32_t* neg) {
  if (B <= 0) return;
  TRINE_CHECK(B <= INT32_MAX, "mine_semihard: batch of ", B, " exceeds int32 indices");
  activate();
  size_t shared = 0;
  const int64_t chunk = mining_plan(B, &shared);
  std::optional<Scratch> ws;
  if (shared == 0)
    ws.emplace(*this, static_cast<size_t>(chunk * 3 * B) * sizeof(int32_t));
  else
    allow_shared(mine_semihard_kernel, shared);
  for (int64_t a0 = 0; a0 < B; a0 += chunk) {
    const int64_t n = std::min(chunk, B - a0);
    mine_semihard_kernel<<<static_cast<unsigned>(n), kMineThreads, shared, stream_>>>(
        D, labels, B, a0, margin, mode == SemiHardMode::Facenet, neg,
        ws ? ws->as<int32_t>() : nullptr);
    TRINE_CUDA_CHECK_LAUNCH("mine_semihard_kernel");
  }
}

void CudaBackend::triplet_set_loss(const float* D, const int32_t* labels, int64_t B,
                                   const TripletSetParams& p, double* row_stats, float* grad_D) {
  if (B <= 0) return;
  TRINE_CHECK(B <= INT32_MAX, "triplet_set_loss: batch of ", B, " exceeds int32 indices");
  activate();
  // With swap, blocks add into each other's rows: start from zero.
  if (p.swap)
    TRINE_CUDA_CHECK(
        cudaMemsetAsync(grad_D, 0, static_cast<size_t>(B * B) * sizeof(float), stream_));
  size_t shared = 0;
  const int64_t chunk = mining_plan(B, &shared);
  std::optional<Scratch> ws;
  if (shared == 0)
    ws.emplace(*this, static_cast<size_t>(chunk * 3 * B) * sizeof(int32_t));
  else
    allow_shared(triplet_set_loss_kernel, shared);
  for (int64_t a0 = 0; a0 < B; a0 += chunk) {
    const int64_t n = std::min(chunk, B - a0);
    triplet_set_loss_kernel<<<static_cast<unsigned>(n), kMineThreads, shared, stream_>>>(
        D, labels, B, a0, p, row_stats, grad_D, ws ? ws->as<int32_t>() : nullptr);
    TRINE_CUDA_CHECK_LAUNCH("triplet_set_loss_kernel");
  }
}

void CudaBackend::triplet_set_totals(const double* row_stats, int64_t B, int denom_stat,
                                     float* out) {
  activate();
  triplet_set_totals_kernel<<<1, kMineThreads, 0, stream_>>>(row_stats, B, denom_stat, out);
  TRINE_CUDA_CHECK_LAUNCH("triplet_set_totals_kernel");
}

}  // namespace trine
