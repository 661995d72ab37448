// JSON-level pieces of the wire format shared by the handlers and the client
// (private to sync/).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tramsync/core/model.h"
#include "tramsync/core/status.h"

namespace tramsync::wire {

using json = nlohmann::json;

json change_to_json(const Change& c);
json changes_to_json(const std::vector<Change>& changes);
// Decodes doc[key] as an array of changes, naming the first bad field.
Result<std::vector<Change>> changes_from_json(const json& doc, const char* key);
// Checks doc["protocol"] is a version this node speaks.
Status check_protocol(const json& doc);

}  // namespace tramsync::wire
