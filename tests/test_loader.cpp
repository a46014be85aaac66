// Prefetcher: every item in order whatever the relative speeds, never more than `depth` ahead,
// producer exceptions delivered in order, and clean shutdown when the consumer stops early.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "datasets/loader.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace trine {
namespace {

using namespace std::chrono_literals;

TEST(Prefetcher, DeliversEveryItemInOrder) {
  for (int depth : {1, 2, 4}) {
    for (int mode = 0; mode < 3; ++mode) {  // fast both, slow producer, slow consumer
      SCOPED_TRACE("depth " + std::to_string(depth) + " mode " + std::to_string(mode));
      std::atomic<int64_t> taken{0};
      std::atomic<bool> ahead_ok{true};
      Prefetcher<std::vector<int64_t>> pf(
          40,
          [&](int64_t i) {
            // Item i starts only once item i - depth was handed out (see loader.h).
            if (i > taken.load() + depth) ahead_ok = false;
            if (mode == 1 && i % 3 == 0) std::this_thread::sleep_for(1ms);
            return std::vector<int64_t>{i, i * i};
          },
          depth);
      int64_t expect = 0;
      while (auto item = pf.next()) {
        ASSERT_EQ((*item)[0], expect);
        ASSERT_EQ((*item)[1], expect * expect);
        ++expect;
        ++taken;
        if (mode == 2 && expect % 3 == 0) std::this_thread::sleep_for(1ms);
      }
      EXPECT_EQ(expect, 40);
      EXPECT_FALSE(pf.next().has_value());  // stays finished
      EXPECT_TRUE(ahead_ok.load());
    }
  }
}

TEST(Prefetcher, CarriesTensorsAndMoveOnlyTypes) {
  Prefetcher<Tensor> pf(3, [](int64_t i) { return Tensor::full({2, 2}, static_cast<float>(i)); });
  for (int64_t i = 0; i < 3; ++i) {
    auto t = pf.next();
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->to_vector(), std::vector<float>(4, static_cast<float>(i)));
  }
  EXPECT_FALSE(pf.next().has_value());
  Prefetcher<std::unique_ptr<int>> up(2, [](int64_t i) { return std::make_unique<int>(7 + i); });
  EXPECT_EQ(**up.next(), 7);
  EXPECT_EQ(**up.next(), 8);
  EXPECT_FALSE(up.next().has_value());
}

TEST(Prefetcher, ZeroItems) {
  Prefetcher<int> pf(0, [](int64_t) -> int { throw std::logic_error("never called"); });
  EXPECT_FALSE(pf.next().has_value());
}

TEST(Prefetcher, PropagatesTheProducersExceptionInOrder) {
  Prefetcher<int64_t> pf(100, [](int64_t i) -> int64_t {
    if (i == 5) throw DataError("batch 5: corrupt image");
    return i;
  });
  for (int64_t i = 0; i < 5; ++i) {
    auto v = pf.next();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, i);
  }
  try {
    pf.next();
    FAIL() << "no exception";
  } catch (const DataError& e) {  // the original type, not a wrapper
    EXPECT_NE(std::string(e.what()).find("batch 5: corrupt image"), std::string::npos);
  }
  EXPECT_FALSE(pf.next().has_value());  // finished after the error
}

TEST(Prefetcher, StopsCleanlyWhenTheConsumerLeavesEarly) {
  std::atomic<int64_t> produced{0};
  const auto t0 = std::chrono::steady_clock::now();
  {
    Prefetcher<int64_t> pf(1000000, [&](int64_t i) {
      ++produced;
      std::this_thread::sleep_for(2ms);
      return i;
    });
    EXPECT_EQ(*pf.next(), 0);
    EXPECT_EQ(*pf.next(), 1);
  }  // destructor: stop + join, without producing the rest
  EXPECT_LE(produced.load(), 2 + 2 + 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  {
    // Unbounded, never consumed, destroyed while the producer waits for room.
    Prefetcher<int64_t> pf(-1, [](int64_t i) { return i; });
    std::this_thread::sleep_for(5ms);
  }
  {
    // Unbounded, consumed for a while, then stopped explicitly.
    Prefetcher<int64_t> pf(
        -1, [](int64_t i) { return i; }, 1);
    for (int64_t i = 0; i < 100; ++i) ASSERT_EQ(*pf.next(), i);
    pf.stop();
    EXPECT_FALSE(pf.next().has_value());
    pf.stop();  // idempotent
  }
}

TEST(Prefetcher, RejectsBadDepth) {
  auto make = [](int depth) {
    Prefetcher<int> pf(
        1, [](int64_t) { return 1; }, depth);
  };
  EXPECT_THROW(make(0), UsageError);
  EXPECT_THROW(make(17), UsageError);
}

}  // namespace
}  // namespace trine
