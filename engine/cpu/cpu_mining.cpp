// CpuBackend: mining primitives over a batch distance matrix. These loops are the reference the
// CUDA kernels are tested against; each anchor's row is independent, so anchors run in parallel.
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_loops.h"
#include "engine/parallel.h"
#include "engine/triplet_totals.h"

namespace trine {

void CpuBackend::mine_anchor_pairs(const float* D, const int32_t* labels, int64_t B,
                                   PositivePick pick, int32_t* pos, int32_t* neg) {
  parallel_for(B, 64, [&](int64_t a0, int64_t a1) {
    for (int64_t a = a0; a < a1; ++a) {
      const float* row = D + a * B;
      int32_t p_best = -1, n_best = -1;
      for (int64_t j = 0; j < B; ++j) {
        if (j == a) continue;
        if (labels[j] == labels[a]) {
          if (p_best < 0 ||
              (pick == PositivePick::Hardest ? row[j] > row[p_best] : row[j] < row[p_best]))
            p_best = static_cast<int32_t>(j);
        } else if (n_best < 0 || row[j] < row[n_best]) {
          n_best = static_cast<int32_t>(j);
        }
      }
      pos[a] = p_best;
      neg[a] = n_best;
    }
  });
}

void CpuBackend::split_indices(const int32_t* idx, int64_t n, int32_t* safe, float* valid) {
  for (int64_t i = 0; i < n; ++i) {
    safe[i] = idx[i] >= 0 ? idx[i] : 0;
    valid[i] = idx[i] >= 0 ? 1.f : 0.f;
  }
}

void CpuBackend::mine_semihard(const float* D, const int32_t* labels, int64_t B, float margin,
                               SemiHardMode mode, int32_t* neg) {
  parallel_for(B, 16, [&](int64_t a0, int64_t a1) {
    for (int64_t a = a0; a < a1; ++a) {
      const float* row = D + a * B;
      for (int64_t p = 0; p < B; ++p) {
        int32_t best = -1, farthest = -1;
        if (p != a && labels[p] == labels[a]) {
          const float dap = row[p];
          for (int64_t n = 0; n < B; ++n) {
            if (labels[n] == labels[a]) continue;
            const float dan = row[n];
            if (farthest < 0 || dan > row[farthest]) farthest = static_cast<int32_t>(n);
            const bool inside =
                mode == SemiHardMode::Facenet ? (dan > dap && dan < dap + margin) : dan > dap;
            if (inside && (best < 0 || dan < row[best])) best = static_cast<int32_t>(n);
          }
          if (best < 0 && mode == SemiHardMode::Tfa) best = farthest;
        }
        neg[a * B + p] = best;
      }
    }
  });
}

namespace {

// The common case (hinge, no swap) as branch-free loops over whole rows, which vectorize: for
// each positive p of anchor a, every column j counts when it is a negative inside the window.
TRINE_VECTOR_CLONES void hinge_rows(const float* D, const int32_t* labels, int64_t B,
                                    const TripletSetParams& p, int64_t a0, int64_t a1,
                                    double* row_stats, float* grad_D) {
  std::vector<float> neg(static_cast<size_t>(B));
  // Both window bounds as inclusive ones (m > lo is m >= the next float above lo), so the loop
  // below has no branches.
  const float lo = p.lo_inclusive ? p.lo : std::nextafter(p.lo, INFINITY);
  const float hi = p.hi_inclusive ? p.hi : std::nextafter(p.hi, -INFINITY);
  const float margin = p.margin;
  for (int64_t a = a0; a < a1; ++a) {
    const float* row = D + a * B;
    float* grow = grad_D + a * B;
    for (int64_t j = 0; j < B; ++j) neg[j] = labels[j] != labels[a] ? 1.f : 0.f;
    double loss = 0, count = 0, active = 0, sum_ap = 0, sum_an = 0;
    for (int64_t pi = 0; pi < B; ++pi) {
      if (pi == a || labels[pi] != labels[a]) continue;
      const float dap = row[pi];
      float l_sum = 0, c_sum = 0, a_sum = 0, an_sum = 0;
      const float* nm = neg.data();
#pragma omp simd reduction(+ : l_sum, c_sum, a_sum, an_sum)
      for (int64_t j = 0; j < B; ++j) {
        const float m = row[j] - dap;
        const float in = nm[j] * static_cast<float>((m >= lo) & (m <= hi));
        const float z = margin - m;  // d(a,p) - d(a,n) + margin
        const float hit = in * static_cast<float>(z > 0.f);
        l_sum += hit != 0.f ? z : 0.f;  // a select, not z * hit: NaN * 0 would leak in
        c_sum += in;
        a_sum += hit;
        an_sum += in != 0.f ? row[j] : 0.f;
        grow[j] -= hit;
      }
      loss += l_sum;
      count += c_sum;
      active += a_sum;
      if (c_sum > 0) sum_ap += static_cast<double>(dap) * c_sum;  // dap may be NaN when c_sum is 0
      sum_an += an_sum;
      grow[pi] += a_sum;
    }
    double* st = row_stats + a * 5;
    st[0] = loss, st[1] = count, st[2] = active, st[3] = sum_ap, st[4] = sum_an;
  }
}

}  // namespace

void CpuBackend::triplet_set_loss(const float* D, const int32_t* labels, int64_t B,
                                  const TripletSetParams& p, double* row_stats, float* grad_D) {
  std::memset(grad_D, 0, static_cast<size_t>(B * B) * sizeof(float));
  if (!p.soft && !p.swap) {
    parallel_for(B, 8, [&](int64_t a0, int64_t a1) {
      hinge_rows(D, labels, B, p, a0, a1, row_stats, grad_D);
    });
    return;
  }
  // With swap, a triplet also writes into row p of the gradient: run serially then.
  const int64_t grain = p.swap ? B : 8;
  parallel_for(B, grain, [&](int64_t a0, int64_t a1) {
    std::vector<int32_t> positives, negatives;
    for (int64_t a = a0; a < a1; ++a) {
      const float* row = D + a * B;
      float* grow = grad_D + a * B;
      positives.clear();
      negatives.clear();
      for (int64_t j = 0; j < B; ++j) {
        if (labels[j] == labels[a]) {
          if (j != a) positives.push_back(static_cast<int32_t>(j));
        } else {
          negatives.push_back(static_cast<int32_t>(j));
        }
      }
      double loss = 0, count = 0, active = 0, sum_ap = 0, sum_an = 0;
      for (int32_t pi : positives) {
        const float dap = row[pi];
        double gpos = 0;
        for (int32_t n : negatives) {
          const float m = row[n] - dap;
          const bool above = p.lo_inclusive ? m >= p.lo : m > p.lo;
          const bool below = p.hi_inclusive ? m <= p.hi : m < p.hi;
          if (!above || !below) continue;
          float dan = row[n];
          bool swapped = false;
          if (p.swap && D[pi * B + n] < dan) {
            dan = D[pi * B + n];
            swapped = true;
          }
          const float z = dap - dan;
          double l, w;
          if (p.soft) {
            l = z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
            w = 1.0 / (1.0 + std::exp(-static_cast<double>(z)));
            active += 1;
          } else {
            l = z + p.margin > 0 ? z + p.margin : 0.0;
            w = l > 0 ? 1.0 : 0.0;
            active += w;
          }
          loss += l;
          count += 1;
          sum_ap += dap;
          sum_an += dan;
          if (w != 0) {
            gpos += w;
            if (swapped)
              grad_D[pi * B + n] -= static_cast<float>(w);
            else
              grow[n] -= static_cast<float>(w);
          }
        }
        grow[pi] += static_cast<float>(gpos);
      }
      double* st = row_stats + a * 5;
      st[0] = loss, st[1] = count, st[2] = active, st[3] = sum_ap, st[4] = sum_an;
    }
  });
}

void CpuBackend::triplet_set_totals(const double* row_stats, int64_t B, int denom_stat,
                                    float* out) {
  double total[5] = {0, 0, 0, 0, 0};
  for (int64_t a = 0; a < B; ++a)  // anchor order: the result does not depend on threads
    for (int k = 0; k < 5; ++k) total[k] += row_stats[a * 5 + k];
  triplet_set_outputs(total, denom_stat, out);
}

}  // namespace trine
