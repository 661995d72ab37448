// The wire format of changes: a batch is a JSON object
//   {"protocol": 1, "changes": [ {change}, ... ]}
// where each change carries seq (its position in the sender's log), origin,
// origin_seq, hlc, station_id, kind, record_id and payload (the JSON object
// written to the log). Decoding checks every field's presence and type and names
// the first one that is wrong. docs/protocol.md has examples.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tramsync/core/model.h"
#include "tramsync/core/status.h"

namespace tramsync::wire {

std::string encode_batch(const std::vector<Change>& changes);
Result<std::vector<Change>> decode_batch(std::string_view text);

}  // namespace tramsync::wire
