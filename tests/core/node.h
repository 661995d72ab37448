// One node of a district in one process (the centre, or a device), for the
// core tests that move changes between nodes as sync would.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fixture.h"

namespace tramsync::test {

// One node: its own file, clock and ids. `fail_kind` makes the
// before_change_append hook refuse changes of that kind (fault injection).
struct Node {
  explicit Node(uint64_t seed) : ids(seed) {
    StoreOptions o;
    o.clock = &clock;
    o.ids = &ids;
    o.before_change_append = [this](const std::string& kind) -> Status {
      if (!fail_kind.empty() && kind == fail_kind) {
        return Error{ErrorCode::kIo, "", "disk", "injected failure before appending a " + kind + " change", ""};
      }
      return {};
    };
    store = must(Store::open(path(), o));
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  std::string path() const { return dir.file("node.tramsync"); }

  // The last change this node wrote itself.
  Change last_change() {
    auto changes = store->changes_after(store->last_seq() - 1, 1);
    REQUIRE(changes.size() == 1);
    return changes[0];
  }

  std::string phone(const std::string& patient) { return must(store->get_patient(patient)).phone; }

  TempDir dir;
  ManualClock clock{kStartMs};
  RandomIdSource ids;
  std::string fail_kind;
  std::unique_ptr<Store> store;
  std::string id;  // the node's origin in the change log
};

// Changes between a device and the centre, moved as the sync service and the
// client move them (one page holds everything).
inline constexpr int64_t kBigPage = 1'000'000;
inline constexpr int64_t kBigBytes = int64_t{1} << 30;

// What the sync service applies a device's push with: its station's scope,
// only its own origin, the clock checked.
inline ApplyContext push_context(const Node& device, const std::string& station_id) {
  ApplyContext ac;
  ac.from_peer = device.id;
  ac.write_scope = Scope::station(station_id);
  ac.may_write_catalogue = false;
  ac.allowed_origins = {device.id};
  ac.check_clock = true;
  return ac;
}

// Pushes everything the device has not pushed to `centre` yet; the device
// keeps the centre's refusals as the client does.
inline ApplyOutcome push_to(Node& centre, Node& device, const std::string& station_id) {
  LogPage page = device.store->changes_to_push(centre.id, kBigPage, kBigBytes);
  ApplyOutcome out = must(centre.store->apply_changes(page.changes, push_context(device, station_id)));
  std::vector<ApplyResult> refused;
  for (const auto& r : out.results) {
    if (r.status == ApplyStatus::kQuarantined) refused.push_back(r);
  }
  if (!page.changes.empty()) must(device.store->acknowledge_push(centre.id, out.acked_through, refused));
  return out;
}

// Pulls everything of the station the device does not have yet.
inline ApplyOutcome pull_from(Node& centre, Node& device, const std::string& station_id) {
  int64_t after = 0;
  if (auto p = device.store->peer(centre.id)) after = p->pull_cursor;
  LogPage page = centre.store->changes_for_peer(after, kBigPage, kBigBytes, Scope::station(station_id), device.id);
  ApplyContext ctx;
  ctx.from_peer = centre.id;
  ctx.check_clock = false;
  return must(device.store->apply_changes(page.changes, ctx, CursorUpdate{centre.id, page.next}));
}

}  // namespace tramsync::test
