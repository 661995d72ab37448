#include "tramsync/core/clock.h"

#include <chrono>
#include <cstdio>
#include <random>

namespace tramsync {

int64_t SystemClock::now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {
uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

RandomIdSource::RandomIdSource() {
  std::random_device rd;
  uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  seed ^= static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  s_[0] = splitmix(seed);
  s_[1] = splitmix(seed);
  // random_device on Linux reads the kernel's entropy; mix in more of it.
  s_[0] ^= (static_cast<uint64_t>(rd()) << 32) | rd();
  s_[1] ^= (static_cast<uint64_t>(rd()) << 32) | rd();
}

RandomIdSource::RandomIdSource(uint64_t seed) {
  s_[0] = splitmix(seed);
  s_[1] = splitmix(seed);
}

std::string RandomIdSource::new_id() {
  // xoroshiro128+ step twice for 128 bits.
  auto next = [this]() {
    uint64_t s0 = s_[0], s1 = s_[1], r = s0 + s1;
    s1 ^= s0;
    s_[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
    s_[1] = (s1 << 37) | (s1 >> 27);
    return r;
  };
  uint64_t hi = next(), lo = next();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

}  // namespace tramsync
