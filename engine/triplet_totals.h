// Backend::triplet_set_totals' outputs from the five totals of triplet_set_loss's row
// statistics, computed alike by the CPU backend and the CUDA kernel (header-only).
#pragma once

#include "engine/host_device.h"

namespace trine {

// total: the summed loss, triplets, non-zero ones, summed D[a,p], summed negative distance.
// out[0] = loss, out[1] = gradient scale, out[2..8) = MetricLoss statistics (backend.h).
TRINE_HD void triplet_set_outputs(const double* total, int denom_stat, float* out) {
  double denom = 1;
  if (denom_stat >= 0 && total[denom_stat] > 1) denom = total[denom_stat];
  out[0] = static_cast<float>(total[0] / denom);
  out[1] = static_cast<float>(1.0 / denom);
  const int figures[6] = {1, 2, 1, 3, 1, 4};
  for (int k = 0; k < 6; ++k) out[2 + k] = static_cast<float>(total[figures[k]]);
}

}  // namespace trine
