// CachingAllocator: steady-state training steps make no system allocations; size classes,
// reuse, statistics, cache release and out-of-memory handling (with a counting raw allocator).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>

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
  int throw_at_free = 0;  // the raw free with this number (1-based) throws and frees nothing
  std::set<void*> live;
};

CachingAllocator make_counting(CountingRaw& raw) {
  return CachingAllocator(
      "test-device",
      [&raw](size_t bytes) -> void* {
        if (raw.fail) return nullptr;
        ++raw.allocs;
        void* p = std::malloc(bytes);
        raw.live.insert(p);
        return p;
      },
      [&raw](void* p) {
        if (++raw.frees == raw.throw_at_free) throw Error("raw free failed");
        EXPECT_EQ(raw.live.erase(p), 1u) << "freed twice";
        std::free(p);
      });
}

TEST(Allocator, ReusesFreedBlocksAndCountsBytes) {
  CountingRaw raw;
  {
    CachingAllocator a = make_counting(raw);
    void* p = a.allocate(1000);  // class 1024
    EXPECT_EQ(a.stats().system_allocs, 1);
    EXPECT_EQ(a.stats().bytes_in_use, 1024);
    a.deallocate(p);
    EXPECT_EQ(a.stats().bytes_in_use, 0);
    EXPECT_EQ(a.stats().bytes_cached, 1024);
    void* q = a.allocate(1010);  // same class: the cached block
    EXPECT_EQ(q, p);
    EXPECT_EQ(a.stats().system_allocs, 1);
    EXPECT_EQ(a.stats().bytes_cached, 0);
    // A smaller class may take a cached block at most 25% larger...
    void* big = a.allocate(1152);
    a.deallocate(big);
    void* small = a.allocate(1000);
    EXPECT_EQ(small, big);
    // ...but not a much larger one.
    void* huge = a.allocate(8192);
    a.deallocate(huge);
    void* other = a.allocate(600);
    EXPECT_NE(other, huge);
    EXPECT_EQ(a.stats().system_allocs, 4);
    EXPECT_EQ(a.stats().peak_bytes_in_use, 1024 + 1152 + 8192);
    a.deallocate(nullptr);  // ignored
    int not_ours = 0;
    a.deallocate(&not_ours);  // not from this allocator: ignored
    a.deallocate(q), a.deallocate(small), a.deallocate(other);
    EXPECT_EQ(a.stats().bytes_in_use, 0);
    EXPECT_EQ(raw.frees, 0);  // cached, not returned
    a.empty_cache();
    EXPECT_EQ(raw.frees, 4);
    EXPECT_EQ(a.stats().system_frees, 4);
    EXPECT_EQ(a.stats().bytes_cached, 0);
    EXPECT_TRUE(raw.live.empty());
    void* last = a.allocate(100);
    (void)last;
    void* cached = a.allocate(5000);
    a.deallocate(cached);
  }
  // The destructor returns cached blocks (the one still in use belongs to its owner).
  EXPECT_EQ(raw.live.size(), 1u);
  for (void* p : raw.live) std::free(p);
}

TEST(Allocator, OutOfMemoryReleasesTheCacheThenThrows) {
  CountingRaw raw;
  CachingAllocator a = make_counting(raw);
  void* p = a.allocate(4096);
  a.deallocate(p);
  raw.fail = true;
  // The retry after releasing the cache fails too: a clear error naming the device and size.
  EXPECT_TRUE(test::throws_with<Error>([&] { a.allocate(100000); },
                                       {"out of memory", "test-device", "100000"}));
  EXPECT_EQ(raw.frees, 1);  // the cache was given back first
  EXPECT_EQ(a.stats().bytes_cached, 0);
  raw.fail = false;
  void* q = a.allocate(100000);
  EXPECT_NE(q, nullptr);
  a.deallocate(q);
}

// A raw free that throws (cudaFree on a context in error, say) leaves the blocks not yet freed in
// the cache, frees none twice, and never escapes the destructor.
TEST(Allocator, AFailingRawFreeNeitherRepeatsNorEscapes) {
  CountingRaw raw;
  {
    CachingAllocator a = make_counting(raw);
    void* blocks[3] = {a.allocate(1000), a.allocate(5000), a.allocate(9000)};
    for (void* p : blocks) a.deallocate(p);
    raw.throw_at_free = 2;
    EXPECT_TRUE(test::throws_with<Error>([&] { a.empty_cache(); }, {"raw free failed"}));
    EXPECT_EQ(a.stats().system_frees, 1);
    // Smallest first: 1000's block was freed, 5000's failed, 9000's is still cached.
    EXPECT_EQ(a.stats().bytes_cached, static_cast<int64_t>(CachingAllocator::round_size(9000)));
    a.empty_cache();  // frees the last one, and no other
    EXPECT_EQ(raw.frees, 3);
    EXPECT_EQ(a.stats().bytes_cached, 0);
    EXPECT_EQ(raw.live.size(), 1u);  // the block whose free failed
    void* p = a.allocate(3000);
    a.deallocate(p);
    raw.throw_at_free = raw.frees + 1;  // the destructor's free throws: caught there
  }
  EXPECT_EQ(raw.live.size(), 2u);
  for (void* p : raw.live) std::free(p);
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
