// Hybrid logical clock (Kulkarni et al., 2014).
//
// A timestamp is 64 bits: physical milliseconds since the epoch in the high 48
// bits, a logical counter in the low 16. It never goes backwards, whatever the
// wall clock does, and after receive() it is greater than every timestamp seen.
// Two changes are ordered by (hlc, origin). This class is pure: the physical
// time is passed in, so tests drive it with any clock.
#pragma once

#include <cstdint>

namespace tramsync {

class Hlc {
 public:
  static constexpr int kLogicalBits = 16;
  static constexpr uint64_t kLogicalMask = (uint64_t{1} << kLogicalBits) - 1;

  explicit Hlc(uint64_t last = 0) : last_(last) {}

  // The timestamp for a new local event at physical time `physical_ms`.
  // Greater than every value this clock returned or received before.
  uint64_t now(int64_t physical_ms);

  // Take in a timestamp from a peer; the next now() is greater than it.
  // Returns the new local value.
  uint64_t receive(uint64_t remote, int64_t physical_ms);

  uint64_t last() const { return last_; }

  static uint64_t pack(int64_t ms, uint64_t logical) {
    return (static_cast<uint64_t>(ms) << kLogicalBits) | (logical & kLogicalMask);
  }
  static int64_t physical_ms(uint64_t hlc) { return static_cast<int64_t>(hlc >> kLogicalBits); }
  static uint64_t logical(uint64_t hlc) { return hlc & kLogicalMask; }

 private:
  uint64_t last_;
};

}  // namespace tramsync
