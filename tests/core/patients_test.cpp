// Patients: registration, updates, last visit, overdue follow-up, next refills.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fixture.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

// The row list_patients gives for one patient.
PatientRow row_of(Store& store, const std::string& id, const ReportSettings& settings = {}) {
  for (auto& row : store.list_patients({}, settings)) {
    if (row.patient.id == id) return row;
  }
  FAIL("patient " << id << " is not listed");
  return {};
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "a registered patient is stored trimmed, active, with sorted categories",
                 "[core][patients]") {
  PatientInput in;
  in.name = "  Nguyễn Văn An ";
  in.sex = "male";
  in.birth = "1948-05-02";
  in.village = " Thôn Đông";
  in.categories = {"elderly", "chronic", "elderly", " "};
  in.conditions = {"tăng huyết áp", "tiểu đường"};
  in.phone = " 0912345678 ";
  const std::string id = must(store->add_patient(in));

  Patient p = must(store->get_patient(id));
  CHECK(p.id == id);
  CHECK(p.station_id == identity.station_id);
  CHECK(p.name == "Nguyễn Văn An");
  CHECK(p.village == "Thôn Đông");
  CHECK(p.sex == "male");
  CHECK(p.birth == "1948-05-02");
  CHECK(p.phone == "0912345678");
  CHECK(p.status == "active");
  CHECK(p.created_at == kStartLocal);
  CHECK(p.household_id.empty());
  CHECK(p.categories == std::vector<std::string>{"chronic", "elderly"});
  CHECK(p.conditions == std::vector<std::string>{"tiểu đường", "tăng huyết áp"});

  // An unambiguous id prefix finds it too.
  CHECK(must(store->get_patient(id.substr(0, 8))).id == id);
  CHECK(must_fail(store->get_patient("ffffffff")).code == ErrorCode::kNotFound);
}

TEST_CASE_METHOD(StoreFixture, "a patient in a household takes the household's village when none is given",
                 "[core][patients]") {
  HouseholdInput h;
  h.village = "Xóm Bãi";
  h.head_name = "Phạm Văn Hùng";
  const std::string hh = must(store->add_household(h));
  PatientInput in;
  in.name = "Phạm Thị Hương";
  in.sex = "female";
  in.birth = "2019";
  in.household_id = hh.substr(0, 6);
  const std::string id = must(store->add_patient(in));
  Patient p = must(store->get_patient(id));
  CHECK(p.household_id == hh);
  CHECK(p.village == "Xóm Bãi");
  auto members = store->household_members(hh);
  REQUIRE(members.size() == 1);
  CHECK(members[0].id == id);
}

TEST_CASE_METHOD(StoreFixture, "an update changes only the given fields", "[core][patients]") {
  const std::string id = add_patient("Trần Thị Bình", "Thôn Tây", {"elderly"}, "1955");
  clock.advance(2 * kHourMs);
  PatientUpdate up;
  up.phone = "0987654321";
  up.add_categories = {"chronic"};
  up.add_conditions = {"hen suyễn"};
  up.status = "referred";
  must(store->update_patient(id, up));

  Patient p = must(store->get_patient(id));
  CHECK(p.name == "Trần Thị Bình");
  CHECK(p.village == "Thôn Tây");
  CHECK(p.birth == "1955");
  CHECK(p.phone == "0987654321");
  CHECK(p.categories == std::vector<std::string>{"chronic", "elderly"});
  CHECK(p.conditions == std::vector<std::string>{"hen suyễn"});
  CHECK(p.status == "referred");
  CHECK(p.status_changed_at == "2026-11-20T11:00:00");

  PatientUpdate bad;
  bad.remove_categories = {"covid-home"};
  CHECK_THAT(must_fail(store->update_patient(id, bad)).message(),
             Contains("can only remove a value the patient has") && Contains("covid-home"));
  PatientUpdate bad_status;
  bad_status.status = "gone";
  CHECK_THAT(must_fail(store->update_patient(id, bad_status)).message(), Contains("status") && Contains("gone"));
}

TEST_CASE_METHOD(StoreFixture, "filters by status, category and village", "[core][patients]") {
  const std::string a = add_patient("Nguyễn Văn An", "Thôn Đông", {"elderly"});
  add_patient("Trần Thị Bình", "Thôn Tây", {"chronic"});
  add_patient("Lê Văn Cường", "Thôn Đông", {"chronic", "elderly"});
  PatientUpdate up;
  up.status = "moved";
  must(store->update_patient(a, up));

  PatientQuery q;
  q.category = "elderly";
  auto rows = store->list_patients(q);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].patient.name == "Lê Văn Cường");
  CHECK(rows[1].patient.name == "Nguyễn Văn An");

  q = {};
  q.status = "active";
  CHECK(store->list_patients(q).size() == 2);
  q.village = "thon dong";
  rows = store->list_patients(q);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].patient.name == "Lê Văn Cường");

  q = {};
  q.limit = 2;
  CHECK(store->list_patients(q).size() == 2);
}

// --- last visit and overdue follow-up -----------------------------------------

TEST_CASE_METHOD(StoreFixture, "a patient's last visit is the latest one that is not voided", "[core][patients]") {
  const std::string id = add_patient("Phạm Văn Dũng", "Thôn Đông", {"elderly"});
  visit(id, std::string("2026-11-10T08:00"));
  const std::string latest = visit(id, std::string("2026-11-18T15:30"));
  visit(id, std::string("2026-11-12T10:00"));
  CHECK(row_of(*store, id).last_visit == "2026-11-18T15:30:00");

  must(store->void_event(latest, "entered for the wrong patient"));
  CHECK(row_of(*store, id).last_visit == "2026-11-12T10:00:00");
  auto visits = store->patient_visits(id);
  REQUIRE(visits.size() == 3);
  CHECK(visits[0].id == latest);
  CHECK(visits[0].voided);
  CHECK_FALSE(visits[1].voided);
}

TEST_CASE_METHOD(StoreFixture, "a covid-home patient is overdue after more than one day without contact",
                 "[core][patients][overdue]") {
  const std::string id = add_patient("Hoàng Thị Giang", "Thôn Đông", {"covid-home"});
  visit(id);  // 2026-11-20T09:00

  clock.advance(kDayMs);  // exactly one day
  PatientRow row = row_of(*store, id);
  CHECK(row.last_visit == kStartLocal);
  CHECK(row.days_since_contact == 1);
  CHECK_FALSE(row.overdue);

  clock.advance(kHourMs);  // a day and an hour
  row = row_of(*store, id);
  CHECK(row.overdue);
  CHECK(row.days_since_contact == 1);

  PatientQuery q;
  q.overdue_only = true;
  auto overdue = store->list_patients(q);
  REQUIRE(overdue.size() == 1);
  CHECK(overdue[0].patient.id == id);

  // A new visit clears it.
  visit(id);
  row = row_of(*store, id);
  CHECK_FALSE(row.overdue);
  CHECK(row.days_since_contact == 0);
  CHECK(store->list_patients(q).empty());
}

TEST_CASE_METHOD(StoreFixture, "a covid-home patient never visited counts from registration",
                 "[core][patients][overdue]") {
  const std::string id = add_patient("Võ Văn Hải", "Thôn Đông", {"covid-home"});
  clock.advance(kDayMs + kHourMs);
  PatientRow row = row_of(*store, id);
  CHECK(row.last_visit.empty());
  CHECK(row.overdue);
  CHECK(row.days_since_contact == 1);
}

TEST_CASE_METHOD(StoreFixture, "other patients are overdue after more than 30 days", "[core][patients][overdue]") {
  const std::string elderly = add_patient("Đặng Thị Hoa", "Thôn Đông", {"elderly"});
  const std::string chronic = add_patient("Đặng Văn Khoa", "Thôn Đông", {"chronic"});
  const std::string no_category = add_patient("Đặng Văn Long", "Thôn Đông");
  visit(elderly);
  visit(chronic);
  visit(no_category);

  clock.advance(30 * kDayMs);
  CHECK_FALSE(row_of(*store, elderly).overdue);
  CHECK(row_of(*store, elderly).days_since_contact == 30);

  clock.advance(kHourMs);
  CHECK(row_of(*store, elderly).overdue);
  CHECK(row_of(*store, chronic).overdue);
  CHECK_FALSE(row_of(*store, no_category).overdue);  // not under follow-up

  // A patient who left care is not overdue.
  PatientUpdate up;
  up.status = "recovered";
  must(store->update_patient(chronic, up));
  CHECK_FALSE(row_of(*store, chronic).overdue);

  // The limits are settings.
  ReportSettings strict;
  strict.other_overdue_days = 40;
  CHECK_FALSE(row_of(*store, elderly, strict).overdue);
}

TEST_CASE_METHOD(StoreFixture, "a voided visit does not count as contact", "[core][patients][overdue]") {
  const std::string id = add_patient("Phan Văn Minh", "Thôn Đông", {"covid-home"});
  clock.advance(2 * kDayMs);  // 2026-11-22T09:00
  const std::string v = visit(id);
  CHECK_FALSE(row_of(*store, id).overdue);
  must(store->void_event(v, "the visit did not happen"));
  PatientRow row = row_of(*store, id);
  CHECK(row.last_visit.empty());
  CHECK(row.overdue);
  CHECK(row.days_since_contact == 2);
}

TEST_CASE_METHOD(StoreFixture, "a covid-home patient is overdue as soon as more than a day has passed",
                 "[core][patients][overdue]") {
  // "more than 1 day without contact": at 24 h 30 min there has been more than a
  // day, so the patient is overdue then, not only once a 25th whole hour passed.
  const std::string id = add_patient("Vũ Thị Ngọc", "Thôn Đông", {"covid-home"});
  visit(id);
  clock.advance(kDayMs + 30 * kMinuteMs);
  CHECK(row_of(*store, id).overdue);
}

// --- next refills ------------------------------------------------------------------

TEST_CASE_METHOD(StoreFixture, "the next refill is the last dispense date plus its days of supply",
                 "[core][patients][refill]") {
  const std::string id = add_patient("Lê Văn Nam", "Thôn Tây", {"chronic"});
  add_item("AMLO5", "tablet", std::nullopt, "Amlodipine 5 mg");
  add_item("MET500", "tablet", std::nullopt, "Metformin 500 mg");
  add_item("PARA500", "tablet");
  receive("AMLO5", 200, "A1", "2027-12-31", std::string("2026-10-01"));
  receive("MET500", 200, "M1", "2027-12-31", std::string("2026-10-01"));
  receive("PARA500", 200, "P1", "2027-12-31", std::string("2026-10-01"));

  dispense(id, "AMLO5", 30, 30, std::string("2026-10-05T08:00"));
  dispense(id, "AMLO5", 30, 30, std::string("2026-11-03T08:00"));
  dispense(id, "MET500", 28, 14, std::string("2026-11-15T10:00"));
  dispense(id, "PARA500", 10);  // no days of supply: no refill

  auto refills = store->next_refills(id);
  REQUIRE(refills.size() == 2);
  CHECK(refills[0].item_code == "AMLO5");
  CHECK(refills[0].item_name == "Amlodipine 5 mg");
  CHECK(refills[0].last_dispensed_at == "2026-11-03T08:00:00");
  CHECK(refills[0].next_refill == "2026-12-03");
  CHECK(refills[1].item_code == "MET500");
  CHECK(refills[1].next_refill == "2026-11-29");
}

TEST_CASE_METHOD(StoreFixture, "the latest dispense sets the refill date even when it gives fewer days",
                 "[core][patients][refill]") {
  const std::string id = add_patient("Lê Thị Oanh", "Thôn Tây", {"chronic"});
  add_item("AMLO5");
  receive("AMLO5", 200, "A1", "2027-12-31", std::string("2026-10-01"));
  dispense(id, "AMLO5", 90, 90, std::string("2026-10-01T08:00"));  // would be 2026-12-30
  const auto last = dispense(id, "AMLO5", 7, 7, std::string("2026-11-19T08:00"));
  auto refills = store->next_refills(id);
  REQUIRE(refills.size() == 1);
  CHECK(refills[0].next_refill == "2026-11-26");

  // Voiding the latest dispense brings back the earlier one.
  must(store->void_event(last[0], "dispensed by mistake"));
  refills = store->next_refills(id);
  REQUIRE(refills.size() == 1);
  CHECK(refills[0].last_dispensed_at == "2026-10-01T08:00:00");
  CHECK(refills[0].next_refill == "2026-12-30");
}

TEST_CASE_METHOD(StoreFixture, "a refill across a year end lands on the right date", "[core][patients][refill]") {
  const std::string id = add_patient("Trần Văn Phúc", "Thôn Tây", {"chronic"});
  add_item("AMLO5");
  receive("AMLO5", 100, "A1", "2027-12-31");
  dispense(id, "AMLO5", 60, 60);
  auto refills = store->next_refills(id);
  REQUIRE(refills.size() == 1);
  CHECK(refills[0].next_refill == "2027-01-19");
  CHECK(store->next_refills("no-such-patient").empty());
}
