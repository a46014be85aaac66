// Caching allocator.
#include "engine/allocator.h"

#include <bit>
#include <exception>

#include "engine/error.h"

namespace trine {

CachingAllocator::CachingAllocator(std::string device_name, RawAlloc raw_alloc, RawFree raw_free)
    : device_name_(std::move(device_name)),
      raw_alloc_(std::move(raw_alloc)),
      raw_free_(std::move(raw_free)) {}

CachingAllocator::~CachingAllocator() {
  // A destructor must not throw: a raw free that fails (a CUDA context already in error, say)
  // leaves the rest of the cache to the process's end.
  try {
    empty_cache();
  } catch (const std::exception&) {
  }
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes <= 512) return 512;
  size_t step = std::bit_floor(bytes - 1) / 8;  // 1/8 of the power of two below
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  // Reuse the smallest free block that fits without wasting more than a quarter of it.
  auto it = free_.lower_bound(size);
  if (it != free_.end() && it->first <= size + size / 4) {
    void* ptr = it->second;
    size_t block = it->first;
    free_.erase(it);
    stats_.bytes_cached -= static_cast<int64_t>(block);
    in_use_[ptr] = block;
    stats_.bytes_in_use += static_cast<int64_t>(block);
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
    return ptr;
  }
  void* ptr = raw_alloc_(size);
  if (!ptr && !free_.empty()) {  // out of memory: give the cache back and retry once
    release_cache();
    ptr = raw_alloc_(size);
  }
  TRINE_CHECK(ptr, "out of memory on ", device_name_, ": could not allocate ", bytes, " bytes (",
              stats_.bytes_in_use, " bytes in use)");
  ++stats_.system_allocs;
  in_use_[ptr] = size;
  stats_.bytes_in_use += static_cast<int64_t>(size);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end()) return;  // not ours; never happens through Storage
  size_t block = it->second;
  in_use_.erase(it);
  stats_.bytes_in_use -= static_cast<int64_t>(block);
  stats_.bytes_cached += static_cast<int64_t>(block);
  free_.emplace(block, ptr);
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
  // Each block leaves the list before it is freed: if a raw free throws, the blocks still
  // listed are the ones not yet freed, and none can be handed out or freed twice.
  while (!free_.empty()) {
    auto node = free_.extract(free_.begin());
    stats_.bytes_cached -= static_cast<int64_t>(node.key());
    raw_free_(node.mapped());
    ++stats_.system_frees;
  }
}

}  // namespace trine
