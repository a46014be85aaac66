// Verification metrics for pairs of embeddings: accuracy at a threshold (chosen on other folds,
// LFW's 10-fold protocol), ROC AUC, TAR at a given FAR, equal error rate and the ROC curve.
//
// Every function takes one value per pair where SMALLER means "more likely the same identity"
// (a distance) and accepts a pair as "same" iff value < threshold. For similarity scores (larger
// = same), pass the negated scores. `same` holds 1 for a same-identity pair, 0 otherwise; `fold`
// holds 0-based fold ids (LFW's "fold 1" is fold 0). The definitions follow the W2 peer
// (shared/peers/torch_lfw.py) exactly where it defines them; see each function.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace trine {

// A threshold with the accuracy it reaches on the pairs it was chosen on.
struct Threshold {
  double threshold = 0.0;
  double accuracy = 0.0;
};

// The threshold t maximizing the accuracy of "same iff d < t" (the peer's best_threshold):
// sort d ascending (ties keep input order); for k = 0..n, "accept the first k" scores
// (same pairs among them + different pairs after them) / n, counting only k that fall between
// distinct values (k = 0 and k = n always count); take the smallest k reaching the maximum and
// put t at the midpoint of the sorted values k-1 and k; t = d_min - 1e-6 when k = 0 and
// d_max + 1e-6 when k = n. Needs at least one pair.
Threshold best_threshold(std::span<const double> distance, std::span<const uint8_t> same);

// Fraction of pairs classified right by "same iff d < threshold". Needs at least one pair.
double accuracy_at(std::span<const double> distance, std::span<const uint8_t> same,
                   double threshold);

// Exact area under the ROC curve of the score -d: the probability that a random same pair has a
// smaller distance than a random different pair, a tie counting one half (Mann-Whitney U / (P N),
// equal to sklearn's roc_auc_score(same, -d)). O(n log n). Needs both kinds of pairs.
double roc_auc(std::span<const double> distance, std::span<const uint8_t> same);

// TAR at FAR (the peer's tar_at_far). With N different pairs sorted ascending (neg), the allowed
// false accepts are a = floor(far * N + 1e-9); the threshold is t = neg[a] (+inf when a >= N) and
// TAR is the fraction of same pairs with d < t. No interpolation: FAR moves in steps of 1/N, so
// at most a (fewer when neg[a-1] == neg[a]) different pairs are accepted, and the figure hinges
// on the (a+1)-th smallest different-pair distance. Needs both kinds of pairs; far in [0, 1].
struct TarAtFar {
  double tar = 0.0;
  double threshold = 0.0;
  int64_t false_accepts_allowed = 0;  // a
  int64_t false_accepts = 0;          // different pairs with d < threshold (<= a)
  int64_t negatives = 0;              // N
};
TarAtFar tar_at_far(std::span<const double> distance, std::span<const uint8_t> same, double far);

// One point of the ROC curve: accepting "same iff d <= threshold" gives false accept rate far
// (different pairs accepted / N) and true accept rate tar (same pairs accepted / P).
struct RocPoint {
  double threshold = 0.0;
  double far = 0.0;
  double tar = 0.0;
};
// All ROC points, one per distinct distance value in ascending order, preceded by
// (threshold -inf, 0, 0): the full curve, for plotting (sklearn's roc_curve without
// drop_intermediate). Needs both kinds of pairs.
std::vector<RocPoint> roc_curve(std::span<const double> distance, std::span<const uint8_t> same);

// Equal error rate: where the false reject rate 1 - tar equals far on the ROC curve taken as
// straight segments between its points, i.e. the x where tar(x) = 1 - x (the usual
// brentq-on-interp1d definition). Needs both kinds of pairs.
double equal_error_rate(std::span<const double> distance, std::span<const uint8_t> same);

// The k-fold protocol (LFW View 2): for each fold f, the threshold is best_threshold over the
// pairs of all other folds, applied to the pairs of fold f. Folds are 0..max(fold); each needs
// pairs. std is the population standard deviation (ddof = 0, as numpy's default).
struct KFoldAccuracy {
  std::vector<double> accuracy;   // per fold
  std::vector<double> threshold;  // per fold, chosen on the other folds
  double mean = 0.0, std = 0.0;
};
KFoldAccuracy kfold_accuracy(std::span<const double> distance, std::span<const uint8_t> same,
                             std::span<const int32_t> fold);

// The W2 figures on one test fold (fold 0, LFW's "fold 1"), defined as the peer defines them:
//   accuracy         = accuracy_at(test fold, best_threshold(all other folds))
//   oracle_accuracy  = best_threshold(test fold).accuracy (reference only)
//   auc              = roc_auc(test fold)
//   tar_at_far       = tar_at_far(test fold, far).tar (far = 1e-2 for fold1_tar_at_far_1e-2)
// Needs same and different pairs in the test fold and pairs outside it.
struct HeldOutFigures {
  double accuracy = 0.0;
  double threshold = 0.0;       // chosen on the other folds
  double other_accuracy = 0.0;  // accuracy of that threshold on the other folds
  double oracle_accuracy = 0.0;
  double oracle_threshold = 0.0;
  double auc = 0.0;
  TarAtFar tar;
  double mean_same_distance = 0.0, mean_different_distance = 0.0;  // test fold
};
HeldOutFigures held_out_figures(std::span<const double> distance, std::span<const uint8_t> same,
                                std::span<const int32_t> fold, int32_t test_fold = 0,
                                double far = 1e-2);

}  // namespace trine
