#include "tramsync/sync/wire.h"

#include "tramsync/sync/protocol.h"
#include "wire_json.h"

namespace tramsync::wire {

json change_to_json(const Change& c) {
  return {{"seq", c.seq},
          {"origin", c.origin},
          {"origin_seq", c.origin_seq},
          {"hlc", c.hlc},
          {"station_id", c.station_id},
          {"kind", c.kind},
          {"record_id", c.record_id},
          {"payload", json::parse(c.payload)}};
}

json changes_to_json(const std::vector<Change>& changes) {
  json arr = json::array();
  for (const auto& c : changes) arr.push_back(change_to_json(c));
  return arr;
}

std::string encode_batch(const std::vector<Change>& changes) {
  // Text that is not UTF-8 (a payload written by an older client) is replaced, not thrown on.
  return json{{"protocol", protocol::kVersion}, {"changes", changes_to_json(changes)}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

namespace {
Error bad(const std::string& field, const std::string& rule, const json& v) {
  std::string shown = v.is_discarded() || v.is_null() ? "" : v.dump();
  if (shown.size() > 60) shown = shown.substr(0, 60) + "...";
  return Error::invalid(field, rule, shown).in("change batch");
}
}  // namespace

Status check_protocol(const json& doc) {
  auto pv = doc.find("protocol");
  if (pv == doc.end() || !pv->is_number_integer()) {
    return bad("protocol", "must be an integer", pv == doc.end() ? json() : *pv);
  }
  if (pv->get<int64_t>() < protocol::kMinSupportedVersion || pv->get<int64_t>() > protocol::kVersion) {
    return bad("protocol", "must be a supported version (" + std::to_string(protocol::kVersion) + ")", *pv);
  }
  return {};
}

Result<std::vector<Change>> changes_from_json(const json& doc, const char* key) {
  auto cs = doc.find(key);
  if (cs == doc.end() || !cs->is_array()) return bad(key, "must be an array", cs == doc.end() ? json() : *cs);
  std::vector<Change> out;
  out.reserve(cs->size());
  size_t i = 0;
  for (const auto& c : *cs) {
    std::string at = std::string(key) + "[" + std::to_string(i++) + "].";
    if (!c.is_object()) return bad(at.substr(0, at.size() - 1), "must be an object", c);
    Change ch;
    auto str = [&](const char* f, std::string& dst, bool may_be_empty) -> Status {
      auto it = c.find(f);
      if (it == c.end() || !it->is_string() || (!may_be_empty && it->get_ref<const std::string&>().empty())) {
        return bad(at + f, may_be_empty ? "must be a string" : "must be a non-empty string",
                   it == c.end() ? json() : *it);
      }
      if (it->get_ref<const std::string&>().size() > 200) return bad(at + f, "must be at most 200 bytes", *it);
      dst = it->get<std::string>();
      return {};
    };
    if (auto st = str("origin", ch.origin, false); !st) return st.error();
    if (auto st = str("station_id", ch.station_id, true); !st) return st.error();  // "" is the shared catalogue
    if (auto st = str("kind", ch.kind, false); !st) return st.error();
    if (auto st = str("record_id", ch.record_id, false); !st) return st.error();
    auto log_seq = c.find("seq");
    if (log_seq == c.end() || !log_seq->is_number_integer() || log_seq->get<int64_t>() < 0) {
      return bad(at + "seq", "must be a non-negative integer", log_seq == c.end() ? json() : *log_seq);
    }
    ch.seq = log_seq->get<int64_t>();
    auto seq = c.find("origin_seq");
    if (seq == c.end() || !seq->is_number_integer() || seq->get<int64_t>() <= 0) {
      return bad(at + "origin_seq", "must be a positive integer", seq == c.end() ? json() : *seq);
    }
    ch.origin_seq = seq->get<int64_t>();
    auto hlc = c.find("hlc");
    if (hlc == c.end() || !hlc->is_number_unsigned() || hlc->get<uint64_t>() >= (uint64_t{1} << 63)) {
      return bad(at + "hlc", "must be a non-negative integer below 2^63", hlc == c.end() ? json() : *hlc);
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

bool nested_too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > protocol::kMaxJsonDepth) return true;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return false;
}

json parse_body(std::string_view text) {
  if (nested_too_deep(text)) return json(json::value_t::discarded);
  return json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

Result<std::vector<Change>> decode_batch(std::string_view text) {
  json doc = parse_body(text);
  if (doc.is_discarded()) return Error::invalid("body", "must be valid JSON", "").in("change batch");
  if (!doc.is_object()) return bad("body", "must be a JSON object", doc);
  if (auto st = check_protocol(doc); !st) return st.error();
  return changes_from_json(doc, "changes");
}

}  // namespace tramsync::wire
