#include "tramsync/core/hlc.h"

#include <algorithm>

namespace tramsync {

namespace {
uint64_t physical_part(int64_t ms) {
  // Clamp to the 48 bits the format holds; a clock before 1970 counts as 0.
  constexpr int64_t kMax = (int64_t{1} << 48) - 1;
  return Hlc::pack(std::clamp<int64_t>(ms, 0, kMax), 0);
}
}  // namespace

uint64_t Hlc::now(int64_t physical_ms) {
  uint64_t candidate = physical_part(physical_ms);
  // When the wall clock is behind (or equal to) what we have seen, tick the
  // logical counter. Adding 1 to the packed value carries an overflowing counter
  // into the millisecond part, so the clock stays strictly increasing.
  last_ = candidate > last_ ? candidate : last_ + 1;
  return last_;
}

uint64_t Hlc::receive(uint64_t remote, int64_t physical_ms) {
  uint64_t seen = std::max(last_, remote);
  uint64_t candidate = physical_part(physical_ms);
  last_ = candidate > seen ? candidate : seen + 1;
  return last_;
}

}  // namespace tramsync
