// The thread pool behind parallel_for (engine/parallel.h): every index once, exceptions carried to
// the caller, nested calls inline, and a pool resized after it has run (new workers once woke up
// for the previous run's generation and called a finished job); parallel_parts' fixed split.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "engine/parallel.h"

namespace trine {
namespace {

// Restores the thread count when a test ends.
struct KeepThreads {
  int n = num_threads();
  ~KeepThreads() { set_num_threads(n); }
};

std::vector<int> visits(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)]++;
  });
  std::vector<int> out;
  for (auto& s : seen) out.push_back(s.load());
  return out;
}

TEST(Parallel, EveryIndexOnceForAnyThreadCount) {
  KeepThreads keep;
  for (int threads : {1, 2, 3, 5}) {
    set_num_threads(threads);
    for (int64_t n : {1, 7, 64, 1000})
      for (int64_t grain : {1, 3, 100})
        EXPECT_EQ(visits(n, grain), std::vector<int>(static_cast<size_t>(n), 1))
            << threads << " threads, n " << n << ", grain " << grain;
  }
}

TEST(Parallel, ResizedAfterRunsStillWorks) {
  KeepThreads keep;
  set_num_threads(2);
  for (int i = 0; i < 3; ++i) visits(100, 1);  // the pool's generation moves on
  for (int threads : {4, 1, 3, 2, 6}) {        // each resize starts fresh workers
    set_num_threads(threads);
    EXPECT_EQ(visits(100, 1), std::vector<int>(100, 1)) << threads << " threads";
  }
}

TEST(Parallel, ExceptionsReachTheCaller) {
  KeepThreads keep;
  set_num_threads(3);
  EXPECT_THROW(parallel_for(90, 1,
                            [](int64_t b, int64_t) {
                              if (b > 0) throw std::runtime_error("chunk failed");
                            }),
               std::runtime_error);
  EXPECT_EQ(visits(90, 1), std::vector<int>(90, 1));  // the pool still runs afterwards
}

TEST(Parallel, NestedCallsRunInline) {
  KeepThreads keep;
  set_num_threads(2);
  std::atomic<int> total{0};
  parallel_for(4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      parallel_for(10, 1, [&](int64_t b2, int64_t e2) { total += static_cast<int>(e2 - b2); });
  });
  EXPECT_EQ(total.load(), 40);
}

// Part q covers [n q / parts, n (q + 1) / parts) for any thread count, also with more parts than
// items (empty parts still run) or than threads, and when nested (inline).
TEST(Parallel, PartsHaveFixedRanges) {
  KeepThreads keep;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (int64_t n : {0, 1, 5, 64})
      for (int64_t parts : {1, 2, 3, 7}) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        std::vector<std::atomic<int>> ran(static_cast<size_t>(parts));
        auto run = [&] {
          parallel_parts(n, parts, [&](int64_t q, int64_t b, int64_t e) {
            ASSERT_EQ(b, n * q / parts);
            ASSERT_EQ(e, n * (q + 1) / parts);
            ran[static_cast<size_t>(q)]++;
            for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)]++;
          });
        };
        run();
        parallel_for(2, 1, [&](int64_t b, int64_t) {
          if (b == 0) run();  // nested: the parts run inline, one after another
        });
        for (auto& r : ran) EXPECT_EQ(r.load(), 2) << threads << " threads, n " << n;
        for (auto& v : seen) EXPECT_EQ(v.load(), 2) << threads << " threads, parts " << parts;
      }
  }
}

}  // namespace
}  // namespace trine
