#include "tramsync/sync/wire.h"

#include <nlohmann/json.hpp>

#include "tramsync/sync/protocol.h"

namespace tramsync::wire {

using json = nlohmann::json;

std::string encode_batch(const std::vector<Change>& changes) {
  json arr = json::array();
  for (const auto& c : changes) {
    arr.push_back({{"origin", c.origin},
                   {"origin_seq", c.origin_seq},
                   {"hlc", c.hlc},
                   {"station_id", c.station_id},
                   {"kind", c.kind},
                   {"record_id", c.record_id},
                   {"payload", json::parse(c.payload)}});
  }
  return json{{"protocol", protocol::kVersion}, {"changes", arr}}.dump();
}

namespace {
Error bad(const std::string& field, const std::string& rule, const json& v) {
  std::string shown = v.is_discarded() ? "" : v.dump();
  if (shown.size() > 60) shown = shown.substr(0, 60) + "...";
  return Error::invalid(field, rule, shown).in("change batch");
}
}  // namespace

Result<std::vector<Change>> decode_batch(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Error::invalid("body", "must be valid JSON", "").in("change batch");
  if (!doc.is_object()) return bad("body", "must be a JSON object", doc);
  auto pv = doc.find("protocol");
  if (pv == doc.end() || !pv->is_number_integer()) return bad("protocol", "must be an integer", pv == doc.end() ? json() : *pv);
  if (pv->get<int64_t>() < protocol::kMinSupportedVersion || pv->get<int64_t>() > protocol::kVersion) {
    return bad("protocol", "must be a supported version (1)", *pv);
  }
  auto cs = doc.find("changes");
  if (cs == doc.end() || !cs->is_array()) return bad("changes", "must be an array", cs == doc.end() ? json() : *cs);
  std::vector<Change> out;
  out.reserve(cs->size());
  size_t i = 0;
  for (const auto& c : *cs) {
    std::string at = "changes[" + std::to_string(i++) + "].";
    if (!c.is_object()) return bad(at.substr(0, at.size() - 1), "must be an object", c);
    Change ch;
    auto str = [&](const char* f, std::string& dst) -> Status {
      auto it = c.find(f);
      if (it == c.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
        return bad(at + f, "must be a non-empty string", it == c.end() ? json() : *it);
      }
      dst = it->get<std::string>();
      return {};
    };
    for (auto [f, dst] : {std::pair{"origin", &ch.origin}, std::pair{"station_id", &ch.station_id},
                          std::pair{"kind", &ch.kind}, std::pair{"record_id", &ch.record_id}}) {
      if (auto st = str(f, *dst); !st) return st.error();
    }
    auto seq = c.find("origin_seq");
    if (seq == c.end() || !seq->is_number_integer() || seq->get<int64_t>() <= 0) {
      return bad(at + "origin_seq", "must be a positive integer", seq == c.end() ? json() : *seq);
    }
    ch.origin_seq = seq->get<int64_t>();
    auto hlc = c.find("hlc");
    if (hlc == c.end() || !hlc->is_number_unsigned()) {
      return bad(at + "hlc", "must be a non-negative integer", hlc == c.end() ? json() : *hlc);
    }
    ch.hlc = hlc->get<uint64_t>();
    auto payload = c.find("payload");
    if (payload == c.end() || !payload->is_object()) {
      return bad(at + "payload", "must be an object", payload == c.end() ? json() : *payload);
    }
    ch.payload = payload->dump();
    out.push_back(std::move(ch));
  }
  return out;
}

}  // namespace tramsync::wire
