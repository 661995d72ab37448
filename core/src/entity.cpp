#include "entity.h"

namespace tramsync {

uint64_t record_entity_write(Action& a, const char* table, const char* kind, const std::string& id,
                             const std::string& station_id, const json& fields, const json& sets) {
  StoreImpl& s = a.store();
  json versions = s.versions(table, id);
  uint64_t hlc = a.peek_hlc();
  json now = StoreImpl::version_of(hlc, s.device_id());
  json base = json::object();
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    base[it.key()] = versions.contains(it.key()) ? versions[it.key()] : json(nullptr);
    versions[it.key()] = now;
  }
  s.set_versions(a, table, id, versions);
  json payload = {{"op", "upsert"}, {"fields", fields}, {"base", base}};
  if (!sets.is_null()) payload["sets"] = sets;
  return a.append_change(kind, id, station_id, payload);
}

uint64_t record_event(Action& a, const char* kind, const std::string& id, const std::string& station_id,
                      const json& event) {
  return a.append_change(kind, id, station_id, {{"op", "insert"}, {"event", event}});
}

}  // namespace tramsync
