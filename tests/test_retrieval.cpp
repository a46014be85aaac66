// Retrieval metrics and chunked kNN: hand-computed tiny cases (worked out in the comments), a
// brute-force reference (full distance matrix + sort) on random data in both modes and for many
// chunk sizes, tie-breaking, single-member classes, cosine distance, and input errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/eval/retrieval.h"
#include "support/test_util.h"

namespace trine {
namespace {

Tensor column(const std::vector<float>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size()), 1});
}

// Points on a line, leave-one-out, Euclidean:
//   x = [0, 1, 3, 4, 10], labels = [0, 0, 1, 0, 1]
//   query  neighbours (by distance)       rel        R  P@1  R-prec  AP@R               first hit
//   q0=0   1(d1) 2(d3) 3(d4) 4(d10)       1 0 1 0    2  1    1/2     (1/2)(1)      = 1/2   1
//   q1=1   0(d1) 2(d2) 3(d3) 4(d9)        1 0 1 0    2  1    1/2     (1/2)(1)      = 1/2   1
//   q2=3   3(d1) 1(d2) 0(d3) 4(d7)        0 0 0 1    1  0    0       0                     4
//   q3=4   2(d1) 1(d3) 0(d4) 4(d6)        0 1 1 0    2  0    1/2     (1/2)(0 + 1/2) = 1/4  2
//   q4=10  3(d6) 2(d7) 1(d9) 0(d10)       0 1 0 0    1  0    0       0                     2
//   P@1 = 2/5 = 0.4, R-precision = 1.5/5 = 0.3, MAP@R = 1.25/5 = 0.25,
//   Recall@1 = 0.4, Recall@2 = 4/5 (first hit <= 2 for q0 q1 q3 q4), Recall@4 = 1.
TEST(Retrieval, HandComputedLeaveOneOut) {
  RetrievalOptions opt;
  opt.recall_ks = {1, 2, 4};
  const RetrievalMetrics m = evaluate_leave_one_out(column({0, 1, 3, 4, 10}), {0, 0, 1, 0, 1}, opt);
  EXPECT_TRUE(m.leave_one_out);
  EXPECT_EQ(m.num_queries, 5);
  EXPECT_EQ(m.num_gallery, 5);
  EXPECT_DOUBLE_EQ(m.precision_at_1, 0.4);
  EXPECT_DOUBLE_EQ(m.r_precision, 0.3);
  EXPECT_DOUBLE_EQ(m.map_at_r, 0.25);
  EXPECT_EQ(m.num_r_zero, 0);
  EXPECT_EQ(m.recall_at_k, (std::vector<double>{0.4, 0.8, 1.0}));

  const KnnResult k = knn_leave_one_out(column({0, 1, 3, 4, 10}), 4);
  EXPECT_EQ(k.indices,
            (std::vector<int32_t>{1, 2, 3, 4, 0, 2, 3, 4, 3, 1, 0, 4, 2, 1, 0, 4, 3, 2, 1, 0}));
  EXPECT_EQ(k.distances[0], 1.f);
  EXPECT_EQ(k.distances[3], 10.f);  // Euclidean, not squared
  EXPECT_EQ(k.distances[19], 10.f);
}

// Ties and a single-member class: x = [0, 1, -1], labels = [0, 1, 0].
//   q0=0: items 1 and 2 are both at distance 1; the lower index (1, label 1) comes first,
//         so rel = [0, 1]; R = 1: P@1 0, R-prec 0, AP 0; first hit 2.
//   q1=1: class 1 has no other member: R = 0, excluded from R-prec/MAP@R; P@1 0 (a miss).
//   q2=-1: nearest 0 (d1, label 0): R = 1, P@1 1, R-prec 1, AP 1.
//   P@1 = 1/3; R-precision = MAP@R = (0 + 1)/2 over the 2 queries with R > 0; num_r_zero 1;
//   Recall@2 = 2/3 (q0 at rank 2, q2 at rank 1; q1 never).
TEST(Retrieval, TiesGoToTheLowerIndexAndSingletonsAreExcluded) {
  RetrievalOptions opt;
  opt.recall_ks = {1, 2};
  const RetrievalMetrics m = evaluate_leave_one_out(column({0, 1, -1}), {0, 1, 0}, opt);
  EXPECT_DOUBLE_EQ(m.precision_at_1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.r_precision, 0.5);
  EXPECT_DOUBLE_EQ(m.map_at_r, 0.5);
  EXPECT_EQ(m.num_r_zero, 1);
  EXPECT_DOUBLE_EQ(m.recall_at_k[1], 2.0 / 3);
  EXPECT_EQ(knn_leave_one_out(column({0, 1, -1}), 2).indices,
            (std::vector<int32_t>{1, 2, 0, 2, 0, 1}));
  // Swapping the labels of items 1 and 2 turns q0's first neighbour into a hit.
  EXPECT_DOUBLE_EQ(evaluate_leave_one_out(column({0, 1, -1}), {0, 0, 1}, opt).precision_at_1,
                   2.0 / 3);
  // Exact duplicates: the query itself is skipped, its duplicate is not.
  EXPECT_EQ(knn_leave_one_out(column({5, 5, 5}), 2).indices,
            (std::vector<int32_t>{1, 2, 0, 2, 0, 1}));
}

// Queries against a gallery:
//   queries q = [0, 5, 3], labels [0, 1, 7]; gallery g = [1, 4, 6, -2], labels [1, 0, 1, 0]
//   q0=0: g0(d1,y1) g3(d2,y0) g1(d4,y0) g2(d6,y1): rel 0 1 1 0, R=2: P@1 0, R-prec 1/2,
//         AP (1/2)(0 + 1/2) = 1/4, first hit 2
//   q1=5: g1(d1,y0) g2(d1,y1) [tie: lower index first] g0(d4,y1) g3(d7): rel 0 1 1 0, R=2:
//         P@1 0, R-prec 1/2, AP 1/4, first hit 2
//   q2=3: label 7 is not in the gallery: R = 0, excluded; never a hit
//   P@1 = 0, R-precision = 1/2, MAP@R = 1/4 (over 2 queries), num_r_zero 1, Recall@2 = 2/3.
TEST(Retrieval, HandComputedGallery) {
  RetrievalOptions opt;
  opt.recall_ks = {1, 2, 100};
  const RetrievalMetrics m = evaluate_against_gallery(column({0, 5, 3}), {0, 1, 7},
                                                      column({1, 4, 6, -2}), {1, 0, 1, 0}, opt);
  EXPECT_FALSE(m.leave_one_out);
  EXPECT_EQ(m.num_queries, 3);
  EXPECT_EQ(m.num_gallery, 4);
  EXPECT_DOUBLE_EQ(m.precision_at_1, 0.0);
  EXPECT_DOUBLE_EQ(m.r_precision, 0.5);
  EXPECT_DOUBLE_EQ(m.map_at_r, 0.25);
  EXPECT_EQ(m.num_r_zero, 1);
  EXPECT_EQ(m.recall_at_k, (std::vector<double>{0.0, 2.0 / 3, 2.0 / 3}));  // K beyond the gallery
  const KnnResult k = knn(column({0, 5, 3}), column({1, 4, 6, -2}), 2);
  EXPECT_EQ(k.indices, (std::vector<int32_t>{0, 3, 1, 2, 1, 0}));
  EXPECT_EQ(k.distances, (std::vector<float>{1, 2, 1, 1, 1, 2}));
}

// ---- brute-force reference: exact integer distances, full sort, the definitions verbatim

struct Ref {
  double p1 = 0, rprec = 0, mapr = 0;
  int64_t r_zero = 0;
  std::vector<double> recall;
  std::vector<std::vector<int32_t>> order;  // per query, all candidates sorted
};

Ref reference(const std::vector<int>& q, const std::vector<int32_t>& ql, const std::vector<int>& g,
              const std::vector<int32_t>& gl, int64_t d, bool loo, const std::vector<int64_t>& ks) {
  const int64_t nq = static_cast<int64_t>(ql.size()), ng = static_cast<int64_t>(gl.size());
  Ref r;
  r.recall.assign(ks.size(), 0);
  int64_t with_r = 0;
  for (int64_t i = 0; i < nq; ++i) {
    std::vector<std::pair<int64_t, int32_t>> cand;  // (squared distance, index)
    for (int64_t j = 0; j < ng; ++j) {
      if (loo && j == i) continue;
      int64_t s = 0;
      for (int64_t c = 0; c < d; ++c) {
        const int64_t diff = q[i * d + c] - g[j * d + c];
        s += diff * diff;
      }
      cand.push_back({s, static_cast<int32_t>(j)});
    }
    std::sort(cand.begin(), cand.end());
    std::vector<int32_t> order;
    for (auto& c : cand) order.push_back(c.second);
    r.order.push_back(order);
    int64_t R = 0;
    for (int64_t j = 0; j < ng; ++j)
      if (gl[j] == ql[i] && !(loo && j == i)) ++R;
    std::vector<int> rel;
    for (int32_t j : order) rel.push_back(gl[j] == ql[i]);
    r.p1 += rel[0];
    for (size_t t = 0; t < ks.size(); ++t) {
      bool any = false;
      for (int64_t p = 0; p < std::min<int64_t>(ks[t], static_cast<int64_t>(rel.size())); ++p)
        any = any || rel[p];
      r.recall[t] += any;
    }
    if (R == 0) {
      ++r.r_zero;
      continue;
    }
    ++with_r;
    double hits = 0, ap = 0;
    for (int64_t p = 0; p < R; ++p) {
      hits += rel[p];
      ap += rel[p] * hits / static_cast<double>(p + 1);  // P(i) * rel(i)
    }
    r.rprec += hits / static_cast<double>(R);
    r.mapr += ap / static_cast<double>(R);
  }
  r.p1 /= static_cast<double>(nq);
  for (double& v : r.recall) v /= static_cast<double>(nq);
  r.rprec /= static_cast<double>(with_r);
  r.mapr /= static_cast<double>(with_r);
  return r;
}

// Small integer coordinates: every distance is exact in float and ties are frequent.
struct IntSet {
  std::vector<int> v;
  std::vector<int32_t> labels;
  Tensor t;
};

IntSet int_set(int64_t n, int64_t d, int classes, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  IntSet s;
  std::vector<float> f;
  for (int64_t i = 0; i < n * d; ++i) {
    s.v.push_back(static_cast<int>(rng() % 7) - 3);
    f.push_back(static_cast<float>(s.v.back()));
  }
  for (int64_t i = 0; i < n; ++i) s.labels.push_back(static_cast<int32_t>(rng() % classes));
  s.labels[n / 2] = 1000;  // a class with a single member
  s.t = Tensor::from_vector(f, {n, d});
  return s;
}

void expect_matches(const RetrievalMetrics& m, const Ref& r) {
  EXPECT_DOUBLE_EQ(m.precision_at_1, r.p1);
  EXPECT_NEAR(m.r_precision, r.rprec, 1e-12);
  EXPECT_NEAR(m.map_at_r, r.mapr, 1e-12);
  EXPECT_EQ(m.num_r_zero, r.r_zero);
  ASSERT_EQ(m.recall_at_k.size(), r.recall.size());
  for (size_t t = 0; t < r.recall.size(); ++t) EXPECT_DOUBLE_EQ(m.recall_at_k[t], r.recall[t]);
}

TEST(Retrieval, LeaveOneOutMatchesBruteForceForEveryChunkSize) {
  const int64_t n = 240, d = 3;
  const IntSet s = int_set(n, d, 6, 1);
  const std::vector<int64_t> ks{1, 2, 4, 8, 16, 1000};
  const Ref r = reference(s.v, s.labels, s.v, s.labels, d, true, ks);
  EXPECT_GE(r.r_zero, 1);
  for (int64_t chunk : {0, 1, 7, 64, 239, 240, 1000}) {
    SCOPED_TRACE("chunk_rows " + std::to_string(chunk));
    RetrievalOptions opt;
    opt.recall_ks = ks;
    opt.chunk_rows = chunk;
    expect_matches(evaluate_leave_one_out(s.t, s.labels, opt), r);
    KnnOptions ko;
    ko.chunk_rows = chunk;
    for (int64_t k : {int64_t{1}, int64_t{5}, int64_t{40},
                      n - 1}) {  // insertion path (<= 16) and nth_element path
      const KnnResult got = knn_leave_one_out(s.t, k, ko);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t t = 0; t < k; ++t)
          ASSERT_EQ(got.indices[i * k + t], r.order[i][t]) << "query " << i << " rank " << t;
    }
  }
}

TEST(Retrieval, GalleryMatchesBruteForceForEveryChunkSize) {
  const int64_t d = 4;
  const IntSet q = int_set(90, d, 5, 2), g = int_set(310, d, 5, 3);
  const std::vector<int64_t> ks{1, 3, 10};
  const Ref r = reference(q.v, q.labels, g.v, g.labels, d, false, ks);
  for (int64_t chunk : {0, 1, 13, 90}) {
    SCOPED_TRACE("chunk_rows " + std::to_string(chunk));
    RetrievalOptions opt;
    opt.recall_ks = ks;
    opt.chunk_rows = chunk;
    expect_matches(evaluate_against_gallery(q.t, q.labels, g.t, g.labels, opt), r);
    KnnOptions ko;
    ko.chunk_rows = chunk;
    const int64_t k = 20;
    const KnnResult got = knn(q.t, g.t, k, ko);
    for (int64_t i = 0; i < 90; ++i)
      for (int64_t t = 0; t < k; ++t) {
        const int32_t j = r.order[i][t];
        ASSERT_EQ(got.indices[i * k + t], j);
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += std::pow(q.v[i * d + c] - g.v[j * d + c], 2);
        ASSERT_FLOAT_EQ(got.distances[i * k + t], static_cast<float>(std::sqrt(s)));
      }
  }
  // Without MAP@R: the same P@1 and Recall@K, fewer neighbours selected.
  RetrievalOptions fast;
  fast.recall_ks = ks;
  fast.map_at_r = false;
  const RetrievalMetrics m = evaluate_against_gallery(q.t, q.labels, g.t, g.labels, fast);
  EXPECT_FALSE(m.has_map_at_r);
  EXPECT_TRUE(std::isnan(m.map_at_r));
  EXPECT_DOUBLE_EQ(m.precision_at_1, r.p1);
  EXPECT_DOUBLE_EQ(m.recall_at_k[2], r.recall[2]);
}

TEST(Retrieval, PrecisionAtOneEqualsRecallAtOne) {
  const IntSet s = int_set(300, 2, 4, 9);
  const RetrievalMetrics m = evaluate_leave_one_out(s.t, s.labels);
  EXPECT_EQ(m.recall_ks, (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(m.precision_at_1, m.recall_at_k[0]);
  for (size_t t = 1; t < m.recall_at_k.size(); ++t)
    EXPECT_GE(m.recall_at_k[t], m.recall_at_k[t - 1]);
}

// Cosine: against a double-precision reference on continuous random data (no exact ties), and
// invariant to the scale of each row.
TEST(Retrieval, CosineMatchesReference) {
  const int64_t n = 150, d = 8;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> v(n * d);
  for (float& x : v) x = nd(rng);
  std::vector<int32_t> labels(n);
  for (auto& l : labels) l = static_cast<int32_t>(rng() % 4);
  KnnOptions ko;
  ko.metric = DistanceMetric::Cosine;
  ko.chunk_rows = 16;
  const int64_t k = 10;
  const KnnResult got = knn_leave_one_out(Tensor::from_vector(v, {n, d}), k, ko);
  auto cosd = [&](int64_t i, int64_t j) {
    double dot = 0, ni = 0, nj = 0;
    for (int64_t c = 0; c < d; ++c) {
      dot += double(v[i * d + c]) * v[j * d + c];
      ni += double(v[i * d + c]) * v[i * d + c];
      nj += double(v[j * d + c]) * v[j * d + c];
    }
    return 1.0 - dot / std::sqrt(ni * nj);
  };
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, int32_t>> all;
    for (int64_t j = 0; j < n; ++j)
      if (j != i) all.push_back({cosd(i, j), static_cast<int32_t>(j)});
    std::sort(all.begin(), all.end());
    for (int64_t t = 0; t < k; ++t) {
      EXPECT_NEAR(got.distances[i * k + t], all[t].first, 1e-5);
      const bool clear_gap = (t == 0 || all[t].first - all[t - 1].first > 1e-5) &&
                             all[t + 1].first - all[t].first > 1e-5;
      if (clear_gap) {
        EXPECT_EQ(got.indices[i * k + t], all[t].second) << i << " " << t;
      }
    }
  }
  // Scaling rows by positive factors changes nothing but rounding.
  std::vector<float> scaled = v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) scaled[i * d + c] *= static_cast<float>(1 + i % 5) * 0.5f;
  RetrievalOptions opt;
  opt.metric = DistanceMetric::Cosine;
  const RetrievalMetrics a = evaluate_leave_one_out(Tensor::from_vector(v, {n, d}), labels, opt);
  const RetrievalMetrics b =
      evaluate_leave_one_out(Tensor::from_vector(scaled, {n, d}), labels, opt);
  EXPECT_NEAR(a.map_at_r, b.map_at_r, 1e-3);
  EXPECT_NEAR(a.precision_at_1, b.precision_at_1, 1e-2);
  // A zero vector has distance 1 to everything (and no NaN).
  const KnnResult z =
      knn(Tensor::zeros({1, 3}), Tensor::from_vector({1, 0, 0, 0, 2, 0}, {2, 3}), 2, ko);
  EXPECT_EQ(z.distances, (std::vector<float>{1.f, 1.f}));
  EXPECT_EQ(z.indices, (std::vector<int32_t>{0, 1}));
}

// Unit-norm embeddings of a few tight classes, all near one point of the sphere (as a
// triplet-trained net gives after a short run): neighbours differ in d^2 by far less than the
// 1e-7 the uncentred float32 form rounds it by. The rankings and metrics must still be those of
// the exact distances, for Euclidean and cosine (whose rows are also rescaled here).
TEST(Retrieval, TightClustersFarFromTheOriginKeepTheirOrder) {
  const int64_t n = 400, d = 16, classes = 4;
  std::mt19937 rng(21);
  std::normal_distribution<double> nd;
  std::vector<double> base(d), centres(classes * d);
  for (double& v : base) v = nd(rng);
  for (double& v : centres) v = 0.003 * nd(rng);
  std::vector<double> x(n * d);
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int32_t>(i % classes);
    double norm = 0;
    for (int64_t c = 0; c < d; ++c) {
      x[i * d + c] = base[c] / 4 + centres[labels[i] * d + c] + 0.004 * nd(rng);
      norm += x[i * d + c] * x[i * d + c];
    }
    for (int64_t c = 0; c < d; ++c)
      x[i * d + c] = static_cast<float>(x[i * d + c] / std::sqrt(norm));
  }
  auto dist2 = [&](int64_t i, int64_t j) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c) s += std::pow(x[i * d + c] - x[j * d + c], 2);
    return s;
  };
  for (DistanceMetric metric : {DistanceMetric::Euclidean, DistanceMetric::Cosine}) {
    SCOPED_TRACE(distance_metric_name(metric));
    std::vector<float> f(x.begin(), x.end());
    if (metric == DistanceMetric::Cosine)
      for (int64_t i = 0; i < n * d; ++i) f[i] *= static_cast<float>(1 + (i / d) % 3);
    const Tensor t = Tensor::from_vector(f, {n, d});
    const int64_t k = 30;
    KnnOptions ko;
    ko.metric = metric;
    const KnnResult got = knn_leave_one_out(t, k, ko);
    int64_t checked = 0, misordered = 0;
    double p1 = 0, mapr = 0;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<std::pair<double, int32_t>> all;
      for (int64_t j = 0; j < n; ++j)
        if (j != i) all.push_back({dist2(i, j), static_cast<int32_t>(j)});
      std::sort(all.begin(), all.end());
      for (int64_t r = 0; r < k; ++r) {
        // Ranks whose exact d^2 is 1e-9 (relative) or more from both sides' neighbours.
        const double gap = 1e-9 * all[r].first;
        if ((r > 0 && all[r].first - all[r - 1].first < gap) ||
            all[r + 1].first - all[r].first < gap)
          continue;
        ++checked;
        misordered += got.indices[i * k + r] != all[r].second;
      }
      const int64_t R = n / classes - 1;
      double hits = 0, ap = 0;
      for (int64_t r = 0; r < R; ++r) {
        const bool rel = labels[all[r].second] == labels[i];
        hits += rel;
        ap += rel * hits / static_cast<double>(r + 1);
      }
      p1 += labels[all[0].second] == labels[i];
      mapr += ap / static_cast<double>(R);
    }
    EXPECT_GT(checked, n * k * 9 / 10);
    EXPECT_EQ(misordered, 0) << "of " << checked << " ranks";
    RetrievalOptions opt;
    opt.metric = metric;
    const RetrievalMetrics m = evaluate_leave_one_out(t, labels, opt);
    EXPECT_NEAR(m.precision_at_1, p1 / n, 1.0 / n);
    EXPECT_NEAR(m.map_at_r, mapr / n, 1e-4);
    EXPECT_LT(m.precision_at_1, 0.99);  // the classes overlap: ranking errors would show
  }
}

TEST(Retrieval, LargerSetIsFastAndConsistent) {
  // 4000 x 4000 leave-one-out in a few chunks: the auto chunk and a small one agree exactly.
  const IntSet s = int_set(4000, 8, 10, 11);
  RetrievalOptions a, b;
  b.chunk_rows = 333;
  const RetrievalMetrics ma = evaluate_leave_one_out(s.t, s.labels, a);
  const RetrievalMetrics mb = evaluate_leave_one_out(s.t, s.labels, b);
  EXPECT_EQ(ma.precision_at_1, mb.precision_at_1);
  EXPECT_EQ(ma.map_at_r, mb.map_at_r);
  EXPECT_EQ(ma.recall_at_k, mb.recall_at_k);
}

TEST(Retrieval, FormatsNameValueLines) {
  RetrievalOptions opt;
  opt.recall_ks = {1, 2, 4};
  const RetrievalMetrics m = evaluate_leave_one_out(column({0, 1, 3, 4, 10}), {0, 0, 1, 0, 1}, opt);
  EXPECT_EQ(format_metrics(m),
            "precision_at_1 0.400000\nr_precision 0.300000\nmap_at_r 0.250000\n"
            "recall_at_1 0.400000\nrecall_at_2 0.800000\nrecall_at_4 1.000000\n"
            "num_queries 5\nnum_gallery 5\nnum_r_zero 0\n");
  EXPECT_EQ(format_metrics(m, "test_").substr(0, 25), "test_precision_at_1 0.400");
  opt.map_at_r = false;
  const std::string no_map =
      format_metrics(evaluate_leave_one_out(column({0, 1, 3, 4, 10}), {0, 0, 1, 0, 1}, opt));
  EXPECT_EQ(no_map.find("map_at_r"), std::string::npos);
}

TEST(Retrieval, InputErrors) {
  const Tensor x = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {3, 2});
  EXPECT_TRUE(test::throws_with<UsageError>(
      [&] {
        evaluate_leave_one_out(x, {0, 1});
      },
      {"2 labels for 3 embeddings"}));
  EXPECT_TRUE(test::throws_with<UsageError>(
      [&] {
        evaluate_against_gallery(x, {0, 1, 2}, column({1, 2}), {0, 1});
      },
      {"dimension 2", "has 1"}));
  EXPECT_TRUE(test::throws_with<UsageError>([&] { evaluate_leave_one_out(column({1}), {0}); },
                                            {"at least 2"}));
  EXPECT_TRUE(test::throws_with<UsageError>(
      [&] {
        evaluate_leave_one_out(Tensor::from_vector({1, 2}), {0, 1});
      },
      {"[N, D]"}));
  EXPECT_TRUE(test::throws_with<UsageError>([&] { knn_leave_one_out(x, 3); }, {"k = 3", "[1, 2]"}));
  EXPECT_TRUE(test::throws_with<UsageError>([&] { knn(x, x, 0); }, {"k = 0"}));
  RetrievalOptions bad;
  bad.recall_ks = {1, 0};
  EXPECT_TRUE(test::throws_with<UsageError>(
      [&] {
        evaluate_leave_one_out(x, {0, 1, 0}, bad);
      },
      {"K must be >= 1"}));
  EXPECT_THROW(parse_distance_metric("manhattan"), UsageError);
  EXPECT_EQ(parse_distance_metric("cosine"), DistanceMetric::Cosine);
  std::vector<float> v{0, 1, 2, 3, 4, 5};
  v[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] {
        evaluate_leave_one_out(Tensor::from_vector(v, {3, 2}), {0, 1, 0});
      },
      {"row 1, column 1", "not finite"}));
  v[3] = 1e30f;
  EXPECT_TRUE(test::throws_with<DataError>(
      [&] {
        evaluate_leave_one_out(Tensor::from_vector(v, {3, 2}), {0, 1, 0});
      },
      {"row 1", "squared norm"}));
}

}  // namespace
}  // namespace trine
