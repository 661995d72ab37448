// Time and randomness, injected so tests and the simulator control them.
#pragma once

#include <cstdint>
#include <string>

namespace tramsync {

// A source of wall-clock time. Implementations must be safe to call from the
// thread that owns the Store; they need not be monotonic (clocks jump back).
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch, UTC.
  virtual int64_t now_ms() = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() override;
};

// A clock that says what a test tells it.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t ms) : ms_(ms) {}
  int64_t now_ms() override { return ms_; }
  void set(int64_t ms) { ms_ = ms; }
  void advance(int64_t ms) { ms_ += ms; }

 private:
  int64_t ms_;
};

// Random 128-bit identifiers.
class IdSource {
 public:
  virtual ~IdSource() = default;
  // A random UUID (version 4) in lower-case text form.
  virtual std::string new_id() = 0;
};

// Seeded from std::random_device; not thread-safe (one per Store).
class RandomIdSource final : public IdSource {
 public:
  RandomIdSource();
  explicit RandomIdSource(uint64_t seed);  // deterministic, for tests and simulation
  std::string new_id() override;

 private:
  uint64_t s_[2];
};

}  // namespace tramsync
