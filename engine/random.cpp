// The global generator and host-side draws.
#include "engine/random.h"

#include <cmath>

#include "engine/error.h"
#include "engine/philox.h"

namespace trine {

float normal_from_uniforms(float u1, float u2) {
  // u1 in (0, 1]: avoids log(0).
  float r = std::sqrt(-2.0f * std::log(1.0f - u1));
  return r * std::cos(6.2831853071795865f * u2);
}

float Generator::uniform() {
  return philox::uniform(seed_, advance(1));
}

float Generator::normal() {
  philox::U4 w = philox::draw(seed_, advance(1));
  return normal_from_uniforms(philox::to_unit(w.x[0]), philox::to_unit(w.x[1]));
}

uint64_t Generator::next_u64() {
  philox::U4 w = philox::draw(seed_, advance(1));
  return (static_cast<uint64_t>(w.x[0]) << 32) | w.x[1];
}

int64_t Generator::randint(int64_t bound) {
  TRINE_CHECK(bound > 0, "randint: bound must be positive, got ", bound);
  const uint64_t b = static_cast<uint64_t>(bound);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % b;  // reject the biased tail
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return static_cast<int64_t>(x % b);
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
}

}  // namespace trine
