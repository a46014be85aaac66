// Chunked exact kNN (GEMM for the dot products, per-row top-k selection on packed
// (distance, index) keys) and the retrieval metrics computed from each query's sorted neighbours.
#include "engine/eval/retrieval.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <unordered_map>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace trine {

DistanceMetric parse_distance_metric(const std::string& name) {
  if (name == "euclidean") return DistanceMetric::Euclidean;
  if (name == "cosine") return DistanceMetric::Cosine;
  throw UsageError("distance metric must be euclidean or cosine, got '" + name + "'");
}

const char* distance_metric_name(DistanceMetric m) {
  return m == DistanceMetric::Euclidean ? "euclidean" : "cosine";
}

std::vector<int64_t> default_recall_ks() {
  return {1, 2, 4, 8};
}

namespace {

// Embeddings on the host, ready for the GEMM: rows unit-normalized for cosine, then (centre_pair())
// moved by the gallery's mean where that keeps digits, with their squared norms.
struct Prepared {
  int64_t n = 0, d = 0;
  std::vector<float> x;    // [n, d]
  std::vector<float> sq;   // [n] squared norms of the rows of x (cosine: 1, a zero row too)
  std::vector<char> zero;  // [n] cosine: the row was all zeros (cosine 0 to everything)
};

Prepared prepare(const Tensor& t, DistanceMetric metric, const char* what) {
  TRINE_CHECK_AS(UsageError, t.defined(), what, ": undefined tensor");
  TRINE_CHECK_AS(UsageError, t.dtype() == DType::F32, what, ": expected float32, got ",
                 dtype_name(t.dtype()));
  TRINE_CHECK_AS(UsageError, t.dim() == 2, what, ": expected a [N, D] matrix, got shape ",
                 t.shape_str());
  Prepared p;
  p.n = t.size(0);
  p.d = t.size(1);
  TRINE_CHECK_AS(UsageError, p.d >= 1, what, ": embeddings of dimension 0");
  TRINE_CHECK_AS(UsageError, p.n < (int64_t{1} << 31), what, ": ", p.n,
                 " rows; at most 2^31 - 1 are supported");
  p.x = t.to_vector();
  p.sq.assign(static_cast<size_t>(p.n), 0.f);
  p.zero.assign(static_cast<size_t>(p.n), 0);
  for (int64_t i = 0; i < p.n; ++i) {
    float* row = p.x.data() + i * p.d;
    double s = 0;
    for (int64_t c = 0; c < p.d; ++c) {
      TRINE_CHECK_AS(DataError, std::isfinite(row[c]), what, ": value ", row[c], " at row ", i,
                     ", column ", c, " is not finite");
      s += static_cast<double>(row[c]) * row[c];
    }
    TRINE_CHECK_AS(DataError, s < 1e37, what, ": row ", i,
                   " has a squared norm beyond the float32 range");
    if (metric == DistanceMetric::Cosine) {
      if (s > 0) {
        const double inv = 1.0 / std::sqrt(s);
        for (int64_t c = 0; c < p.d; ++c) row[c] = static_cast<float>(row[c] * inv);
      } else {
        p.zero[i] = 1;
      }
      // A zero row's squared norm is 1 too, so that its distance to anything comes out as 1
      // (see scan()).
      p.sq[i] = 1.f;
    } else {
      p.sq[i] = static_cast<float>(s);
    }
  }
  return p;
}

// Readies queries and gallery for scan(). Embeddings sit in clusters far from the origin
// (unit-norm ones of a class often within 0.01 of each other on the unit sphere), where
// ||q||^2 + ||g||^2 - 2 q.g in float32 loses about log10(||x||^2 / d^2) of its seven digits,
// enough to reorder close neighbours. So when the gallery's mean is far from the origin compared
// with its rows' spread around it (||mu||^2 > 4 mean ||g - mu||^2, the spread taken as
// mean ||g||^2 - ||mu||^2), both sets are moved by -mu and their squared norms recomputed, and the
// terms become the size of the distances. Otherwise moving gains at most a factor of five and is
// skipped, which keeps data that is exact in float32 (small integers, as in the tests'
// hand-computed cases) exact.
void centre_pair(Prepared& q, Prepared& g) {
  if (g.n == 0) return;
  std::vector<double> mu(static_cast<size_t>(g.d), 0.0);
  double mean_sq = 0;
  for (int64_t i = 0; i < g.n; ++i) {
    for (int64_t k = 0; k < g.d; ++k) mu[k] += g.x[i * g.d + k];
    mean_sq += g.sq[i];
  }
  double mu_sq = 0;
  for (double& v : mu) {
    v /= static_cast<double>(g.n);
    mu_sq += v * v;
  }
  mean_sq /= static_cast<double>(g.n);
  if (mu_sq <= 4 * (mean_sq - mu_sq)) return;
  auto move = [&](Prepared& p) {
    for (int64_t i = 0; i < p.n; ++i) {
      float* row = p.x.data() + i * p.d;
      double s = p.zero[i] ? 1.0 : 0.0;  // a zero row (cosine) keeps its extra 1
      for (int64_t k = 0; k < p.d; ++k) {
        row[k] = static_cast<float>(row[k] - mu[k]);
        s += static_cast<double>(row[k]) * row[k];
      }
      p.sq[i] = static_cast<float>(s);
    }
  };
  move(g);
  if (&q != &g) move(q);
}

// A neighbour as one sortable 64-bit key: the distance's float bits (non-negative floats order
// like their bit patterns) above the gallery index, so ties go to the lower index.
inline uint64_t make_key(float dist, int64_t j) {
  return (uint64_t{std::bit_cast<uint32_t>(dist)} << 32) | static_cast<uint32_t>(j);
}
inline int32_t key_index(uint64_t key) {
  return static_cast<int32_t>(key & 0xffffffffu);
}
inline float key_dist(uint64_t key) {
  return std::bit_cast<float>(static_cast<uint32_t>(key >> 32));
}

// Up to this many neighbours, a row is scanned once keeping a sorted top-k (insertion).
constexpr int64_t kSmallK = 16;

// Leaves the k smallest of keys[0, m) sorted in keys[0, k).
void select_smallest(uint64_t* keys, int64_t m, int64_t k) {
  if (k < m) std::nth_element(keys, keys + (k - 1), keys + m);
  std::sort(keys, keys + std::min(k, m));
}

using KOf = std::function<int64_t(int64_t query)>;
using Visit = std::function<void(int64_t query, const uint64_t* keys, int64_t k)>;

// For every query row: its k_of(query) nearest gallery rows (fewer when the gallery is smaller),
// handed to visit() as sorted keys holding the ranking distance (squared for Euclidean).
// visit() runs concurrently for different queries.
void scan(const Prepared& q, const Prepared& g, bool loo, DistanceMetric metric, int64_t chunk_rows,
          const KOf& k_of, const Visit& visit) {
  const int64_t nq = q.n, ng = g.n, d = q.d;
  if (nq == 0) return;
  int64_t rows = chunk_rows > 0 ? chunk_rows : (int64_t{16} << 20) / std::max<int64_t>(ng, 1);
  rows = std::clamp<int64_t>(rows, 1, nq);
  std::vector<float> dots(static_cast<size_t>(rows * ng));
  Backend& be = backend_for(Device::cpu());
  const bool euclid = metric == DistanceMetric::Euclidean;
  for (int64_t r0 = 0; r0 < nq; r0 += rows) {
    const int64_t c = std::min(rows, nq - r0);
    // dots [c, ng] = -2 Q[r0 : r0 + c] G^T.
    be.gemm(false, true, c, ng, d, -2.f, q.x.data() + r0 * d, d, g.x.data(), d, 0.f, dots.data(),
            ng);
    parallel_for(c, 1, [&](int64_t begin, int64_t end) {
      std::vector<uint64_t> keys(static_cast<size_t>(ng));
      for (int64_t i = begin; i < end; ++i) {
        const int64_t qi = r0 + i;
        const float* row = dots.data() + i * ng;
        const float qsq = q.sq[qi];
        const int64_t m = loo ? ng - 1 : ng;  // candidates
        const int64_t k = std::min(k_of(qi), m);
        // Euclidean: the squared distance. Cosine: 1 - cos = ||q - g||^2 / 2 of the unit rows
        // (and 1 for a zero row, whose squared norm carries the extra 1).
        auto key_of = [&](int64_t j) {
          const float v = euclid ? (qsq + g.sq[j]) + row[j] : 0.5f * ((qsq + g.sq[j]) + row[j]);
          return make_key(v > 0.f ? v : 0.f, j);  // rounding can dip below 0
        };
        if (k <= kSmallK && k < m) {
          // Few neighbours: one pass keeping a sorted top-k, no candidate array.
          int64_t filled = 0;
          for (int64_t j = 0; j < ng; ++j) {
            if (loo && j == qi) continue;
            const uint64_t key = key_of(j);
            if (filled == k && key >= keys[k - 1]) continue;
            int64_t p = filled < k ? filled++ : k - 1;
            for (; p > 0 && keys[p - 1] > key; --p) keys[p] = keys[p - 1];
            keys[p] = key;
          }
        } else {
          int64_t c = 0;
          for (int64_t j = 0; j < ng; ++j)
            if (!(loo && j == qi)) keys[c++] = key_of(j);
          select_smallest(keys.data(), m, k);
        }
        visit(qi, keys.data(), k);
      }
    });
  }
}

KnnResult knn_impl(const Prepared& q, const Prepared& g, bool loo, int64_t k,
                   const KnnOptions& opt) {
  KnnResult r;
  r.num_queries = q.n;
  r.k = k;
  r.indices.assign(static_cast<size_t>(q.n * k), -1);
  r.distances.assign(static_cast<size_t>(q.n * k), 0.f);
  const bool euclid = opt.metric == DistanceMetric::Euclidean;
  scan(
      q, g, loo, opt.metric, opt.chunk_rows, [k](int64_t) { return k; },
      [&](int64_t qi, const uint64_t* keys, int64_t kk) {
        for (int64_t t = 0; t < kk; ++t) {
          r.indices[qi * k + t] = key_index(keys[t]);
          const float v = key_dist(keys[t]);
          r.distances[qi * k + t] = euclid ? std::sqrt(v) : v;
        }
      });
  return r;
}

void check_labels(const std::vector<int32_t>& labels, int64_t n, const char* what) {
  TRINE_CHECK_AS(UsageError, static_cast<int64_t>(labels.size()) == n, what, ": ", labels.size(),
                 " labels for ", n, " embeddings");
}

RetrievalMetrics evaluate(const Prepared& q, const std::vector<int32_t>& ql, const Prepared& g,
                          const std::vector<int32_t>& gl, bool loo, const RetrievalOptions& opt) {
  int64_t max_k = 1;
  for (int64_t K : opt.recall_ks) {
    TRINE_CHECK_AS(UsageError, K >= 1, "Recall@K: K must be >= 1, got ", K);
    max_k = std::max(max_k, K);
  }
  std::unordered_map<int32_t, int64_t> counts;
  for (int32_t l : gl) ++counts[l];
  const int64_t nq = q.n;
  std::vector<int64_t> R(static_cast<size_t>(nq));
  for (int64_t i = 0; i < nq; ++i) {
    auto it = counts.find(ql[i]);
    R[i] = (it == counts.end() ? 0 : it->second) - (loo ? 1 : 0);
  }
  // Per query: the 1-based rank of the first same-class neighbour (0: none among those
  // selected), R-Precision and average precision at R.
  std::vector<int64_t> first_hit(static_cast<size_t>(nq), 0);
  std::vector<double> rprec(static_cast<size_t>(nq), 0.0), ap(static_cast<size_t>(nq), 0.0);
  const bool want_map = opt.map_at_r;
  scan(
      q, g, loo, opt.metric, opt.chunk_rows,
      [&](int64_t qi) { return std::max(max_k, want_map ? R[qi] : 1); },
      [&](int64_t qi, const uint64_t* keys, int64_t k) {
        const int32_t y = ql[qi];
        const int64_t r = want_map ? R[qi] : 0;
        int64_t hits = 0, first = 0;
        double sum_prec = 0;
        for (int64_t t = 0; t < k && (t < r || first == 0); ++t) {
          if (gl[key_index(keys[t])] != y) continue;
          if (first == 0) first = t + 1;
          if (t < r) {
            ++hits;
            sum_prec += static_cast<double>(hits) / static_cast<double>(t + 1);
          }
        }
        first_hit[qi] = first;
        if (r > 0) {
          rprec[qi] = static_cast<double>(hits) / static_cast<double>(r);
          ap[qi] = sum_prec / static_cast<double>(r);
        }
      });

  RetrievalMetrics m;
  m.leave_one_out = loo;
  m.num_queries = nq;
  m.num_gallery = g.n;
  m.recall_ks = opt.recall_ks;
  m.recall_at_k.assign(opt.recall_ks.size(), 0.0);
  // Sums in query order, so the figures do not depend on the thread count.
  int64_t p1 = 0, with_r = 0;
  double sum_rprec = 0, sum_ap = 0;
  std::vector<int64_t> recall_hits(opt.recall_ks.size(), 0);
  for (int64_t i = 0; i < nq; ++i) {
    if (first_hit[i] == 1) ++p1;
    for (size_t j = 0; j < opt.recall_ks.size(); ++j)
      if (first_hit[i] >= 1 && first_hit[i] <= opt.recall_ks[j]) ++recall_hits[j];
    if (R[i] > 0) {
      ++with_r;
      sum_rprec += rprec[i];
      sum_ap += ap[i];
    }
  }
  const double n = static_cast<double>(nq);
  m.precision_at_1 = static_cast<double>(p1) / n;
  for (size_t j = 0; j < recall_hits.size(); ++j)
    m.recall_at_k[j] = static_cast<double>(recall_hits[j]) / n;
  m.num_r_zero = nq - with_r;
  m.has_map_at_r = want_map;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  m.r_precision = want_map && with_r > 0 ? sum_rprec / static_cast<double>(with_r) : nan;
  m.map_at_r = want_map && with_r > 0 ? sum_ap / static_cast<double>(with_r) : nan;
  return m;
}

}  // namespace

KnnResult knn(const Tensor& queries, const Tensor& gallery, int64_t k, const KnnOptions& opt) {
  Prepared q = prepare(queries, opt.metric, "kNN queries");
  Prepared g = prepare(gallery, opt.metric, "kNN gallery");
  TRINE_CHECK_AS(UsageError, q.d == g.d, "kNN: queries have dimension ", q.d,
                 " but the gallery has ", g.d);
  TRINE_CHECK_AS(UsageError, k >= 1 && k <= g.n, "kNN: k = ", k, " must be in [1, ", g.n,
                 "] (gallery rows)");
  centre_pair(q, g);
  return knn_impl(q, g, false, k, opt);
}

KnnResult knn_leave_one_out(const Tensor& x, int64_t k, const KnnOptions& opt) {
  Prepared p = prepare(x, opt.metric, "kNN embeddings");
  TRINE_CHECK_AS(UsageError, k >= 1 && k <= p.n - 1, "kNN leave-one-out: k = ", k,
                 " must be in [1, ", p.n - 1, "] (rows - 1)");
  centre_pair(p, p);
  return knn_impl(p, p, true, k, opt);
}

RetrievalMetrics evaluate_leave_one_out(const Tensor& embeddings,
                                        const std::vector<int32_t>& labels,
                                        const RetrievalOptions& opt) {
  Prepared p = prepare(embeddings, opt.metric, "embeddings");
  check_labels(labels, p.n, "leave-one-out evaluation");
  TRINE_CHECK_AS(UsageError, p.n >= 2, "leave-one-out evaluation needs at least 2 embeddings, got ",
                 p.n);
  centre_pair(p, p);
  return evaluate(p, labels, p, labels, true, opt);
}

RetrievalMetrics evaluate_against_gallery(const Tensor& queries,
                                          const std::vector<int32_t>& query_labels,
                                          const Tensor& gallery,
                                          const std::vector<int32_t>& gallery_labels,
                                          const RetrievalOptions& opt) {
  Prepared q = prepare(queries, opt.metric, "query embeddings");
  Prepared g = prepare(gallery, opt.metric, "gallery embeddings");
  check_labels(query_labels, q.n, "query");
  check_labels(gallery_labels, g.n, "gallery");
  TRINE_CHECK_AS(UsageError, q.d == g.d, "evaluation: queries have dimension ", q.d,
                 " but the gallery has ", g.d);
  TRINE_CHECK_AS(UsageError, q.n >= 1 && g.n >= 1, "evaluation needs at least one query and one ",
                 "gallery item, got ", q.n, " and ", g.n);
  centre_pair(q, g);
  return evaluate(q, query_labels, g, gallery_labels, false, opt);
}

std::string format_metrics(const RetrievalMetrics& m, const std::string& prefix) {
  std::string out;
  char buf[160];
  auto line = [&](const std::string& name, double v) {
    std::snprintf(buf, sizeof(buf), "%s%s %.6f\n", prefix.c_str(), name.c_str(), v);
    out += buf;
  };
  line("precision_at_1", m.precision_at_1);
  if (m.has_map_at_r) {
    line("r_precision", m.r_precision);
    line("map_at_r", m.map_at_r);
  }
  for (size_t j = 0; j < m.recall_ks.size(); ++j)
    line("recall_at_" + std::to_string(m.recall_ks[j]), m.recall_at_k[j]);
  out += prefix + "num_queries " + std::to_string(m.num_queries) + "\n";
  out += prefix + "num_gallery " + std::to_string(m.num_gallery) + "\n";
  out += prefix + "num_r_zero " + std::to_string(m.num_r_zero) + "\n";
  return out;
}

}  // namespace trine
