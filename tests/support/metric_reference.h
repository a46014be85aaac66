// Brute-force float64 references for distances, miners and metric losses: plain nested loops,
// written straight from the definitions in losses/ and mining/, for tests to compare against.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace trine::ref {

using Mat = std::vector<std::vector<double>>;  // rows

// Distance between two vectors, by the spec names of parse_distance (L is Mahalanobis' factor).
inline double distance(const std::string& kind, const std::vector<double>& x,
                       const std::vector<double>& y, const Mat& L = {}) {
  const size_t d = x.size();
  auto lp = [&](double p) {
    double s = 0;
    for (size_t k = 0; k < d; ++k) s += std::pow(std::fabs(x[k] - y[k]), p);
    return std::pow(s, 1.0 / p);
  };
  if (kind == "euclidean" || kind == "lp:2" || kind == "euclidean:centred") return lp(2);
  if (kind == "lp2sq" || kind == "lp2sq:centred") return std::pow(lp(2), 2);
  if (kind == "manhattan" || kind == "lp:1") return lp(1);
  if (kind == "lp:3") return lp(3);
  if (kind == "cosine") {
    double xy = 0, xx = 0, yy = 0;
    for (size_t k = 0; k < d; ++k) xy += x[k] * y[k], xx += x[k] * x[k], yy += y[k] * y[k];
    return 1.0 - xy / (std::max(std::sqrt(xx), 1e-12) * std::max(std::sqrt(yy), 1e-12));
  }
  if (kind == "dot") {
    double xy = 0;
    for (size_t k = 0; k < d; ++k) xy += x[k] * y[k];
    return -xy;
  }
  if (kind == "jaccard") {
    double num = 0, den = 0;
    for (size_t k = 0; k < d; ++k) num += std::min(x[k], y[k]), den += std::max(x[k], y[k]);
    return den > 0 ? 1.0 - num / den : 0.0;
  }
  if (kind == "mahalanobis") {
    double s = 0;
    for (const auto& row : L) {
      double z = 0;
      for (size_t k = 0; k < d; ++k) z += row[k] * (x[k] - y[k]);
      s += z * z;
    }
    return std::sqrt(s);
  }
  return NAN;
}

struct RefTriplet {
  int a, p, n;
};

inline bool valid(const std::vector<int>& lab, int a, int p, int n) {
  return p != a && lab[p] == lab[a] && lab[n] != lab[a];
}

// Triplets a miner selects from the distance matrix D (the values the miner saw), following the
// definitions in mining/miner.h; ties to the lowest index.
inline std::vector<RefTriplet> mine(const std::string& miner, const Mat& D,
                                    const std::vector<int>& lab, double margin) {
  const int B = static_cast<int>(lab.size());
  std::vector<RefTriplet> out;
  auto window = [&](std::function<bool(double)> in) {
    for (int a = 0; a < B; ++a)
      for (int p = 0; p < B; ++p)
        for (int n = 0; n < B; ++n)
          if (valid(lab, a, p, n) && in(D[a][n] - D[a][p])) out.push_back({a, p, n});
  };
  if (miner == "batch-all" || miner == "none") {
    window([](double) { return true; });
  } else if (miner == "easy") {
    window([](double m) { return m >= 0; });
  } else if (miner == "hard") {
    window([](double m) { return m < 0; });
  } else if (miner == "semi-hard:band") {
    window([&](double m) { return m > 0 && m < margin; });
  } else if (miner.rfind("window:", 0) == 0) {
    const size_t c = miner.find(':', 7);
    const double lo = std::stod(miner.substr(7, c - 7)), hi = std::stod(miner.substr(c + 1));
    window([&](double m) { return m >= lo && m <= hi; });
  } else if (miner == "batch-hard") {
    for (int a = 0; a < B; ++a) {
      int p = -1, n = -1;
      for (int j = 0; j < B; ++j) {
        if (j == a) continue;
        if (lab[j] == lab[a]) {
          if (p < 0 || D[a][j] > D[a][p]) p = j;
        } else if (n < 0 || D[a][j] < D[a][n]) {
          n = j;
        }
      }
      if (p >= 0 && n >= 0) out.push_back({a, p, n});
    }
  } else if (miner == "semi-hard:facenet" || miner == "semi-hard:tfa") {
    const bool tfa = miner == "semi-hard:tfa";
    for (int a = 0; a < B; ++a)
      for (int p = 0; p < B; ++p) {
        if (p == a || lab[p] != lab[a]) continue;
        int best = -1, far = -1;
        for (int n = 0; n < B; ++n) {
          if (lab[n] == lab[a]) continue;
          if (far < 0 || D[a][n] > D[a][far]) far = n;
          const bool in =
              tfa ? D[a][n] > D[a][p] : (D[a][n] > D[a][p] && D[a][n] < D[a][p] + margin);
          if (in && (best < 0 || D[a][n] < D[a][best])) best = n;
        }
        if (best < 0 && tfa) best = far;
        if (best >= 0) out.push_back({a, p, best});
      }
  }
  return out;
}

struct TripletConfig {
  std::string distance = "euclidean";
  double margin = 0.2;
  bool soft = false;
  bool swap = false;
  std::string reduction = "mean";
};

struct LossValue {
  double loss = 0;
  long considered = 0, active = 0;
  // The distances behind the logging statistics (MetricLoss::stats): d(a,p) and d(a,n) of each
  // considered triplet, or each positive and negative pair.
  double pos_sum = 0, neg_sum = 0;
  long pos_count = 0, neg_count = 0;
  double mean_pos() const { return pos_count ? pos_sum / pos_count : 0; }
  double mean_neg() const { return neg_count ? neg_sum / neg_count : 0; }
};

// Triplet loss over a fixed list of triplets, on embeddings E.
inline LossValue triplet_loss(const Mat& E, const std::vector<RefTriplet>& ts,
                              const TripletConfig& c, const Mat& L = {}) {
  LossValue v;
  double total = 0;
  for (const auto& t : ts) {
    const double dap = distance(c.distance, E[t.a], E[t.p], L);
    double dan = distance(c.distance, E[t.a], E[t.n], L);
    if (c.swap) dan = std::min(dan, distance(c.distance, E[t.p], E[t.n], L));
    const double z = dap - dan;
    const double l = c.soft ? std::log1p(std::exp(z)) : std::max(0.0, z + c.margin);
    total += l;
    v.considered += 1;
    v.active += c.soft ? 1 : (l > 0);
    v.pos_sum += dap, v.neg_sum += dan, v.pos_count += 1, v.neg_count += 1;
  }
  double denom = 1;
  if (c.reduction == "mean") denom = std::max<long>(1, v.considered);
  if (c.reduction == "mean-nonzero") denom = std::max<long>(1, v.active);
  v.loss = total / denom;
  return v;
}

// Central finite differences of f at E, in float64.
inline Mat numeric_grad(const std::function<double(const Mat&)>& f, Mat E, double eps = 1e-6) {
  Mat g(E.size(), std::vector<double>(E[0].size()));
  for (size_t i = 0; i < E.size(); ++i)
    for (size_t k = 0; k < E[i].size(); ++k) {
      const double saved = E[i][k];
      E[i][k] = saved + eps;
      const double up = f(E);
      E[i][k] = saved - eps;
      const double down = f(E);
      E[i][k] = saved;
      g[i][k] = (up - down) / (2 * eps);
    }
  return g;
}

struct PairConfig {
  std::string distance = "euclidean";
  double pos_margin = 0, neg_margin = 1;
  bool squared = false;
  std::string reduction = "mean";
};

// Contrastive loss over every unordered pair i < j.
inline LossValue contrastive_loss(const Mat& E, const std::vector<int>& lab, const PairConfig& c) {
  LossValue v;
  double total = 0;
  const int B = static_cast<int>(lab.size());
  for (int i = 0; i < B; ++i)
    for (int j = i + 1; j < B; ++j) {
      const double d = distance(c.distance, E[i], E[j]);
      double l =
          lab[i] == lab[j] ? std::max(0.0, d - c.pos_margin) : std::max(0.0, c.neg_margin - d);
      if (c.squared) l *= l;
      total += l;
      v.considered += 1;
      v.active += l > 0;
      if (lab[i] == lab[j])
        v.pos_sum += d, v.pos_count += 1;
      else
        v.neg_sum += d, v.neg_count += 1;
    }
  double denom = 1;
  if (c.reduction == "mean") denom = std::max<long>(1, v.considered);
  if (c.reduction == "mean-nonzero") denom = std::max<long>(1, v.active);
  v.loss = total / denom;
  return v;
}

// NT-Xent (per ordered positive pair, negatives-only denominator) or SupCon (L_out).
inline LossValue ntxent_loss(const Mat& E, const std::vector<int>& lab, const std::string& dist,
                             double tau, bool supcon, const std::string& reduction) {
  LossValue v;
  const int B = static_cast<int>(lab.size());
  auto s = [&](int i, int j) { return -distance(dist, E[i], E[j]) / tau; };
  double total = 0;
  long anchors = 0;
  for (int a = 0; a < B; ++a) {
    for (int k = 0; k < B; ++k) {  // every ordered pair (a, k), k != a
      if (k == a) continue;
      const double d = distance(dist, E[a], E[k]);
      if (lab[k] == lab[a])
        v.pos_sum += d, v.pos_count += 1;
      else
        v.neg_sum += d, v.neg_count += 1;
    }
    double anchor_sum = 0;
    int npos = 0;
    for (int p = 0; p < B; ++p) {
      if (p == a || lab[p] != lab[a]) continue;
      ++npos;
      v.considered += 1;
      double denom = 0;
      if (supcon) {
        for (int k = 0; k < B; ++k)
          if (k != a) denom += std::exp(s(a, k));
      } else {
        denom = std::exp(s(a, p));
        for (int n = 0; n < B; ++n)
          if (lab[n] != lab[a]) denom += std::exp(s(a, n));
      }
      const double l = -(s(a, p) - std::log(denom));
      if (supcon)
        anchor_sum += l;
      else
        total += l;
    }
    if (supcon && npos > 0) total += anchor_sum / npos, ++anchors;
  }
  v.active = v.considered;
  const long count = supcon ? anchors : v.considered;
  v.loss = reduction == "sum" ? total : total / std::max<long>(1, count);
  return v;
}

}  // namespace trine::ref
