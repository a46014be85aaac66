// CachingAllocator: keeps freed blocks in size-keyed free lists so that a training step, which
// allocates the same sizes every time, reaches the system allocator only during its first step.
// Shared by the CPU and CUDA backends (each supplies its raw allocate/free). Thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

#include "engine/backend.h"

namespace trine {

class CachingAllocator {
 public:
  using RawAlloc = std::function<void*(size_t bytes)>;  // returns null on failure
  using RawFree = std::function<void(void* ptr)>;

  // `device_name` is used in out-of-memory errors.
  CachingAllocator(std::string device_name, RawAlloc raw_alloc, RawFree raw_free);
  ~CachingAllocator();

  void* allocate(size_t bytes);
  void deallocate(void* ptr);
  AllocatorStats stats() const;
  // Returns every cached (free) block to the system.
  void empty_cache();
  // Starts a new peak measurement: peak_bytes_in_use becomes bytes_in_use.
  void reset_peak();

  // Size classes: 512 bytes minimum, then 8 classes per power of two (at most 12.5% slack).
  static size_t round_size(size_t bytes);

 private:
  void release_cache();  // empty_cache with mutex_ held

  std::string device_name_;
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;         // block size -> block
  std::unordered_map<void*, size_t> in_use_;  // block -> block size
  AllocatorStats stats_;
};

}  // namespace trine
