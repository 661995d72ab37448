// One node of a district in one process (the centre, or a device), for the
// core tests that move changes between nodes as sync would.
#pragma once

#include <memory>
#include <string>

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

}  // namespace tramsync::test
