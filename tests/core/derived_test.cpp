// The derived tables the centre's reports read (migration 8: care_contact,
// refill_due, stock_balance, dispensed_daily, waste_state) must always equal
// what the events say, computed the slow way -- after local writes, voids, and
// two devices that voided the same event offline and then exchanged changes.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "fixture.h"
#include "support/sqlite_query.h"
#include "tramsync/core/time.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

using testing::query_int;

// Rows where a derived table disagrees with its events (0 when all agree).
int64_t derived_mismatches(const std::string& db) {
  const char* const live = "NOT EXISTS (SELECT 1 FROM voids x WHERE x.event_id = %s.id)";
  auto not_voided = [&](const char* alias) {
    char buf[120];
    std::snprintf(buf, sizeof buf, live, alias);
    return std::string(buf);
  };
  int64_t bad = 0;
  std::string which;
  // Last contact: the latest live visit, or the registration; active as the status says.
  if (int64_t n = query_int(db, "SELECT count(*) FROM patients p LEFT JOIN care_contact c ON c.patient_id = p.id WHERE "
                       "c.patient_id IS NULL OR c.active != (p.status = 'active') OR c.last_contact != coalesce("
                       "(SELECT max(v.at) FROM visits v WHERE v.patient_id = p.id AND " +
                           not_voided("v") + "), p.created_at)")) {
    bad += n;
    which += " care_contact=" + std::to_string(n);
  }
  // On hand per lot: the sum of live movements.
  if (int64_t n = query_int(db, "SELECT count(*) FROM (SELECT station_id, item_id, lot, sum(quantity) AS q FROM stock_movements "
                       "m WHERE " + not_voided("m") +
                           " GROUP BY 1, 2, 3) t LEFT JOIN stock_balance b ON b.station_id = t.station_id AND "
                           "b.item_id = t.item_id AND b.lot = t.lot WHERE b.on_hand IS NULL OR b.on_hand != t.q")) {
    bad += n;
    which += " stock_balance missing=" + std::to_string(n);
  }
  if (int64_t n = query_int(db, "SELECT count(*) FROM stock_balance b WHERE b.on_hand != coalesce((SELECT sum(quantity) FROM "
                       "stock_movements m WHERE m.station_id = b.station_id AND m.item_id = b.item_id AND m.lot = "
                       "b.lot AND " + not_voided("m") + "), 0)")) {
    bad += n;
    which += " stock_balance extra=" + std::to_string(n);
  }
  // Dispensed per day and item.
  if (int64_t n = query_int(db, "SELECT count(*) FROM dispensed_daily d WHERE d.quantity != coalesce((SELECT -sum(quantity) "
                       "FROM stock_movements m WHERE m.kind = 'dispense' AND m.station_id = d.station_id AND "
                       "m.item_id = d.item_id AND substr(m.at, 1, 10) = d.day AND " + not_voided("m") + "), 0)")) {
    bad += n;
    which += " dispensed_daily=" + std::to_string(n);
  }
  // Refill due: the latest live dispense with days of supply, per patient and item.
  if (int64_t n = query_int(db, "SELECT count(*) FROM (SELECT patient_id, item_id, max(at) AS last FROM stock_movements m "
                       "WHERE m.kind = 'dispense' AND m.days_supply IS NOT NULL AND " + not_voided("m") +
                           " GROUP BY 1, 2) t LEFT JOIN refill_due r ON r.patient_id = t.patient_id AND r.item_id = "
                           "t.item_id WHERE r.last_dispensed_at IS NULL OR r.last_dispensed_at != t.last")) {
    bad += n;
    which += " refill_due missing=" + std::to_string(n);
  }
  if (int64_t n = query_int(db, "SELECT count(*) FROM refill_due r WHERE NOT EXISTS (SELECT 1 FROM stock_movements m WHERE "
                       "m.patient_id = r.patient_id AND m.item_id = r.item_id AND m.kind = 'dispense' AND m.at = "
                       "r.last_dispensed_at AND m.days_supply = r.days_supply AND " + not_voided("m") +
                           ") OR r.due != date(substr(r.last_dispensed_at, 1, 10), '+' || r.days_supply || ' days')")) {
    bad += n;
    which += " refill_due stale=" + std::to_string(n);
  }
  // A waste batch's stage: the furthest live stage event (0: bagged).
  if (int64_t n = query_int(db, "SELECT count(*) FROM waste_batches b LEFT JOIN waste_state w ON w.batch_id = b.id WHERE "
                       "w.rank IS NULL OR w.rank != coalesce((SELECT max(s.rank) FROM waste_stages s WHERE "
                       "s.batch_id = b.id AND " + not_voided("s") + "), 0)")) {
    bad += n;
    which += " waste_state=" + std::to_string(n);
  }
  if (bad) UNSCOPED_INFO("mismatches:" << which);
  return bad;
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "derived tables equal their events after random writes and voids",
                 "[core][derived]") {
  const auto seed = GENERATE(1u, 2u, 3u);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&](auto& v) -> auto& { return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)]; };
  auto chance = [&](int percent) { return std::uniform_int_distribution<int>(1, 100)(rng) <= percent; };
  auto past = [&](int max_days) {
    return local_time_from_ms(clock.now_ms() - std::uniform_int_distribution<int64_t>(0, max_days * kDayMs)(rng),
                              kDefaultUtcOffsetMinutes);
  };

  add_item("AMLO5");
  add_item("MET500");
  std::vector<std::string> items{"AMLO5", "MET500"};
  std::vector<std::string> patients, events, batches;
  std::vector<std::string> stages(kWasteStages.begin() + 1, kWasteStages.end());
  for (int i = 0; i < 6; ++i) {
    patients.push_back(add_patient("Bệnh nhân " + std::to_string(i), "Thôn Đông", {i % 2 ? "chronic" : "covid-home"}));
  }
  for (const auto& it : items) {
    receive(it, 5000, "L1", "2027-06-30", local_time_from_ms(clock.now_ms() - 90 * kDayMs, kDefaultUtcOffsetMinutes));
    receive(it, 5000, "L2", "2028-06-30", local_time_from_ms(clock.now_ms() - 90 * kDayMs, kDefaultUtcOffsetMinutes));
  }
  for (int step = 0; step < 150; ++step) {
    clock.advance(kHourMs);
    const int op = std::uniform_int_distribution<int>(0, 6)(rng);
    if (op == 0) {
      VisitInput in;
      in.patient_id = pick(patients);
      in.at = past(30);
      if (auto id = store->add_visit(in)) events.push_back(*id);
    } else if (op == 1) {
      DispenseInput in;
      in.patient_id = pick(patients);
      in.item = pick(items);
      in.quantity = std::uniform_int_distribution<int>(1, 60)(rng);
      if (chance(70)) in.days_supply = std::uniform_int_distribution<int>(5, 30)(rng);
      in.at = past(40);
      if (auto ids = store->dispense(in)) events.insert(events.end(), ids->begin(), ids->end());
    } else if (op == 2 && !events.empty()) {
      // Voids of anything (some are refused, e.g. an already voided event: that is fine).
      (void)store->void_event(pick(events), "entered by mistake");
    } else if (op == 3) {
      WasteBatchInput in;
      in.kind = "infectious";
      in.bags = 1;
      in.weight_kg = 1.5;
      batches.push_back(must(store->add_waste_batch(in)));
    } else if (op == 4 && !batches.empty()) {
      WasteMoveInput in;
      in.batch_id = pick(batches);
      in.stage = pick(stages);
      in.to_org = "Công ty Môi trường";
      if (auto id = store->move_waste(in)) events.push_back(*id);
    } else if (op == 5) {
      PatientUpdate up;
      up.status = chance(50) ? "recovered" : "active";
      (void)store->update_patient(pick(patients), up);
    } else {
      ReceiveInput in;
      in.item = pick(items);
      in.quantity = 100;
      in.lot = chance(50) ? "L3" : "L1";
      in.expiry = in.lot == "L3" ? "2029-01-31" : "2027-06-30";
      in.at = past(10);
      (void)store->receive(in);
    }
  }
  CHECK(query_int(path(), "SELECT count(*) FROM voids") > 0);
  CHECK(query_int(path(), "SELECT count(*) FROM visits") > 5);
  CHECK(query_int(path(), "SELECT count(*) FROM waste_stages") > 0);
  CHECK(query_int(path(), "SELECT count(*) FROM refill_due") > 0);
  CHECK(derived_mismatches(path()) == 0);
}

TEST_CASE_METHOD(StoreFixture, "an event voided on two devices offline is taken back once in the derived tables",
                 "[core][derived]") {
  add_item("AMLO5");
  const std::string p = add_patient("Nguyễn Văn An", "Thôn Đông", {"chronic"});
  receive("AMLO5", 100, "L1", "2027-06-30", "2026-11-01T08:00");
  const std::string first = dispense(p, "AMLO5", 30, 10, "2026-11-05T08:00").at(0);
  const std::string second = dispense(p, "AMLO5", 20, 20, "2026-11-15T08:00").at(0);
  clock.advance(kDayMs);
  const std::string seen = visit(p);

  // A second device of the station holds the same records.
  StoreFixture other(/*init=*/false);
  must(other.store->init_device(StationInfo{identity.station_id, "TYT-ANHOA", "Trạm Y tế xã An Hòa", "", ""},
                                "device-2", "tablet"));
  ApplyContext ctx;
  ctx.from_peer = identity.device_id;
  ctx.check_clock = false;
  must(other.store->apply_changes(all_changes(), ctx));
  other.clock.advance(kDayMs);

  // Both void the later dispense and the visit, offline.
  must(store->void_event(second, "wrong patient"));
  must(store->void_event(seen, "entered twice"));
  must(other.store->void_event(second, "wrong patient"));
  must(other.store->void_event(seen, "entered twice"));
  const int64_t after_own = store->last_seq();
  ApplyContext back;
  back.from_peer = "device-2";
  back.check_clock = false;
  must(store->apply_changes(other.store->changes_after(other.store->last_seq() - 2, 100), back));
  must(other.store->apply_changes(store->changes_after(after_own - 2, 100), ctx));

  for (const std::string& db : {path(), other.path()}) {
    INFO(db);
    CHECK(query_int(db, "SELECT count(*) FROM voids WHERE event_id = '" + second + "'") == 2);
    CHECK(query_int(db, "SELECT on_hand FROM stock_balance WHERE lot = 'L1'") == 70);
    CHECK(query_int(db, "SELECT quantity FROM dispensed_daily WHERE day = '2026-11-15'") == 0);
    CHECK(testing::query_texts(db, "SELECT due FROM refill_due") == std::vector<std::string>{"2026-11-15"});
    CHECK(testing::query_texts(db, "SELECT last_contact FROM care_contact") ==
          std::vector<std::string>{kStartLocal});
    CHECK(derived_mismatches(db) == 0);
  }
}
