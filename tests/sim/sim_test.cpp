// The simulator proves itself: a seed replays exactly, and each planted fault
// is caught by the check that should catch it, so the checks cannot pass
// vacuously. The seeds that once failed run here every time.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "simulator.h"

using namespace tramsync::sim;

namespace {

bool any_failure_of(const Outcome& r, const std::string& check) {
  for (const auto& f : r.failures) {
    if (f.rfind(check + ":", 0) == 0) return true;
  }
  return false;
}

Outcome run(uint64_t seed, Plant plant = Plant::kNone) {
  Config c;
  c.seed = seed;
  c.plant = plant;
  return run_seed(c);
}

}  // namespace

TEST_CASE("the same seed twice gives the same final state digest, and another seed another", "[sim]") {
  const Outcome a = run(7), b = run(7), other = run(8);
  INFO(a.failures.size() << " failures");
  REQUIRE(a.ok);
  CHECK(a.digest.size() == 64);
  CHECK(a.digest == b.digest);
  CHECK(a.stats.writes == b.stats.writes);
  CHECK(a.stats.faults == b.stats.faults);
  CHECK(a.digest != other.digest);
}

TEST_CASE("a link that drops an acknowledged change is caught as a lost write", "[sim]") {
  const Outcome r = run(11, Plant::kDropAckedChange);
  CHECK_FALSE(r.ok);
  CHECK(any_failure_of(r, "no lost write"));
}

TEST_CASE("a row deleted behind a device's store is caught as a node that did not converge", "[sim]") {
  const Outcome r = run(12, Plant::kDeleteRow);
  CHECK_FALSE(r.ok);
  CHECK(any_failure_of(r, "convergence"));
}

TEST_CASE("a stock balance off by one is caught by the stock arithmetic", "[sim]") {
  const Outcome r = run(13, Plant::kCorruptStockBalance);
  CHECK_FALSE(r.ok);
  CHECK(any_failure_of(r, "stock"));
}

TEST_CASE("the seeds that once failed pass", "[sim][regression]") {
  // Each failed once while the simulator was written. One found a bug in the
  // code (fixed, with tests/core/edit_before_creation_test.cpp); the others a
  // rule of the checker too strict for what the code rightly does.
  //   1    a station record created on both sides: the centre's _v says {"": v}, the station's {"": u, f: v}
  //   11   equal values merge without a conflict (two devices set one reserve level)
  //   26   a conflict between descendants of two concurrent edits, not the edits themselves
  //   27   a narrowed tablet moved a patient out of its villages itself and keeps it
  //   156  three concurrent phone edits chain their conflict rows (a lost to c, c lost to b); one
  //        of them first held at the centre (pushed there directly before the hub relayed the patient)
  //   676  a waste batch of a patient that moved into a narrowed tablet's village is held there by a foreign key
  //   1541 BUG: a tablet's edit of its hub's new reserve reached the centre before the creation and was
  //        stored without its base: the creation arriving next was recorded as a conflict
  //   2360 the void of a visit of a patient that moved into a narrowed tablet's village (gap 20)
  //   2405 the same bug as 1541
  const std::vector<uint64_t> seeds = {1, 11, 26, 27, 156, 676, 1541, 2360, 2405};
  for (uint64_t seed : seeds) {
    const Outcome r = run(seed);
    INFO("seed " << seed << ": " << (r.failures.empty() ? std::string() : r.failures.front()));
    CHECK(r.ok);
  }
}
