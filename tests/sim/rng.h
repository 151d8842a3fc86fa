// A small seeded generator (SplitMix64): the same seed gives the same history
// on every machine and every standard library, which std::mt19937 plus the
// std distributions do not promise.
#ifndef WALRUS_TESTS_SIM_RNG_H_
#define WALRUS_TESTS_SIM_RNG_H_

#include <cstdint>

namespace walrus::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) : x_(seed * 0x2545f4914f6cdd1dULL + 1) {}
  uint64_t Next() {
    uint64_t z = (x_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 if n is 0.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Uniform in [lo, hi].
  uint64_t Range(uint64_t lo, uint64_t hi) { return hi <= lo ? lo : lo + Below(hi - lo + 1); }
  // True with probability percent/100.
  bool Percent(uint64_t percent) { return Below(100) < percent; }

 private:
  uint64_t x_;
};

}  // namespace walrus::sim

#endif  // WALRUS_TESTS_SIM_RNG_H_
