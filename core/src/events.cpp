// Visits, waste batches and their stages, and voids.
#include <algorithm>

#include "entity.h"
#include "store_impl.h"
#include "tramsync/core/validate.h"

namespace tramsync {

namespace {

int stage_rank(const std::string& stage) {
  auto it = std::find(kWasteStages.begin(), kWasteStages.end(), stage);
  return static_cast<int>(it - kWasteStages.begin());
}

// A batch as it stood at the station-local time bound to :asof: only stages
// recorded at or before then count (a report for an earlier day shows that
// day's state, not today's).
const char* const kWasteColumns =
    "b.id, b.kind, coalesce(b.patient_id, ''), coalesce(b.household_id, ''), b.note, b.created_at, b.bags, "
    "b.weight_kg, "
    "(SELECT s.stage || '|' || s.at || '|' || s.to_org FROM waste_stages s WHERE s.batch_id = b.id AND s.at <= :asof "
    " AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = s.id) ORDER BY s.rank DESC, s.at DESC LIMIT 1), "
    "(SELECT s.to_org FROM waste_stages s WHERE s.batch_id = b.id AND s.to_org != '' AND s.at <= :asof AND NOT EXISTS "
    " (SELECT 1 FROM voids x WHERE x.event_id = s.id) ORDER BY s.rank DESC, s.at DESC LIMIT 1)";

WasteBatch read_batch(db::Stmt& q, const std::string& now) {
  WasteBatch b;
  b.id = q.str(0);
  b.kind = q.str(1);
  b.patient_id = q.str(2);
  b.household_id = q.str(3);
  b.note = q.str(4);
  b.created_at = q.str(5);
  b.bags = static_cast<int>(q.i64(6));
  b.weight_kg = q.dbl(7);
  std::string latest = q.str(8);
  if (latest.empty()) {
    b.stage = "bagged";
    b.stage_at = b.created_at;
  } else {
    auto p1 = latest.find('|'), p2 = latest.find('|', p1 + 1);
    b.stage = latest.substr(0, p1);
    b.stage_at = latest.substr(p1 + 1, p2 - p1 - 1);
  }
  b.holder = q.str(9);
  b.age_days = days_between(date_of(b.created_at), date_of(now));
  return b;
}

Result<WasteBatch> load_batch(StoreImpl& s, const std::string& id) {
  auto q = s.db->prepare(std::string("SELECT ") + kWasteColumns + " FROM waste_batches b WHERE b.id = :id");
  const std::string now = s.local_now();
  q.bind(":id", id).bind(":asof", now);
  if (!q.step()) return Error::not_found("batch", id);
  return read_batch(q, now);
}

}  // namespace

Result<std::string> Store::add_visit(const VisitInput& input) {
  const char* ctx = "visit add";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto patient = get_patient(input.patient_id);
  if (!patient) return std::move(patient.error()).in(ctx);
  if (auto st = validate::vitals(input); !st) return std::move(st.error()).in(ctx);
  auto at = validate::event_time(input.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  if (at->substr(0, 10) < patient->birth.substr(0, std::min<size_t>(patient->birth.size(), 10))) {
    return Error::invalid("at", "must not be before the patient's birth", *at).in(ctx);
  }
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    std::string id = impl_->ids->new_id();
    std::vector<std::string> symptoms;
    for (const auto& s : input.symptoms) symptoms.push_back(validate::trim(s));
    uint64_t hlc = a.peek_hlc();
    a.db()
        .prepare(
            "INSERT INTO visits(id, station_id, patient_id, at, temp_c, spo2, bp_sys, bp_dia, pulse, symptoms, note, "
            "refer, origin, hlc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)")
        .bind(1, id)
        .bind(2, patient->station_id)
        .bind(3, patient->id)
        .bind(4, *at)
        .bind(5, input.temp_c)
        .bind(6, input.spo2)
        .bind(7, input.bp_sys)
        .bind(8, input.bp_dia)
        .bind(9, input.pulse)
        .bind(10, json(symptoms).dump())
        .bind(11, validate::trim(input.note))
        .bind(12, input.refer)
        .bind(13, impl_->device_id())
        .bind(14, hlc)
        .run();
    auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
    record_event(a, kind::kVisit, id, patient->station_id,
                 {{"id", id},
                  {"station_id", patient->station_id},
                  {"patient_id", patient->id},
                  {"at", *at},
                  {"temp_c", opt(input.temp_c)},
                  {"spo2", opt(input.spo2)},
                  {"bp_sys", opt(input.bp_sys)},
                  {"bp_dia", opt(input.bp_dia)},
                  {"pulse", opt(input.pulse)},
                  {"symptoms", symptoms},
                  {"note", validate::trim(input.note)},
                  {"refer", input.refer}});
    return id;
  });
}

std::vector<Visit> Store::patient_visits(const std::string& patient_id) {
  std::vector<Visit> out;
  auto q = impl_->db->prepare(
      "SELECT v.id, v.patient_id, v.at, v.temp_c, v.spo2, v.bp_sys, v.bp_dia, v.pulse, v.symptoms, v.note, v.refer, "
      "EXISTS (SELECT 1 FROM voids x WHERE x.event_id = v.id) FROM visits v WHERE v.patient_id = ?1 "
      "ORDER BY v.at DESC, v.id");
  q.bind(1, patient_id);
  auto opt_int = [&](int c) { return q.is_null(c) ? std::optional<int>() : std::optional<int>(q.i64(c)); };
  while (q.step()) {
    Visit v;
    v.id = q.str(0);
    v.patient_id = q.str(1);
    v.at = q.str(2);
    v.temp_c = q.opt_dbl(3);
    v.spo2 = opt_int(4);
    v.bp_sys = opt_int(5);
    v.bp_dia = opt_int(6);
    v.pulse = opt_int(7);
    v.symptoms = json::parse(q.str(8)).get<std::vector<std::string>>();
    v.note = q.str(9);
    v.refer = q.i64(10) != 0;
    v.voided = q.i64(11) != 0;
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::string> Store::add_waste_batch(const WasteBatchInput& in) {
  const char* ctx = "waste add";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  if (auto st = validate::one_of("kind", in.kind, kWasteKinds); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::positive("bags", in.bags); !st) return std::move(st.error()).in(ctx);
  if (!(in.weight_kg > 0) || in.weight_kg > 10000) {
    return Error::invalid("weight_kg", "must be greater than 0 and at most 10000", std::to_string(in.weight_kg))
        .in(ctx);
  }
  if (!in.patient_id.empty() && !in.household_id.empty()) {
    return Error::invalid("patient", "give either a patient or a household, not both", in.patient_id).in(ctx);
  }
  std::string patient_id, household_id;
  if (!in.patient_id.empty()) {
    auto p = impl_->resolve("patient", in.patient_id);
    if (!p) return std::move(p.error()).in(ctx);
    patient_id = *p;
  }
  if (!in.household_id.empty()) {
    auto h = impl_->resolve("household", in.household_id);
    if (!h) return std::move(h.error()).in(ctx);
    household_id = *h;
  }
  if (auto st = validate::optional_text("note", in.note); !st) return std::move(st.error()).in(ctx);
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    std::string id = impl_->ids->new_id();
    auto opt = [](const std::string& s) { return s.empty() ? std::optional<std::string>() : std::optional(s); };
    a.db()
        .prepare(
            "INSERT INTO waste_batches(id, station_id, kind, bags, weight_kg, patient_id, household_id, note, "
            "created_at, _v) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
        .bind(1, id)
        .bind(2, impl_->station_id())
        .bind(3, in.kind)
        .bind(4, in.bags)
        .bind(5, in.weight_kg)
        .bind(6, opt(patient_id))
        .bind(7, opt(household_id))
        .bind(8, validate::trim(in.note))
        .bind(9, *at)
        .bind(10, new_entity_versions(a))
        .run();
    auto j = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
    record_entity_insert(a, kind::kWasteBatch, id, impl_->station_id(),
                        {{"kind", in.kind},
                         {"bags", in.bags},
                         {"weight_kg", in.weight_kg},
                         {"patient_id", j(patient_id)},
                         {"household_id", j(household_id)},
                         {"note", validate::trim(in.note)},
                         {"created_at", *at}});
    return id;
  });
}

Result<std::string> Store::move_waste(const WasteMoveInput& in) {
  const char* ctx = "waste move";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto id = impl_->resolve("waste_batch", in.batch_id);
  if (!id) return std::move(id.error()).in(ctx);
  if (auto st = validate::one_of("stage", in.stage, {kWasteStages.begin() + 1, kWasteStages.end()}); !st) {
    return std::move(st.error()).in(ctx);
  }
  if (auto st = validate::optional_text("to", in.to_org, 200); !st) return std::move(st.error()).in(ctx);
  if (auto st = validate::optional_text("note", in.note); !st) return std::move(st.error()).in(ctx);
  if (in.stage == "handed-over" && validate::trim(in.to_org).empty()) {
    return Error::invalid("to", "must name the treatment unit the waste is handed over to", "").in(ctx);
  }
  auto batch = load_batch(*impl_, *id);
  if (!batch) return std::move(batch.error()).in(ctx);
  if (stage_rank(in.stage) <= stage_rank(batch->stage)) {
    return Error::refused("stage", "must move forward: batch is already " + batch->stage, in.stage).in(ctx);
  }
  auto at = validate::event_time(in.at, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);
  if (*at < batch->stage_at) {
    return Error::invalid("at", "must not be before the batch's last stage (" + batch->stage + " at " +
                                    batch->stage_at.substr(0, 16) + ")",
                          *at)
        .in(ctx);
  }
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    std::string eid = impl_->ids->new_id();
    uint64_t hlc = a.peek_hlc();
    a.db()
        .prepare(
            "INSERT INTO waste_stages(id, station_id, batch_id, stage, rank, at, to_org, note, origin, hlc) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
        .bind(1, eid)
        .bind(2, impl_->station_id())
        .bind(3, *id)
        .bind(4, in.stage)
        .bind(5, stage_rank(in.stage))
        .bind(6, *at)
        .bind(7, validate::trim(in.to_org))
        .bind(8, validate::trim(in.note))
        .bind(9, impl_->device_id())
        .bind(10, hlc)
        .run();
    record_event(a, kind::kWasteStage, eid, impl_->station_id(),
                 {{"id", eid},
                  {"station_id", impl_->station_id()},
                  {"batch_id", *id},
                  {"stage", in.stage},
                  {"at", *at},
                  {"to_org", validate::trim(in.to_org)},
                  {"note", validate::trim(in.note)}});
    return eid;
  });
}

std::vector<WasteBatch> Store::list_waste(bool pending_only, std::optional<int64_t> older_than_days) {
  if (!impl_->require_identity()) return {};
  return impl_->waste_as_of(impl_->local_now(), pending_only, older_than_days);
}

std::vector<WasteBatch> StoreImpl::waste_as_of(const std::string& as_of, bool pending_only,
                                               std::optional<int64_t> older_than_days) {
  std::vector<WasteBatch> out;
  db::ReadTxn read(*db);
  auto q = db->prepare(std::string("SELECT ") + kWasteColumns +
                       " FROM waste_batches b WHERE b.station_id = :station AND b.created_at <= :asof "
                       "ORDER BY b.created_at, b.id");
  q.bind(":station", station_id()).bind(":asof", as_of);
  while (q.step()) {
    WasteBatch b = read_batch(q, as_of);
    if (pending_only && b.stage == "treated") continue;
    if (older_than_days && b.age_days <= *older_than_days) continue;
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<WasteBatch> Store::patient_waste(const std::string& patient_id) {
  std::vector<WasteBatch> out;
  auto q = impl_->db->prepare(std::string("SELECT ") + kWasteColumns +
                              " FROM waste_batches b WHERE b.patient_id = :patient ORDER BY b.created_at, b.id");
  std::string now = impl_->local_now();
  q.bind(":patient", patient_id).bind(":asof", now);
  while (q.step()) out.push_back(read_batch(q, now));
  return out;
}

Result<std::string> Store::void_event(const std::string& event_id, const std::string& reason,
                                      std::optional<std::string> at_text) {
  const char* ctx = "void";
  if (auto id = impl_->require_identity(); !id) return std::move(id.error()).in(ctx);
  auto id = impl_->resolve("event", event_id);
  if (!id) return std::move(id.error()).in(ctx);
  if (auto st = validate::required_text("reason", reason, 500); !st) return std::move(st.error()).in(ctx);
  auto at = validate::event_time(at_text, impl_->local_now());
  if (!at) return std::move(at.error()).in(ctx);

  std::string event_kind, station_id, event_at;
  // Which table holds it decides what voiding it means.
  struct Probe {
    const char* kind;
    const char* sql;
  };
  static const Probe kProbes[] = {
      {kind::kVisit, "SELECT station_id, at FROM visits WHERE id = ?1"},
      {kind::kStockMovement, "SELECT station_id, at FROM stock_movements WHERE id = ?1"},
      {kind::kWasteStage, "SELECT station_id, at FROM waste_stages WHERE id = ?1"},
      {kind::kVoid, "SELECT station_id, at FROM voids WHERE id = ?1"},
  };
  for (const auto& p : kProbes) {
    auto q = impl_->db->prepare(p.sql);
    q.bind(1, *id);
    if (q.step()) {
      event_kind = p.kind;
      station_id = q.str(0);
      event_at = q.str(1);
      break;
    }
  }
  if (event_kind == kind::kVoid) {
    return Error::refused("event", "is itself a void and cannot be voided; record the event again instead", *id)
        .in(ctx);
  }
  if (impl_->event_voided(*id)) return Error::refused("event", "is already voided", *id).in(ctx);
  if (*at < event_at) {
    return Error::invalid("at", "must not be before the event it voids (" + event_at.substr(0, 16) + ")", *at).in(ctx);
  }
  // The events this void takes back: the one named, or every part of a
  // dispense that was split over several lots (the nurse voids what she handed out).
  std::vector<std::string> targets{*id};
  if (event_kind == kind::kStockMovement) {
    auto q = impl_->db->prepare("SELECT item_id, lot, quantity, at, coalesce(group_id, '') FROM stock_movements WHERE id = ?1");
    q.bind(1, *id);
    q.step();
    std::string item_id = q.str(0), lot = q.str(1), group = q.str(4);
    int64_t qty = q.i64(2);
    // Voiding an addition must not leave the lot below zero, then or since.
    int64_t available = impl_->lot_available_at(item_id, lot, q.str(3));
    if (qty > 0 && available - qty < 0) {
      return Error::refused("event",
                            "cannot be voided: lot " + lot + " has only " + std::to_string(std::max<int64_t>(available, 0)) +
                                " left of the " + std::to_string(qty) + " it added",
                            *id)
          .in(ctx);
    }
    q.release();
    if (!group.empty()) {
      targets.clear();
      auto g = impl_->db->prepare(
          "SELECT m.id FROM stock_movements m WHERE m.group_id = ?1 AND NOT EXISTS "
          "(SELECT 1 FROM voids x WHERE x.event_id = m.id) ORDER BY m.rowid");
      g.bind(1, group);
      while (g.step()) targets.push_back(g.str(0));
    }
  }
  if (event_kind == kind::kWasteStage) {
    // Only the latest stage of a batch can be voided, so stages stay in order.
    auto q = impl_->db->prepare(
        "SELECT s.id FROM waste_stages s WHERE s.batch_id = (SELECT batch_id FROM waste_stages WHERE id = ?1) "
        "AND NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = s.id) ORDER BY s.rank DESC LIMIT 1");
    q.bind(1, *id);
    if (q.step() && q.str(0) != *id) {
      return Error::refused("event", "is not the batch's latest stage; void the later stage first", *id).in(ctx);
    }
  }
  return impl_->act(ctx, [&](Action& a) -> Result<std::string> {
    std::string first;
    for (const auto& target : targets) {
      std::string vid = impl_->ids->new_id();
      if (first.empty()) first = vid;
      uint64_t hlc = a.peek_hlc();
      a.db()
          .prepare(
              "INSERT INTO voids(id, station_id, event_id, event_kind, reason, at, origin, hlc) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
          .bind(1, vid)
          .bind(2, station_id)
          .bind(3, target)
          .bind(4, event_kind)
          .bind(5, validate::trim(reason))
          .bind(6, *at)
          .bind(7, impl_->device_id())
          .bind(8, hlc)
          .run();
      record_event(a, kind::kVoid, vid, station_id,
                   {{"id", vid},
                    {"station_id", station_id},
                    {"event_id", target},
                    {"event_kind", event_kind},
                    {"reason", validate::trim(reason)},
                    {"at", *at}});
    }
    return first;
  });
}

}  // namespace tramsync
