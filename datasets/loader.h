// Prefetcher: produces the next batch on a background thread while the current one is consumed,
// through a bounded queue (depth 1-2 is plenty), so data preparation overlaps training.
//
//   Prefetcher<Batch> pf(steps, [&](int64_t step) { return make_batch(sampler_indices[step]); });
//   while (auto b = pf.next()) train_step(*b);
//
// Reproducibility: item i is produce(i) and nothing else. The producer must not depend on timing
// or on how far ahead it runs: derive item i from a deterministic sampler (e.g. index lists drawn
// up front, or a generator that only the producer thread draws from, in order). Then a run gives
// the same batches with or without prefetching, on any machine.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace trine {

namespace detail {

// Returns depth as a size; throws UsageError unless 1 <= depth <= 16.
size_t prefetch_check_depth(int depth);

// The thread and bookkeeping of a Prefetcher, independent of the item type. Item i is produced
// by fill(i, i % depth) into that ring slot, at most `depth` items ahead of the consumer.
class PrefetchCore {
 public:
  PrefetchCore(int64_t count, int depth, std::function<void(int64_t, int)> fill);
  ~PrefetchCore();  // stop()
  PrefetchCore(const PrefetchCore&) = delete;
  PrefetchCore& operator=(const PrefetchCore&) = delete;

  // Blocks until the next item is ready and returns its slot; -1 after the last item or after
  // stop(). Rethrows the producer's exception once every item produced before it was consumed.
  int wait_next();
  // Hands the slot returned by wait_next() back to the producer.
  void release();
  // Tells the producer to stop and joins it (waiting for an item in progress). Idempotent.
  void stop();

 private:
  void run();

  const int64_t count_;
  const int depth_;
  std::function<void(int64_t, int)> fill_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  int64_t produced_ = 0, consumed_ = 0;
  bool finished_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: started once everything above is initialized
};

}  // namespace detail

// Delivers produce(0), produce(1), ..., produce(count - 1) in order (count < 0: without end,
// until the consumer stops), computed on one background thread up to `depth` items ahead.
// Requires 1 <= depth <= 16 (throws UsageError otherwise). One consumer thread.
template <typename T>
class Prefetcher {
 public:
  using Producer = std::function<T(int64_t index)>;

  Prefetcher(int64_t count, Producer produce, int depth = 2)
      : slots_(check_depth(depth)),
        produce_(std::move(produce)),
        core_(count, depth, [this](int64_t i, int s) { slots_[s].emplace(produce_(i)); }) {}
  // Stops the producer and joins it; safe at any point, also before the last item.
  ~Prefetcher() = default;
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item, or nullopt after the last one (or after stop()). If produce() threw, the
  // exception is rethrown here, in order (after the items produced before it), and the
  // prefetcher is finished: later calls return nullopt.
  std::optional<T> next() {
    const int s = core_.wait_next();
    if (s < 0) return std::nullopt;
    std::optional<T> out(std::move(*slots_[s]));
    slots_[s].reset();
    core_.release();
    return out;
  }

  // Stops early (the destructor does the same).
  void stop() { core_.stop(); }

 private:
  static size_t check_depth(int depth) { return detail::prefetch_check_depth(depth); }

  std::vector<std::optional<T>> slots_;
  Producer produce_;
  detail::PrefetchCore core_;  // declared last: destroyed (joined) first
};

}  // namespace trine
