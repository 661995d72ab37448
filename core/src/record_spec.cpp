// What each kind of record looks like to the merge (record_spec.h).
#include "record_spec.h"

#include <algorithm>
#include <cmath>

#include "tramsync/core/model.h"
#include "tramsync/core/replica.h"
#include "tramsync/core/text.h"

namespace tramsync::records {

namespace {
const std::vector<std::string> kReplicatedDeviceRoles = {kRoleStation, kRoleMobile};
}  // namespace

const std::vector<RecordSpec>& specs() {
  static const std::vector<RecordSpec> kSpecs = {
      {kind::kStation, "stations", false,
       {{"code", Type::kText, true}, {"name", Type::kText, true}, {"district", Type::kText},
        {"province", Type::kText}}},
      {kind::kStaff, "staff", false,
       {{"name", Type::kText, true}, {"role", Type::kText}, {"active", Type::kBool}}},
      {kind::kHousehold, "households", false,
       {{"village", Type::kText, true}, {"head_name", Type::kText}, {"address", Type::kText},
        {"phone", Type::kText}, {"created_at", Type::kText, true}}},
      {kind::kPatient, "patients", false,
       {{"name", Type::kText, true}, {"sex", Type::kText, true, &kSexes}, {"birth", Type::kText, true},
        {"village", Type::kText, true}, {"household_id", Type::kOptText}, {"phone", Type::kText},
        {"national_id", Type::kText}, {"status", Type::kText, false, &kPatientStatuses},
        {"status_changed_at", Type::kText}, {"created_at", Type::kText, true},
        // A duplicate's link to the record kept (the centre's `duplicates merge`),
        // and that record's station code, for a station that cannot see it.
        {"same_as", Type::kText}, {"same_as_station", Type::kText}}},
      {kind::kItem, "items", false,
       {{"code", Type::kText, true}, {"name", Type::kText, true}, {"unit", Type::kText, true},
        {"kind", Type::kText, true, &kItemKinds}}},
      {kind::kItemReserve, "item_reserves", false, {{"item_id", Type::kText, true}, {"level", Type::kInt, true}}},
      {kind::kWasteBatch, "waste_batches", false,
       {{"kind", Type::kText, true, &kWasteKinds}, {"bags", Type::kInt, true}, {"weight_kg", Type::kReal, true},
        {"patient_id", Type::kOptText}, {"household_id", Type::kOptText}, {"note", Type::kText},
        {"created_at", Type::kText, true}}},
      {kind::kVisit, "visits", true,
       {{"patient_id", Type::kText, true}, {"at", Type::kText, true}, {"temp_c", Type::kOptReal},
        {"spo2", Type::kOptInt}, {"bp_sys", Type::kOptInt}, {"bp_dia", Type::kOptInt}, {"pulse", Type::kOptInt},
        {"symptoms", Type::kText}, {"note", Type::kText}, {"refer", Type::kBool}}},
      {kind::kStockMovement, "stock_movements", true,
       {{"item_id", Type::kText, true}, {"kind", Type::kText, true, &kMovementKinds}, {"lot", Type::kText, true},
        {"expiry", Type::kText}, {"quantity", Type::kInt, true}, {"patient_id", Type::kOptText},
        {"days_supply", Type::kOptInt}, {"reason", Type::kText}, {"counterpart", Type::kText},
        {"at", Type::kText, true}, {"group_id", Type::kOptText}}},
      {kind::kWasteStage, "waste_stages", true,
       {{"batch_id", Type::kText, true}, {"stage", Type::kText, true, &kWasteStages}, {"at", Type::kText, true},
        {"to_org", Type::kText}, {"note", Type::kText}}},
      // A device registered at a server (a hub or the centre). Reviewers are not
      // replicated; last seen / last sync / clock skew are each server's own.
      {kind::kDevice, "devices", false,
       {{"name", Type::kText}, {"role", Type::kText, true, &kReplicatedDeviceRoles},
        {"token_hash", Type::kText, true}, {"database_id", Type::kText}, {"villages", Type::kText},
        {"revoked_at", Type::kText}, {"created_at", Type::kText, true}, {"renewed_from", Type::kText}}},
      {kind::kVoid, "voids", true,
       {{"event_id", Type::kText, true}, {"event_kind", Type::kText, true}, {"reason", Type::kText, true},
        {"at", Type::kText, true}}},
  };
  return kSpecs;
}

const RecordSpec* find_spec(const std::string& k) {
  for (const auto& s : specs()) {
    if (k == s.kind) return &s;
  }
  return nullptr;
}

const Column* find_column(const RecordSpec& spec, const std::string& name) {
  for (const auto& c : spec.columns) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

// Checks a received value against its column. Returns a reason, empty when fine.
std::string check_value(const Column& c, const json& v) {
  const std::string f = c.name;
  switch (c.type) {
    case Type::kText:
      if (!v.is_string()) return f + " must be a string";
      break;
    case Type::kOptText:
      if (!v.is_string() && !v.is_null()) return f + " must be a string or null";
      break;
    case Type::kInt:
      if (!v.is_number_integer()) return f + " must be an integer";
      break;
    case Type::kOptInt:
      if (!v.is_number_integer() && !v.is_null()) return f + " must be an integer or null";
      break;
    case Type::kReal:
      if (!v.is_number() || !std::isfinite(v.get<double>())) return f + " must be a number";
      break;
    case Type::kOptReal:
      if (!v.is_null() && (!v.is_number() || !std::isfinite(v.get<double>()))) return f + " must be a number or null";
      break;
    case Type::kBool:
      if (!v.is_boolean()) return f + " must be true or false";
      break;
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (!is_valid_utf8(s)) return f + " must be valid UTF-8";
    if (s.size() > 100'000) return f + " is too long";
    if (c.allowed && std::find(c.allowed->begin(), c.allowed->end(), s) == c.allowed->end()) {
      return f + " has an unknown value \"" + s + "\"";
    }
  }
  return {};
}

// Binds a JSON value to a statement parameter, as its column's type stores it.
void bind_json(db::Stmt& s, int i, const json& v) {
  if (v.is_null()) {
    s.bind(i, std::nullopt);
  } else if (v.is_boolean()) {
    s.bind(i, v.get<bool>());
  } else if (v.is_number_integer()) {
    s.bind(i, v.get<int64_t>());
  } else if (v.is_number()) {
    s.bind(i, v.get<double>());
  } else if (v.is_string()) {
    s.bind(i, v.get_ref<const std::string&>());
  } else {
    s.bind(i, v.dump());  // arrays (symptoms) are stored as JSON text
  }
}

// Reads column `col` of a row as the JSON value its spec says it holds.
json read_json(db::Stmt& s, int col, Type t) {
  if (s.is_null(col)) return nullptr;
  switch (t) {
    case Type::kInt:
    case Type::kOptInt: return s.i64(col);
    case Type::kReal:
    case Type::kOptReal: return s.dbl(col);
    case Type::kBool: return s.i64(col) != 0;
    default: return s.str(col);
  }
}

std::optional<merge::Version> version_from(const json& v) {
  if (!v.is_array() || v.size() < 2 || !v[0].is_number_unsigned() || !v[1].is_string()) return std::nullopt;
  return merge::Version{v[0].get<uint64_t>(), v[1].get<std::string>()};
}

std::optional<merge::Version> base_from(const json& entry) {
  if (entry.is_array() && entry.size() >= 3) return version_from(entry[2]);
  return std::nullopt;
}


}  // namespace tramsync::records
