// P x K batch sampling.
#include "mining/pk_sampler.h"

#include <algorithm>
#include <map>

#include "engine/error.h"
#include "engine/random.h"

namespace trine {

PKSampler::PKSampler(std::vector<int32_t> labels, int64_t P, int64_t K, uint64_t seed)
    : P_(P), K_(K), seed_(seed) {
  std::map<int32_t, std::vector<int64_t>> groups;
  for (size_t i = 0; i < labels.size(); ++i) groups[labels[i]].push_back(static_cast<int64_t>(i));
  size_t largest = 0;
  for (auto& [label, idx] : groups) {
    largest = std::max(largest, idx.size());
    by_class_.push_back(std::move(idx));
  }
  TRINE_CHECK_AS(UsageError, P >= 2 && K >= 2, "P x K sampling needs P >= 2 classes and K >= 2 ",
                 "samples per class in a batch (a triplet needs a positive and a negative), got P=",
                 P, " K=", K);
  TRINE_CHECK_AS(UsageError, by_class_.size() >= 2, "P x K sampling needs at least 2 classes, the ",
                 "data has ", by_class_.size(), " (", labels.size(), " samples)");
  TRINE_CHECK_AS(UsageError, largest >= 2,
                 "P x K sampling needs a class with at least 2 samples; every class has one");
  TRINE_CHECK_AS(UsageError, P <= static_cast<int64_t>(by_class_.size()), "P=", P,
                 " classes per batch, but the data has only ", by_class_.size(), " classes");
  TRINE_CHECK_AS(UsageError, K <= static_cast<int64_t>(largest), "K=", K,
                 " samples per class, but the largest class has only ", largest);
}

int64_t PKSampler::small_classes() const {
  int64_t n = 0;
  for (const auto& c : by_class_) n += static_cast<int64_t>(c.size()) < K_;
  return n;
}

EpochPlan PKSampler::epoch(int64_t epoch) const {
  Generator g(seed_);
  g.set_state(seed_, static_cast<uint64_t>(epoch) << 40);  // a disjoint stream per epoch
  EpochPlan plan;
  const size_t C = by_class_.size();
  std::vector<std::vector<std::vector<int64_t>>> groups(C);
  for (size_t c = 0; c < C; ++c) {
    std::vector<int64_t> idx = by_class_[c];
    g.shuffle(idx);
    const int64_t n = static_cast<int64_t>(idx.size());
    if (n < K_) ++plan.repeated_classes;
    for (int64_t start = 0; start < n; start += K_) {
      std::vector<int64_t> grp(idx.begin() + start, idx.begin() + std::min(n, start + K_));
      // Fill a short group with other samples of the class (distinct while they last).
      std::vector<int64_t> pool;
      for (int64_t i = 0; i < n; ++i)
        if (i < start || i >= start + K_) pool.push_back(idx[i]);
      g.shuffle(pool);
      size_t next = 0;
      while (static_cast<int64_t>(grp.size()) < K_) {
        if (next < pool.size()) {
          grp.push_back(pool[next++]);
        } else {
          grp.push_back(idx[g.randint(n)]);
        }
      }
      groups[c].push_back(std::move(grp));
    }
  }
  std::vector<size_t> next(C, 0);
  auto left = [&](size_t c) { return static_cast<int64_t>(groups[c].size() - next[c]); };
  for (;;) {
    std::vector<size_t> open;
    int64_t total = 0;
    for (size_t c = 0; c < C; ++c)
      if (left(c) > 0) open.push_back(c), total += left(c);
    if (static_cast<int64_t>(open.size()) < P_) {
      for (size_t c : open) plan.unused += left(c) * K_;
      break;
    }
    // P distinct classes, each drawn with probability proportional to its remaining groups.
    std::vector<int64_t> batch;
    batch.reserve(static_cast<size_t>(P_ * K_));
    for (int64_t k = 0; k < P_; ++k) {
      int64_t r = g.randint(total);
      size_t pick = 0;
      for (size_t j = 0; j < open.size(); ++j) {
        r -= left(open[j]);
        if (r < 0) {
          pick = j;
          break;
        }
      }
      const size_t c = open[pick];
      total -= left(c);
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(pick));
      const auto& grp = groups[c][next[c]++];
      batch.insert(batch.end(), grp.begin(), grp.end());
    }
    plan.batches.push_back(std::move(batch));
  }
  return plan;
}

EpochPlan PKSampler::uniform_epoch(int64_t epoch, int64_t steps) const {
  Generator g(seed_ ^ 0x756E69666F726DULL);  // a stream of its own, apart from epoch()'s
  g.set_state(seed_ ^ 0x756E69666F726DULL, static_cast<uint64_t>(epoch) << 40);
  EpochPlan plan;
  plan.repeated_classes = small_classes();
  const int64_t C = num_classes();
  std::vector<int64_t> order(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) order[c] = c;
  std::vector<int64_t> pool;
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<int64_t> batch;
    batch.reserve(static_cast<size_t>(P_ * K_));
    // P distinct classes: the first P places of a partial Fisher-Yates shuffle.
    for (int64_t k = 0; k < P_; ++k) std::swap(order[k], order[k + g.randint(C - k)]);
    for (int64_t k = 0; k < P_; ++k) {
      const std::vector<int64_t>& idx = by_class_[order[k]];
      const int64_t n = static_cast<int64_t>(idx.size());
      if (n >= K_) {  // K distinct samples: a partial shuffle of the class
        pool.assign(idx.begin(), idx.end());
        for (int64_t j = 0; j < K_; ++j) {
          std::swap(pool[j], pool[j + g.randint(n - j)]);
          batch.push_back(pool[j]);
        }
      } else {
        for (int64_t j = 0; j < K_; ++j) batch.push_back(idx[g.randint(n)]);
      }
    }
    plan.batches.push_back(std::move(batch));
  }
  return plan;
}

}  // namespace trine
