// JSON-level pieces of the wire format shared by the handlers and the client
// (private to sync/).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
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
// Parses a body that came over the network: discarded (like json::parse with
// allow_exceptions=false) when it is not JSON or nests arrays and objects
// deeper than protocol::kMaxJsonDepth. Every body from a peer goes through
// here, never through json::parse directly: the parser is iterative, but
// dump() and the comparisons recurse, one stack frame per level.
json parse_body(std::string_view text);
// True when `text` nests arrays and objects deeper than protocol::kMaxJsonDepth
// (outside strings): what parse_body refuses besides invalid JSON, so an
// answer can say which of the two it was.
bool nested_too_deep(std::string_view text);

}  // namespace tramsync::wire
