// An edit that reaches a node before the creation it was based on (a tablet of
// a station hub that also syncs with the centre directly pushes its edit of a
// record the hub has not sent up yet). When the edit carries every required
// field (an item reserve does), the node inserts the record from it; the
// field versions it keeps must still name the base the edit was made on, or
// the creation arriving next looks like a concurrent edit (a false conflict)
// and this node's versions differ from every other node's. Found by the
// simulation (tests/sim, seed 1541).
#include <catch2/catch.hpp>

#include <string>

#include "fixture.h"
#include "node.h"
#include "support/sqlite_query.h"

using namespace tramsync;
using namespace tramsync::test;

TEST_CASE("an edit that arrives before the creation it was based on keeps its base, so the creation is no conflict",
          "[core][merge][sync]") {
  Node centre(1), hub(2), tablet(3);
  centre.id = must(centre.store->init_central("TTYT")).device_id;
  const StationInfo station = must(centre.store->add_station("TYT-ANHOA", "Trạm Y tế xã An Hòa", "", ""));
  must(centre.store->add_item({"PARA500", "Paracetamol 500mg", "viên", "medicine", std::nullopt}));
  for (Node* n : {&hub, &tablet}) {
    n->id = n->ids.new_id();
    must(n->store->init_device(station, n->id, "device"));
    pull_from(centre, *n, station.id);
  }

  // The hub sets a reserve; the tablet receives it from the hub and changes it.
  must(hub.store->set_reserve("PARA500", 980));
  ApplyContext from_hub;
  from_hub.from_peer = hub.id;
  from_hub.check_clock = false;
  must(tablet.store->apply_changes(hub.store->changes_after(0, kBigPage), from_hub));
  tablet.clock.advance(kMinuteMs);
  must(tablet.store->set_reserve("PARA500", 131));

  // The tablet's edit reaches the centre first, the hub's creation after it.
  CHECK(push_to(centre, tablet, station.id).applied == 1);
  CHECK(push_to(centre, hub, station.id).applied >= 1);

  CHECK(centre.store->conflicts(false).empty());
  const std::string level_version = testing::query_texts(
      centre.path(), "SELECT coalesce(json_extract(_v, '$.level'), 'none') FROM item_reserves")[0];
  const std::string at_tablet = testing::query_texts(
      tablet.path(), "SELECT coalesce(json_extract(_v, '$.level'), 'none') FROM item_reserves")[0];
  CHECK(level_version == at_tablet);  // the edit's version with its base, on both
  CHECK(testing::query_int(centre.path(), "SELECT level FROM item_reserves") == 131);
}
