// Random numbers: one seedable global generator feeds every random source in trine (weight
// initialisation, dropout, samplers, shuffles), so one seed reproduces a run.
//
// The generator hands out disjoint ranges of a counter-based (Philox) stream: drawing n numbers
// takes the next n counters. Host-side draws use the same stream as the backends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace trine {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  // Reseeds and rewinds.
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  // Restores a saved position (checkpoints).
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves n counters; returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t first = offset_;
    offset_ += n;
    return first;
  }

  // Host draws.
  float uniform();                 // [0, 1)
  float normal();                  // N(0, 1)
  uint64_t next_u64();             // 64 random bits
  int64_t randint(int64_t bound);  // uniform in [0, bound), bound > 0, unbiased
  // Fisher-Yates shuffle.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[randint(static_cast<int64_t>(i))]);
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The global generator.
Generator& default_generator();
// Seeds the global generator (and with it every random source that draws from it).
void manual_seed(uint64_t seed);

// Box-Muller on two unit uniforms, shared by every backend's random_normal.
float normal_from_uniforms(float u1, float u2);

}  // namespace trine
