// The background thread of Prefetcher: a ring of `depth` slots guarded by one mutex.
#include "datasets/loader.h"

#include "engine/error.h"

namespace trine::detail {

size_t prefetch_check_depth(int depth) {
  TRINE_CHECK_AS(UsageError, depth >= 1 && depth <= 16, "Prefetcher: depth must be in 1..16, got ",
                 depth);
  return static_cast<size_t>(depth);
}

PrefetchCore::PrefetchCore(int64_t count, int depth, std::function<void(int64_t, int)> fill)
    : count_(count), depth_(static_cast<int>(prefetch_check_depth(depth))), fill_(std::move(fill)) {
  thread_ = std::thread([this] { run(); });
}

PrefetchCore::~PrefetchCore() {
  stop();
}

void PrefetchCore::run() {
  for (int64_t i = 0; count_ < 0 || i < count_; ++i) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Item i reuses slot i % depth, free once item i - depth was consumed.
      space_.wait(lock, [&] { return stop_ || produced_ - consumed_ < depth_; });
      if (stop_) break;
    }
    try {
      fill_(i, static_cast<int>(i % depth_));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++produced_;
    }
    ready_.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
  }
  ready_.notify_one();
}

int PrefetchCore::wait_next() {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return stop_ || finished_ || produced_ > consumed_; });
  if (stop_) return -1;
  if (produced_ > consumed_) return static_cast<int>(consumed_ % depth_);
  if (error_) {
    std::exception_ptr e = std::move(error_);
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  return -1;
}

void PrefetchCore::release() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++consumed_;
  }
  space_.notify_one();
}

void PrefetchCore::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  ready_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace trine::detail
