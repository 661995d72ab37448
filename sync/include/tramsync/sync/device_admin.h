// Device administration as both servers offer it: the centre's
// `tramsync-server device ...` and a station hub's `station-cli device ...`.
// Each call does the work on the store and returns what to show, as a JSON
// document (--json) and as text for a terminal; the programs only parse
// arguments and print one or the other.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tramsync/core/status.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/enrollment.h"

namespace tramsync::sync {

struct Shown {
  nlohmann::json json;
  std::string text;
};

struct DeviceAddParams {
  std::string station;  // station code ("" for a reviewer)
  std::string name;
  std::string role = kRoleStation;
  int64_t hours = kDefaultCodeHours;
  std::vector<std::string> villages;  // a mobile device's villages (empty: the whole station)
  std::string program = "tramsync-server";  // for the hints printed
};

// A one-time enrollment code for a new device.
Result<Shown> device_add(Store& store, const DeviceAddParams& params, Clock* clock = nullptr);

// The devices registered here (of `station` only, when given; revoked ones
// with `all`, and always in JSON): last seen, last sync, clock, villages.
Shown device_list(Store& store, const std::string& station, bool all, const std::string& program);

// Revokes a device (id or prefix); the revocation syncs to the station's other servers.
Result<Shown> device_revoke(Store& store, const std::string& id);

// Narrows or widens a mobile device's villages (empty: the whole station).
Result<Shown> device_scope(Store& store, const std::string& id, const std::vector<std::string>& villages);

// How a code is shown, after a station or device was added.
nlohmann::json code_json(const IssuedCode& issued);
std::string code_text(const IssuedCode& issued, int64_t hours);

}  // namespace tramsync::sync
