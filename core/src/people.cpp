// Staff, households and patients: registration, updates, search and import.
#include <algorithm>
#include <set>

#include "entity.h"
#include "store_impl.h"
#include "tramsync/core/text.h"
#include "tramsync/core/validate.h"

namespace tramsync {

const char* const kPatientColumns =
    "p.id, p.station_id, p.name, p.sex, p.birth, p.village, coalesce(p.household_id, ''), p.phone, p.national_id, "
    "p.status, p.status_changed_at, p.created_at, "
    "(SELECT coalesce(json_group_array(value), '[]') FROM (SELECT value FROM patient_sets "
    " WHERE patient_id = p.id AND field = 'categories' AND present ORDER BY value)), "
    "(SELECT coalesce(json_group_array(value), '[]') FROM (SELECT value FROM patient_sets "
    " WHERE patient_id = p.id AND field = 'conditions' AND present ORDER BY value)), "
    "p.same_as, p.same_as_station";

Patient read_patient_row(db::Stmt& s) {
  Patient p;
  p.id = s.str(0);
  p.station_id = s.str(1);
  p.name = s.str(2);
  p.sex = s.str(3);
  p.birth = s.str(4);
  p.village = s.str(5);
  p.household_id = s.str(6);
  p.phone = s.str(7);
  p.national_id = s.str(8);
  p.status = s.str(9);
  p.status_changed_at = s.str(10);
  p.created_at = s.str(11);
  p.categories = json::parse(s.str(12)).get<std::vector<std::string>>();
  p.conditions = json::parse(s.str(13)).get<std::vector<std::string>>();
  p.same_as = s.str(14);
  p.same_as_station = s.str(15);
  return p;
}

// The search index and folded village of a patient, from its row as it now is.
void reindex_patient(Action& a, const std::string& id) {
  auto q = a.db().prepare("SELECT rowid, name, village FROM patients WHERE id = ?1");
  q.bind(1, id);
  if (!q.step()) return;
  const int64_t rowid = q.i64(0);
  const std::string name = fold_for_search(q.str(1)), village = fold_for_search(q.str(2));
  q.release();
  a.db()
      .prepare("UPDATE patients SET village_fold = ?1, name_fold = ?2 WHERE rowid = ?3")
      .bind(1, village)
      .bind(2, name)
      .bind(3, rowid)
      .run();
  a.db().prepare("DELETE FROM patient_search WHERE rowid = ?1").bind(1, rowid).run();
  a.db()
      .prepare("INSERT INTO patient_search(rowid, name, village) VALUES (?1, ?2, ?3)")
      .bind(1, rowid)
      .bind(2, name)
      .bind(3, village)
      .run();
}

namespace {

std::vector<std::string> unique_trimmed(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& v : in) {
    std::string t = validate::trim(v);
    if (!t.empty() && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  }
  return out;
}

void set_members(Action& a, const std::string& patient_id, const char* field, const std::vector<std::string>& values,
                 bool present, uint64_t hlc) {
  for (const auto& v : values) {
    a.db()
        .prepare(
            "INSERT INTO patient_sets(patient_id, field, value, present, hlc, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
            "ON CONFLICT(patient_id, field, value) DO UPDATE SET present = excluded.present, hlc = excluded.hlc, "
            "origin = excluded.origin")
        .bind(1, patient_id)
        .bind(2, field)
        .bind(3, v)
        .bind(4, present)
        .bind(5, hlc)
        .bind(6, a.store().device_id())
        .run();
  }
}

// Validates a new patient and resolves its household. On success `in` is normalised.
Status check_new_patient(StoreImpl& s, PatientInput& in) {
  in.name = validate::trim(in.name);
  in.village = validate::trim(in.village);
  in.phone = validate::trim(in.phone);
  in.national_id = validate::trim(in.national_id);
  in.categories = unique_trimmed(in.categories);
  in.conditions = unique_trimmed(in.conditions);
  if (in.household_id && !validate::trim(*in.household_id).empty()) {
    auto h = s.resolve("household", *in.household_id);
    if (!h) return h.error();
    in.household_id = *h;
    if (in.village.empty()) {
      auto q = s.db->prepare("SELECT village FROM households WHERE id = ?1");
      q.bind(1, *h);
      if (q.step()) in.village = q.str(0);
    }
  } else {
    in.household_id.reset();
  }
  if (auto st = validate::patient(in, s.today()); !st) return st;
  return {};
}


std::string insert_patient(Action& a, const PatientInput& in) {
  StoreImpl& s = a.store();
  std::string id = s.ids->new_id();
  std::string now = s.local_now();
  a.db()
      .prepare(
          "INSERT INTO patients(id, station_id, household_id, name, sex, birth, village, phone, national_id, status, "
          "created_at, village_fold, name_fold, _v) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'active', ?10, ?11, ?12, "
          "?13)")
      .bind(1, id)
      .bind(2, s.station_id())
      .bind(3, in.household_id)
      .bind(4, in.name)
      .bind(5, in.sex)
      .bind(6, in.birth)
      .bind(7, in.village)
      .bind(8, in.phone)
      .bind(9, in.national_id)
      .bind(10, now)
      .bind(11, fold_for_search(in.village))
      .bind(12, fold_for_search(in.name))
      .bind(13, new_entity_versions(a))
      .run();
  a.db()
      .prepare("INSERT INTO patient_search(rowid, name, village) VALUES (?1, ?2, ?3)")
      .bind(1, a.db().last_insert_rowid())
      .bind(2, fold_for_search(in.name))
      .bind(3, fold_for_search(in.village))
      .run();
  uint64_t hlc = a.peek_hlc();
  set_members(a, id, "categories", in.categories, true, hlc);
  set_members(a, id, "conditions", in.conditions, true, hlc);
  json fields = {{"name", in.name},     {"sex", in.sex},       {"birth", in.birth},
                 {"village", in.village}, {"phone", in.phone}, {"national_id", in.national_id},
                 {"status", "active"},  {"created_at", now},
                 {"household_id", in.household_id ? json(*in.household_id) : json(nullptr)}};
  json sets = {{"categories", {{"add", in.categories}, {"remove", json::array()}}},
               {"conditions", {{"add", in.conditions}, {"remove", json::array()}}}};
  record_entity_insert(a, kind::kPatient, id, s.station_id(), fields, sets);
  return id;
}

}  // namespace

Status check_national_id_free(StoreImpl& s, const std::string& national_id, const std::string& except_id,
                              const std::string& station_id) {
  if (national_id.empty()) return {};
  // "national_id != ''" lets SQLite use the partial index patients_national_id
  // (it cannot prove a bound ?1 is not empty); without it, every add and
  // import read all the station's patients (bench/local_bench.cpp).
  auto q = s.db->prepare(
      "SELECT id FROM patients WHERE national_id = ?1 AND national_id != '' AND station_id = ?2 AND id != ?3 "
      "LIMIT 1");
  q.bind(1, national_id).bind(2, station_id.empty() ? s.station_id() : station_id).bind(3, except_id);
  if (q.step()) {
    return Error{ErrorCode::kConflict, "", "national_id", "is already registered for patient " + q.str(0),
                 national_id};
  }
  return {};
}

Result<std::string> Store::add_staff(const StaffInput& in) {
  if (auto st = validate::required_text("name", in.name); !st) return std::move(st.error()).in("staff add");
  if (auto st = validate::optional_text("role", in.role, 100); !st) return std::move(st.error()).in("staff add");
  return impl_->act("staff add", [&](Action& a) -> Result<std::string> {
    std::string id = impl_->ids->new_id();
    a.db()
        .prepare("INSERT INTO staff(id, station_id, name, role, _v) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(1, id)
        .bind(2, impl_->station_id())
        .bind(3, validate::trim(in.name))
        .bind(4, validate::trim(in.role))
        .bind(5, new_entity_versions(a))
        .run();
    record_entity_insert(a, kind::kStaff, id, impl_->station_id(),
                        {{"name", validate::trim(in.name)}, {"role", validate::trim(in.role)}, {"active", true}});
    return id;
  });
}

Result<std::string> Store::add_household(const HouseholdInput& in) {
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in("household add");
  HouseholdInput h{validate::trim(in.village), validate::trim(in.head_name), validate::trim(in.address),
                   validate::trim(in.phone)};
  if (auto st = validate::required_text("village", h.village); !st) return std::move(st.error()).in("household add");
  if (auto st = validate::optional_text("head", h.head_name); !st) return std::move(st.error()).in("household add");
  if (auto st = validate::optional_text("address", h.address); !st) return std::move(st.error()).in("household add");
  if (auto st = validate::optional_text("phone", h.phone, 40); !st) return std::move(st.error()).in("household add");
  return impl_->act("household add", [&](Action& a) -> Result<std::string> {
    std::string id = impl_->ids->new_id();
    std::string now = impl_->local_now();
    a.db()
        .prepare(
            "INSERT INTO households(id, station_id, village, head_name, address, phone, created_at, _v) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .bind(1, id)
        .bind(2, impl_->station_id())
        .bind(3, h.village)
        .bind(4, h.head_name)
        .bind(5, h.address)
        .bind(6, h.phone)
        .bind(7, now)
        .bind(8, new_entity_versions(a))
        .run();
    record_entity_insert(a, kind::kHousehold, id, impl_->station_id(),
                        {{"village", h.village},
                         {"head_name", h.head_name},
                         {"address", h.address},
                         {"phone", h.phone},
                         {"created_at", now}});
    return id;
  });
}

Result<Household> Store::get_household(const std::string& id_or_prefix) {
  auto id = impl_->resolve("household", id_or_prefix);
  if (!id) return std::move(id.error()).in("household show");
  auto s = impl_->db->prepare(
      "SELECT id, station_id, village, head_name, address, phone, created_at FROM households WHERE id = ?1");
  s.bind(1, *id);
  if (!s.step()) return Error::not_found("household", id_or_prefix).in("household show");
  return Household{s.str(0), s.str(1), s.str(2), s.str(3), s.str(4), s.str(5), s.str(6)};
}

std::vector<Patient> Store::household_members(const std::string& household_id) {
  std::vector<Patient> out;
  auto s = impl_->db->prepare(std::string("SELECT ") + kPatientColumns +
                              " FROM patients p WHERE p.household_id = ?1 ORDER BY p.name");
  s.bind(1, household_id);
  while (s.step()) out.push_back(read_patient_row(s));
  return out;
}

Result<std::string> Store::add_patient(const PatientInput& input) {
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in("patient add");
  PatientInput in = input;
  if (auto st = check_new_patient(*impl_, in); !st) return std::move(st.error()).in("patient add");
  if (auto st = check_national_id_free(*impl_, in.national_id, ""); !st) {
    return std::move(st.error()).in("patient add");
  }
  return impl_->act("patient add", [&](Action& a) -> Result<std::string> { return insert_patient(a, in); });
}

ImportResult Store::import_patients(const std::vector<std::pair<int64_t, PatientInput>>& rows, bool skip_invalid,
                                    bool validate_only) {
  ImportResult result;
  if (auto id = impl_->require_identity(); !id) {
    result.rejected.push_back({0, id.error().message()});
    return result;
  }
  std::vector<PatientInput> good;
  good.reserve(rows.size());
  std::set<std::string> national_ids;
  for (const auto& [line, row] : rows) {
    PatientInput in = row;
    Status st = check_new_patient(*impl_, in);
    if (st) st = check_national_id_free(*impl_, in.national_id, "");
    if (st && !in.national_id.empty() && !national_ids.insert(in.national_id).second) {
      st = Error{ErrorCode::kConflict, "", "national_id", "appears twice in the file", in.national_id};
    }
    if (!st) {
      result.rejected.push_back({line, st.error().message()});
      continue;
    }
    good.push_back(std::move(in));
  }
  if (validate_only || (!result.rejected.empty() && !skip_invalid)) return result;
  auto r = impl_->act("patient import", [&](Action& a) -> Result<std::vector<std::string>> {
    std::vector<std::string> ids;
    ids.reserve(good.size());
    for (const auto& in : good) ids.push_back(insert_patient(a, in));
    return ids;
  });
  if (!r) {
    result.rejected.push_back({0, r.error().message()});
    return result;
  }
  result.ids = std::move(r.value());
  result.imported = static_cast<int64_t>(result.ids.size());
  return result;
}

Status Store::update_patient(const std::string& id_or_prefix, const PatientUpdate& up) {
  auto id = impl_->resolve("patient", id_or_prefix);
  if (!id) return std::move(id.error()).in("patient update");
  auto current = get_patient(*id);
  if (!current) return std::move(current.error()).in("patient update");
  const Patient& cur = *current;

  // Build the changed fields, validating each.
  json fields = json::object();
  auto text_field = [&](const char* name, const std::optional<std::string>& v, const std::string& old,
                        bool required) -> Status {
    if (!v) return {};
    std::string t = validate::trim(*v);
    Status st = required ? validate::required_text(name, t) : validate::optional_text(name, t, 40);
    if (!st) return st;
    if (t != old) fields[name] = t;
    return {};
  };
  Status st;
  if (st = text_field("name", up.name, cur.name, true); !st) return std::move(st.error()).in("patient update");
  if (st = text_field("village", up.village, cur.village, true); !st) return std::move(st.error()).in("patient update");
  if (st = text_field("phone", up.phone, cur.phone, false); !st) return std::move(st.error()).in("patient update");
  if (st = text_field("national_id", up.national_id, cur.national_id, false); !st) {
    return std::move(st.error()).in("patient update");
  }
  if (fields.contains("national_id")) {
    if (st = check_national_id_free(*impl_, fields["national_id"], cur.id); !st) {
      return std::move(st.error()).in("patient update");
    }
  }
  if (up.sex) {
    if (st = validate::one_of("sex", *up.sex, kSexes); !st) return std::move(st.error()).in("patient update");
    if (*up.sex != cur.sex) fields["sex"] = *up.sex;
  }
  if (up.birth) {
    if (st = validate::birth(*up.birth, impl_->today()); !st) return std::move(st.error()).in("patient update");
    if (*up.birth != cur.birth) fields["birth"] = *up.birth;
  }
  if (up.household_id) {
    if (validate::trim(*up.household_id).empty()) {
      if (!cur.household_id.empty()) fields["household_id"] = nullptr;
    } else {
      auto h = impl_->resolve("household", *up.household_id);
      if (!h) return std::move(h.error()).in("patient update");
      if (*h != cur.household_id) fields["household_id"] = *h;
    }
  }
  std::string now = impl_->local_now();
  if (up.status) {
    if (st = validate::one_of("status", *up.status, kPatientStatuses); !st) {
      return std::move(st.error()).in("patient update");
    }
    if (*up.status != cur.status) {
      fields["status"] = *up.status;
      fields["status_changed_at"] = now;
    }
  }
  auto set_delta = [&](const std::vector<std::string>& add, const std::vector<std::string>& remove,
                       const std::vector<std::string>& have, const char* field,
                       const std::vector<std::string>* allowed) -> Result<json> {
    std::vector<std::string> a, r;
    for (const auto& v : unique_trimmed(add)) {
      if (allowed) {
        if (auto s = validate::one_of(field, v, *allowed); !s) return s.error();
      } else if (auto s = validate::required_text(field, v); !s) {
        return s.error();
      }
      if (std::find(have.begin(), have.end(), v) == have.end()) a.push_back(v);
    }
    for (const auto& v : unique_trimmed(remove)) {
      if (std::find(have.begin(), have.end(), v) == have.end()) {
        return Error::invalid(field, "can only remove a value the patient has", v);
      }
      r.push_back(v);
    }
    if (a.empty() && r.empty()) return json(nullptr);
    return json{{"add", a}, {"remove", r}};
  };
  auto cats = set_delta(up.add_categories, up.remove_categories, cur.categories, "category", &kCategories);
  if (!cats) return std::move(cats.error()).in("patient update");
  auto conds = set_delta(up.add_conditions, up.remove_conditions, cur.conditions, "condition", nullptr);
  if (!conds) return std::move(conds.error()).in("patient update");
  json sets = json::object();
  if (!cats->is_null()) sets["categories"] = *cats;
  if (!conds->is_null()) sets["conditions"] = *conds;
  if (fields.empty() && sets.empty()) return {};  // nothing changes, nothing to record

  return impl_->act("patient update", [&](Action& a) -> Status {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      // Column names come from the fixed list above, never from input.
      a.db()
          .prepare("UPDATE patients SET " + it.key() + " = ?1 WHERE id = ?2")
          .bind(1, it->is_null() ? std::optional<std::string>() : std::optional<std::string>(it->get<std::string>()))
          .bind(2, cur.id)
          .run();
    }
    if (fields.contains("name") || fields.contains("village")) {
      reindex_patient(a, cur.id);
    }
    uint64_t hlc = a.peek_hlc();
    for (const auto& [field, delta] : sets.items()) {
      set_members(a, cur.id, field.c_str(), delta["add"].get<std::vector<std::string>>(), true, hlc);
      set_members(a, cur.id, field.c_str(), delta["remove"].get<std::vector<std::string>>(), false, hlc);
    }
    record_entity_update(a, "patients", kind::kPatient, cur.id, cur.station_id, fields,
                        sets.empty() ? json(nullptr) : sets);
    return {};
  });
}

Result<Patient> Store::get_patient(const std::string& id_or_prefix) {
  auto id = impl_->resolve("patient", id_or_prefix);
  if (!id) return id.error();
  auto s = impl_->db->prepare(std::string("SELECT ") + kPatientColumns + " FROM patients p WHERE p.id = ?1");
  s.bind(1, *id);
  if (!s.step()) return Error::not_found("patient", id_or_prefix);
  return read_patient_row(s);
}

namespace {
// Turns a folded search text into an FTS5 query: every word must match the start
// of a word in the name or the village.
std::string fts_query(const std::string& folded) {
  std::string q, word;
  auto flush = [&]() {
    if (word.empty()) return;
    q += (q.empty() ? "" : " ") + std::string("\"") + word + "\"*";
    word.clear();
  };
  for (char c : folded) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || std::isalnum(u)) {
      word += c;
    } else {
      flush();
    }
  }
  flush();
  return q;
}
}  // namespace

std::vector<PatientRow> Store::list_patients(const PatientQuery& q, const ReportSettings& settings) {
  std::string sql = std::string("SELECT ") + kPatientColumns +
                    ", (SELECT max(v.at) FROM visits v WHERE v.patient_id = p.id AND NOT EXISTS "
                    "(SELECT 1 FROM voids x WHERE x.event_id = v.id)) FROM patients p WHERE 1";
  std::string fts = fts_query(fold_for_search(q.search));
  if (!validate::trim(q.search).empty() && fts.empty()) return {};
  if (!fts.empty()) sql += " AND p.rowid IN (SELECT rowid FROM patient_search WHERE patient_search MATCH :fts)";
  if (!q.village.empty()) sql += " AND p.village_fold = :village";
  if (!q.category.empty()) {
    sql += " AND EXISTS (SELECT 1 FROM patient_sets c WHERE c.patient_id = p.id AND c.field = 'categories' "
           "AND c.value = :category AND c.present)";
  }
  if (!q.status.empty()) sql += " AND p.status = :status";
  sql += " ORDER BY p.name, p.id";

  db::ReadTxn read(*impl_->db);
  auto s = impl_->db->prepare(sql);
  if (!fts.empty()) s.bind(":fts", fts);
  if (!q.village.empty()) s.bind(":village", fold_for_search(q.village));
  if (!q.category.empty()) s.bind(":category", q.category);
  if (!q.status.empty()) s.bind(":status", q.status);

  std::string now = impl_->local_now();
  int64_t now_ms = ms_from_local_time(now, 0);
  std::vector<PatientRow> out;
  while (s.step()) {
    PatientRow row;
    row.patient = read_patient_row(s);
    row.last_visit = s.str(16);  // after kPatientColumns
    const std::string& since = row.last_visit.empty() ? row.patient.created_at : row.last_visit;
    int64_t elapsed = now_ms - ms_from_local_time(since, 0);
    row.days_since_contact = elapsed / 86'400'000;
    const auto& cats = row.patient.categories;
    bool covid = std::find(cats.begin(), cats.end(), "covid-home") != cats.end();
    int limit_days = covid ? settings.covid_overdue_days : settings.other_overdue_days;
    row.overdue = row.patient.status == "active" && !cats.empty() && elapsed > int64_t{limit_days} * 86'400'000;
    if (q.overdue_only && !row.overdue) continue;
    out.push_back(std::move(row));
    if (q.limit && static_cast<int64_t>(out.size()) >= *q.limit) break;
  }
  return out;
}

}  // namespace tramsync
