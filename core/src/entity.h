// Writing entities: field versions and the change that goes with them.
//
// A row's `_v` column holds the version ([hlc, origin], or [hlc, origin, base]
// where base is the [hlc, origin] the writer had seen) of each field as JSON.
// The key "" holds the version every field got when the record was created; a
// field listed by name was written later. In a change payload, `base` lists for
// each written field the version the writer had seen; a field absent from
// `base` had none (the record, or the field, is new).
#pragma once

#include <string>

#include "store_impl.h"

namespace tramsync {

// The `_v` value to insert with a new entity row: every field at the version of
// the change record_entity_insert() will append next.
std::string new_entity_versions(Action& a);

// Appends the change for a new entity just inserted with new_entity_versions().
uint64_t record_entity_insert(Action& a, const char* kind, const std::string& id, const std::string& station_id,
                              const json& fields, const json& sets = nullptr);

// Records that `fields` of an existing entity `id` were just written by this
// device (the row itself is already updated): each field's version becomes the
// change's (hlc, origin), and one change is appended carrying the fields, the
// versions they replaced and, when given, set additions/removals. A row with no
// versions yet (inserted by an upsert) is treated as new.
// `more`: further payload keys written as given (a resolution's "resolves").
uint64_t record_entity_update(Action& a, const char* table, const char* kind, const std::string& id,
                              const std::string& station_id, const json& fields, const json& sets = nullptr,
                              const json& more = nullptr);

// The version of `field` in a row's `_v` (null when it has none).
json field_version(const json& versions, const std::string& field);

// Refreshes a patient's search index and folded village from its row (after a
// local edit or a peer's change wrote its name or village). people.cpp.
void reindex_patient(Action& a, const std::string& id);

// Refuses (kConflict) a national id another patient of `station_id` (default:
// this node's station) already has; `except_id` is the patient being edited.
Status check_national_id_free(StoreImpl& s, const std::string& national_id, const std::string& except_id,
                              const std::string& station_id = "");

// Appends the change for a newly inserted event (the whole event as its payload).
uint64_t record_event(Action& a, const char* kind, const std::string& id, const std::string& station_id,
                      const json& event);

}  // namespace tramsync
