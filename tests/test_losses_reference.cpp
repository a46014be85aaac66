// Every triplet loss x distance x miner x reduction (and the pair losses) against the float64
// brute-force references in tests/support/metric_reference.h: values, statistics and gradients,
// on random batches and on the edge cases (ties and duplicate embeddings, one class, no
// positives, B = 1).
//
// The miners see trine's float32 distance matrix; the reference mines on those same values (so
// ties resolve identically) and then evaluates the loss in float64 with that selection held
// fixed, which is what autograd differentiates. Gradients are compared with float64 central
// differences of the reference: |trine - ref| <= 2e-3 + 2e-3 |ref| (float32 forward/backward).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "losses/contrastive_loss.h"
#include "losses/ntxent_loss.h"
#include "losses/triplet_loss.h"
#include "tests/support/metric_reference.h"

namespace trine {
namespace {

struct Batch {
  ref::Mat E;
  std::vector<int> labels;
};

Batch random_batch(int B, int d, int classes, uint64_t seed, bool nonneg) {
  Generator g(seed);
  Batch b;
  for (int i = 0; i < B; ++i) {
    std::vector<double> row(d);
    for (double& v : row) v = nonneg ? std::fabs(g.normal()) : g.normal();
    b.E.push_back(row);
    b.labels.push_back(static_cast<int>(g.randint(classes)));
  }
  return b;
}

Tensor to_tensor(const ref::Mat& E) {
  std::vector<float> v;
  for (const auto& r : E)
    for (double x : r) v.push_back(static_cast<float>(x));
  return Tensor::from_vector(v,
                             {static_cast<int64_t>(E.size()), static_cast<int64_t>(E[0].size())});
}

ref::Mat to_mat(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  ref::Mat m(static_cast<size_t>(t.size(0)), std::vector<double>(static_cast<size_t>(t.size(1))));
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t k = 0; k < m[i].size(); ++k) m[i][k] = v[i * m[i].size() + k];
  return m;
}

std::vector<int32_t> to_i32(const std::vector<int>& v) {
  return {v.begin(), v.end()};
}

void expect_grad_near(const Tensor& grad, const ref::Mat& expected, const std::string& what) {
  ASSERT_TRUE(grad.defined()) << what;
  ref::Mat got = to_mat(grad);
  for (size_t i = 0; i < got.size(); ++i)
    for (size_t k = 0; k < got[i].size(); ++k) {
      ASSERT_TRUE(std::isfinite(got[i][k])) << what << " grad[" << i << "][" << k << "]";
      ASSERT_NEAR(got[i][k], expected[i][k], 2e-3 + 2e-3 * std::fabs(expected[i][k]))
          << what << " grad[" << i << "][" << k << "]";
    }
}

// The logging statistics against the reference's: counts exactly, mean distances to float
// rounding.
void expect_stats(const LossStats& got, const ref::LossValue& expected, const std::string& what) {
  EXPECT_EQ(got.considered, expected.considered) << what;
  EXPECT_EQ(got.active, expected.active) << what;
  EXPECT_NEAR(got.mean_pos, expected.mean_pos(), 1e-4 + 1e-4 * std::fabs(expected.mean_pos()))
      << what;
  EXPECT_NEAR(got.mean_neg, expected.mean_neg(), 1e-4 + 1e-4 * std::fabs(expected.mean_neg()))
      << what;
}

// Runs one triplet configuration on a batch and compares value, stats and gradient.
void check_triplet(const Batch& b, const std::string& dist, const std::string& miner,
                   const ref::TripletConfig& cfg) {
  const std::string what = dist + " / " + miner + " / " + cfg.reduction +
                           (cfg.soft ? " / soft" : "") + (cfg.swap ? " / swap" : "");
  Tensor E = to_tensor(b.E).set_requires_grad(true);
  auto distance = parse_distance(dist, static_cast<int64_t>(b.E[0].size()));
  TripletLossOptions o;
  o.margin = static_cast<float>(cfg.margin);
  o.soft_margin = cfg.soft;
  o.swap = cfg.swap;
  o.reduction = parse_reduction(cfg.reduction);
  TripletMarginLoss loss(distance, parse_miner(miner), o);
  Tensor value = loss.forward(E, to_i32(b.labels));
  value.backward();

  // The reference mines on the float32 matrix trine's miner saw.
  ref::Mat D;
  {
    NoGradGuard ng;
    D = to_mat(distance->pairwise(E.detach(), E.detach()));
  }
  std::vector<ref::RefTriplet> sel = ref::mine(miner, D, b.labels, cfg.margin);
  ref::TripletConfig c = cfg;
  c.distance = dist;
  ref::Mat L;
  if (dist == "mahalanobis") L = to_mat(distance->parameters()[0]);
  ref::LossValue expected = ref::triplet_loss(b.E, sel, c, L);
  ASSERT_NEAR(value.item(), expected.loss, 1e-4 + 1e-4 * std::fabs(expected.loss)) << what;
  expect_stats(loss.stats(), expected, what);
  ref::Mat g = ref::numeric_grad(
      [&](const ref::Mat& e) { return ref::triplet_loss(e, sel, c, L).loss; }, b.E);
  expect_grad_near(E.grad(), g, what);
}

const std::vector<std::string> kDistances = {"euclidean", "lp2sq",   "euclidean:centred",
                                             "manhattan", "lp:3",    "cosine",
                                             "dot",       "jaccard", "mahalanobis"};
const std::vector<std::string> kMiners = {"batch-all",     "batch-hard",     "semi-hard:facenet",
                                          "semi-hard:tfa", "semi-hard:band", "easy",
                                          "hard",          "window:-0.3:0.4"};
const std::vector<std::string> kReductions = {"mean", "mean-nonzero", "sum"};

TEST(TripletReference, EveryDistanceMinerReduction) {
  uint64_t seed = 1;
  for (const auto& dist : kDistances)
    for (const auto& miner : kMiners)
      for (const auto& red : kReductions)
        for (int variant = 0; variant < 3; ++variant) {  // hinge, soft margin, hinge + swap
          Batch b = random_batch(10, 4, 3, seed++, dist == "jaccard");
          ref::TripletConfig c;
          c.margin = dist == "dot" ? 1.0 : (dist == "cosine" ? 0.1 : 0.5);
          c.soft = variant == 1;
          c.swap = variant == 2;
          c.reduction = red;
          check_triplet(b, dist, miner, c);
          if (HasFatalFailure()) return;
        }
}

TEST(TripletReference, TiesAndDuplicateEmbeddings) {
  // Rows 0, 1, 2 are identical and rows 5, 6 too: equal distances everywhere they meet, zero
  // distances between duplicates, ties in every arg-min/arg-max.
  Batch b = random_batch(9, 3, 3, 77, false);
  b.E[1] = b.E[0];
  b.E[2] = b.E[0];
  b.E[6] = b.E[5];
  b.labels = {0, 0, 1, 1, 2, 2, 0, 1, 2};
  for (const auto& dist : {"euclidean", "lp2sq", "manhattan", "cosine"})
    for (const auto& miner : kMiners) {
      ref::TripletConfig c;
      c.margin = 0.3;
      check_triplet(b, dist, miner, c);
      if (HasFatalFailure()) return;
    }
}

TEST(TripletReference, TieBreaksToLowestIndex) {
  // Anchor 0 has positives 1 and 2 at the same distance and negatives 3 and 4 at the same
  // distance: batch-hard must pick (0, 1, 3).
  Tensor D = Tensor::from_vector({0, 1, 1, 2, 2,  //
                                  1, 0, 3, 5, 5,  //
                                  1, 3, 0, 5, 5,  //
                                  2, 5, 5, 0, 1,  //
                                  2, 5, 5, 1, 0},
                                 {5, 5});
  Tensor labels = Tensor::from_ints({0, 0, 0, 1, 1});
  MinerOutput out = BatchHardMiner().mine(D, labels, 0.2f);
  ASSERT_EQ(out.kind, MinerOutput::Kind::Triplets);
  EXPECT_EQ(out.triplets.positive.to_int_vector()[0], 1);
  EXPECT_EQ(out.triplets.negative.to_int_vector()[0], 3);
}

TEST(TripletReference, DegenerateBatchesGiveZeroNotNaN) {
  struct Case {
    std::vector<int> labels;
    const char* what;
  };
  for (const Case& cs :
       {Case{{0, 0, 0, 0}, "one class"}, Case{{0, 1, 2, 3}, "no positives"}, Case{{5}, "B = 1"}}) {
    for (const auto& miner : kMiners)
      for (const auto& red : kReductions) {
        Batch b = random_batch(static_cast<int>(cs.labels.size()), 3, 1, 5, false);
        b.labels = cs.labels;
        Tensor E = to_tensor(b.E).set_requires_grad(true);
        TripletLossOptions o;
        o.reduction = parse_reduction(red);
        TripletMarginLoss loss(parse_distance("euclidean"), parse_miner(miner), o);
        Tensor v = loss.forward(E, to_i32(b.labels));
        EXPECT_EQ(v.item(), 0.f) << cs.what << " " << miner;
        EXPECT_EQ(loss.stats().considered, 0) << cs.what << " " << miner;
        v.backward();
        if (E.grad().defined()) {
          for (float g : E.grad().to_vector()) EXPECT_EQ(g, 0.f) << cs.what << " " << miner;
        }
        EXPECT_GE(loss.empty_batches(), 1);
      }
  }
}

TEST(TripletReference, TextbookFormMatchesReference) {
  for (const auto& dist : kDistances) {
    Batch a = random_batch(6, 4, 1, 11, dist == "jaccard"),
          p = random_batch(6, 4, 1, 12, dist == "jaccard"),
          n = random_batch(6, 4, 1, 13, dist == "jaccard");
    for (bool swap : {false, true}) {
      ref::Mat E = a.E;
      E.insert(E.end(), p.E.begin(), p.E.end());
      E.insert(E.end(), n.E.begin(), n.E.end());
      std::vector<ref::RefTriplet> sel;
      for (int i = 0; i < 6; ++i) sel.push_back({i, 6 + i, 12 + i});
      Tensor ta = to_tensor(a.E).set_requires_grad(true),
             tp = to_tensor(p.E).set_requires_grad(true),
             tn = to_tensor(n.E).set_requires_grad(true);
      auto distance = parse_distance(dist, 4);
      TripletLossOptions o;
      o.margin = 0.5f;
      o.swap = swap;
      TripletMarginLoss loss(distance, parse_miner("batch-all"), o);
      Tensor v = loss.forward(ta, tp, tn);
      v.backward();
      ref::TripletConfig c;
      c.distance = dist;
      c.margin = 0.5;
      c.swap = swap;
      ref::Mat L;
      if (dist == "mahalanobis") L = to_mat(distance->parameters()[0]);
      EXPECT_NEAR(v.item(), ref::triplet_loss(E, sel, c, L).loss, 1e-4) << dist;
      ref::Mat g = ref::numeric_grad(
          [&](const ref::Mat& e) { return ref::triplet_loss(e, sel, c, L).loss; }, E);
      expect_grad_near(ta.grad(), ref::Mat(g.begin(), g.begin() + 6), dist + " anchor");
      expect_grad_near(tp.grad(), ref::Mat(g.begin() + 6, g.begin() + 12), dist + " positive");
      expect_grad_near(tn.grad(), ref::Mat(g.begin() + 12, g.end()), dist + " negative");
    }
  }
}

TEST(ContrastiveReference, EveryDistanceAndReduction) {
  uint64_t seed = 100;
  for (const auto& dist : kDistances) {
    if (dist == "mahalanobis") continue;  // identity at init: same as euclidean
    for (const auto& red : kReductions)
      for (bool squared : {false, true}) {
        Batch b = random_batch(9, 3, 3, seed++, dist == "jaccard");
        ref::PairConfig c;
        c.distance = dist;
        c.pos_margin = dist == "dot" ? -2.0 : 0.1;
        c.neg_margin = dist == "dot" ? 0.5 : 1.5;
        c.squared = squared;
        c.reduction = red;
        ContrastiveLossOptions o;
        o.pos_margin = static_cast<float>(c.pos_margin);
        o.neg_margin = static_cast<float>(c.neg_margin);
        o.squared = squared;
        o.reduction = parse_reduction(red);
        ContrastiveLoss loss(parse_distance(dist), o);
        Tensor E = to_tensor(b.E).set_requires_grad(true);
        Tensor v = loss.forward(E, to_i32(b.labels));
        v.backward();
        ref::LossValue expected = ref::contrastive_loss(b.E, b.labels, c);
        const std::string what = dist + " / " + red + (squared ? " / squared" : "");
        ASSERT_NEAR(v.item(), expected.loss, 1e-4 + 1e-4 * std::fabs(expected.loss)) << what;
        expect_stats(loss.stats(), expected, what);
        expect_grad_near(
            E.grad(),
            ref::numeric_grad(
                [&](const ref::Mat& e) { return ref::contrastive_loss(e, b.labels, c).loss; }, b.E),
            what);
      }
  }
}

TEST(NTXentReference, NTXentAndSupCon) {
  uint64_t seed = 200;
  for (const auto& dist : {"cosine", "euclidean", "dot"})
    for (bool supcon : {false, true})
      for (const auto& red : {"mean", "sum"}) {
        Batch b = random_batch(10, 4, 3, seed++, false);
        NTXentOptions o;
        o.temperature = 0.5f;
        o.supervised_contrastive = supcon;
        o.reduction = parse_reduction(red);
        NTXentLoss loss(parse_distance(dist), o);
        Tensor E = to_tensor(b.E).set_requires_grad(true);
        Tensor v = loss.forward(E, to_i32(b.labels));
        v.backward();
        ref::LossValue expected = ref::ntxent_loss(b.E, b.labels, dist, 0.5, supcon, red);
        const std::string what = std::string(dist) + (supcon ? " supcon " : " ntxent ") + red;
        ASSERT_NEAR(v.item(), expected.loss, 1e-4 + 1e-4 * std::fabs(expected.loss)) << what;
        expect_stats(loss.stats(), expected, what);
        expect_grad_near(E.grad(),
                         ref::numeric_grad(
                             [&](const ref::Mat& e) {
                               return ref::ntxent_loss(e, b.labels, dist, 0.5, supcon, red).loss;
                             },
                             b.E),
                         what);
      }
}

TEST(PairLosses, DegenerateBatches) {
  for (const std::vector<int>& labels :
       {std::vector<int>{3}, std::vector<int>{0, 1, 2}, std::vector<int>{4, 4, 4}}) {
    Batch b = random_batch(static_cast<int>(labels.size()), 3, 1, 9, false);
    Tensor E = to_tensor(b.E).set_requires_grad(true);
    NTXentLoss nt(parse_distance("cosine"));
    Tensor v = nt.forward(E, to_i32(labels));
    EXPECT_TRUE(std::isfinite(v.item()));
    v.backward();
    if (E.grad().defined()) {
      for (float g : E.grad().to_vector()) EXPECT_TRUE(std::isfinite(g));
    }
    ContrastiveLoss cl(parse_distance("euclidean"));
    Tensor c = cl.forward(E.detach(), to_i32(labels));
    EXPECT_TRUE(std::isfinite(c.item()));
  }
}

// A forward leaves its statistics on the device: read by stats() when first asked for, or by a
// caller that fetches pending_stats() with other values and hands them to resolve_stats (the
// trainer's one transfer per step), with the same result. Every forward's batch counts in
// empty_batches(), read or not, and reading twice counts it once.
TEST(LossStats, ReadWhenAskedOrInOneTransferAndEveryBatchCounts) {
  Batch b = random_batch(12, 5, 3, 42, false);
  // Batch-hard (explicit triplets); batch-all (the fused loop) below.
  TripletMarginLoss lazy(parse_distance("euclidean"), parse_miner("batch-hard"));
  TripletMarginLoss fetched(parse_distance("euclidean"), parse_miner("batch-hard"));
  lazy.forward(to_tensor(b.E), to_i32(b.labels));
  fetched.forward(to_tensor(b.E), to_i32(b.labels));
  ASSERT_TRUE(fetched.pending_stats().defined());
  EXPECT_EQ(fetched.pending_stats().numel(), MetricLoss::kStatsSize);
  const std::vector<float> figures = fetched.pending_stats().to_vector();
  fetched.resolve_stats(figures.data());
  EXPECT_FALSE(fetched.pending_stats().defined());
  const LossStats a = lazy.stats(), f = fetched.stats();
  EXPECT_FALSE(lazy.pending_stats().defined());
  EXPECT_GT(a.considered, 0);
  EXPECT_EQ(a.considered, f.considered);
  EXPECT_EQ(a.active, f.active);
  EXPECT_EQ(a.mean_pos, f.mean_pos);
  EXPECT_EQ(a.mean_neg, f.mean_neg);
  EXPECT_EQ(a.unit, "triplets");
  TripletMarginLoss fused(parse_distance("euclidean"), parse_miner("batch-all"));
  fused.forward(to_tensor(b.E), to_i32(b.labels));
  EXPECT_TRUE(fused.pending_stats().defined());
  EXPECT_GT(fused.stats().considered, a.considered);  // every valid triplet, not one per anchor

  // Batches with no valid triplet (one class): three forwards, statistics never read between.
  TripletMarginLoss empty(parse_distance("euclidean"), parse_miner("batch-hard"));
  ContrastiveLoss pairs(parse_distance("euclidean"));
  const std::vector<int32_t> one_class(12, 7);
  for (int i = 0; i < 3; ++i) empty.forward(to_tensor(b.E), one_class);
  pairs.forward(to_tensor({b.E[0]}), std::vector<int32_t>{0});  // B = 1: no pair
  EXPECT_EQ(empty.empty_batches(), 3);
  EXPECT_EQ(empty.stats().considered, 0);
  EXPECT_EQ(empty.empty_batches(), 3);  // read again: still 3
  EXPECT_EQ(pairs.stats().unit, "pairs");
  EXPECT_EQ(pairs.empty_batches(), 1);
  // A batch with triplets after them: not empty.
  empty.forward(to_tensor(b.E), to_i32(b.labels));
  EXPECT_GT(empty.stats().considered, 0);
  EXPECT_EQ(empty.empty_batches(), 3);
}

TEST(Distances, PairwiseAndPairedMatchReference) {
  for (const auto& dist : kDistances) {
    Batch x = random_batch(5, 4, 1, 31, dist == "jaccard"),
          y = random_batch(7, 4, 1, 32, dist == "jaccard");
    auto d = parse_distance(dist, 4);
    ref::Mat L;
    if (dist == "mahalanobis") L = to_mat(d->parameters()[0]);
    ref::Mat got = to_mat(d->pairwise(to_tensor(x.E), to_tensor(y.E)));
    for (size_t i = 0; i < 5; ++i)
      for (size_t j = 0; j < 7; ++j)
        EXPECT_NEAR(got[i][j], ref::distance(dist, x.E[i], y.E[j], L), 1e-4) << dist;
    std::vector<float> paired =
        d->paired(to_tensor(x.E), to_tensor(ref::Mat(y.E.begin(), y.E.begin() + 5))).to_vector();
    for (size_t i = 0; i < 5; ++i)
      EXPECT_NEAR(paired[i], ref::distance(dist, x.E[i], y.E[i], L), 1e-4) << dist;
  }
}

TEST(Distances, GradientsFiniteAtCoincidentRows) {
  for (const auto& dist : kDistances) {
    Batch x = random_batch(4, 3, 1, 41, true);
    x.E[2] = x.E[0];
    Tensor E = to_tensor(x.E).set_requires_grad(true);
    auto d = parse_distance(dist, 3);
    sum(d->pairwise(E, E)).backward();
    for (float g : E.grad().to_vector()) EXPECT_TRUE(std::isfinite(g)) << dist;
    std::vector<float> diag = d->pairwise(E.detach(), E.detach()).to_vector();
    if (dist != "dot") {
      for (int i = 0; i < 4; ++i) EXPECT_NEAR(diag[i * 4 + i], 0.f, 1e-6) << dist;
    }
  }
}

TEST(Distances, JaccardRejectsNegativeInput) {
  Tensor x = Tensor::from_vector({0.5f, -0.1f, 0.2f, 0.3f}, {2, 2});
  try {
    JaccardDistance().pairwise(x, x);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-negative"), std::string::npos) << e.what();
  }
}

TEST(Distances, MahalanobisMatrixGetsGradient) {
  Batch x = random_batch(6, 3, 2, 51, false);
  MahalanobisDistance d(3, 2);
  Tensor E = to_tensor(x.E);
  sum(d.pairwise(E, E)).backward();
  ASSERT_TRUE(d.L.grad().defined());
  double norm = 0;
  for (float g : d.L.grad().to_vector()) norm += std::fabs(g);
  EXPECT_GT(norm, 0);
}

TEST(TripletReference, NaNDistancesAreSkippedByTheFusedLoop) {
  // A NaN distance fails every window comparison, so its triplets are not in the set; the
  // statistics and gradient of the others stay finite (the vectorized hinge loop included).
  const int64_t B = 6;
  std::vector<float> d = {0, 1, 2, 3, 4, 5, 1, 0, NAN, 2, 3, 1, 2, NAN, 0, 1, 2, 3,
                          3, 2, 1, 0, 1, 2, 4, 3, 2,   1, 0, 1, 5, 1,   3, 2, 1, 0};
  std::vector<int32_t> labels = {0, 0, 0, 1, 1, 2};
  Tensor D = Tensor::from_vector(d, {B, B}), L = Tensor::from_ints(labels);
  std::vector<double> stats(static_cast<size_t>(B * 5));
  Tensor grad = Tensor::full({B, B}, NAN);
  backend_for(Device::cpu())
      .triplet_set_loss(D.data(), L.int_data(), B,
                        {0.5f, -INFINITY, INFINITY, true, true, false, false}, stats.data(),
                        grad.data());
  double loss = 0, count = 0;
  for (int64_t a = 0; a < B; ++a) {
    for (int k = 0; k < 5; ++k) EXPECT_TRUE(std::isfinite(stats[a * 5 + k])) << a << " " << k;
    loss += stats[a * 5], count += stats[a * 5 + 1];
  }
  // Brute force over the triplets whose two distances are both numbers.
  double want_loss = 0, want_count = 0;
  for (int a = 0; a < B; ++a)
    for (int p = 0; p < B; ++p)
      for (int n = 0; n < B; ++n) {
        if (p == a || labels[p] != labels[a] || labels[n] == labels[a]) continue;
        const float dap = d[a * B + p], dan = d[a * B + n];
        if (std::isnan(dap) || std::isnan(dan)) continue;
        want_loss += std::max(0.0, double(dap) - dan + 0.5), want_count += 1;
      }
  EXPECT_NEAR(loss, want_loss, 1e-5);
  EXPECT_EQ(count, want_count);
  for (float g : grad.to_vector()) EXPECT_TRUE(std::isfinite(g));
}

TEST(Parsing, DistanceNamesParseBack) {
  for (const std::string spec : {"euclidean", "lp2sq", "euclidean:centred", "lp2sq:centred",
                                 "manhattan", "lp:3", "cosine", "dot", "jaccard"})
    EXPECT_EQ(parse_distance(parse_distance(spec)->name())->name(), parse_distance(spec)->name())
        << spec;
  EXPECT_EQ(parse_distance("euclidean:centred")->name(), "euclidean:centred");
  EXPECT_EQ(parse_distance("minkowski:3")->name(), parse_distance("lp:3")->name());
  EXPECT_EQ(parse_distance("mahalanobis:5", 8)->name(), "mahalanobis:5");
  EXPECT_EQ(parse_distance("mahalanobis:8", 8)->name(), "mahalanobis");
}

TEST(Parsing, BadSpecsAreUsageErrors) {
  EXPECT_THROW(parse_distance("lp:0.5"), UsageError);
  EXPECT_THROW(parse_distance("lp:x"), UsageError);
  EXPECT_THROW(parse_distance("lp:3x"), UsageError);
  EXPECT_THROW(parse_distance("lp:inf"), UsageError);
  EXPECT_THROW(parse_distance("minkowski:0.5"), UsageError);
  EXPECT_THROW(parse_distance("minkowski:"), UsageError);
  for (const std::string rank : {"0", "-3", "9", "3abc", "", "x"})  // from 1 to d = 8
    EXPECT_THROW(parse_distance("mahalanobis:" + rank, 8), UsageError) << rank;
  EXPECT_THROW(parse_distance("hamming"), UsageError);
  EXPECT_THROW(parse_distance("manhattan:centred"), UsageError);
  EXPECT_THROW(LpDistance(3.f, false, true), UsageError);  // only p = 2 has the centred form
  EXPECT_THROW(parse_miner("semi-hard:other"), UsageError);
  EXPECT_THROW(parse_miner("window:1"), UsageError);
  EXPECT_THROW(parse_miner("window:2:1"), UsageError);
  EXPECT_THROW(parse_reduction("median"), UsageError);
}

}  // namespace
}  // namespace trine
