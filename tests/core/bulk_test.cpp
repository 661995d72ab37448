// Store::batch: several actions in one transaction, all or nothing, with one
// change per record in the log as if each action had run alone.
#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixture.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {

// A chronic patient, an item with 100 tablets in lot A, and the log as it
// stands before each test's batch.
class BulkFixture : public StoreFixture {
 public:
  BulkFixture() {
    patient = add_patient("Nguyễn Văn An", "Thôn Đông", {"chronic"}, "1950", "male");
    add_item("MET500");
    receive("MET500", 100, "A", "2027-03-31", "2026-11-01T08:00:00");
    before = store->change_count();
    last_before = all_changes().back();
  }

  VisitInput visit_in(const std::string& at) {
    VisitInput in;
    in.patient_id = patient;
    in.at = at;
    in.temp_c = 37.0;
    return in;
  }
  DispenseInput dispense_in(int64_t quantity, const std::string& at) {
    DispenseInput in;
    in.patient_id = patient;
    in.item = "MET500";
    in.quantity = quantity;
    in.days_supply = 30;
    in.at = at;
    return in;
  }
  PatientInput patient_in(const std::string& name) {
    PatientInput in;
    in.name = name;
    in.sex = "female";
    in.birth = "1960";
    in.village = "Thôn Tây";
    in.categories = {"elderly"};
    return in;
  }

  // Nothing of a failed batch is left: the log, the records, the stock.
  void check_nothing_kept() {
    CHECK(store->change_count() == before);
    CHECK(all_changes().back().seq == last_before.seq);
    CHECK(store->patient_visits(patient).empty());
    CHECK(store->patient_dispensings(patient).empty());
    CHECK(store->list_patients({}).size() == 1);
    CHECK(search("lan").empty());
    CHECK(lot_on_hand("MET500", "A") == 100);
    CHECK(store->integrity_check() == "ok");
  }

  std::string patient;
  int64_t before = 0;
  Change last_before;
};

}  // namespace

TEST_CASE_METHOD(BulkFixture, "a batch keeps every action and appends one change per record, in order",
                 "[core][bulk][changes]") {
  std::vector<std::string> visits, dispenses;
  std::string new_patient;
  must(store->batch([&]() -> Status {
    for (int d = 2; d <= 4; ++d) {
      auto v = store->add_visit(visit_in("2026-11-1" + std::to_string(d) + "T09:00:00"));
      if (!v) return v.error();
      visits.push_back(*v);
    }
    auto p = store->add_patient(patient_in("Trần Thị Lan"));
    if (!p) return p.error();
    new_patient = *p;
    for (int d = 5; d <= 6; ++d) {
      auto m = store->dispense(dispense_in(30, "2026-11-1" + std::to_string(d) + "T10:00:00"));
      if (!m) return m.error();
      dispenses.insert(dispenses.end(), m->begin(), m->end());
    }
    return {};
  }));

  // Every record is there.
  CHECK(store->patient_visits(patient).size() == 3);
  CHECK(store->patient_dispensings(patient).size() == 2);
  CHECK(lot_on_hand("MET500", "A") == 40);
  CHECK(search("lan") == std::vector<std::string>{"Trần Thị Lan"});

  // One change per record, in the order written, numbered on from the log
  // before the batch, each with its own increasing hlc.
  const std::vector<Change> all = all_changes();
  REQUIRE(store->change_count() == before + 6);
  REQUIRE(all.size() == static_cast<size_t>(before + 6));
  std::vector<Change> batch(all.end() - 6, all.end());
  const std::vector<std::string> kinds = {"visit", "visit", "visit", "patient", "stock_movement", "stock_movement"};
  const std::vector<std::string> records = {visits[0], visits[1], visits[2], new_patient, dispenses[0], dispenses[1]};
  Change prev = last_before;
  for (size_t i = 0; i < batch.size(); ++i) {
    INFO("change " << i);
    CHECK(batch[i].kind == kinds[i]);
    CHECK(batch[i].record_id == records[i]);
    CHECK(batch[i].origin == identity.device_id);
    CHECK(batch[i].origin_seq == prev.origin_seq + 1);
    CHECK(batch[i].hlc > prev.hlc);
    CHECK(batch[i].from_peer.empty());
    prev = batch[i];
  }
  std::set<std::string> distinct;
  for (const auto& c : batch) distinct.insert(c.record_id);
  CHECK(distinct.size() == 6);

  // Single actions after the batch run alone again, and the clock went on from it.
  const std::string after = visit(patient, "2026-11-19T09:00:00");
  const Change last = all_changes().back();
  CHECK(last.record_id == after);
  CHECK(last.origin_seq == prev.origin_seq + 1);
  CHECK(last.hlc > prev.hlc);
}

TEST_CASE_METHOD(BulkFixture, "an action refused in the middle of a batch leaves nothing of the batch",
                 "[core][bulk][atomicity]") {
  int ran = 0;
  Error e = must_fail(store->batch([&]() -> Status {
    for (const auto& at : {"2026-11-12T09:00:00", "2026-11-13T09:00:00"}) {
      auto v = store->add_visit(visit_in(at));
      if (!v) return v.error();
      ++ran;
    }
    auto p = store->add_patient(patient_in("Trần Thị Lan"));
    if (!p) return p.error();
    ++ran;
    // The first dispense takes 60 of the 100; the second sees the batch's own
    // dispense and is refused: 40 left.
    for (const auto& at : {"2026-11-14T10:00:00", "2026-11-15T10:00:00"}) {
      auto m = store->dispense(dispense_in(60, at));
      if (!m) return m.error();
      ++ran;
    }
    return {};
  }));
  CHECK(ran == 4);
  CHECK(e.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("dispense") && Contains("quantity") && Contains("40"));
  check_nothing_kept();

  // The store is usable again, one action per transaction.
  must(store->add_visit(visit_in("2026-11-16T09:00:00")));
  CHECK(store->change_count() == before + 1);
  CHECK(all_changes().back().origin_seq == last_before.origin_seq + 1);
}

TEST_CASE_METHOD(BulkFixture, "an action that fails after writing fails the batch even if the caller goes on",
                 "[core][bulk][atomicity]") {
  must(store->add_visit(visit_in("2026-11-11T09:00:00")));
  before = store->change_count();
  last_before = all_changes().back();
  const std::vector<Visit> visits_before = store->patient_visits(patient);
  fail_kind = "stock_movement";  // the movement row is written, then its change refused
  Error e = must_fail(store->batch([&]() -> Status {
    auto v = store->add_visit(visit_in("2026-11-12T09:00:00"));
    if (!v) return v.error();
    auto m = store->dispense(dispense_in(10, "2026-11-13T10:00:00"));
    CHECK_FALSE(m.ok());  // a careless caller that ignores it
    auto p = store->add_patient(patient_in("Trần Thị Lan"));
    if (!p) return p.error();
    return {};
  }));
  CHECK(e.code == ErrorCode::kIo);
  CHECK_THAT(e.message(), Contains("dispense") && Contains("injected failure"));
  fail_kind.clear();
  CHECK(store->change_count() == before);
  CHECK(all_changes().back().seq == last_before.seq);
  CHECK(store->patient_visits(patient).size() == visits_before.size());
  CHECK(store->patient_dispensings(patient).empty());
  CHECK(store->list_patients({}).size() == 1);
  CHECK(lot_on_hand("MET500", "A") == 100);
  CHECK(store->integrity_check() == "ok");
}

TEST_CASE_METHOD(BulkFixture, "a batch whose caller throws leaves nothing and the store goes on",
                 "[core][bulk][atomicity]") {
  CHECK_THROWS_AS(store->batch([&]() -> Status {
                    must(store->add_visit(visit_in("2026-11-12T09:00:00")));
                    must(store->add_patient(patient_in("Trần Thị Lan")));
                    throw std::runtime_error("caller gave up");
                  }),
                  std::runtime_error);
  check_nothing_kept();
  must(store->add_visit(visit_in("2026-11-13T09:00:00")));
  CHECK(store->change_count() == before + 1);
}

TEST_CASE_METHOD(BulkFixture, "a batch inside a batch is refused and fails the outer one",
                 "[core][bulk]") {
  Error inner;
  Error e = must_fail(store->batch([&]() -> Status {
    auto v = store->add_visit(visit_in("2026-11-12T09:00:00"));
    if (!v) return v.error();
    Status st = store->batch([&]() -> Status { return {}; });
    REQUIRE_FALSE(st.ok());
    inner = st.error();
    return st;
  }));
  CHECK(inner.code == ErrorCode::kRefused);
  CHECK_THAT(e.message(), Contains("batch"));
  check_nothing_kept();
}

TEST_CASE_METHOD(BulkFixture, "an empty batch changes nothing", "[core][bulk]") {
  must(store->batch([]() -> Status { return {}; }));
  CHECK(store->change_count() == before);
  CHECK(store->integrity_check() == "ok");
}

TEST_CASE_METHOD(BulkFixture, "a batch's changes survive reopening the file", "[core][bulk]") {
  must(store->batch([&]() -> Status {
    for (int d = 2; d <= 5; ++d) {
      auto v = store->add_visit(visit_in("2026-11-1" + std::to_string(d) + "T09:00:00"));
      if (!v) return v.error();
    }
    return {};
  }));
  reopen();
  CHECK(store->patient_visits(patient).size() == 4);
  CHECK(store->change_count() == before + 4);
  // The clock was saved with the batch: the next change comes after it.
  const uint64_t last_hlc = all_changes().back().hlc;
  visit(patient, "2026-11-19T09:00:00");
  CHECK(all_changes().back().hlc > last_hlc);
}
