// Writing entities: field versions and the change that goes with them.
#pragma once

#include <string>

#include "store_impl.h"

namespace tramsync {

// Records that `fields` of entity `id` were just written by this device (the row
// itself is already inserted or updated): each field's version becomes the
// change's (hlc, origin), and one change is appended carrying the fields, the
// versions they replaced (`base`, null for a new field) and, when given, the
// set additions/removals. Returns the change's hlc.
uint64_t record_entity_write(Action& a, const char* table, const char* kind, const std::string& id,
                             const std::string& station_id, const json& fields, const json& sets = nullptr);

// Appends the change for a newly inserted event (the whole event as its payload).
uint64_t record_event(Action& a, const char* kind, const std::string& id, const std::string& station_id,
                      const json& event);

}  // namespace tramsync
