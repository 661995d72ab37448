// Medical waste batches: stages only move forward; the current stage is the
// furthest one a non-voided stage event reached.
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "fixture.h"

using namespace tramsync;
using namespace tramsync::test;
using Catch::Matchers::StartsWith;

namespace {

class WasteFixture : public StoreFixture {
 public:
  WasteFixture() {
    patient = add_patient("Nguyễn Thị Lan", "Thôn Đông", {"covid-home"});
    WasteBatchInput in;
    in.kind = "infectious";
    in.bags = 3;
    in.weight_kg = 2.5;
    in.patient_id = patient;
    in.note = "khẩu trang, găng tay";
    batch = must(store->add_waste_batch(in));
  }

  Result<std::string> move(const std::string& stage, const std::string& to = "",
                           std::optional<std::string> at = std::nullopt) {
    WasteMoveInput in;
    in.batch_id = batch;
    in.stage = stage;
    in.to_org = to;
    in.at = std::move(at);
    return store->move_waste(in);
  }

  WasteBatch current() {
    auto list = store->list_waste(false, std::nullopt);
    for (auto& b : list) {
      if (b.id == batch) return b;
    }
    FAIL("batch " << batch << " is not listed");
    return {};
  }

  std::string patient, batch;
};

}  // namespace

TEST_CASE_METHOD(WasteFixture, "a new batch is bagged, aged 0 days", "[core][waste]") {
  WasteBatch b = current();
  CHECK(b.kind == "infectious");
  CHECK(b.bags == 3);
  CHECK(b.weight_kg == 2.5);
  CHECK(b.patient_id == patient);
  CHECK(b.note == "khẩu trang, găng tay");
  CHECK(b.created_at == kStartLocal);
  CHECK(b.stage == "bagged");
  CHECK(b.stage_at == kStartLocal);
  CHECK(b.holder.empty());
  CHECK(b.age_days == 0);
  auto mine = store->patient_waste(patient);
  REQUIRE(mine.size() == 1);
  CHECK(mine[0].id == batch);
}

TEST_CASE_METHOD(WasteFixture, "a batch moves forward through its stages", "[core][waste]") {
  clock.advance(kHourMs);
  must(move("collected"));
  CHECK(current().stage == "collected");
  CHECK(current().stage_at == "2026-11-20T10:00:00");
  clock.advance(kHourMs);
  must(move("stored"));
  CHECK(current().stage == "stored");
  clock.advance(kDayMs);
  must(move("handed-over", "Công ty Môi trường Đô thị"));
  CHECK(current().stage == "handed-over");
  CHECK(current().holder == "Công ty Môi trường Đô thị");
  clock.advance(kDayMs);
  must(move("treated"));
  WasteBatch b = current();
  CHECK(b.stage == "treated");
  CHECK(b.stage_at == "2026-11-22T11:00:00");
  CHECK(b.holder == "Công ty Môi trường Đô thị");
  CHECK(b.age_days == 2);
}

TEST_CASE_METHOD(WasteFixture, "a batch cannot move back or to the stage it is at", "[core][waste]") {
  must(move("collected"));
  must(move("stored"));
  const auto before = store->change_count();

  Error back = must_fail(move("collected"));
  CHECK(back.code == ErrorCode::kRefused);
  CHECK(back.message() == "waste move: stage must move forward: batch is already stored, got \"collected\"");

  Error same = must_fail(move("stored"));
  CHECK(same.code == ErrorCode::kRefused);
  CHECK_THAT(same.message(), Contains("must move forward") && Contains("already stored"));

  Error bagged = must_fail(move("bagged"));
  CHECK_THAT(bagged.message(), Contains("stage must be one of collected|stored|handed-over|treated") &&
                                   Contains("bagged"));
  Error unknown = must_fail(move("burned"));
  CHECK_THAT(unknown.message(), Contains("stage") && Contains("burned"));

  CHECK(store->change_count() == before);
  CHECK(current().stage == "stored");
}

TEST_CASE_METHOD(WasteFixture, "handing a batch over requires naming who it goes to", "[core][waste]") {
  must(move("collected"));
  const auto before = store->change_count();
  Error e = must_fail(move("handed-over", "  "));
  CHECK(e.field == "to");
  CHECK_THAT(e.message(), StartsWith("waste move: to must name the treatment unit the waste is handed over to"));
  CHECK(store->change_count() == before);
  CHECK(current().stage == "collected");
  must(move("handed-over", "Bệnh viện huyện"));
  CHECK(current().holder == "Bệnh viện huyện");
}

TEST_CASE_METHOD(WasteFixture, "a stage may not be dated before the batch's last stage", "[core][waste]") {
  clock.advance(2 * kHourMs);
  must(move("collected", "", std::string("2026-11-20T10:30")));
  Error e = must_fail(move("stored", "", std::string("2026-11-20T10:00")));
  CHECK_THAT(e.message(), Contains("must not be before the batch's last stage (collected at 2026-11-20T10:30)"));
  CHECK(current().stage == "collected");
}

TEST_CASE_METHOD(WasteFixture, "voiding the latest stage moves the batch back", "[core][waste][void]") {
  const std::string collected = must(move("collected"));
  const std::string stored = must(move("stored"));
  CHECK(current().stage == "stored");

  Error not_latest = must_fail(store->void_event(collected, "wrong batch"));
  CHECK(not_latest.code == ErrorCode::kRefused);
  CHECK_THAT(not_latest.message(), Contains("not the batch's latest stage"));

  must(store->void_event(stored, "not stored yet"));
  CHECK(current().stage == "collected");
  // ... and it can move forward again from there.
  must(move("stored"));
  CHECK(current().stage == "stored");

  // Voiding every stage leaves it bagged.
  auto id_of_latest = [&]() {
    // The stage just recorded is the latest non-voided one.
    return all_changes().back().record_id;
  };
  must(store->void_event(id_of_latest(), "mistake"));
  must(store->void_event(collected, "mistake"));
  CHECK(current().stage == "bagged");
  CHECK(current().stage_at == kStartLocal);
}

TEST_CASE_METHOD(WasteFixture, "a batch's age counts whole days since it was bagged", "[core][waste]") {
  clock.advance(3 * kDayMs);
  CHECK(current().age_days == 3);
  CHECK(store->list_waste(true, int64_t{2}).size() == 1);   // older than 2 days
  CHECK(store->list_waste(true, int64_t{3}).empty());       // not older than 3
}

TEST_CASE_METHOD(WasteFixture, "pending lists leave out treated batches", "[core][waste]") {
  WasteBatchInput in;
  in.kind = "sharps";
  in.bags = 1;
  in.weight_kg = 0.4;
  const std::string other = must(store->add_waste_batch(in));
  must(move("treated"));
  auto pending = store->list_waste(true, std::nullopt);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].id == other);
  CHECK(store->list_waste(false, std::nullopt).size() == 2);
}

TEST_CASE_METHOD(WasteFixture, "a batch with bad fields is refused", "[core][waste]") {
  const auto before = store->change_count();
  WasteBatchInput in;
  in.kind = "plastic";
  in.bags = 1;
  in.weight_kg = 1;
  CHECK_THAT(must_fail(store->add_waste_batch(in)).message(), Contains("kind must be one of") && Contains("plastic"));
  in.kind = "general";
  in.bags = 0;
  CHECK_THAT(must_fail(store->add_waste_batch(in)).message(), Contains("bags must be greater than 0"));
  in.bags = 1;
  in.weight_kg = 0;
  CHECK_THAT(must_fail(store->add_waste_batch(in)).message(), Contains("weight_kg must be greater than 0"));
  in.weight_kg = 1;
  in.patient_id = patient;
  in.household_id = "abcd1234";
  CHECK_THAT(must_fail(store->add_waste_batch(in)).message(), Contains("either a patient or a household"));
  CHECK(store->change_count() == before);
}
