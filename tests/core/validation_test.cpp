// Validation where input enters: a refused action names the field, the rule and
// the value, and records nothing.
#include <catch2/catch.hpp>

#include <string>

#include "fixture.h"
#include "tramsync/core/validate.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

// A station with one patient and 30 tablets of PARA500 in one lot.
class ValidationFixture : public StoreFixture {
 public:
  ValidationFixture() {
    patient = add_patient("Nguyễn Văn An", "Thôn Đông", {"elderly"}, "1950", "male");
    add_item("PARA500", "tablet");
    receive("PARA500", 30, "LOT-1", "2027-06-30");
    changes_before = store->change_count();
  }

  VisitInput visit_input() {
    VisitInput in;
    in.patient_id = patient;
    return in;
  }

  PatientInput patient_input() {
    PatientInput in;
    in.name = "Trần Thị Bình";
    in.sex = "female";
    in.birth = "1960-03-15";
    in.village = "Thôn Tây";
    return in;
  }

  ReceiveInput receive_input() {
    ReceiveInput in;
    in.item = "PARA500";
    in.quantity = 100;
    in.lot = "LOT-2";
    in.expiry = "2027-12-31";
    return in;
  }

  // The action recorded nothing.
  void check_nothing_recorded() {
    CHECK(store->change_count() == changes_before);
    CHECK(store->patient_visits(patient).empty());
    CHECK(store->list_patients({}).size() == 1);
    CHECK(stock_of("PARA500").on_hand == 30);
  }

  std::string patient;
  int64_t changes_before = 0;
};

}  // namespace

TEST_CASE("an error message reads context: field rule, got value", "[core][validation]") {
  Error e = Error::invalid("quantity", "must be greater than 0", "-5").in("dispense");
  CHECK(e.message() == "dispense: quantity must be greater than 0, got \"-5\"");
  // in() keeps the innermost context.
  Error inner = Error::invalid("quantity", "must be greater than 0", "-5").in("dispense").in("outer");
  CHECK(inner.context == "dispense");
  CHECK(Error::not_found("patient", "abcd").message() == "patient must name an existing record, got \"abcd\"");
  CHECK(Error::not_found("patient", "abcd").code == ErrorCode::kNotFound);
}

TEST_CASE_METHOD(ValidationFixture, "a temperature of 370 is refused naming temp and 370", "[core][validation]") {
  auto in = visit_input();
  in.temp_c = 370;
  Error e = must_fail(store->add_visit(in));
  CHECK(e.code == ErrorCode::kInvalid);
  CHECK(e.field == "temp");
  CHECK(e.value == "370");
  CHECK(e.message() == "visit add: temp must be between 30 and 45 °C, got \"370\"");
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a fractional temperature out of range keeps its decimals in the message",
                 "[core][validation]") {
  auto in = visit_input();
  in.temp_c = 29.5;
  Error e = must_fail(store->add_visit(in));
  CHECK_THAT(e.message(), Contains("temp") && Contains("29.5"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "an SpO2 of 120 is refused", "[core][validation]") {
  auto in = visit_input();
  in.spo2 = 120;
  Error e = must_fail(store->add_visit(in));
  CHECK(e.field == "spo2");
  CHECK_THAT(e.message(), Contains("spo2") && Contains("between 50 and 100") && Contains("120"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a blood pressure of 80/120 (systolic below diastolic) is refused",
                 "[core][validation]") {
  auto in = visit_input();
  in.bp_sys = 80;
  in.bp_dia = 120;
  Error e = must_fail(store->add_visit(in));
  CHECK(e.field == "bp");
  CHECK(e.value == "80/120");
  CHECK_THAT(e.message(), Contains("systolic must be greater than diastolic") && Contains("80/120"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a blood pressure with only one number is refused", "[core][validation]") {
  auto in = visit_input();
  in.bp_sys = 130;
  Error e = must_fail(store->add_visit(in));
  CHECK(e.field == "bp");
  CHECK_THAT(e.message(), Contains("both systolic and diastolic"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "plausible vitals are accepted and stored as given", "[core][validation]") {
  auto in = visit_input();
  in.temp_c = 38.5;
  in.spo2 = 94;
  in.bp_sys = 140;
  in.bp_dia = 90;
  in.pulse = 96;
  in.symptoms = {" ho ", "sốt"};
  const std::string id = must(store->add_visit(in));
  auto visits = store->patient_visits(patient);
  REQUIRE(visits.size() == 1);
  CHECK(visits[0].id == id);
  CHECK(visits[0].temp_c == 38.5);
  CHECK(visits[0].spo2 == 94);
  CHECK(visits[0].bp_sys == 140);
  CHECK(visits[0].bp_dia == 90);
  CHECK(visits[0].pulse == 96);
  CHECK(visits[0].symptoms == std::vector<std::string>{"ho", "sốt"});
  CHECK(visits[0].at == kStartLocal);
  CHECK(store->change_count() == changes_before + 1);
}

TEST_CASE_METHOD(ValidationFixture, "a birth date in the future is refused", "[core][validation]") {
  auto in = patient_input();
  in.birth = "2031-01-01";
  Error e = must_fail(store->add_patient(in));
  CHECK(e.field == "birth");
  CHECK(e.message() == "patient add: birth must not be in the future, got \"2031-01-01\"");
  check_nothing_recorded();

  in.birth = "2027";  // a year after this one
  CHECK_THAT(must_fail(store->add_patient(in)).message(), Contains("future") && Contains("2027"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a birth date that does not exist (2025-02-29) is refused", "[core][validation]") {
  auto in = patient_input();
  in.birth = "2025-02-29";
  Error e = must_fail(store->add_patient(in));
  CHECK(e.field == "birth");
  CHECK(e.value == "2025-02-29");
  CHECK_THAT(e.message(), Contains("birth") && Contains("real date") && Contains("2025-02-29"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a birth year before 1880 is refused and today is accepted", "[core][validation]") {
  auto in = patient_input();
  in.birth = "1879";
  CHECK_THAT(must_fail(store->add_patient(in)).message(), Contains("before 1880") && Contains("1879"));
  check_nothing_recorded();
  in.birth = kToday;
  must(store->add_patient(in));
}

TEST_CASE_METHOD(ValidationFixture, "an unknown category is refused naming the allowed ones", "[core][validation]") {
  auto in = patient_input();
  in.categories = {"elderly", "pregnant"};
  Error e = must_fail(store->add_patient(in));
  CHECK(e.field == "category");
  CHECK(e.value == "pregnant");
  CHECK_THAT(e.message(), Contains("must be one of elderly|chronic|covid-home|vulnerable|other") &&
                              Contains("pregnant"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "an unknown sex is refused", "[core][validation]") {
  auto in = patient_input();
  in.sex = "m";
  Error e = must_fail(store->add_patient(in));
  CHECK(e.field == "sex");
  CHECK(e.message() == "patient add: sex must be one of male|female|other, got \"m\"");
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a patient without a name or village is refused", "[core][validation]") {
  auto in = patient_input();
  in.name = "   ";
  CHECK_THAT(must_fail(store->add_patient(in)).message(), Contains("name must not be empty"));
  in = patient_input();
  in.village = "";
  CHECK_THAT(must_fail(store->add_patient(in)).message(), Contains("village must not be empty"));
  in = patient_input();
  in.name = "Tr\xE1\xBA";  // truncated UTF-8
  CHECK_THAT(must_fail(store->add_patient(in)).message(), Contains("name must be valid UTF-8"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a second patient with the same national id is refused", "[core][validation]") {
  auto in = patient_input();
  in.national_id = "001060012345";
  const std::string first = must(store->add_patient(in));
  const auto before = store->change_count();
  in.name = "Người khác";
  Error e = must_fail(store->add_patient(in));
  CHECK(e.code == ErrorCode::kConflict);
  CHECK_THAT(e.message(), Contains("national_id") && Contains(first) && Contains("001060012345"));
  CHECK(store->change_count() == before);
}

TEST_CASE_METHOD(ValidationFixture, "a receipt of a negative quantity is refused", "[core][validation][stock]") {
  auto in = receive_input();
  in.quantity = -5;
  Error e = must_fail(store->receive(in));
  CHECK(e.field == "quantity");
  CHECK(e.message() == "stock receive: quantity must be greater than 0, got \"-5\"");
  check_nothing_recorded();
  in.quantity = 0;
  CHECK_THAT(must_fail(store->receive(in)).message(), Contains("quantity must be greater than 0"));
  in.quantity = 100'000'001;
  CHECK_THAT(must_fail(store->receive(in)).message(), Contains("at most 100000000"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a receipt without a lot is refused", "[core][validation][stock]") {
  auto in = receive_input();
  in.lot = "  ";
  Error e = must_fail(store->receive(in));
  CHECK(e.field == "lot");
  CHECK_THAT(e.message(), Contains("stock receive: lot must not be empty"));
  check_nothing_recorded();
  in.lot = "LOT 2";
  CHECK_THAT(must_fail(store->receive(in)).message(), Contains("lot must be a code without spaces"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a receipt whose expiry is before the receipt date is refused",
                 "[core][validation][stock]") {
  auto in = receive_input();
  in.expiry = "2026-11-01";
  Error e = must_fail(store->receive(in));
  CHECK(e.field == "expiry");
  CHECK(e.value == "2026-11-01");
  CHECK_THAT(e.message(), Contains("before the receipt date 2026-11-20") && Contains("2026-11-01"));
  check_nothing_recorded();

  in.expiry = "2027-02-30";
  CHECK_THAT(must_fail(store->receive(in)).message(), Contains("expiry") && Contains("2027-02-30"));
  in.expiry = "";
  CHECK_THAT(must_fail(store->receive(in)).message(), Contains("expiry must be a date YYYY-MM-DD"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a second receipt of a lot must agree with the lot's expiry",
                 "[core][validation][stock]") {
  auto in = receive_input();
  in.lot = "LOT-1";
  in.expiry = "2027-07-31";
  Error e = must_fail(store->receive(in));
  CHECK_THAT(e.message(), Contains("expiry") && Contains("2027-06-30") && Contains("LOT-1") && Contains("2027-07-31"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a receipt of an unknown item is refused", "[core][validation][stock]") {
  auto in = receive_input();
  in.item = "NOPE";
  Error e = must_fail(store->receive(in));
  CHECK(e.code == ErrorCode::kNotFound);
  CHECK(e.message() == "stock receive: item must name an existing record, got \"NOPE\"");
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a dispense beyond stock is refused naming the amount available",
                 "[core][validation][stock]") {
  DispenseInput in;
  in.patient_id = patient;
  in.item = "PARA500";
  in.quantity = 50;
  Error e = must_fail(store->dispense(in));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.field == "quantity");
  CHECK(e.value == "50");
  CHECK(e.message() ==
        "dispense: quantity exceeds stock on hand of PARA500: 30 tablet available (expired lots excluded), got \"50\"");
  check_nothing_recorded();
  CHECK(store->patient_dispensings(patient).empty());
}

TEST_CASE_METHOD(ValidationFixture, "a dispense of a negative quantity or too many days is refused",
                 "[core][validation][stock]") {
  DispenseInput in;
  in.patient_id = patient;
  in.item = "PARA500";
  in.quantity = -3;
  CHECK_THAT(must_fail(store->dispense(in)).message(), Contains("quantity must be greater than 0") && Contains("-3"));
  in.quantity = 3;
  in.days_supply = 400;
  CHECK_THAT(must_fail(store->dispense(in)).message(), Contains("days must be between 1 and 366") && Contains("400"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "an event time in the future is refused", "[core][validation]") {
  auto v = visit_input();
  v.at = "2026-11-20T09:01";
  Error e = must_fail(store->add_visit(v));
  CHECK(e.field == "at");
  CHECK(e.value == "2026-11-20T09:01");
  CHECK_THAT(e.message(), Contains("must not be in the future") && Contains("2026-11-20T09:00"));
  check_nothing_recorded();

  auto r = receive_input();
  r.at = "2026-11-21";
  CHECK_THAT(must_fail(store->receive(r)).message(), Contains("at must not be in the future") && Contains("2026-11-21"));
  check_nothing_recorded();

  // Exactly now is fine.
  v.at = "2026-11-20T09:00";
  must(store->add_visit(v));
}

TEST_CASE_METHOD(ValidationFixture, "a malformed event time is refused", "[core][validation]") {
  auto v = visit_input();
  v.at = "20/11/2026";
  CHECK_THAT(must_fail(store->add_visit(v)).message(), Contains("at") && Contains("20/11/2026"));
  v.at = "2026-11-20T25:00";
  CHECK_THAT(must_fail(store->add_visit(v)).message(), Contains("real time of day") && Contains("25:00"));
  check_nothing_recorded();
}

TEST_CASE_METHOD(ValidationFixture, "a visit dated before the patient's birth is refused", "[core][validation]") {
  auto v = visit_input();
  v.at = "1949-12-31";
  CHECK_THAT(must_fail(store->add_visit(v)).message(), Contains("before the patient's birth"));
  check_nothing_recorded();
}

TEST_CASE("the pure validators name field, rule and value", "[core][validation]") {
  const Date today{2026, 11, 20};
  CHECK(validate::birth("1950", today).ok());
  CHECK(validate::birth("2026-11-20", today).ok());
  CHECK_FALSE(validate::birth("2026-11-21", today).ok());
  CHECK_FALSE(validate::birth("195", today).ok());
  CHECK(validate::birth("2024-02-29", today).ok());
  CHECK(validate::birth("2023-02-29", today).error().rule == "must be YYYY or a real date YYYY-MM-DD");

  CHECK(validate::positive("quantity", 1).ok());
  CHECK(validate::positive("quantity", 0).error().message() == "quantity must be greater than 0, got \"0\"");

  CHECK(validate::one_of("stage", "stored", kWasteStages).ok());
  CHECK(validate::one_of("stage", "Stored", kWasteStages).error().value == "Stored");

  CHECK(validate::trim("  a b \t\r\n") == "a b");
  CHECK(validate::trim(" \t ").empty());

  VisitInput v;
  v.pulse = 300;
  CHECK(validate::vitals(v).error().message() == "pulse must be between 20 and 250 per minute, got \"300\"");
  v.pulse = 80;
  v.temp_c = 36.6;
  CHECK(validate::vitals(v).ok());

  CHECK(must(validate::event_time(std::nullopt, "2026-11-20T09:00:00")) == "2026-11-20T09:00:00");
  CHECK(must(validate::event_time(std::string("2026-11-19 18:30"), "2026-11-20T09:00:00")) == "2026-11-19T18:30:00");
}
