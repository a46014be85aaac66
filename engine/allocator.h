// CachingAllocator: keeps freed memory for reuse, so that a training step, which allocates the
// same sizes every time, reaches the system allocator only during its first steps. Shared by the
// CPU and CUDA backends (each supplies its raw allocate/free). Thread-safe.
//
// Memory comes from the system in segments. A request takes the smallest free block that fits
// (best fit) and splits off what it does not need; a freed block merges with the free blocks
// beside it in its segment. So memory freed by one size serves another: a layer's 8 MB output
// can take the free half of a 16 MB block, and a last, smaller batch what the full ones freed.
// Two pools keep long-lived small tensors (parameters, scalars) from pinning large segments:
//   small: requests up to 1 MiB, from 2 MiB segments;
//   large: larger requests, from segments of the request's size, split only when at least 1 MiB
//          would be left over.
// Optionally (trim_on_grow, the CPU backend's setting), a request that finds no free block, and
// so needs a new large segment, first returns the wholly free large segments to the system: none
// could serve it, and kept beside the new one they only raise the footprint (segments cut to an
// early layer's sizes, idle while later layers need larger blocks; docs/benchmarks.md has the
// figures). A training step's sizes repeat, so this happens in the first steps only. CUDA keeps
// them, as PyTorch does: cudaFree waits for the whole device.
// Block sizes are multiples of 512 bytes, so a block is as aligned as its segment, up to 512.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "engine/backend.h"

namespace trine {

class CachingAllocator {
 public:
  using RawAlloc = std::function<void*(size_t bytes)>;  // returns null on failure
  // Frees a segment: its pointer, and the bytes raw_alloc was asked for.
  using RawFree = std::function<void(void* ptr, size_t bytes)>;

  static constexpr size_t kSmallRequest = size_t{1} << 20;  // largest request of the small pool
  static constexpr size_t kSmallSegment = size_t{2} << 20;  // segment size of the small pool
  static constexpr size_t kBlockAlign = 512;

  // `device_name` is used in out-of-memory errors; trim_on_grow as above.
  CachingAllocator(std::string device_name, RawAlloc raw_alloc, RawFree raw_free,
                   bool trim_on_grow = false);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(size_t bytes);
  void deallocate(void* ptr);
  // bytes_in_use: blocks handed out; bytes_cached: free blocks, ready for reuse. Their sum is
  // what the allocator holds from the system.
  AllocatorStats stats() const;
  // Returns every segment that is wholly free to the system (a segment with a block in use stays).
  void empty_cache();
  // Starts a new peak measurement: peak_bytes_in_use becomes bytes_in_use.
  void reset_peak();

  // Size classes: 512 bytes minimum, then 8 classes per power of two (at most 12.5% slack).
  static size_t round_size(size_t bytes);
  // The size of the block a request takes: its class, rounded up to a multiple of kBlockAlign
  // (which changes only classes under 4 KiB).
  static size_t block_size(size_t bytes);

 private:
  // A block: a piece of one segment, free or handed out. prev/next are its neighbours in the
  // segment by address; a block with neither spans its whole segment.
  struct Block {
    char* ptr;
    size_t size;
    bool small;  // its pool
    bool free = true;
    Block* prev = nullptr;
    Block* next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using Pool = std::set<Block*, BySizeThenAddress>;

  Pool& pool_of(bool small) { return small ? small_ : large_; }
  Block* new_segment(size_t bytes, size_t segment_bytes, bool small);  // mutex_ held
  void release_cache();                    // empty_cache with mutex_ held
  void release_free_segments(Pool& pool);  // mutex_ held

  std::string device_name_;
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  bool trim_on_grow_;
  mutable std::mutex mutex_;
  Pool small_, large_;                        // free blocks
  std::unordered_map<void*, Block*> in_use_;  // handed-out blocks by address
  AllocatorStats stats_;
};

}  // namespace trine
