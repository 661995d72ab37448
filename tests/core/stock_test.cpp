// Stock on hand is the sum of the non-voided movements per item and lot.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fixture.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

// Paracetamol in two lots: A (100, expires 2027-03-31) and B (50, 2027-06-30).
class StockFixture : public StoreFixture {
 public:
  StockFixture() {
    patient = add_patient("Nguyễn Văn An", "Thôn Đông", {"chronic"}, "1950", "male");
    item_id = add_item("PARA500", "tablet", std::nullopt, "Paracetamol 500 mg");
    receipt_a = receive("PARA500", 100, "A", "2027-03-31");
    receipt_b = receive("PARA500", 50, "B", "2027-06-30");
  }

  std::vector<std::string> lot_names(const std::string& code) {
    std::vector<std::string> out;
    for (const auto& l : stock_of(code).lots) out.push_back(l.lot);
    return out;
  }

  std::string patient, item_id, receipt_a, receipt_b;
};

}  // namespace

TEST_CASE_METHOD(StockFixture, "receipts in two lots add up, listed earliest expiry first", "[core][stock]") {
  ItemStock s = stock_of("PARA500");
  CHECK(s.item_id == item_id);
  CHECK(s.item_name == "Paracetamol 500 mg");
  CHECK(s.unit == "tablet");
  CHECK(s.kind == "medicine");
  CHECK(s.on_hand == 150);
  CHECK(s.expired_on_hand == 0);
  CHECK(s.expiring_soon == 0);
  CHECK_FALSE(s.reserve.has_value());
  CHECK_FALSE(s.under_reserve);
  REQUIRE(s.lots.size() == 2);
  CHECK(s.lots[0].lot == "A");
  CHECK(s.lots[0].expiry == "2027-03-31");
  CHECK(s.lots[0].on_hand == 100);
  CHECK(s.lots[1].lot == "B");
  CHECK(s.lots[1].expiry == "2027-06-30");
  CHECK(s.lots[1].on_hand == 50);
  CHECK_FALSE(s.lots[0].expired);
  CHECK_FALSE(s.lots[0].expiring_soon);
}

TEST_CASE_METHOD(StockFixture, "a second receipt of the same lot adds to it", "[core][stock]") {
  receive("PARA500", 25, "A", "2027-03-31");
  CHECK(lot_on_hand("PARA500", "A") == 125);
  CHECK(stock_of("PARA500").on_hand == 175);
}

TEST_CASE_METHOD(StockFixture, "a dispense takes from the earliest-expiring lot first and splits across lots",
                 "[core][stock]") {
  auto ids = dispense(patient, "PARA500", 120, 30);
  REQUIRE(ids.size() == 2);
  CHECK(lot_on_hand("PARA500", "A") == 0);
  CHECK(lot_on_hand("PARA500", "B") == 30);
  CHECK(stock_of("PARA500").on_hand == 30);
  CHECK(lot_names("PARA500") == std::vector<std::string>{"B"});  // an empty lot is not listed

  auto given = store->patient_dispensings(patient);
  REQUIRE(given.size() == 2);
  int64_t total = 0;
  for (const auto& m : given) {
    CHECK(m.kind == "dispense");
    CHECK(m.item_code == "PARA500");
    CHECK(m.days_supply == 30);
    CHECK(m.at == kStartLocal);
    CHECK_FALSE(m.voided);
    total += m.quantity;
    if (m.lot == "A") CHECK(m.quantity == 100);
    if (m.lot == "B") CHECK(m.quantity == 20);
  }
  CHECK(total == 120);
}

TEST_CASE_METHOD(StockFixture, "a dispense that fits in the first lot takes only from it", "[core][stock]") {
  auto ids = dispense(patient, "PARA500", 40);
  CHECK(ids.size() == 1);
  CHECK(lot_on_hand("PARA500", "A") == 60);
  CHECK(lot_on_hand("PARA500", "B") == 50);
}

TEST_CASE_METHOD(StockFixture, "a dispense from a named lot takes only from that lot", "[core][stock]") {
  auto ids = dispense(patient, "PARA500", 10, std::nullopt, std::nullopt, std::string("B"));
  CHECK(ids.size() == 1);
  CHECK(lot_on_hand("PARA500", "A") == 100);
  CHECK(lot_on_hand("PARA500", "B") == 40);
}

TEST_CASE_METHOD(StockFixture, "a dispense from a named lot beyond that lot's stock is refused",
                 "[core][stock]") {
  const auto before = store->change_count();
  DispenseInput in;
  in.patient_id = patient;
  in.item = "PARA500";
  in.quantity = 60;  // the item has 150, lot B only 50
  in.lot = "B";
  Error e = must_fail(store->dispense(in));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.message() == "dispense: quantity exceeds stock on hand of lot B: 50 tablet available, got \"60\"");
  CHECK(store->change_count() == before);

  in.lot = "Z";
  Error unknown = must_fail(store->dispense(in));
  CHECK(unknown.code == ErrorCode::kNotFound);
  CHECK_THAT(unknown.message(), Contains("lot") && Contains("Z"));
  CHECK(stock_of("PARA500").on_hand == 150);
}

TEST_CASE_METHOD(StockFixture, "a dispense of all the usable stock leaves zero and the next is refused",
                 "[core][stock]") {
  dispense(patient, "PARA500", 150);
  CHECK(stock_of("PARA500").on_hand == 0);
  CHECK(stock_of("PARA500").lots.empty());
  DispenseInput in;
  in.patient_id = patient;
  in.item = "PARA500";
  in.quantity = 1;
  CHECK_THAT(must_fail(store->dispense(in)).message(), Contains("0 tablet available"));
}

TEST_CASE_METHOD(StockFixture, "a dispense to a patient who is no longer active is refused", "[core][stock]") {
  PatientUpdate up;
  up.status = "deceased";
  must(store->update_patient(patient, up));
  DispenseInput in;
  in.patient_id = patient;
  in.item = "PARA500";
  in.quantity = 1;
  Error e = must_fail(store->dispense(in));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("must be active") && Contains("deceased"));
  CHECK(stock_of("PARA500").on_hand == 150);
}

TEST_CASE_METHOD(StockFixture, "a write-off takes from the named lot", "[core][stock]") {
  WriteoffInput in;
  in.item = "PARA500";
  in.lot = "A";
  in.quantity = 5;
  in.reason = "damaged";
  must(store->write_off(in));
  CHECK(lot_on_hand("PARA500", "A") == 95);
  CHECK(stock_of("PARA500").on_hand == 145);

  const auto before = store->change_count();
  in.reason = "stolen";
  CHECK_THAT(must_fail(store->write_off(in)).message(),
             Contains("reason must be one of expired|damaged|lost") && Contains("stolen"));
  in.reason = "lost";
  in.quantity = 96;
  CHECK_THAT(must_fail(store->write_off(in)).message(), Contains("95 tablet available") && Contains("96"));
  CHECK(store->change_count() == before);
}

TEST_CASE_METHOD(StockFixture, "an adjustment adds or removes on a named lot and never goes below zero",
                 "[core][stock]") {
  AdjustInput in;
  in.item = "PARA500";
  in.lot = "B";
  in.quantity = 3;
  in.reason = "count found 3 more";
  CHECK(must(store->adjust(in)).size() == 1);
  CHECK(lot_on_hand("PARA500", "B") == 53);
  in.quantity = -8;
  in.reason = "count found 8 fewer";
  must(store->adjust(in));
  CHECK(lot_on_hand("PARA500", "B") == 45);
  CHECK(stock_of("PARA500").on_hand == 145);

  const auto before = store->change_count();
  in.quantity = -46;
  Error below = must_fail(store->adjust(in));
  CHECK(below.code == ErrorCode::kRefused);
  CHECK_THAT(below.message(), Contains("below zero") && Contains("45 tablet on hand") && Contains("-46"));
  in.quantity = 0;
  CHECK_THAT(must_fail(store->adjust(in)).message(), Contains("must not be 0"));
  in.quantity = 2;
  in.reason = " ";
  CHECK_THAT(must_fail(store->adjust(in)).message(), Contains("reason must not be empty"));
  CHECK(store->change_count() == before);
}

TEST_CASE_METHOD(StockFixture, "an adjustment without a lot needs the item to have exactly one lot",
                 "[core][stock]") {
  AdjustInput in;
  in.item = "PARA500";
  in.quantity = 1;
  in.reason = "recount";
  Error e = must_fail(store->adjust(in));
  CHECK_THAT(e.message(), Contains("several lots (A, B)"));

  add_item("ORS", "sachet");
  in.item = "ORS";
  CHECK_THAT(must_fail(store->adjust(in)).message(), Contains("has never been received"));
  receive("ORS", 10, "O1", "2028-01-31");
  must(store->adjust(in));
  CHECK(lot_on_hand("ORS", "O1") == 11);
}

TEST_CASE_METHOD(StockFixture, "a transfer out takes from a lot and a transfer in adds a lot", "[core][stock]") {
  TransferInput out;
  out.item = "PARA500";
  out.lot = "A";
  out.quantity = 20;
  out.counterpart = "TYT xã Bình Minh";
  must(store->transfer_out(out));
  CHECK(lot_on_hand("PARA500", "A") == 80);

  TransferInput in;
  in.item = "PARA500";
  in.lot = "C";
  in.expiry = "2027-09-30";
  in.quantity = 30;
  in.counterpart = "TTYT huyện Đông Anh";
  must(store->transfer_in(in));
  ItemStock s = stock_of("PARA500");
  CHECK(s.on_hand == 80 + 50 + 30);
  REQUIRE(s.lots.size() == 3);
  CHECK(s.lots[2].lot == "C");
  CHECK(s.lots[2].expiry == "2027-09-30");
  CHECK(s.lots[2].on_hand == 30);

  const auto before = store->change_count();
  out.quantity = 81;
  CHECK_THAT(must_fail(store->transfer_out(out)).message(), Contains("80 tablet available"));
  out.quantity = 5;
  out.counterpart = "";
  CHECK_THAT(must_fail(store->transfer_out(out)).message(), Contains("to must not be empty"));
  in.counterpart = "";
  CHECK_THAT(must_fail(store->transfer_in(in)).message(), Contains("from must not be empty"));
  CHECK(store->change_count() == before);
}

TEST_CASE_METHOD(StockFixture, "a voided dispense restores the stock it took", "[core][stock][void]") {
  auto ids = dispense(patient, "PARA500", 120);
  REQUIRE(ids.size() == 2);
  CHECK(stock_of("PARA500").on_hand == 30);
  const auto before = store->change_count();
  // The nurse voids the handing-out by the id she was shown: both lots' parts go back.
  must(store->void_event(ids[0], "wrong patient"));
  CHECK(lot_on_hand("PARA500", "A") == 100);
  CHECK(stock_of("PARA500").on_hand == 150);
  CHECK(store->change_count() == before + 2);  // one void event per part

  auto given = store->patient_dispensings(patient);
  REQUIRE(given.size() == 2);
  CHECK(given[0].voided);
  CHECK(given[1].voided);

  for (const auto& part : ids) {
    Error twice = must_fail(store->void_event(part, "again"));
    CHECK(twice.code == ErrorCode::kRefused);
    CHECK_THAT(twice.message(), Contains("already voided"));
  }
}

TEST_CASE_METHOD(StockFixture, "voiding a receipt whose stock was already dispensed is refused",
                 "[core][stock][void]") {
  dispense(patient, "PARA500", 30);  // from lot A: 70 left of the 100 received
  const auto before = store->change_count();
  Error e = must_fail(store->void_event(receipt_a, "entered twice"));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("cannot be voided") && Contains("lot A has only 70 left of the 100"));
  CHECK(store->change_count() == before);
  CHECK(lot_on_hand("PARA500", "A") == 70);

  // A receipt nothing was taken from can be voided.
  must(store->void_event(receipt_b, "entered twice"));
  CHECK(lot_on_hand("PARA500", "B") == 0);
  CHECK(stock_of("PARA500").on_hand == 70);
}

TEST_CASE_METHOD(StockFixture, "a void is itself final and cannot be voided", "[core][stock][void]") {
  const std::string v = must(store->void_event(receipt_b, "entered twice"));
  Error e = must_fail(store->void_event(v, "undo"));
  CHECK_THAT(e.message(), Contains("is itself a void"));
  CHECK(stock_of("PARA500").on_hand == 100);
}

TEST_CASE_METHOD(StockFixture, "a void may not be dated before the event it voids", "[core][stock][void]") {
  auto ids = dispense(patient, "PARA500", 5);
  Error e = must_fail(store->void_event(ids[0], "typo", std::string("2026-11-19")));
  CHECK_THAT(e.message(), Contains("before the event it voids"));
  CHECK(stock_of("PARA500").on_hand == 145);
}

TEST_CASE_METHOD(StoreFixture, "expired lots are shown apart and cannot be dispensed", "[core][stock][expiry]") {
  const std::string patient = add_patient("Lê Thị Hoa", "Thôn Tây", {"elderly"});
  add_item("AMOX", "capsule");
  receive("AMOX", 40, "OLD", "2026-11-15", std::string("2026-10-01"));  // expired five days ago
  receive("AMOX", 10, "NEW", "2027-05-31");

  ItemStock s = stock_of("AMOX");
  CHECK(s.on_hand == 10);
  CHECK(s.expired_on_hand == 40);
  REQUIRE(s.lots.size() == 2);
  CHECK(s.lots[0].lot == "OLD");
  CHECK(s.lots[0].expired);
  CHECK_FALSE(s.lots[0].expiring_soon);
  CHECK(s.lots[1].lot == "NEW");
  CHECK_FALSE(s.lots[1].expired);

  DispenseInput in;
  in.patient_id = patient;
  in.item = "AMOX";
  in.quantity = 20;
  Error over = must_fail(store->dispense(in));
  CHECK_THAT(over.message(), Contains("10 capsule available (expired lots excluded)"));

  in.quantity = 5;
  in.lot = "OLD";
  Error expired = must_fail(store->dispense(in));
  CHECK(expired.code == ErrorCode::kRefused);
  CHECK_THAT(expired.message(), Contains("must not be expired") && Contains("lot OLD expired on 2026-11-15"));

  in.lot.reset();
  in.quantity = 10;
  auto ids = must(store->dispense(in));
  REQUIRE(ids.size() == 1);
  CHECK(lot_on_hand("AMOX", "NEW") == 0);
  CHECK(lot_on_hand("AMOX", "OLD") == 40);

  // Expired stock leaves by a write-off.
  WriteoffInput w;
  w.item = "AMOX";
  w.lot = "OLD";
  w.quantity = 40;
  w.reason = "expired";
  must(store->write_off(w));
  CHECK(stock_of("AMOX").expired_on_hand == 0);
  CHECK(stock_of("AMOX").on_hand == 0);
}

TEST_CASE_METHOD(StoreFixture, "a lot expiring today is still usable and becomes expired tomorrow",
                 "[core][stock][expiry]") {
  const std::string patient = add_patient("Lê Văn Khánh");
  add_item("ZINC");
  receive("ZINC", 10, "Z1", kToday);
  CHECK(stock_of("ZINC").on_hand == 10);
  CHECK(stock_of("ZINC").lots[0].expiring_soon);

  clock.advance(kDayMs);
  ItemStock s = stock_of("ZINC");
  CHECK(s.on_hand == 0);
  CHECK(s.expired_on_hand == 10);
  DispenseInput in;
  in.patient_id = patient;
  in.item = "ZINC";
  in.quantity = 1;
  CHECK_THAT(must_fail(store->dispense(in)).message(), Contains("0 tablet available"));
}

TEST_CASE_METHOD(StoreFixture, "lots expiring within 30 days are flagged expiring soon", "[core][stock][expiry]") {
  add_item("SALBU", "inhaler");
  receive("SALBU", 7, "S-DEC", "2026-12-10");
  receive("SALBU", 4, "S-EDGE", "2026-12-20");  // exactly 30 days: still soon
  receive("SALBU", 9, "S-LATE", "2026-12-21");  // 31 days: not soon

  ItemStock s = stock_of("SALBU");
  CHECK(s.on_hand == 20);
  CHECK(s.expiring_soon == 11);
  REQUIRE(s.lots.size() == 3);
  CHECK(s.lots[0].lot == "S-DEC");
  CHECK(s.lots[0].expiring_soon);
  CHECK(s.lots[1].lot == "S-EDGE");
  CHECK(s.lots[1].expiring_soon);
  CHECK(s.lots[2].lot == "S-LATE");
  CHECK_FALSE(s.lots[2].expiring_soon);

  ReportSettings narrow;
  narrow.expiring_within_days = 20;
  for (const auto& it : store->stock(narrow)) {
    if (it.item_code == "SALBU") CHECK(it.expiring_soon == 7);
  }
}

TEST_CASE_METHOD(StoreFixture, "an item under its reserve level is flagged", "[core][stock][reserve]") {
  const std::string patient = add_patient("Huỳnh Văn Lâm", "Thôn Đông", {"chronic"});
  add_item("INSUL", "vial", 10);
  {
    ItemStock s = stock_of("INSUL");  // listed with its reserve before any receipt
    CHECK(s.reserve == 10);
    CHECK(s.on_hand == 0);
    CHECK(s.under_reserve);
  }
  receive("INSUL", 12, "I1", "2027-10-31");
  CHECK_FALSE(stock_of("INSUL").under_reserve);
  dispense(patient, "INSUL", 2);
  CHECK_FALSE(stock_of("INSUL").under_reserve);  // 10 on hand, reserve 10: not under
  dispense(patient, "INSUL", 1);
  CHECK(stock_of("INSUL").on_hand == 9);
  CHECK(stock_of("INSUL").under_reserve);

  must(store->set_reserve("INSUL", 5));
  CHECK(stock_of("INSUL").reserve == 5);
  CHECK_FALSE(stock_of("INSUL").under_reserve);
  CHECK_THAT(must_fail(store->set_reserve("INSUL", -1)).message(), Contains("reserve must be 0 or more"));
}

TEST_CASE_METHOD(StoreFixture, "an item code is unique at a station", "[core][stock]") {
  add_item("PARA500", "tablet", std::nullopt, "Paracetamol 500 mg");
  const auto before = store->change_count();
  ItemInput in;
  in.code = "PARA500";
  in.name = "Something else";
  in.unit = "tablet";
  Error e = must_fail(store->add_item(in));
  CHECK(e.code == ErrorCode::kConflict);
  CHECK_THAT(e.message(), Contains("already used") && Contains("Paracetamol 500 mg"));
  in.code = "PARA 500";
  CHECK_THAT(must_fail(store->add_item(in)).message(), Contains("code must be a code without spaces"));
  in.code = "NEW1";
  in.kind = "vaccine";
  CHECK_THAT(must_fail(store->add_item(in)).message(), Contains("kind must be one of") && Contains("vaccine"));
  CHECK(store->change_count() == before);
}

TEST_CASE_METHOD(StockFixture, "a transfer in of a known lot must agree with the lot's expiry",
                 "[core][stock]") {
  // A lot has one expiry: transfer_in() refuses another expiry for a known lot,
  // as receive() does, so the stock list never shows a wrong date for all of it.
  const auto before = store->change_count();
  TransferInput in;
  in.item = "PARA500";
  in.lot = "A";               // recorded with expiry 2027-03-31
  in.expiry = "2028-12-31";   // another expiry for the same lot
  in.quantity = 10;
  in.counterpart = "TYT xã Bình Minh";
  auto r = store->transfer_in(in);
  CHECK_FALSE(r.ok());
  CHECK(store->change_count() == before);
  for (const auto& l : stock_of("PARA500").lots) {
    if (l.lot == "A") CHECK(l.expiry == "2027-03-31");
  }
}

TEST_CASE_METHOD(StockFixture, "a lot used up before it expired is not listed again once its date passes",
                 "[core][stock][expiry]") {
  // Expired lots with stock show; a lot used up before its date does not come
  // back as "expired, 0 on hand", so the list does not grow for ever.
  dispense(patient, "PARA500", 100);  // lot A (expires 2027-03-31) is used up
  REQUIRE(lot_names("PARA500") == std::vector<std::string>{"B"});
  clock.set(kStartMs + 200 * kDayMs);  // 2027-06-08: A has expired, B has not
  ItemStock s = stock_of("PARA500");
  CHECK(s.on_hand == 50);
  CHECK(s.expired_on_hand == 0);
  CHECK(lot_names("PARA500") == std::vector<std::string>{"B"});
}

TEST_CASE_METHOD(StockFixture, "a dispense entered late may not take what a later dispense already took",
                 "[core][stock][at]") {
  add_item("AMOX500", "capsule");
  receive("AMOX500", 100, "X", "2027-12-31", "2026-11-18T08:00");
  dispense(patient, "AMOX500", 80, 30, "2026-11-19T10:00");
  const auto before = store->change_count();

  // On the 18th at noon the lot held 100, but taking 30 then would leave the
  // 19th's dispense of 80 without stock: only 20 could have been handed out.
  DispenseInput late;
  late.patient_id = patient;
  late.item = "AMOX500";
  late.quantity = 30;
  late.at = "2026-11-18T12:00";
  Error e = must_fail(store->dispense(late));
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("20 capsule available at 2026-11-18T12:00") && Contains("30"));
  CHECK(store->change_count() == before);

  // Before the receipt nothing was there at all.
  late.quantity = 1;
  late.at = "2026-11-18T07:59";
  CHECK_THAT(must_fail(store->dispense(late)).message(), Contains("0 capsule available"));

  late.quantity = 20;
  late.at = "2026-11-18T12:00";
  must(store->dispense(late));
  CHECK(stock_of("AMOX500").on_hand == 0);
}
