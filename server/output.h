// Terminal tables and JSON forms of the registry's records, for
// tramsync-server's admin commands (devices: sync/device_admin.h, shared with
// station hubs).
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

nlohmann::json to_json(const StationInfo& s);

}  // namespace tramsync::server
