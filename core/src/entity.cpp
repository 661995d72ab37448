#include "entity.h"

namespace tramsync {

namespace {
json upsert_payload(const json& fields, const json& base, const json& sets) {
  json payload = {{"op", "upsert"}, {"fields", fields}};
  if (!base.empty()) payload["base"] = base;
  if (!sets.is_null()) payload["sets"] = sets;
  return payload;
}
}  // namespace

json field_version(const json& versions, const std::string& field) {
  if (auto it = versions.find(field); it != versions.end()) return *it;
  if (auto it = versions.find(""); it != versions.end()) return *it;
  return nullptr;
}

std::string new_entity_versions(Action& a) {
  return json{{"", StoreImpl::version_of(a.peek_hlc(), a.store().device_id())}}.dump();
}

uint64_t record_entity_insert(Action& a, const char* kind, const std::string& id, const std::string& station_id,
                              const json& fields, const json& sets) {
  return a.append_change(kind, id, station_id, upsert_payload(fields, json::object(), sets));
}

uint64_t record_entity_update(Action& a, const char* table, const char* kind, const std::string& id,
                              const std::string& station_id, const json& fields, const json& sets,
                              const json& more) {
  StoreImpl& s = a.store();
  json versions = s.versions(table, id);
  json now = StoreImpl::version_of(a.peek_hlc(), s.device_id());
  json base = json::object();
  if (versions.empty()) {
    versions[""] = now;
  } else {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      json seen = field_version(versions, it.key());
      json entry = now;
      if (!seen.is_null()) {
        base[it.key()] = json::array({seen[0], seen[1]});
        entry.push_back(base[it.key()]);  // [hlc, origin, base]: lets an older ancestor be told from a rival
      }
      versions[it.key()] = entry;
    }
  }
  s.set_versions(a, table, id, versions);
  json payload = upsert_payload(fields, base, sets);
  if (more.is_object()) {
    for (auto it = more.begin(); it != more.end(); ++it) payload[it.key()] = it.value();
  }
  return a.append_change(kind, id, station_id, payload);
}

uint64_t record_event(Action& a, const char* kind, const std::string& id, const std::string& station_id,
                      const json& event) {
  return a.append_change(kind, id, station_id, {{"op", "insert"}, {"event", event}});
}

}  // namespace tramsync
