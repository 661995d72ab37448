// The hybrid logical clock (hlc.h): pure, driven by the physical time passed in.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "fixture.h"
#include "tramsync/core/hlc.h"

using tramsync::Hlc;
using tramsync::test::kHourMs;
using tramsync::test::kStartMs;

TEST_CASE("an hlc packs milliseconds in the high 48 bits and a counter in the low 16", "[core][hlc]") {
  const uint64_t v = Hlc::pack(kStartMs, 5);
  CHECK(v == (static_cast<uint64_t>(kStartMs) << 16 | 5));
  CHECK(Hlc::physical_ms(v) == kStartMs);
  CHECK(Hlc::logical(v) == 5);
  // The counter is masked to 16 bits.
  CHECK(Hlc::logical(Hlc::pack(kStartMs, 0x1'0003)) == 3);
  CHECK(Hlc::physical_ms(Hlc::pack(kStartMs, 0x1'0003)) == kStartMs);
}

TEST_CASE("an hlc follows the wall clock while it moves forward", "[core][hlc]") {
  Hlc h;
  CHECK(h.now(kStartMs) == Hlc::pack(kStartMs, 0));
  CHECK(h.now(kStartMs + 1) == Hlc::pack(kStartMs + 1, 0));
  CHECK(h.now(kStartMs + 1000) == Hlc::pack(kStartMs + 1000, 0));
  CHECK(h.last() == Hlc::pack(kStartMs + 1000, 0));
}

TEST_CASE("an hlc stays monotonic when the wall clock jumps back an hour", "[core][hlc]") {
  Hlc h;
  const uint64_t before = h.now(kStartMs);
  const uint64_t after_jump = h.now(kStartMs - kHourMs);
  CHECK(after_jump > before);
  // It keeps the physical part it has seen and ticks the counter.
  CHECK(Hlc::physical_ms(after_jump) == kStartMs);
  CHECK(Hlc::logical(after_jump) == 1);

  uint64_t prev = after_jump;
  for (int i = 1; i <= 100; ++i) {
    const uint64_t v = h.now(kStartMs - kHourMs + i);
    REQUIRE(v > prev);
    prev = v;
  }
  CHECK(prev == Hlc::pack(kStartMs, 101));

  // Once the wall clock passes the highest value seen, it takes over again.
  CHECK(h.now(kStartMs + 1) == Hlc::pack(kStartMs + 1, 0));
}

TEST_CASE("an hlc restored from its last value continues after it", "[core][hlc]") {
  Hlc first;
  first.now(kStartMs);
  const uint64_t last = first.now(kStartMs);  // (kStartMs, 1)
  Hlc restored(last);
  const uint64_t next = restored.now(kStartMs - kHourMs);
  CHECK(next == Hlc::pack(kStartMs, 2));
}

TEST_CASE("65536 and more events in one millisecond stay strictly increasing and carry into the milliseconds",
          "[core][hlc]") {
  Hlc h;
  const uint64_t first = h.now(kStartMs);
  REQUIRE(first == Hlc::pack(kStartMs, 0));
  uint64_t prev = first;
  constexpr int kEvents = 65536 + 100;
  for (int i = 1; i <= kEvents; ++i) {
    const uint64_t v = h.now(kStartMs);
    if (v <= prev) FAIL("event " << i << ": " << v << " is not greater than " << prev);
    prev = v;
    if (i == 65535) {
      CHECK(Hlc::physical_ms(v) == kStartMs);
      CHECK(Hlc::logical(v) == 0xFFFF);
    }
    if (i == 65536) {
      // The counter overflowed: the carry moves the value into the next millisecond.
      CHECK(Hlc::physical_ms(v) == kStartMs + 1);
      CHECK(Hlc::logical(v) == 0);
    }
  }
  CHECK(prev == first + kEvents);
  CHECK(Hlc::physical_ms(prev) == kStartMs + 1);
  CHECK(Hlc::logical(prev) == 100);
  // The wall clock catching up with the carried value does not go back either.
  CHECK(h.now(kStartMs + 1) == Hlc::pack(kStartMs + 1, 101));
  CHECK(h.now(kStartMs + 2) == Hlc::pack(kStartMs + 2, 0));
}

TEST_CASE("after receiving a remote value the next local value is greater than it", "[core][hlc]") {
  Hlc h;
  const uint64_t local = h.now(kStartMs);
  const uint64_t remote = Hlc::pack(kStartMs + 5 * 60'000, 7);  // a peer five minutes ahead

  const uint64_t received = h.receive(remote, kStartMs);
  CHECK(received > remote);
  CHECK(received > local);
  CHECK(received == remote + 1);
  CHECK(h.last() == received);

  const uint64_t next = h.now(kStartMs);
  CHECK(next > remote);
  CHECK(next > received);
  CHECK(next == Hlc::pack(kStartMs + 5 * 60'000, 9));
}

TEST_CASE("receiving an older remote value still advances the clock", "[core][hlc]") {
  Hlc h;
  h.now(kStartMs);
  const uint64_t local = h.now(kStartMs);  // (kStartMs, 1)
  const uint64_t older = Hlc::pack(kStartMs - kHourMs, 40);

  const uint64_t received = h.receive(older, kStartMs);
  CHECK(received > local);
  CHECK(received > older);
  CHECK(received == Hlc::pack(kStartMs, 2));
  CHECK(h.now(kStartMs) == Hlc::pack(kStartMs, 3));
}

TEST_CASE("receiving while the wall clock is ahead of both values takes the wall clock", "[core][hlc]") {
  Hlc h;
  h.now(kStartMs);
  const uint64_t remote = Hlc::pack(kStartMs + 10, 3);
  CHECK(h.receive(remote, kStartMs + 1000) == Hlc::pack(kStartMs + 1000, 0));
}

TEST_CASE("receiving a remote value equal to the local one still advances", "[core][hlc]") {
  Hlc h;
  const uint64_t local = h.now(kStartMs);
  CHECK(h.receive(local, kStartMs) == local + 1);
}

TEST_CASE("a wall clock before 1970 does not make the hlc go backwards", "[core][hlc]") {
  Hlc h;
  const uint64_t a = h.now(kStartMs);
  const uint64_t b = h.now(-5'000);
  CHECK(b > a);
  CHECK(b == a + 1);
}
