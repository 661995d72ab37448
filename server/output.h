// Terminal tables and JSON forms of the registry's records, for
// tramsync-server's admin commands.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "tramsync/sync/enrollment.h"
#include "tramsync/core/replica.h"
#include "tramsync/core/text.h"

namespace tramsync::server {

using Table = TextTable;  // core/text.h

std::string short_id(const std::string& id);  // first 8 characters

// "2d 0h", "3h 20m", "12m", "40s": a duration's magnitude, for people.
std::string human_duration(int64_t ms);

// True when a device's clock is off from the server's by more than
// protocol::kClockAheadFlagMs, ahead or behind: the times it records (visits,
// dispensings) are then suspect.
bool clock_flagged(int64_t clock_skew_ms);

// The CLOCK column of `device list`: "-" (never seen), "ok", "ahead 12m",
// "behind 3h 5m", or, when flagged, "clock ahead 2d 0h" / "clock behind 2d 0h".
std::string clock_text(const DeviceInfo& d);

nlohmann::json to_json(const StationInfo& s);
// Everything `device list` shows; never the token hash.
nlohmann::json to_json(const DeviceInfo& d);

// A fresh enrollment code, printed so it cannot be missed (it is shown only
// this once), with its expiry and what to type on the device.
void print_code(const sync::IssuedCode& issued, int64_t hours);
// {"enrollment_code", "role", "expires_at", "expires_at_ms"}
nlohmann::json code_json(const sync::IssuedCode& issued);

}  // namespace tramsync::server
