// Verification metrics against hand-computed cases (the arithmetic is in the comments) and
// brute-force references: best threshold, accuracy, ROC AUC with ties, TAR@FAR, EER, ROC curve,
// the k-fold protocol and the held-out fold figures of W2.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/error.h"
#include "engine/eval/verification.h"

namespace trine {
namespace {

using D = std::vector<double>;
using S = std::vector<uint8_t>;
using F = std::vector<int32_t>;

TEST(Verification, BestThresholdPicksTheFirstBestSplit) {
  // Sorted: 0.1 s, 0.2 s, 0.3 d, 0.4 s, 0.5 d, 0.6 d (P = 3, N = 3). Accepting the first k,
  // correct = tp + (N - fp): k=0: 3, k=1: 4, k=2: 5, k=3: 4, k=4: 5, k=5: 4, k=6: 3.
  // The first maximum is k = 2: t = (0.2 + 0.3) / 2 = 0.25, accuracy 5/6.
  D d{0.4, 0.1, 0.6, 0.2, 0.5, 0.3};
  S s{1, 1, 0, 1, 0, 0};
  Threshold t = best_threshold(d, s);
  EXPECT_DOUBLE_EQ(t.threshold, 0.25);
  EXPECT_DOUBLE_EQ(t.accuracy, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(accuracy_at(d, s, t.threshold), 5.0 / 6.0);
  // accept iff d < t: at t = 0.2 only 0.1 is accepted: 1 + 3 = 4 correct.
  EXPECT_DOUBLE_EQ(accuracy_at(d, s, 0.2), 4.0 / 6.0);

  // Ties: 0.1 s, 0.2 s, 0.2 d, 0.3 d. k = 2 would split the two 0.2s, so it does not count.
  // k=0: 2, k=1: 1 + 2 = 3, k=3: 2 + 1 = 3, k=4: 2. First maximum k = 1: t = 0.15, acc 3/4.
  t = best_threshold(D{0.2, 0.1, 0.3, 0.2}, S{1, 1, 0, 0});
  EXPECT_DOUBLE_EQ(t.threshold, 0.15);
  EXPECT_DOUBLE_EQ(t.accuracy, 0.75);

  // Reject everything (k = 0): 0.1 d, 0.2 d, 0.3 s: k=0: 2, k=1: 1, k=2: 0, k=3: 1.
  t = best_threshold(D{0.1, 0.2, 0.3}, S{0, 0, 1});
  EXPECT_DOUBLE_EQ(t.threshold, 0.1 - 1e-6);
  EXPECT_DOUBLE_EQ(t.accuracy, 2.0 / 3.0);
  // Accept everything (k = n): only same pairs.
  t = best_threshold(D{0.3, 0.1}, S{1, 1});
  EXPECT_DOUBLE_EQ(t.threshold, 0.3 + 1e-6);
  EXPECT_DOUBLE_EQ(t.accuracy, 1.0);
}

// Brute force: accuracy of every candidate threshold (below all, midpoints, above all).
TEST(Verification, BestThresholdMatchesBruteForce) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 50 + trial * 7;
    D d(n);
    S s(n);
    for (int i = 0; i < n; ++i) {
      s[i] = rng() % 2;
      d[i] = std::round((s[i] ? 0.8 : 1.2) * 10 + std::normal_distribution<>(0, 3)(rng)) / 10;
    }
    D sorted = d;
    std::sort(sorted.begin(), sorted.end());
    double best = -1;
    std::vector<double> cands{sorted.front() - 1e-6, sorted.back() + 1e-6};
    for (int i = 0; i + 1 < n; ++i)
      if (sorted[i + 1] > sorted[i]) cands.push_back(0.5 * (sorted[i] + sorted[i + 1]));
    for (double c : cands) best = std::max(best, accuracy_at(d, s, c));
    Threshold t = best_threshold(d, s);
    EXPECT_DOUBLE_EQ(t.accuracy, best);
    EXPECT_DOUBLE_EQ(accuracy_at(d, s, t.threshold), best);
  }
}

TEST(Verification, RocAucCountsTiesAsHalf) {
  // same {0.1, 0.4}, different {0.3, 0.4, 0.6}. Pairs (same, different) where same is smaller:
  // 0.1 beats all 3; 0.4 loses to 0.3, ties 0.4 (1/2), beats 0.6: (3 + 0 + 0.5 + 1) / 6 = 0.75.
  EXPECT_DOUBLE_EQ(roc_auc(D{0.1, 0.3, 0.4, 0.4, 0.6}, S{1, 0, 1, 0, 0}), 0.75);
  // Perfect and inverted orders; all tied.
  EXPECT_DOUBLE_EQ(roc_auc(D{1, 2, 3, 4}, S{1, 1, 0, 0}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(D{1, 2, 3, 4}, S{0, 0, 1, 1}), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc(D{2, 2, 2}, S{1, 0, 0}), 0.5);
  EXPECT_THROW(roc_auc(D{1, 2}, S{1, 1}), Error);
}

TEST(Verification, RocAucMatchesBruteForcePairCount) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 10; ++trial) {
    const int n = 200 + 31 * trial;
    D d(n);
    S s(n);
    for (int i = 0; i < n; ++i) {
      s[i] = rng() % 3 == 0;
      d[i] = (rng() % 40) / 10.0 - (s[i] ? 0.5 : 0.0);  // a coarse grid: many ties
    }
    double wins = 0;
    int64_t P = 0, N = 0;
    for (int i = 0; i < n; ++i) {
      P += s[i];
      N += !s[i];
      if (!s[i]) continue;
      for (int j = 0; j < n; ++j)
        if (!s[j]) wins += d[i] < d[j] ? 1.0 : d[i] == d[j] ? 0.5 : 0.0;
    }
    EXPECT_NEAR(roc_auc(d, s), wins / (double(P) * N), 1e-12);
  }
}

TEST(Verification, TarAtFarUsesTheNegativeQuantileWithoutInterpolation) {
  // 300 different pairs at 1.00, 1.01, ..., 3.99; FAR 1e-2 allows floor(3 + 1e-9) = 3 false
  // accepts, so t = the 4th smallest = 1.03. Same pairs {0.5, 1.02, 1.03, 1.5}: d < 1.03 for 2.
  D d;
  S s;
  for (int k = 0; k < 300; ++k) {
    d.push_back(1.0 + 0.01 * k);
    s.push_back(0);
  }
  for (double v : {0.5, 1.02, 1.03, 1.5}) {
    d.push_back(v);
    s.push_back(1);
  }
  TarAtFar r = tar_at_far(d, s, 1e-2);
  EXPECT_EQ(r.false_accepts_allowed, 3);
  EXPECT_EQ(r.false_accepts, 3);
  EXPECT_EQ(r.negatives, 300);
  EXPECT_DOUBLE_EQ(r.threshold, 1.0 + 0.01 * 3);
  EXPECT_DOUBLE_EQ(r.tar, 0.5);
  // 100 negatives, FAR 0.29: 0.29 * 100 = 28.999999999999996 in binary; the 1e-9 makes it 29.
  D d2;
  S s2;
  for (int k = 0; k < 100; ++k) {
    d2.push_back(k);
    s2.push_back(0);
  }
  d2.push_back(28.5);
  s2.push_back(1);
  d2.push_back(29.5);
  s2.push_back(1);
  r = tar_at_far(d2, s2, 0.29);
  EXPECT_EQ(r.false_accepts_allowed, 29);
  EXPECT_DOUBLE_EQ(r.threshold, 29.0);
  EXPECT_DOUBLE_EQ(r.tar, 0.5);
  // Ties at the quantile: negatives {1, 2, 2, 3}, FAR 0.5: a = 2, t = neg[2] = 2, and only one
  // negative is below it. FAR 1: t = +inf, everything accepted.
  r = tar_at_far(D{1, 2, 2, 3, 1.5}, S{0, 0, 0, 0, 1}, 0.5);
  EXPECT_EQ(r.false_accepts_allowed, 2);
  EXPECT_EQ(r.false_accepts, 1);
  EXPECT_DOUBLE_EQ(r.tar, 1.0);
  r = tar_at_far(D{1, 2, 2, 3, 9}, S{0, 0, 0, 0, 1}, 1.0);
  EXPECT_TRUE(std::isinf(r.threshold));
  EXPECT_DOUBLE_EQ(r.tar, 1.0);
  EXPECT_THROW(tar_at_far(d, s, 1.5), Error);
}

TEST(Verification, RocCurveAndEqualErrorRate) {
  // same {0.1, 0.3}, different {0.2, 0.25, 0.4} (P = 2, N = 3). Accepting d <= v:
  //   v=0.1: far 0, tar 1/2;  v=0.2: 1/3, 1/2;  v=0.25: 2/3, 1/2;  v=0.3: 2/3, 1;  v=0.4: 1, 1.
  D d{0.3, 0.2, 0.1, 0.4, 0.25};
  S s{1, 0, 1, 0, 0};
  std::vector<RocPoint> c = roc_curve(d, s);
  ASSERT_EQ(c.size(), 6u);
  EXPECT_TRUE(std::isinf(c[0].threshold) && c[0].threshold < 0);
  const double want[6][3] = {{0, 0, 0},           {0.1, 0, 0.5},
                             {0.2, 1 / 3.0, 0.5}, {0.25, 2 / 3.0, 0.5},
                             {0.3, 2 / 3.0, 1},   {0.4, 1, 1}};
  for (int i = 1; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(c[i].threshold, want[i][0]);
    EXPECT_DOUBLE_EQ(c[i].far, want[i][1]);
    EXPECT_DOUBLE_EQ(c[i].tar, want[i][2]);
  }
  // g = tar + far - 1 along the points: -1, -1/2, -1/6, +1/6, ... It crosses 0 halfway from
  // (1/3, 1/2) to (2/3, 1/2): far = 1/2 there, and 1 - tar = 1/2 too. EER = 0.5.
  EXPECT_NEAR(equal_error_rate(d, s), 0.5, 1e-12);
  // same {0.1, 0.2, 0.5}, different {0.3, 0.4, 0.6}: at v=0.3, far 1/3 and tar 2/3: EER 1/3.
  EXPECT_NEAR(equal_error_rate(D{0.1, 0.2, 0.5, 0.3, 0.4, 0.6}, S{1, 1, 1, 0, 0, 0}), 1 / 3.0,
              1e-12);
  // Perfect separation: the curve goes up the far = 0 axis; EER 0.
  EXPECT_NEAR(equal_error_rate(D{1, 2, 3, 4}, S{1, 1, 0, 0}), 0.0, 1e-12);
  // Brute force on random data: at the EER, FAR and FRR on the linear curve agree, and the EER
  // lies between the FAR and FRR of the last point before the crossing and the first after.
  std::mt19937 rng(5);
  D r(300);
  S rs(300);
  for (int i = 0; i < 300; ++i) {
    rs[i] = i % 2;
    r[i] = std::normal_distribution<>(rs[i] ? 1.0 : 1.6, 0.4)(rng);
  }
  const double eer = equal_error_rate(r, rs);
  std::vector<RocPoint> rc = roc_curve(r, rs);
  size_t k = 1;
  while (rc[k].tar + rc[k].far < 1.0) ++k;
  EXPECT_GE(eer, std::min(rc[k - 1].far, 1 - rc[k].tar) - 1e-12);
  EXPECT_LE(eer, std::max(rc[k].far, 1 - rc[k - 1].tar) + 1e-12);
}

TEST(Verification, KFoldChoosesEachThresholdOnTheOtherFolds) {
  // fold 0: same {1, 2}, diff {5, 6}; fold 1: same {1, 3}, diff {4, 6};
  // fold 2: same {2, 3}, diff {3.4, 7}.
  // Fold 0 threshold from folds 1, 2: sorted 1s 2s 3s 3s 3.4d 4d 6d 7d -> split after the four
  //   same pairs, t = (3 + 3.4)/2 = 3.2; fold 0 at 3.2: all 4 right -> 1.
  // Fold 1 from folds 0, 2: 1s 2s 2s 3s 3.4d 5d 6d 7d -> t = 3.2; fold 1: 1, 3 < 3.2 accepted,
  //   4, 6 rejected -> 1.
  // Fold 2 from folds 0, 1: 1s 1s 2s 3s 4d 5d 6d 6d -> t = 3.5; fold 2: 2, 3 accepted, 3.4 < 3.5
  //   wrongly accepted, 7 rejected -> 3/4.
  // mean = 2.75/3 = 0.916667; std = sqrt((2 (1/12)^2 + (1/6)^2) / 3) = sqrt(1/72) = 0.117851.
  D d{1, 2, 5, 6, 1, 3, 4, 6, 2, 3, 3.4, 7};
  S s{1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0};
  F f{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
  KFoldAccuracy k = kfold_accuracy(d, s, f);
  ASSERT_EQ(k.accuracy.size(), 3u);
  EXPECT_DOUBLE_EQ(k.threshold[0], 3.2);
  EXPECT_DOUBLE_EQ(k.threshold[1], 3.2);
  EXPECT_DOUBLE_EQ(k.threshold[2], 3.5);
  EXPECT_DOUBLE_EQ(k.accuracy[0], 1.0);
  EXPECT_DOUBLE_EQ(k.accuracy[1], 1.0);
  EXPECT_DOUBLE_EQ(k.accuracy[2], 0.75);
  EXPECT_NEAR(k.mean, 2.75 / 3, 1e-12);
  EXPECT_NEAR(k.std, std::sqrt(1.0 / 72), 1e-12);
  EXPECT_THROW(kfold_accuracy(d, s, F{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), Error);
  EXPECT_THROW(kfold_accuracy(d, s, F{0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2}), Error);  // fold 1 empty

  // The W2 fold-1 figures on the same data, fold 2 held out: threshold 3.5 from folds 0 and 1,
  // accuracy 3/4; oracle: fold 2 alone, 2s 3s 3.4d 7d -> t = 3.2, accuracy 1; AUC: same {2, 3}
  // vs diff {3.4, 7}: all 4 orders right -> 1; TAR@FAR 1e-2 with 2 negatives: a = floor(0.02)
  // = 0, t = 3.4, both same pairs below -> 1.
  HeldOutFigures h = held_out_figures(d, s, f, 2, 1e-2);
  EXPECT_DOUBLE_EQ(h.threshold, 3.5);
  EXPECT_DOUBLE_EQ(h.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(h.other_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(h.oracle_threshold, 3.2);
  EXPECT_DOUBLE_EQ(h.oracle_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(h.auc, 1.0);
  EXPECT_DOUBLE_EQ(h.tar.threshold, 3.4);
  EXPECT_DOUBLE_EQ(h.tar.tar, 1.0);
  EXPECT_DOUBLE_EQ(h.mean_same_distance, 2.5);
  EXPECT_DOUBLE_EQ(h.mean_different_distance, 5.2);
}

// The W2 shape: 10 folds x (300 same + 300 different). The fold-1 figures are the plain metrics
// on fold 0 with the threshold from folds 1..9.
TEST(Verification, HeldOutFiguresOnLfwShapedData) {
  std::mt19937 rng(1);
  D d;
  S s;
  F f;
  for (int fold = 0; fold < 10; ++fold)
    for (int i = 0; i < 600; ++i) {
      const bool same = i < 300;
      d.push_back(std::normal_distribution<>(same ? 0.9 : 1.2, 0.2)(rng));
      s.push_back(same);
      f.push_back(fold);
    }
  HeldOutFigures h = held_out_figures(d, s, f);
  D d0(d.begin(), d.begin() + 600), rest(d.begin() + 600, d.end());
  S s0(s.begin(), s.begin() + 600), srest(s.begin() + 600, s.end());
  const Threshold t = best_threshold(rest, srest);
  EXPECT_EQ(h.threshold, t.threshold);
  EXPECT_EQ(h.accuracy, accuracy_at(d0, s0, t.threshold));
  EXPECT_EQ(h.auc, roc_auc(d0, s0));
  EXPECT_EQ(h.tar.tar, tar_at_far(d0, s0, 1e-2).tar);
  EXPECT_EQ(h.tar.false_accepts_allowed, 3);
  EXPECT_EQ(h.oracle_accuracy, best_threshold(d0, s0).accuracy);
  // Separable-ish data: sensible ranges.
  EXPECT_GT(h.accuracy, 0.7);
  EXPECT_GT(h.auc, 0.8);
  EXPECT_GE(h.oracle_accuracy, h.accuracy);
  KFoldAccuracy k = kfold_accuracy(d, s, f);
  EXPECT_EQ(k.accuracy[0], h.accuracy);
  EXPECT_EQ(k.threshold[0], h.threshold);
  EXPECT_GT(k.mean, 0.7);
  EXPECT_LT(k.std, 0.05);
  // Bad input.
  EXPECT_THROW(held_out_figures(d0, s0, F(600, 0)), Error);  // nothing to pick a threshold on
  D nan = d0;
  nan[3] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(roc_auc(nan, s0), Error);
  EXPECT_THROW(best_threshold(D{1, 2}, S{1}), Error);
}

}  // namespace
}  // namespace trine
