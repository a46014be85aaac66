// CachingAllocator: steady-state training steps make no system allocations; size classes,
// segments split and merged, reuse, statistics, cache release and out-of-memory handling (with a
// counting raw allocator).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "engine/allocator.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/random.h"
#include "layers/layers.h"
#include "support/test_util.h"

namespace trine {
namespace {

// One training step of `net` towards `target` (mean squared error) with Adam.
void regression_step(Sequential& net, Adam& opt, const Tensor& x, const Tensor& target) {
  opt.zero_grad();
  Tensor loss = mean(square(net(x) - target));
  loss.backward();
  opt.step();
}

TEST(Allocator, TrainingStepsReuseCachedBlocks) {
  manual_seed(1);
  Sequential net{std::make_shared<Conv2d>(1, 4, 3, 1, 1),
                 std::make_shared<BatchNorm2d>(4),
                 std::make_shared<ReLU>(),
                 std::make_shared<MaxPool2d>(2),
                 std::make_shared<Flatten>(),
                 std::make_shared<Linear>(4 * 4 * 4, 3)};
  Adam opt(net.parameters());
  Tensor x = test::random_tensor({8, 1, 8, 8}, 2);
  Tensor target = test::random_tensor({8, 3}, 3);
  auto step = [&] { regression_step(net, opt, x, target); };
  Backend& cpu = backend_for(Device::cpu());
  // The first steps allocate: activations, gradients, Adam's moment buffers.
  for (int i = 0; i < 3; ++i) step();
  const AllocatorStats warm = cpu.allocator_stats();
  for (int i = 0; i < 5; ++i) step();
  const AllocatorStats after = cpu.allocator_stats();
  EXPECT_EQ(after.system_allocs, warm.system_allocs);
  // Nothing accumulates from step to step either.
  EXPECT_EQ(after.bytes_in_use, warm.bytes_in_use);
  EXPECT_GT(after.bytes_cached, 0);
  EXPECT_GE(after.peak_bytes_in_use, after.bytes_in_use);
}

// Whether the parts of a parallel loop run at once or one after another must not change the
// scratch a step takes: per-part buffers are taken before the loop, not inside each part. Warm up
// with every loop inline (called from inside another parallel_for, so the parts run one after
// another), then step with the pool free (the parts at once): no new system allocation. Both
// convolution paths: im2col (one input channel) and Winograd (16 in, 16 out).
TEST(Allocator, ScratchDoesNotDependOnThreadTiming) {
  const int threads = num_threads();
  set_num_threads(2);
  manual_seed(4);
  Sequential net{std::make_shared<Conv2d>(1, 16, 3, 1, 1),
                 std::make_shared<ReLU>(),
                 std::make_shared<Conv2d>(16, 16, 3, 1, 1),
                 std::make_shared<ReLU>(),
                 std::make_shared<MaxPool2d>(4),
                 std::make_shared<Flatten>(),
                 std::make_shared<Linear>(16 * 8 * 8, 3)};
  Adam opt(net.parameters());
  Tensor x = test::random_tensor({16, 1, 32, 32}, 5);
  Tensor target = test::random_tensor({16, 3}, 6);
  auto step = [&] { regression_step(net, opt, x, target); };
  parallel_for(2, 1, [&](int64_t begin, int64_t) {
    if (begin == 0)
      for (int i = 0; i < 3; ++i) step();  // chunk 0 runs on this thread; nested loops inline
  });
  Backend& cpu = backend_for(Device::cpu());
  const AllocatorStats warm = cpu.allocator_stats();
  for (int i = 0; i < 5; ++i) step();
  const AllocatorStats after = cpu.allocator_stats();
  set_num_threads(threads);
  EXPECT_EQ(after.system_allocs, warm.system_allocs);
  EXPECT_EQ(after.bytes_in_use, warm.bytes_in_use);
}

TEST(Allocator, RoundSizeProperties) {
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 576u);
  EXPECT_EQ(CachingAllocator::round_size(1024), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(1025), 1152u);
  std::vector<size_t> sizes;
  for (size_t b = 0; b < 70000; b += 7) sizes.push_back(b);
  for (size_t p = 10; p < 40; ++p)
    for (size_t b :
         {(size_t{1} << p) - 1, size_t{1} << p, (size_t{1} << p) + 1, (size_t{3} << (p - 1)) + 5})
      sizes.push_back(b);
  std::sort(sizes.begin(), sizes.end());
  size_t prev_out = 0;
  std::set<size_t> classes_below_2x;
  for (size_t b : sizes) {
    const size_t r = CachingAllocator::round_size(b);
    ASSERT_GE(r, b) << b;
    ASSERT_GE(r, 512u) << b;
    ASSERT_EQ(CachingAllocator::round_size(r), r) << b;  // a class maps to itself
    if (b > 512) {
      ASSERT_LE(r - b, b / 8) << b;  // at most 12.5% slack
      ASSERT_EQ(r % 64, 0u) << b;    // 64-byte multiples
    }
    ASSERT_GE(r, prev_out) << b;  // monotonic (sizes are sorted)
    prev_out = r;
    if (b > 4096 && b <= 8192) classes_below_2x.insert(r);
  }
  // 8 classes per power of two.
  EXPECT_EQ(classes_below_2x.size(), 8u);
}

// A raw allocator that counts calls and can be told to fail.
struct CountingRaw {
  int allocs = 0, frees = 0;
  bool fail = false;
  int throw_at_free = 0;         // the raw free with this number (1-based) throws and frees nothing
  std::map<void*, size_t> live;  // segment -> bytes
  int64_t live_bytes() const {
    int64_t n = 0;
    for (const auto& [p, bytes] : live) n += static_cast<int64_t>(bytes);
    return n;
  }
  void free_leftovers() {
    for (const auto& [p, bytes] : live) std::free(p);
    live.clear();
  }
};

CachingAllocator make_counting(CountingRaw& raw, bool trim_on_grow = false) {
  return CachingAllocator(
      "test-device",
      [&raw](size_t bytes) -> void* {
        if (raw.fail) return nullptr;
        ++raw.allocs;
        void* p = std::malloc(bytes);
        raw.live[p] = bytes;
        return p;
      },
      [&raw](void* p, size_t bytes) {
        if (++raw.frees == raw.throw_at_free) throw Error("raw free failed");
        auto it = raw.live.find(p);
        ASSERT_NE(it, raw.live.end()) << "freed twice";
        EXPECT_EQ(bytes, it->second) << "freed with another size than allocated";
        raw.live.erase(it);
        std::free(p);
      },
      trim_on_grow);
}

constexpr size_t kMiB = size_t{1} << 20;

// `p` lies in the segment that starts at `segment` and holds `bytes`.
bool inside(const void* p, const void* segment, size_t bytes) {
  auto a = reinterpret_cast<uintptr_t>(p), s = reinterpret_cast<uintptr_t>(segment);
  return a >= s && a < s + bytes;
}

TEST(Allocator, BlockSizeIsTheClassIn512ByteSteps) {
  EXPECT_EQ(CachingAllocator::block_size(0), 512u);
  EXPECT_EQ(CachingAllocator::block_size(512), 512u);
  EXPECT_EQ(CachingAllocator::block_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::block_size(1025), 1536u);
  for (size_t b = 0; b < 3 * kMiB; b += 97) {
    const size_t r = CachingAllocator::block_size(b);
    ASSERT_EQ(r % CachingAllocator::kBlockAlign, 0u) << b;
    ASSERT_GE(r, CachingAllocator::round_size(b)) << b;
    if (b > 4096) {
      ASSERT_EQ(r, CachingAllocator::round_size(b)) << b;
    }
  }
}

// Small requests share 2 MiB segments: one system allocation for many tensors, each block
// 512-byte aligned within it; freed, they merge back into the whole segment.
TEST(Allocator, SmallRequestsShareASegment) {
  CountingRaw raw;
  CachingAllocator a = make_counting(raw);
  void* p = a.allocate(1000);  // class 1024
  EXPECT_EQ(a.stats().system_allocs, 1);
  EXPECT_EQ(a.stats().bytes_in_use, 1024);
  EXPECT_EQ(a.stats().bytes_cached, static_cast<int64_t>(2 * kMiB - 1024));
  ASSERT_EQ(raw.live.size(), 1u);
  void* segment = raw.live.begin()->first;
  EXPECT_EQ(p, segment);
  std::vector<void*> blocks{p};
  for (size_t bytes : {1u, 600u, 5000u, 70000u, 1000000u}) blocks.push_back(a.allocate(bytes));
  EXPECT_EQ(a.stats().system_allocs, 1);
  for (void* b : blocks) {
    EXPECT_TRUE(inside(b, segment, 2 * kMiB));
    EXPECT_EQ((static_cast<char*>(b) - static_cast<char*>(segment)) % 512, 0);
  }
  a.deallocate(p);
  void* q = a.allocate(1010);  // the same class: the block just freed
  EXPECT_EQ(q, p);
  blocks[0] = q;
  a.deallocate(nullptr);  // ignored
  int not_ours = 0;
  a.deallocate(&not_ours);                    // not from this allocator: ignored
  a.deallocate(static_cast<char*>(q) + 512);  // inside a block, not one: ignored
  EXPECT_EQ(a.stats().bytes_in_use + a.stats().bytes_cached, static_cast<int64_t>(2 * kMiB));
  // Freed in an order that merges from both sides.
  for (size_t i : {1u, 3u, 2u, 5u, 0u, 4u}) a.deallocate(blocks[i]);
  EXPECT_EQ(a.stats().bytes_in_use, 0);
  EXPECT_EQ(a.stats().bytes_cached, static_cast<int64_t>(2 * kMiB));
  EXPECT_EQ(raw.frees, 0);  // cached, not returned
  // Merged whole: a request of the small pool's largest size comes from its start again.
  void* whole = a.allocate(kMiB);
  EXPECT_EQ(whole, segment);
  a.deallocate(whole);
  a.empty_cache();
  EXPECT_EQ(raw.frees, 1);
  EXPECT_EQ(a.stats().system_frees, 1);
  EXPECT_EQ(a.stats().bytes_cached, 0);
  EXPECT_TRUE(raw.live.empty());
}

// A large free block serves smaller large requests (split, when at least 1 MiB is left), and the
// pieces merge back: what one phase freed serves the next without new system allocations.
TEST(Allocator, LargeBlocksSplitAndMerge) {
  CountingRaw raw;
  CachingAllocator a = make_counting(raw);
  void* big = a.allocate(8 * kMiB);
  EXPECT_EQ(a.stats().bytes_cached, 0);  // a segment of the request's size
  a.deallocate(big);
  void* x = a.allocate(3 * kMiB);
  void* y = a.allocate(3 * kMiB);
  void* z = a.allocate(2 * kMiB);
  EXPECT_EQ(a.stats().system_allocs, 1);
  EXPECT_EQ(x, big);
  EXPECT_EQ(y, static_cast<char*>(big) + 3 * kMiB);
  EXPECT_EQ(z, static_cast<char*>(big) + 6 * kMiB);
  EXPECT_EQ(a.stats().bytes_in_use, static_cast<int64_t>(8 * kMiB));
  a.deallocate(x), a.deallocate(z), a.deallocate(y);
  EXPECT_EQ(a.allocate(8 * kMiB), big);  // merged whole again
  a.deallocate(big);
  // Less than 1 MiB left over: the whole block is handed out.
  void* w = a.allocate(7 * kMiB + kMiB / 2);
  EXPECT_EQ(w, big);
  EXPECT_EQ(a.stats().bytes_in_use, static_cast<int64_t>(8 * kMiB));
  // The pools are apart: a small request does not take from a large segment.
  a.deallocate(w);
  void* s = a.allocate(4096);
  EXPECT_FALSE(inside(s, big, 8 * kMiB));
  EXPECT_EQ(a.stats().system_allocs, 2);
  // A request larger than any free block takes a new segment; segments never merge.
  void* h = a.allocate(9 * kMiB);
  EXPECT_EQ(a.stats().system_allocs, 3);
  EXPECT_EQ(a.stats().bytes_in_use, static_cast<int64_t>(9 * kMiB + 4096));
  EXPECT_EQ(a.stats().peak_bytes_in_use, a.stats().bytes_in_use);
  a.deallocate(s);
  // empty_cache returns the wholly free segments only.
  a.empty_cache();
  EXPECT_EQ(raw.frees, 2);
  EXPECT_EQ(raw.live.size(), 1u);
  EXPECT_EQ(raw.live.begin()->first, h);
  EXPECT_EQ(a.stats().bytes_cached, 0);
  a.deallocate(h);
  a.empty_cache();
  EXPECT_TRUE(raw.live.empty());
}

// trim_on_grow (the CPU backend's setting): a request that needs a new large segment first
// returns the wholly free large segments, and only those: not a large segment partly in use,
// not the small pool's. A request that fits in the cache releases nothing. Without the setting
// the same requests keep every segment.
TEST(Allocator, TrimOnGrowReturnsWhollyFreeLargeSegmentsOnly) {
  for (bool trim : {true, false}) {
    SCOPED_TRACE(trim ? "trim_on_grow" : "keep everything");
    CountingRaw raw;
    CachingAllocator a = make_counting(raw, trim);
    a.deallocate(a.allocate(4096));      // a wholly free small segment
    a.deallocate(a.allocate(8 * kMiB));  // a wholly free large segment
    a.deallocate(a.allocate(4 * kMiB));  // fits: taken from it, nothing released
    EXPECT_EQ(raw.frees, 0);
    void* nine = a.allocate(9 * kMiB);  // does not fit: a new segment
    EXPECT_EQ(a.stats().system_allocs, 3);
    EXPECT_EQ(raw.frees, trim ? 1 : 0);
    EXPECT_EQ(a.stats().bytes_cached, static_cast<int64_t>(2 * kMiB + (trim ? 0 : 8 * kMiB)));
    a.deallocate(nine);
    // With trim_on_grow the 9 MiB segment is the only large one: now partly in use. (Without,
    // the 8 MiB segment fits better.)
    void* part = a.allocate(3 * kMiB);
    EXPECT_TRUE(!trim || part == nine);
    const int64_t frees = raw.frees;
    void* ten = a.allocate(10 * kMiB);
    EXPECT_EQ(raw.frees, frees);  // the 9 MiB segment is partly in use: kept
    EXPECT_EQ(raw.live.count(nine), 1u);
    EXPECT_EQ(a.stats().bytes_in_use + a.stats().bytes_cached, raw.live_bytes());
    a.deallocate(part), a.deallocate(ten);
    a.empty_cache();
    EXPECT_TRUE(raw.live.empty());
  }
}

// Random requests of both pools, freed in random order, against a brute-force check: no two
// live blocks overlap (each is filled with its own byte and checked before it is freed), every
// block lies in a live segment, and the counters match the blocks and segments. Freed at last,
// everything merges and goes back.
void random_requests(bool trim_on_grow) {
  CountingRaw raw;
  CachingAllocator a = make_counting(raw, trim_on_grow);
  struct Live {
    unsigned char* p;
    size_t bytes;
    unsigned char tag;
  };
  std::vector<Live> live;
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  auto check_and_free = [&](size_t i) {
    const Live& l = live[i];
    for (size_t k = 0; k < l.bytes; k += 61) ASSERT_EQ(l.p[k], l.tag) << "block overwritten";
    ASSERT_EQ(l.p[l.bytes - 1], l.tag) << "block overwritten";
    a.deallocate(l.p);
    live[i] = live.back();
    live.pop_back();
  };
  for (int round = 0; round < 3000; ++round) {
    if (live.size() < 40 && next() % 3 != 0) {
      // Mostly small; some of 1-6 MiB; any size, not just classes.
      size_t bytes = next() % 5 == 0 ? kMiB + next() % (5 * kMiB) : 1 + next() % 200000;
      auto* p = static_cast<unsigned char*>(a.allocate(bytes));
      const auto tag = static_cast<unsigned char>(round);
      std::memset(p, tag, bytes);
      live.push_back({p, bytes, tag});
      bool in_segment = false;
      for (const auto& [seg, n] : raw.live)
        in_segment |= inside(p, seg, n) && inside(p + bytes - 1, seg, n);
      ASSERT_TRUE(in_segment) << bytes;
    } else if (!live.empty()) {
      ASSERT_NO_FATAL_FAILURE(check_and_free(next() % live.size()));
    }
    int64_t in_use = 0;
    for (const Live& l : live)
      in_use += static_cast<int64_t>(CachingAllocator::block_size(l.bytes));
    const AllocatorStats st = a.stats();
    ASSERT_GE(st.bytes_in_use, in_use);  // a block not split takes its whole free block
    ASSERT_EQ(st.bytes_in_use + st.bytes_cached, raw.live_bytes());
    ASSERT_EQ(st.system_allocs, raw.allocs);
    if (round % 500 == 0) a.empty_cache();
  }
  while (!live.empty()) ASSERT_NO_FATAL_FAILURE(check_and_free(live.size() - 1));
  EXPECT_EQ(a.stats().bytes_in_use, 0);
  a.empty_cache();
  EXPECT_TRUE(raw.live.empty());
  EXPECT_EQ(a.stats().bytes_cached, 0);
  EXPECT_LT(raw.allocs, 100);  // reuse: 3000 rounds, about 2000 requests
}

TEST(Allocator, RandomRequestsNeverOverlapAndCountersAddUp) {
  for (bool trim : {false, true}) {
    SCOPED_TRACE(trim ? "trim_on_grow" : "keep everything");
    random_requests(trim);
  }
}

TEST(Allocator, TheDestructorReturnsFreeSegmentsOnly) {
  CountingRaw raw;
  {
    CachingAllocator a = make_counting(raw);
    void* kept = a.allocate(100);  // its segment belongs to its owner from now on
    (void)kept;
    void* freed = a.allocate(5 * kMiB);
    a.deallocate(freed);
  }
  EXPECT_EQ(raw.live.size(), 1u);
  raw.free_leftovers();
}

TEST(Allocator, OutOfMemoryReleasesTheCacheThenThrows) {
  CountingRaw raw;
  CachingAllocator a = make_counting(raw);
  void* p = a.allocate(4 * kMiB);
  a.deallocate(p);
  raw.fail = true;
  // A larger request: the retry after releasing the cache fails too, with a clear error naming
  // the device and size.
  EXPECT_TRUE(test::throws_with<Error>([&] { a.allocate(10000000); },
                                       {"out of memory", "test-device", "10000000"}));
  EXPECT_EQ(raw.frees, 1);  // the cache was given back first
  EXPECT_EQ(a.stats().bytes_cached, 0);
  raw.fail = false;
  EXPECT_TRUE(
      test::throws_with<Error>([&] { a.allocate(SIZE_MAX); }, {"out of memory", "test-device"}));
  EXPECT_EQ(raw.allocs, 1);  // refused before asking the system (rounding would wrap around)
  void* q = a.allocate(10000000);
  EXPECT_NE(q, nullptr);
  a.deallocate(q);
}

// A raw free that throws (cudaFree on a context in error, say) leaves the segments not yet freed
// in the cache, frees none twice, and never escapes the destructor.
TEST(Allocator, AFailingRawFreeNeitherRepeatsNorEscapes) {
  CountingRaw raw;
  {
    CachingAllocator a = make_counting(raw);
    void* blocks[3] = {a.allocate(2 * kMiB), a.allocate(3 * kMiB), a.allocate(4 * kMiB)};
    for (void* p : blocks) a.deallocate(p);
    raw.throw_at_free = 2;
    EXPECT_TRUE(test::throws_with<Error>([&] { a.empty_cache(); }, {"raw free failed"}));
    EXPECT_EQ(a.stats().system_frees, 1);
    // Smallest first: the 2 MiB segment was freed, the 3 MiB one failed, 4 MiB is still cached.
    EXPECT_EQ(a.stats().bytes_cached, static_cast<int64_t>(4 * kMiB));
    a.empty_cache();  // frees the last one, and no other
    EXPECT_EQ(raw.frees, 3);
    EXPECT_EQ(a.stats().bytes_cached, 0);
    EXPECT_EQ(raw.live.size(), 1u);  // the segment whose free failed
    void* p = a.allocate(3000);
    a.deallocate(p);
    raw.throw_at_free = raw.frees + 1;  // the destructor's free throws: caught there
  }
  EXPECT_EQ(raw.live.size(), 2u);
  raw.free_leftovers();
}

TEST(Allocator, TensorsReturnMemoryWhenReleased) {
  Backend& cpu = backend_for(Device::cpu());
  const AllocatorStats before = cpu.allocator_stats();
  {
    Tensor t = Tensor::zeros({1000, 1000});
    Tensor view = t.reshape({-1});  // shares the storage
    EXPECT_GE(cpu.allocator_stats().bytes_in_use, before.bytes_in_use + 4000000);
  }
  EXPECT_EQ(cpu.allocator_stats().bytes_in_use, before.bytes_in_use);
  // Allocating the same size again is served from the cache.
  const int64_t allocs = cpu.allocator_stats().system_allocs;
  { Tensor again = Tensor::zeros({1000, 1000}); }
  EXPECT_EQ(cpu.allocator_stats().system_allocs, allocs);
}

}  // namespace
}  // namespace trine
