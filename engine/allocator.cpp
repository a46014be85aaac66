// Caching allocator: segments from the system, split into blocks by best fit, merged when freed.
#include "engine/allocator.h"

#include <algorithm>
#include <bit>
#include <exception>
#include <memory>

#include "engine/error.h"

namespace trine {

CachingAllocator::CachingAllocator(std::string device_name, RawAlloc raw_alloc, RawFree raw_free,
                                   bool trim_on_grow)
    : device_name_(std::move(device_name)),
      raw_alloc_(std::move(raw_alloc)),
      raw_free_(std::move(raw_free)),
      trim_on_grow_(trim_on_grow) {}

CachingAllocator::~CachingAllocator() {
  // A destructor must not throw: a raw free that fails (a CUDA context already in error, say)
  // leaves the rest of the cache to the process's end.
  try {
    empty_cache();
  } catch (const std::exception&) {
  }
  // Segments with a block still in use belong to its owner now; only the bookkeeping goes.
  for (Pool* pool : {&small_, &large_})
    for (Block* b : *pool) delete b;
  for (auto& [ptr, b] : in_use_) delete b;
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes <= 512) return 512;
  size_t step = std::bit_floor(bytes - 1) / 8;  // 1/8 of the power of two below
  return (bytes + step - 1) / step * step;
}

size_t CachingAllocator::block_size(size_t bytes) {
  return (round_size(bytes) + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
}

CachingAllocator::Block* CachingAllocator::new_segment(size_t bytes, size_t segment_bytes,
                                                       bool small) {
  void* ptr = raw_alloc_(segment_bytes);
  if (!ptr && stats_.bytes_cached > 0) {  // out of memory: give the free segments back, retry
    release_cache();
    ptr = raw_alloc_(segment_bytes);
  }
  TRINE_CHECK(ptr, "out of memory on ", device_name_, ": could not allocate ", bytes, " bytes (",
              stats_.bytes_in_use, " bytes in use)");
  ++stats_.system_allocs;
  stats_.bytes_cached += static_cast<int64_t>(segment_bytes);
  return new Block{static_cast<char*>(ptr), segment_bytes, small};
}

void* CachingAllocator::allocate(size_t bytes) {
  // Beyond any memory, and rounding it up could wrap around.
  TRINE_CHECK(bytes <= (size_t{1} << 60), "out of memory on ", device_name_,
              ": could not allocate ", bytes, " bytes");
  const size_t size = block_size(bytes);
  const bool small = size <= kSmallRequest;
  Pool& pool = pool_of(small);
  std::lock_guard<std::mutex> lock(mutex_);
  Block probe{nullptr, size, small};
  Block* b;
  if (auto it = pool.lower_bound(&probe); it != pool.end()) {  // the smallest that fits
    b = *it;
    pool.erase(it);
  } else {
    if (!small && trim_on_grow_) release_free_segments(large_);
    b = new_segment(bytes, small ? kSmallSegment : size, small);
  }
  // Split off the rest when it is worth keeping: any block in the small pool, 1 MiB in the large.
  if (b->size - size >= (small ? kBlockAlign : kSmallRequest)) {
    Block* rest = new Block{b->ptr + size, b->size - size, small, true, b, b->next};
    if (b->next) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    pool.insert(rest);
  }
  b->free = false;
  in_use_[b->ptr] = b;
  stats_.bytes_cached -= static_cast<int64_t>(b->size);
  stats_.bytes_in_use += static_cast<int64_t>(b->size);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return b->ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end()) return;  // not ours; never happens through Storage
  Block* b = it->second;
  in_use_.erase(it);
  stats_.bytes_in_use -= static_cast<int64_t>(b->size);
  stats_.bytes_cached += static_cast<int64_t>(b->size);
  b->free = true;
  Pool& pool = pool_of(b->small);
  // Merge with the free neighbours: b takes over their memory.
  if (Block* p = b->prev; p && p->free) {
    pool.erase(p);
    b->ptr = p->ptr;
    b->size += p->size;
    b->prev = p->prev;
    if (b->prev) b->prev->next = b;
    delete p;
  }
  if (Block* n = b->next; n && n->free) {
    pool.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (b->next) b->next->prev = b;
    delete n;
  }
  pool.insert(b);
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache();
}

void CachingAllocator::release_cache() {
  for (Pool* pool : {&small_, &large_}) release_free_segments(*pool);
}

void CachingAllocator::release_free_segments(Pool& pool) {
  // Each segment leaves the pool before it is freed: if a raw free throws, the segments still
  // listed are the ones not yet freed, and none can be handed out or freed twice.
  for (auto it = pool.begin(); it != pool.end();) {
    if ((*it)->prev || (*it)->next) {  // a part of a segment that is partly in use
      ++it;
      continue;
    }
    std::unique_ptr<Block> segment(*it);
    it = pool.erase(it);
    stats_.bytes_cached -= static_cast<int64_t>(segment->size);
    raw_free_(segment->ptr, segment->size);  // merged whole: the segment's size
    ++stats_.system_frees;
  }
}

}  // namespace trine
