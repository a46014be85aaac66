// Verification metrics (see verification.h): sorting-based, exact, in double precision.
#include "engine/eval/verification.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"

namespace trine {

namespace {

// Checks the inputs; returns the numbers of same (P) and different (N) pairs.
std::pair<int64_t, int64_t> check_pairs(std::span<const double> d, std::span<const uint8_t> same,
                                        const char* what) {
  TRINE_CHECK(d.size() == same.size(), what, ": ", d.size(), " distances but ", same.size(),
              " same flags");
  TRINE_CHECK(!d.empty(), what, ": no pairs");
  int64_t P = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    TRINE_CHECK(!std::isnan(d[i]), what, ": distance of pair ", i, " is NaN");
    TRINE_CHECK(same[i] <= 1, what, ": same flag of pair ", i, " is ", int(same[i]), " (0 or 1)");
    P += same[i];
  }
  return {P, static_cast<int64_t>(d.size()) - P};
}

void need_both(int64_t P, int64_t N, const char* what) {
  TRINE_CHECK(P > 0 && N > 0, what, ": needs same and different pairs, got ", P, " same and ", N,
              " different");
}

// Indices sorting d ascending, ties in input order.
std::vector<size_t> stable_order(std::span<const double> d) {
  std::vector<size_t> o(d.size());
  std::iota(o.begin(), o.end(), size_t{0});
  std::stable_sort(o.begin(), o.end(), [&](size_t a, size_t b) { return d[a] < d[b]; });
  return o;
}

}  // namespace

Threshold best_threshold(std::span<const double> d, std::span<const uint8_t> same) {
  auto [P, N] = check_pairs(d, same, "best_threshold");
  (void)P;
  const std::vector<size_t> o = stable_order(d);
  const int64_t n = static_cast<int64_t>(d.size());
  // Accepting the first k sorted pairs: correct = tp(k) + (N - fp(k)).
  int64_t tp = 0, fp = 0, best_correct = N, best_k = 0;  // k = 0: reject everything
  for (int64_t k = 1; k <= n; ++k) {
    const size_t i = o[k - 1];
    (same[i] ? tp : fp) += 1;
    const bool valid = k == n || d[o[k]] > d[i];  // a split between distinct values
    const int64_t correct = tp + (N - fp);
    if (valid && correct > best_correct) {
      best_correct = correct;
      best_k = k;
    }
  }
  Threshold t;
  if (best_k == 0)
    t.threshold = d[o[0]] - 1e-6;
  else if (best_k == n)
    t.threshold = d[o[n - 1]] + 1e-6;
  else
    t.threshold = 0.5 * (d[o[best_k - 1]] + d[o[best_k]]);
  t.accuracy = static_cast<double>(best_correct) / static_cast<double>(n);
  return t;
}

double accuracy_at(std::span<const double> d, std::span<const uint8_t> same, double threshold) {
  check_pairs(d, same, "accuracy_at");
  int64_t correct = 0;
  for (size_t i = 0; i < d.size(); ++i) correct += (d[i] < threshold) == (same[i] == 1);
  return static_cast<double>(correct) / static_cast<double>(d.size());
}

double roc_auc(std::span<const double> d, std::span<const uint8_t> same) {
  auto [P, N] = check_pairs(d, same, "roc_auc");
  need_both(P, N, "roc_auc");
  const std::vector<size_t> o = stable_order(d);
  // Walk groups of equal distance; each same pair in a group beats the different pairs after
  // the group and ties with those inside it. twice_u = 2 * U, an exact integer.
  int64_t twice_u = 0, diff_through = 0;
  for (size_t a = 0; a < o.size();) {
    size_t b = a;
    int64_t p = 0, q = 0;
    while (b < o.size() && d[o[b]] == d[o[a]]) (same[o[b++]] ? p : q) += 1;
    diff_through += q;
    twice_u += 2 * p * (N - diff_through) + p * q;
    a = b;
  }
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(P) * static_cast<double>(N));
}

TarAtFar tar_at_far(std::span<const double> d, std::span<const uint8_t> same, double far) {
  auto [P, N] = check_pairs(d, same, "tar_at_far");
  need_both(P, N, "tar_at_far");
  TRINE_CHECK(far >= 0.0 && far <= 1.0, "tar_at_far: far must be in [0, 1], got ", far);
  std::vector<double> neg;
  for (size_t i = 0; i < d.size(); ++i)
    if (!same[i]) neg.push_back(d[i]);
  std::sort(neg.begin(), neg.end());
  TarAtFar r;
  r.negatives = N;
  r.false_accepts_allowed = static_cast<int64_t>(std::floor(far * static_cast<double>(N) + 1e-9));
  r.threshold = r.false_accepts_allowed < N ? neg[r.false_accepts_allowed]
                                            : std::numeric_limits<double>::infinity();
  int64_t accepted = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] >= r.threshold) continue;
    if (same[i])
      ++accepted;
    else
      ++r.false_accepts;
  }
  r.tar = static_cast<double>(accepted) / static_cast<double>(P);
  return r;
}

std::vector<RocPoint> roc_curve(std::span<const double> d, std::span<const uint8_t> same) {
  auto [P, N] = check_pairs(d, same, "roc_curve");
  need_both(P, N, "roc_curve");
  const std::vector<size_t> o = stable_order(d);
  std::vector<RocPoint> curve{{-std::numeric_limits<double>::infinity(), 0.0, 0.0}};
  int64_t tp = 0, fp = 0;
  for (size_t a = 0; a < o.size();) {
    size_t b = a;
    while (b < o.size() && d[o[b]] == d[o[a]]) (same[o[b++]] ? tp : fp) += 1;
    curve.push_back({d[o[a]], static_cast<double>(fp) / N, static_cast<double>(tp) / P});
    a = b;
  }
  return curve;
}

double equal_error_rate(std::span<const double> d, std::span<const uint8_t> same) {
  const std::vector<RocPoint> c = roc_curve(d, same);
  // g = tar + far - 1 is -1 at the first point and +1 at the last; find its first zero along
  // the polyline.
  double g_prev = -1.0;
  for (size_t i = 1; i < c.size(); ++i) {
    const double g = c[i].tar + c[i].far - 1.0;
    if (g >= 0.0) {
      const double s = (0.0 - g_prev) / (g - g_prev);
      return c[i - 1].far + s * (c[i].far - c[i - 1].far);
    }
    g_prev = g;
  }
  return c.back().far;  // unreachable: the last point is (1, 1)
}

KFoldAccuracy kfold_accuracy(std::span<const double> d, std::span<const uint8_t> same,
                             std::span<const int32_t> fold) {
  check_pairs(d, same, "kfold_accuracy");
  TRINE_CHECK(fold.size() == d.size(), "kfold_accuracy: ", d.size(), " distances but ", fold.size(),
              " fold ids");
  int32_t folds = 0;
  for (size_t i = 0; i < fold.size(); ++i) {
    TRINE_CHECK(fold[i] >= 0, "kfold_accuracy: fold id of pair ", i, " is ", fold[i]);
    folds = std::max(folds, fold[i] + 1);
  }
  TRINE_CHECK(folds >= 2, "kfold_accuracy: needs at least 2 folds, got ", folds);
  KFoldAccuracy r;
  for (int32_t f = 0; f < folds; ++f) {
    std::vector<double> d_in, d_out;
    std::vector<uint8_t> s_in, s_out;
    for (size_t i = 0; i < d.size(); ++i) {
      (fold[i] == f ? d_in : d_out).push_back(d[i]);
      (fold[i] == f ? s_in : s_out).push_back(same[i]);
    }
    TRINE_CHECK(!d_in.empty(), "kfold_accuracy: fold ", f, " has no pairs");
    const Threshold t = best_threshold(d_out, s_out);
    r.threshold.push_back(t.threshold);
    r.accuracy.push_back(accuracy_at(d_in, s_in, t.threshold));
  }
  double sum = 0.0;
  for (double a : r.accuracy) sum += a;
  r.mean = sum / folds;
  double sq = 0.0;
  for (double a : r.accuracy) sq += (a - r.mean) * (a - r.mean);
  r.std = std::sqrt(sq / folds);
  return r;
}

HeldOutFigures held_out_figures(std::span<const double> d, std::span<const uint8_t> same,
                                std::span<const int32_t> fold, int32_t test_fold, double far) {
  check_pairs(d, same, "held_out_figures");
  TRINE_CHECK(fold.size() == d.size(), "held_out_figures: ", d.size(), " distances but ",
              fold.size(), " fold ids");
  std::vector<double> d_in, d_out;
  std::vector<uint8_t> s_in, s_out;
  for (size_t i = 0; i < d.size(); ++i) {
    (fold[i] == test_fold ? d_in : d_out).push_back(d[i]);
    (fold[i] == test_fold ? s_in : s_out).push_back(same[i]);
  }
  TRINE_CHECK(!d_in.empty(), "held_out_figures: test fold ", test_fold, " has no pairs");
  TRINE_CHECK(!d_out.empty(), "held_out_figures: no pairs outside test fold ", test_fold,
              " to choose the threshold on");
  HeldOutFigures r;
  const Threshold t = best_threshold(d_out, s_out);
  r.threshold = t.threshold;
  r.other_accuracy = t.accuracy;
  r.accuracy = accuracy_at(d_in, s_in, t.threshold);
  const Threshold oracle = best_threshold(d_in, s_in);
  r.oracle_threshold = oracle.threshold;
  r.oracle_accuracy = oracle.accuracy;
  r.auc = roc_auc(d_in, s_in);
  r.tar = tar_at_far(d_in, s_in, far);
  double sum_same = 0.0, sum_diff = 0.0;
  int64_t n_same = 0;
  for (size_t i = 0; i < d_in.size(); ++i) {
    (s_in[i] ? sum_same : sum_diff) += d_in[i];
    n_same += s_in[i];
  }
  r.mean_same_distance = sum_same / static_cast<double>(n_same);
  r.mean_different_distance = sum_diff / static_cast<double>(d_in.size() - n_same);
  return r;
}

}  // namespace trine
