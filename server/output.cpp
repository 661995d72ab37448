#include "output.h"

namespace tramsync::server {

using json = nlohmann::json;

std::string short_id(const std::string& id) { return id.substr(0, 8); }

json to_json(const StationInfo& s) {
  return {{"id", s.id}, {"code", s.code}, {"name", s.name}, {"district", s.district}, {"province", s.province}};
}

}  // namespace tramsync::server
