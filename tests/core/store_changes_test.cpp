// The change log: every write appends one change per record written, in the same
// transaction as the write (DESIGN "The change log").
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "fixture.h"
#include "tramsync/core/hlc.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

json version(uint64_t hlc, const std::string& origin) { return json::array({hlc, origin}); }

// The version the writer had seen of `field`, from an upsert payload's `base`:
// null when it had none (the record or the field is new), whether the payload
// says so with a null entry or by leaving the field out of `base`.
json base_version(const json& payload, const std::string& field) {
  if (!payload.contains("base")) return nullptr;
  const json& base = payload.at("base");
  return base.contains(field) ? base.at(field) : json(nullptr);
}

// Checks the properties every local change shares: origin, station, no peer,
// origin_seq 1, 2, 3... and strictly increasing seq and hlc.
void check_log_shape(const std::vector<Change>& changes, const Identity& id) {
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    INFO("change " << i << " kind " << c.kind);
    CHECK(c.origin == id.device_id);
    CHECK(c.origin_seq == static_cast<int64_t>(i) + 1);
    CHECK(c.station_id == id.station_id);
    CHECK(c.from_peer.empty());
    if (i > 0) {
      CHECK(c.seq > changes[i - 1].seq);
      CHECK(c.hlc > changes[i - 1].hlc);
    }
  }
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "initialising a station appends one station change", "[core][changes]") {
  auto changes = all_changes();
  REQUIRE(changes.size() == 1);
  const Change& c = changes[0];
  CHECK(c.kind == "station");
  CHECK(c.record_id == identity.station_id);
  CHECK(c.origin == identity.device_id);
  CHECK(c.origin_seq == 1);
  CHECK(c.hlc == Hlc::pack(kStartMs, 0));
  json p = json::parse(c.payload);
  CHECK(p.at("op") == "upsert");
  CHECK(p.at("fields").at("code") == "TYT-ANHOA");
  CHECK(p.at("fields").at("name") == "Trạm Y tế xã An Hòa");
  CHECK(p.at("fields").at("district") == "Huyện Đông Anh");
  CHECK(p.at("fields").at("province") == "Hà Nội");
  for (const char* f : {"code", "name", "district", "province"}) {
    INFO(f);
    CHECK(base_version(p, f).is_null());
  }
  CHECK(store->change_count() == 1);
}

TEST_CASE_METHOD(StoreFixture, "adding a patient appends exactly one patient change with no base version",
                 "[core][changes]") {
  const std::string id = add_patient("Nguyễn Văn An", "Thôn Đông", {"elderly", "chronic"}, "1948-05-02", "male");
  auto changes = all_changes();
  REQUIRE(changes.size() == 2);
  const Change& c = changes[1];
  CHECK(c.kind == "patient");
  CHECK(c.record_id == id);
  CHECK(c.origin_seq == 2);
  CHECK(c.hlc > changes[0].hlc);

  json p = json::parse(c.payload);
  CHECK(p.at("op") == "upsert");
  const json& fields = p.at("fields");
  CHECK(fields.at("name") == "Nguyễn Văn An");
  CHECK(fields.at("sex") == "male");
  CHECK(fields.at("birth") == "1948-05-02");
  CHECK(fields.at("village") == "Thôn Đông");
  CHECK(fields.at("status") == "active");
  CHECK(fields.at("created_at") == kStartLocal);
  CHECK(fields.at("household_id").is_null());
  CHECK(fields.size() == 9);
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    INFO("field " << it.key());
    CHECK(base_version(p, it.key()).is_null());
  }
  CHECK(p.at("sets").at("categories").at("add") == json::array({"elderly", "chronic"}));
  CHECK(p.at("sets").at("categories").at("remove") == json::array());
  check_log_shape(changes, identity);
}

TEST_CASE_METHOD(StoreFixture, "an update's base names the version each changed field had", "[core][changes]") {
  const std::string id = add_patient("Trần Thị Bình", "Thôn Tây", {"elderly"});
  clock.advance(kMinuteMs);
  PatientUpdate up;
  up.phone = "0912 345 678";
  up.village = "Thôn Đông";
  must(store->update_patient(id, up));

  auto changes = all_changes();
  REQUIRE(changes.size() == 3);
  const Change added = changes[1];
  const Change updated = changes[2];
  CHECK(updated.kind == "patient");
  CHECK(updated.record_id == id);
  CHECK(updated.origin_seq == 3);
  CHECK(updated.hlc == Hlc::pack(kStartMs + kMinuteMs, 0));

  json p = json::parse(updated.payload);
  // Only the fields that changed are written.
  CHECK(p.at("fields") == json{{"phone", "0912 345 678"}, {"village", "Thôn Đông"}});
  CHECK(p.at("base") == json{{"phone", version(added.hlc, identity.device_id)},
                             {"village", version(added.hlc, identity.device_id)}});
  CHECK_FALSE(p.contains("sets"));

  // A second update of one field has the first update's version as its base.
  clock.advance(kMinuteMs);
  PatientUpdate again;
  again.phone = "0987 000 111";
  must(store->update_patient(id, again));
  changes = all_changes();
  REQUIRE(changes.size() == 4);
  json p2 = json::parse(changes[3].payload);
  CHECK(p2.at("fields") == json{{"phone", "0987 000 111"}});
  CHECK(p2.at("base") == json{{"phone", version(updated.hlc, identity.device_id)}});
  check_log_shape(changes, identity);
}

TEST_CASE_METHOD(StoreFixture, "an update that changes nothing appends nothing", "[core][changes]") {
  const std::string id = add_patient("Lê Văn Cường");
  const auto before = store->change_count();
  PatientUpdate up;
  up.name = "  Lê Văn Cường ";  // the same after trimming
  must(store->update_patient(id, up));
  CHECK(store->change_count() == before);
}

TEST_CASE_METHOD(StoreFixture, "a category change is a set delta, not a whole-value write", "[core][changes]") {
  const std::string id = add_patient("Phạm Thị Dung", "Thôn Đông", {"elderly"});
  PatientUpdate up;
  up.add_categories = {"chronic"};
  up.remove_categories = {"elderly"};
  must(store->update_patient(id, up));
  auto changes = all_changes();
  REQUIRE(changes.size() == 3);
  json p = json::parse(changes[2].payload);
  CHECK(p.at("fields") == json::object());
  CHECK(p.at("sets").at("categories") == json{{"add", {"chronic"}}, {"remove", {"elderly"}}});
  CHECK_FALSE(p.at("sets").contains("conditions"));
  CHECK(must(store->get_patient(id)).categories == std::vector<std::string>{"chronic"});
}

TEST_CASE_METHOD(StoreFixture, "adding an item with a reserve appends an item change and an item_reserve change",
                 "[core][changes]") {
  const std::string id = add_item("PARA500", "tablet", 200, "Paracetamol 500 mg");
  auto changes = all_changes();
  REQUIRE(changes.size() == 3);
  CHECK(changes[1].kind == "item");
  CHECK(changes[1].record_id == id);
  CHECK(changes[2].kind == "item_reserve");
  CHECK(changes[2].record_id == identity.station_id + "/" + id);
  json item = json::parse(changes[1].payload);
  CHECK(item.at("fields") ==
        json{{"code", "PARA500"}, {"name", "Paracetamol 500 mg"}, {"unit", "tablet"}, {"kind", "medicine"}});
  json reserve = json::parse(changes[2].payload);
  CHECK(reserve.at("fields") == json{{"item_id", id}, {"level", 200}});
  CHECK(base_version(reserve, "item_id").is_null());
  CHECK(base_version(reserve, "level").is_null());
  check_log_shape(changes, identity);

  // Setting the reserve again writes the same record with the earlier version as base.
  must(store->set_reserve("PARA500", 150));
  changes = all_changes();
  REQUIRE(changes.size() == 4);
  CHECK(changes[3].kind == "item_reserve");
  CHECK(changes[3].record_id == changes[2].record_id);
  json again = json::parse(changes[3].payload);
  CHECK(base_version(again, "level") == version(changes[2].hlc, identity.device_id));
  CHECK(again.at("fields").at("level") == 150);
}

TEST_CASE_METHOD(StoreFixture, "an item added without a reserve appends one change", "[core][changes]") {
  add_item("ORS", "sachet");
  auto changes = all_changes();
  REQUIRE(changes.size() == 2);
  CHECK(changes[1].kind == "item");
}

TEST_CASE_METHOD(StoreFixture, "a dispense split over two lots appends one stock_movement change per lot",
                 "[core][changes]") {
  const std::string patient = add_patient("Võ Văn Em", "Thôn Đông", {"chronic"});
  add_item("AMLO5", "tablet");
  const std::string r1 = receive("AMLO5", 20, "L-A", "2027-01-31");
  const std::string r2 = receive("AMLO5", 50, "L-B", "2027-08-31");
  const auto before = store->change_count();

  auto ids = dispense(patient, "AMLO5", 30, 30);
  REQUIRE(ids.size() == 2);
  auto changes = store->changes_after(0, 1000);
  REQUIRE(store->change_count() == before + 2);
  REQUIRE(changes.size() == 7);  // station, patient, item, 2 receipts, 2 dispenses

  CHECK(changes[3].kind == "stock_movement");
  CHECK(changes[3].record_id == r1);
  CHECK(changes[4].record_id == r2);
  const Change& d1 = changes[5];
  const Change& d2 = changes[6];
  CHECK(d1.kind == "stock_movement");
  CHECK(d2.kind == "stock_movement");
  CHECK(d1.record_id == ids[0]);
  CHECK(d2.record_id == ids[1]);
  json e1 = json::parse(d1.payload), e2 = json::parse(d2.payload);
  CHECK(e1.at("op") == "insert");
  CHECK(e1.at("event").at("id") == ids[0]);
  CHECK(e1.at("event").at("kind") == "dispense");
  CHECK(e1.at("event").at("lot") == "L-A");
  CHECK(e1.at("event").at("quantity") == -20);
  CHECK(e1.at("event").at("patient_id") == patient);
  CHECK(e1.at("event").at("days_supply") == 30);
  CHECK(e1.at("event").at("at") == kStartLocal);
  CHECK(e2.at("event").at("lot") == "L-B");
  CHECK(e2.at("event").at("quantity") == -10);
  CHECK(e2.at("event").at("expiry") == "2027-08-31");
  check_log_shape(changes, identity);
}

TEST_CASE_METHOD(StoreFixture, "a visit, a waste stage and a void each append one event change", "[core][changes]") {
  const std::string patient = add_patient("Hoàng Văn Phúc", "Thôn Đông", {"covid-home"});
  const std::string v = visit(patient);
  WasteBatchInput wb;
  wb.kind = "infectious";
  wb.bags = 2;
  wb.weight_kg = 1.5;
  wb.patient_id = patient;
  const std::string batch = must(store->add_waste_batch(wb));
  WasteMoveInput mv;
  mv.batch_id = batch;
  mv.stage = "collected";
  const std::string stage = must(store->move_waste(mv));
  const std::string vd = must(store->void_event(v, "wrong patient"));

  auto changes = all_changes();
  REQUIRE(changes.size() == 6);
  std::vector<std::string> kinds;
  for (const auto& c : changes) kinds.push_back(c.kind);
  CHECK(kinds == std::vector<std::string>{"station", "patient", "visit", "waste_batch", "waste_stage", "void"});
  CHECK(changes[2].record_id == v);
  CHECK(changes[3].record_id == batch);
  CHECK(changes[4].record_id == stage);
  CHECK(changes[5].record_id == vd);
  json visit_event = json::parse(changes[2].payload).at("event");
  CHECK(visit_event.at("patient_id") == patient);
  CHECK(visit_event.at("temp_c") == 37.2);
  CHECK(visit_event.at("spo2") == 97);
  CHECK(visit_event.at("bp_sys").is_null());
  json void_event = json::parse(changes[5].payload).at("event");
  CHECK(void_event.at("event_id") == v);
  CHECK(void_event.at("event_kind") == "visit");
  CHECK(void_event.at("reason") == "wrong patient");
  check_log_shape(changes, identity);
}

TEST_CASE_METHOD(StoreFixture, "change hlc values keep increasing when the wall clock jumps back, across reopening",
                 "[core][changes][hlc]") {
  add_patient("Phan Văn Giang");
  clock.set(kStartMs - kHourMs);
  add_patient("Phan Thị Hà");
  reopen();
  clock.set(kStartMs - 2 * kHourMs);
  add_patient("Phan Văn Hải");
  clock.set(kStartMs + kHourMs);
  add_patient("Phan Thị Hoa");

  auto changes = all_changes();
  REQUIRE(changes.size() == 5);
  CHECK(changes[1].hlc == Hlc::pack(kStartMs, 1));
  CHECK(changes[2].hlc == Hlc::pack(kStartMs, 2));
  CHECK(changes[3].hlc == Hlc::pack(kStartMs, 3));  // persisted in the file, not reset by reopening
  CHECK(changes[4].hlc == Hlc::pack(kStartMs + kHourMs, 0));
  check_log_shape(changes, identity);
  CHECK(must(store->status()).hlc == changes[4].hlc);
}

TEST_CASE_METHOD(StoreFixture, "two stores open on one file write one consistent log", "[core][changes]") {
  // Store's contract: several Stores may open the same file; SQLite serialises
  // their writes. The origin_seq and the hlc continue across them.
  auto second = must(Store::open(path(), options()));
  add_patient("Lê Văn An");
  PatientInput in;
  in.name = "Lê Thị Bình";
  in.sex = "female";
  in.birth = "1970";
  in.village = "Thôn Tây";
  const std::string from_second = must(second->add_patient(in));
  add_patient("Lê Văn Cường");

  auto changes = all_changes();
  REQUIRE(changes.size() == 4);
  CHECK(changes[2].record_id == from_second);
  check_log_shape(changes, identity);
  CHECK(second->change_count() == 4);
  CHECK(search("le").size() == 3);
}

TEST_CASE_METHOD(StoreFixture, "changes_after pages through the log by seq", "[core][changes]") {
  for (int i = 0; i < 5; ++i) add_item("ITEM" + std::to_string(i));
  auto all = all_changes();
  REQUIRE(all.size() == 6);
  auto page = store->changes_after(all[1].seq, 2);
  REQUIRE(page.size() == 2);
  CHECK(page[0].seq == all[2].seq);
  CHECK(page[1].seq == all[3].seq);
  CHECK(store->changes_after(all[5].seq, 10).empty());
}

// --- atomicity: the write and its change commit together or not at all --------

TEST_CASE_METHOD(StoreFixture, "a patient whose change cannot be appended is not stored", "[core][changes][atomicity]") {
  const auto before = store->change_count();
  fail_kind = "patient";
  PatientInput in;
  in.name = "Nguyễn Thị Lan";
  in.sex = "female";
  in.birth = "1952";
  in.village = "Thôn Đông";
  in.categories = {"elderly"};
  Error e = must_fail(store->add_patient(in));
  CHECK(e.code == ErrorCode::kIo);
  CHECK_THAT(e.message(), Contains("patient add") && Contains("injected failure"));

  CHECK(store->change_count() == before);
  CHECK(store->list_patients({}).empty());
  CHECK(search("lan").empty());
  CHECK(store->integrity_check() == "ok");

  // Once the fault is gone the same action works and the log has no gap.
  fail_kind.clear();
  const std::string id = must(store->add_patient(in));
  auto changes = all_changes();
  REQUIRE(changes.size() == 2);
  CHECK(changes[1].record_id == id);
  CHECK(changes[1].origin_seq == 2);
  CHECK(search("lan") == std::vector<std::string>{"Nguyễn Thị Lan"});
  REQUIRE(store->list_patients({}).size() == 1);
  CHECK(store->list_patients({})[0].patient.categories == std::vector<std::string>{"elderly"});
}

TEST_CASE_METHOD(StoreFixture, "an item whose reserve change cannot be appended leaves neither the item nor its change",
                 "[core][changes][atomicity]") {
  const auto before = store->change_count();
  fail_kind = "item_reserve";
  ItemInput in;
  in.code = "VITC";
  in.name = "Vitamin C 500 mg";
  in.unit = "tablet";
  in.reserve = 100;
  Error e = must_fail(store->add_item(in));
  CHECK_THAT(e.message(), Contains("item add") && Contains("item_reserve"));

  CHECK(store->change_count() == before);
  CHECK(all_changes().size() == 1);  // only the station
  CHECK(store->find_item("VITC").error().code == ErrorCode::kNotFound);
  CHECK(store->stock().empty());

  fail_kind.clear();
  must(store->add_item(in));
  CHECK(store->change_count() == before + 2);
  CHECK(stock_of("VITC").reserve == 100);
}

TEST_CASE_METHOD(StoreFixture, "a failed update leaves the patient, its search entry and the log as they were",
                 "[core][changes][atomicity]") {
  const std::string id = add_patient("Vũ Thị Mai", "Thôn Đông", {"elderly"});
  const auto before = store->change_count();
  fail_kind = "patient";
  PatientUpdate up;
  up.name = "Vũ Thị Ngọc";
  up.add_categories = {"chronic"};
  must_fail(store->update_patient(id, up));

  CHECK(store->change_count() == before);
  Patient p = must(store->get_patient(id));
  CHECK(p.name == "Vũ Thị Mai");
  CHECK(p.categories == std::vector<std::string>{"elderly"});
  CHECK(search("mai") == std::vector<std::string>{"Vũ Thị Mai"});
  CHECK(search("ngoc").empty());
}

TEST_CASE_METHOD(StoreFixture, "a dispense whose changes cannot be appended takes nothing from stock",
                 "[core][changes][atomicity][stock]") {
  const std::string patient = add_patient("Đặng Văn Nam", "Thôn Đông", {"chronic"});
  add_item("MET500");
  receive("MET500", 10, "A1", "2027-02-28");
  receive("MET500", 10, "B1", "2027-05-31");
  const auto before = store->change_count();
  fail_kind = "stock_movement";
  DispenseInput in;
  in.patient_id = patient;
  in.item = "MET500";
  in.quantity = 15;
  must_fail(store->dispense(in));
  CHECK(store->change_count() == before);
  CHECK(stock_of("MET500").on_hand == 20);
  CHECK(store->patient_dispensings(patient).empty());
}

TEST_CASE_METHOD(StoreFixture, "an import whose changes cannot be appended imports nothing",
                 "[core][changes][atomicity][import]") {
  const auto before = store->change_count();
  fail_kind = "patient";
  std::vector<std::pair<int64_t, PatientInput>> rows;
  for (int i = 0; i < 3; ++i) {
    PatientInput in;
    in.name = "Bệnh nhân " + std::to_string(i);
    in.sex = "male";
    in.birth = "1970";
    in.village = "Thôn Tây";
    rows.emplace_back(i + 2, in);
  }
  ImportResult r = store->import_patients(rows, false);
  CHECK(r.imported == 0);
  CHECK(r.ids.empty());
  REQUIRE(r.rejected.size() == 1);
  CHECK(r.rejected[0].line == 0);
  CHECK_THAT(r.rejected[0].message, Contains("injected failure"));
  CHECK(store->change_count() == before);
  CHECK(store->list_patients({}).empty());
}

TEST_CASE_METHOD(StoreFixture, "writes before a station is initialised are refused", "[core][changes]") {
  BareStoreFixture bare;
  CHECK_FALSE(bare.store->initialized());
  PatientInput in;
  in.name = "Ai đó";
  in.sex = "male";
  in.birth = "1980";
  in.village = "Thôn Đông";
  Error e = must_fail(bare.store->add_patient(in));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("not initialised"));
  CHECK(bare.store->change_count() == 0);
  CHECK(must_fail(bare.store->identity()).code == ErrorCode::kRefused);
}
