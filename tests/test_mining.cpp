// PKSampler, Curriculum, offline and random mining.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "engine/error.h"
#include "engine/random.h"
#include "losses/distance.h"
#include "mining/curriculum.h"
#include "mining/offline.h"
#include "mining/pk_sampler.h"

namespace trine {
namespace {

std::vector<int32_t> labels_with_counts(const std::vector<int>& counts) {
  std::vector<int32_t> labels;
  for (size_t c = 0; c < counts.size(); ++c)
    for (int i = 0; i < counts[c]; ++i) labels.push_back(static_cast<int32_t>(c));
  Generator g(3);
  g.shuffle(labels);
  return labels;
}

TEST(PKSampler, BatchesHaveDistinctClassesOfKAndCoverTheEpoch) {
  std::vector<int32_t> labels = labels_with_counts({64, 48, 80, 32, 64, 56, 40, 72});
  PKSampler s(labels, 4, 8, 7);
  EpochPlan plan = s.epoch(0);
  std::map<int64_t, int> seen;
  for (const auto& batch : plan.batches) {
    ASSERT_EQ(batch.size(), 32u);
    std::set<int32_t> classes;
    for (size_t g = 0; g < 4; ++g) {
      const int32_t c = labels[batch[g * 8]];
      for (size_t k = 0; k < 8; ++k) ASSERT_EQ(labels[batch[g * 8 + k]], c);
      classes.insert(c);
    }
    EXPECT_EQ(classes.size(), 4u);
    for (int64_t i : batch) ++seen[i];
  }
  // Every class size is a multiple of K: every sample appears exactly once, except the groups
  // that could not be placed at the very end.
  int64_t once = 0;
  for (auto& [i, n] : seen) {
    EXPECT_EQ(n, 1) << "sample " << i;
    once += n == 1;
  }
  EXPECT_EQ(once + plan.unused, static_cast<int64_t>(labels.size()));
  EXPECT_LE(plan.unused, 3 * 8 * 3);
  EXPECT_EQ(plan.repeated_classes, 0);
}

TEST(PKSampler, DeterministicPerEpochAndDifferentAcrossEpochs) {
  std::vector<int32_t> labels = labels_with_counts({20, 20, 20, 20});
  PKSampler a(labels, 2, 4, 11), b(labels, 2, 4, 11);
  EXPECT_EQ(a.epoch(3).batches, b.epoch(3).batches);
  EXPECT_NE(a.epoch(0).batches, a.epoch(1).batches);
  PKSampler c(labels, 2, 4, 12);
  EXPECT_NE(a.epoch(0).batches, c.epoch(0).batches);
}

TEST(PKSampler, UniformEpochDrawsClassesUniformlyWhateverTheirSize) {
  // Skewed as LFW: one class of 400, five of 40, twenty of 3 (fewer than K = 4).
  std::vector<int> counts = {400, 40, 40, 40, 40, 40};
  counts.resize(26, 3);
  std::vector<int32_t> labels = labels_with_counts(counts);
  PKSampler s(labels, 8, 4, 5);
  const int64_t steps = 3000;
  EpochPlan plan = s.uniform_epoch(2, steps);
  ASSERT_EQ(static_cast<int64_t>(plan.batches.size()), steps);
  EXPECT_EQ(plan.repeated_classes, 20);
  EXPECT_EQ(plan.unused, 0);
  std::vector<int64_t> picked(counts.size(), 0);
  for (const auto& batch : plan.batches) {
    ASSERT_EQ(batch.size(), 32u);
    std::set<int32_t> classes;
    for (size_t g = 0; g < 8; ++g) {
      const int32_t c = labels[batch[g * 4]];
      for (size_t k = 0; k < 4; ++k) ASSERT_EQ(labels[batch[g * 4 + k]], c);
      std::set<int64_t> distinct(batch.begin() + g * 4, batch.begin() + g * 4 + 4);
      if (counts[c] >= 4) {
        EXPECT_EQ(distinct.size(), 4u) << "class " << c << " has 4 samples";
      }
      classes.insert(c);
      ++picked[c];
    }
    EXPECT_EQ(classes.size(), 8u);
  }
  // Each class is in a batch with probability 8/26: 923 of 3000 expected, sd about 25.
  for (size_t c = 0; c < counts.size(); ++c)
    EXPECT_NEAR(static_cast<double>(picked[c]), steps * 8.0 / 26.0, 150) << "class " << c;
  // A pure function of (seed, epoch).
  EXPECT_EQ(s.uniform_epoch(2, 10).batches,
            PKSampler(labels, 8, 4, 5).uniform_epoch(2, 10).batches);
  EXPECT_NE(s.uniform_epoch(2, 10).batches, s.uniform_epoch(3, 10).batches);
}

TEST(PKSampler, SmallClassesAreRepeatedAndFlagged) {
  std::vector<int32_t> labels = labels_with_counts({10, 3, 10});
  PKSampler s(labels, 2, 5, 1);
  EXPECT_EQ(s.small_classes(), 1);
  EpochPlan plan = s.epoch(0);
  EXPECT_EQ(plan.repeated_classes, 1);
  bool small_seen = false;
  for (const auto& batch : plan.batches)
    for (size_t g = 0; g < 2; ++g)
      if (labels[batch[g * 5]] == 1) {
        small_seen = true;
        std::set<int64_t> distinct(batch.begin() + g * 5, batch.begin() + g * 5 + 5);
        EXPECT_EQ(distinct.size(), 3u);  // all three samples, two of them twice
      }
  EXPECT_TRUE(small_seen);
}

TEST(PKSampler, ClearErrorsForImpossibleConfigurations) {
  auto message = [](auto f) {
    try {
      f();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] {
              PKSampler({0, 0, 0}, 2, 2, 0);
            }).find("at least 2 classes"),
            std::string::npos);
  EXPECT_NE(message([] {
              PKSampler({0, 1, 2}, 2, 2, 0);
            }).find("class with at least 2"),
            std::string::npos);
  EXPECT_NE(message([] {
              PKSampler({0, 0, 1, 1}, 3, 2, 0);
            }).find("only 2 classes"),
            std::string::npos);
  EXPECT_NE(message([] {
              PKSampler({0, 0, 1, 1}, 2, 3, 0);
            }).find("largest class"),
            std::string::npos);
  EXPECT_NE(message([] { PKSampler({0, 0, 1, 1}, 2, 1, 0); }).find("K >= 2"), std::string::npos);
}

TEST(Curriculum, StagesFollowProgressAndReverse) {
  Curriculum c = Curriculum::parse("curriculum", Curriculum::Unit::Step, 300);
  EXPECT_EQ(c.miner_at(0, 0).name(), "easy");
  EXPECT_EQ(c.miner_at(99, 0).name(), "easy");
  EXPECT_EQ(c.miner_at(100, 0).name(), "semi-hard:facenet");
  EXPECT_EQ(c.miner_at(299, 0).name(), "batch-hard");
  EXPECT_EQ(c.miner_at(1000, 0).name(), "batch-hard");
  Curriculum anti = Curriculum::parse("anti-curriculum", Curriculum::Unit::Epoch, 3);
  EXPECT_EQ(anti.miner_at(500, 0).name(), "batch-hard");
  EXPECT_EQ(anti.miner_at(0, 2).name(), "easy");
  Curriculum w = Curriculum::parse("batch-all*1,batch-hard*3", Curriculum::Unit::Step, 100);
  EXPECT_EQ(w.miner_at(24, 0).name(), "batch-all");
  EXPECT_EQ(w.miner_at(25, 0).name(), "batch-hard");
  EXPECT_THROW(Curriculum::parse("easy*0", Curriculum::Unit::Step, 10), UsageError);
  EXPECT_THROW(Curriculum::parse("nonsense", Curriculum::Unit::Step, 10), UsageError);
  EXPECT_THROW(Curriculum::parse("curriculum", Curriculum::Unit::Step, 0), UsageError);
}

TEST(OfflineMining, SemiHardHardAndRandomFollowTheirDefinitions) {
  // Points on a line: class 0 at 0, 1, 2; class 1 at 2.5, 10; class 2 at 1.3.
  const std::vector<float> xs = {0, 1, 2, 2.5f, 10, 1.3f};
  const std::vector<int32_t> labels = {0, 0, 0, 1, 1, 2};
  Tensor E = Tensor::from_vector(xs, {6, 1});
  LpDistance d(2.f);
  Generator g(5);
  OfflineMiningOptions o;
  o.positive = OfflinePositive::Hardest;
  o.negative = OfflineNegative::Hardest;
  std::vector<Triplet> ts = mine_offline(E, labels, d, o, g);
  std::map<int64_t, Triplet> by_anchor;
  for (const Triplet& t : ts) by_anchor[t.anchor] = t;
  ASSERT_TRUE(by_anchor.count(0));
  EXPECT_EQ(by_anchor[0].positive, 2);  // farthest positive of 0
  EXPECT_EQ(by_anchor[0].negative, 5);  // closest negative (1.3)
  o.negative = OfflineNegative::SemiHard;
  o.margin = 1.0f;
  ts = mine_offline(E, labels, d, o, g);
  for (const Triplet& t : ts) by_anchor[t.anchor] = t;
  // Anchor 0: d(a,p) = 2; semi-hard band (2, 3): 2.5 -> index 3.
  EXPECT_EQ(by_anchor[0].negative, 3);
  for (const Triplet& t : ts) {
    EXPECT_NE(t.anchor, t.positive);
    EXPECT_EQ(labels[t.anchor], labels[t.positive]);
    EXPECT_NE(labels[t.anchor], labels[t.negative]);
  }
  EXPECT_FALSE(by_anchor.count(5));  // class 2 has no positive
}

TEST(OfflineMining, RandomTripletsAreValid) {
  std::vector<int32_t> labels = labels_with_counts({5, 1, 7, 3});
  Generator g(9);
  std::vector<Triplet> ts = random_triplets(labels, 500, g);
  ASSERT_EQ(ts.size(), 500u);
  for (const Triplet& t : ts) {
    EXPECT_NE(t.anchor, t.positive);
    EXPECT_EQ(labels[t.anchor], labels[t.positive]);
    EXPECT_NE(labels[t.anchor], labels[t.negative]);
  }
  EXPECT_THROW(random_triplets({0, 1, 2}, 5, g), UsageError);
}

}  // namespace
}  // namespace trine
