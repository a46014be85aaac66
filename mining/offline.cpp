// Offline and random triplet mining.
#include "mining/offline.h"

#include <algorithm>
#include <map>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace trine {

namespace {

struct ClassIndex {
  std::map<int32_t, std::vector<int64_t>> members;
  explicit ClassIndex(const std::vector<int32_t>& labels) {
    for (size_t i = 0; i < labels.size(); ++i)
      members[labels[i]].push_back(static_cast<int64_t>(i));
  }
};

}  // namespace

std::vector<Triplet> random_triplets(const std::vector<int32_t>& labels, int64_t count,
                                     Generator& gen) {
  ClassIndex ci(labels);
  std::vector<int64_t> anchors;  // samples whose class has another member
  for (auto& [c, m] : ci.members)
    if (m.size() >= 2) anchors.insert(anchors.end(), m.begin(), m.end());
  TRINE_CHECK_AS(UsageError, !anchors.empty() && ci.members.size() >= 2,
                 "random triplets need two classes and a class with two samples");
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<Triplet> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t t = 0; t < count; ++t) {
    const int64_t a = anchors[gen.randint(static_cast<int64_t>(anchors.size()))];
    const auto& same = ci.members[labels[a]];
    int64_t p;
    do p = same[gen.randint(static_cast<int64_t>(same.size()))];
    while (p == a);
    int64_t neg;
    do neg = gen.randint(n);
    while (labels[neg] == labels[a]);
    out.push_back({a, p, neg});
  }
  return out;
}

std::vector<Triplet> mine_offline(const Tensor& embeddings, const std::vector<int32_t>& labels,
                                  const Distance& distance, const OfflineMiningOptions& o,
                                  Generator& gen) {
  TRINE_CHECK(embeddings.dim() == 2 && embeddings.size(0) == static_cast<int64_t>(labels.size()),
              "offline mining: ", labels.size(), " labels for embeddings ", embeddings.shape_str());
  NoGradGuard ng;
  const int64_t N = embeddings.size(0);
  // Candidate pool (positives and negatives come from it) and anchors.
  std::vector<int64_t> pool(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) pool[i] = i;
  if (o.candidates > 0 && o.candidates < N) {
    gen.shuffle(pool);
    pool.resize(static_cast<size_t>(o.candidates));
    std::sort(pool.begin(), pool.end());
  }
  std::vector<int64_t> anchors(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) anchors[i] = i;
  gen.shuffle(anchors);
  if (o.anchors > 0 && o.anchors < N) anchors.resize(static_cast<size_t>(o.anchors));

  std::vector<int32_t> pool_ids(pool.begin(), pool.end());
  Tensor pool_emb =
      index_select(embeddings.detach(), 0, Tensor::from_ints(pool_ids, embeddings.device()));
  ClassIndex all(labels);
  std::vector<Triplet> out;
  auto random_negative = [&](int64_t a) {
    int64_t neg;
    do neg = gen.randint(N);
    while (labels[neg] == labels[a]);
    return neg;
  };
  // The negative for anchor a given d(a,p), from the pool row of distances; -1 when none.
  auto pick_negative = [&](int64_t a, const float* row, float dap) -> int64_t {
    int64_t semi = -1, farther = -1, closest = -1;
    for (int64_t j = 0; j < static_cast<int64_t>(pool.size()); ++j) {
      if (labels[pool[j]] == labels[a]) continue;
      if (closest < 0 || row[j] < row[closest]) closest = j;
      if (row[j] > dap && (farther < 0 || row[j] < row[farther])) farther = j;
      if (row[j] > dap && row[j] < dap + o.margin && (semi < 0 || row[j] < row[semi])) semi = j;
    }
    if (closest < 0) return -1;
    if (o.negative == OfflineNegative::Random) return random_negative(a);
    if (o.negative == OfflineNegative::Hardest) return pool[closest];
    return pool[semi >= 0 ? semi : (farther >= 0 ? farther : closest)];
  };
  const int64_t P = static_cast<int64_t>(pool.size());
  const int64_t chunk = std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(P, 1));
  for (size_t start = 0; start < anchors.size(); start += static_cast<size_t>(chunk)) {
    const size_t end = std::min(anchors.size(), start + static_cast<size_t>(chunk));
    std::vector<int32_t> ids(anchors.begin() + static_cast<std::ptrdiff_t>(start),
                             anchors.begin() + static_cast<std::ptrdiff_t>(end));
    Tensor a_emb =
        index_select(embeddings.detach(), 0, Tensor::from_ints(ids, embeddings.device()));
    std::vector<float> D = distance.pairwise(a_emb, pool_emb).to_vector();  // [chunk, P]
    for (size_t r = 0; r < ids.size(); ++r) {
      const int64_t a = ids[r];
      const float* row = D.data() + r * static_cast<size_t>(P);
      int64_t p = -1;
      float dap = 0;
      if (o.positive == OfflinePositive::Hardest) {
        int64_t pj = -1;
        for (int64_t j = 0; j < P; ++j)
          if (pool[j] != a && labels[pool[j]] == labels[a] && (pj < 0 || row[j] > row[pj])) pj = j;
        if (pj < 0) continue;
        p = pool[pj];
        dap = row[pj];
      } else {
        const auto& same = all.members[labels[a]];
        if (same.size() < 2) continue;
        do p = same[gen.randint(static_cast<int64_t>(same.size()))];
        while (p == a);
        auto at = [&](int64_t i) {
          return index_select(embeddings.detach(), 0,
                              Tensor::from_ints({static_cast<int32_t>(i)}, embeddings.device()));
        };
        dap = distance.paired(at(a), at(p)).item();
      }
      const int64_t neg = pick_negative(a, row, dap);
      if (neg >= 0) out.push_back({a, p, neg});
    }
  }
  return out;
}

}  // namespace trine
