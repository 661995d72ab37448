// Calendar dates and station-local times (time.h).
#include <catch2/catch.hpp>

#include <string>

#include "fixture.h"
#include "tramsync/core/time.h"

using namespace tramsync;
using namespace tramsync::test;

TEST_CASE("parse_local_time accepts a date, minutes or seconds, with T or a space", "[core][time]") {
  CHECK(must(parse_local_time("2026-11-20", "at")) == "2026-11-20T00:00:00");
  CHECK(must(parse_local_time("2026-11-20T09:05", "at")) == "2026-11-20T09:05:00");
  CHECK(must(parse_local_time("2026-11-20 09:05", "at")) == "2026-11-20T09:05:00");
  CHECK(must(parse_local_time("2026-11-20T09:05:07", "at")) == "2026-11-20T09:05:07");
  CHECK(must(parse_local_time("2026-11-20 23:59:59", "at")) == "2026-11-20T23:59:59");
  CHECK(must(parse_local_time("2024-02-29T12:00", "at")) == "2024-02-29T12:00:00");
}

TEST_CASE("parse_local_time refuses malformed and impossible times, naming field and value", "[core][time]") {
  auto bad = [](const char* text) {
    auto r = parse_local_time(text, "at");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().field == "at");
    CHECK(r.error().value == text);
    return r.error().rule;
  };
  CHECK(bad("2026-11-20T9:05") == "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  CHECK(bad("2026-11-20T09") == "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  CHECK(bad("2026-11-20X09:05") == "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  CHECK(bad("2026-11-20T09:05Z") == "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  CHECK(bad("2026-11") == "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  CHECK(bad("") == "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  CHECK(bad("2026-11-20T24:00") == "must be a real time of day");
  CHECK(bad("2026-11-20T23:60") == "must be a real time of day");
  CHECK(bad("2026-11-20T23:59:60") == "must be a real time of day");
  CHECK(bad("2025-02-29T08:00") == "must be a real calendar date");
  CHECK(bad("20/11/2026 09:00") == "must be a date YYYY-MM-DD");
}

TEST_CASE("parse_date checks the day exists", "[core][time]") {
  CHECK(must(parse_date("2024-02-29", "birth")) == Date{2024, 2, 29});
  CHECK(must(parse_date("2000-02-29", "birth")) == Date{2000, 2, 29});
  CHECK_FALSE(parse_date("2025-02-29", "birth").ok());
  CHECK_FALSE(parse_date("1900-02-29", "birth").ok());  // 1900 was not a leap year
  CHECK_FALSE(parse_date("2026-04-31", "birth").ok());
  CHECK_FALSE(parse_date("2026-13-01", "birth").ok());
  CHECK_FALSE(parse_date("2026-00-10", "birth").ok());
  CHECK_FALSE(parse_date("2026-01-00", "birth").ok());
  CHECK_FALSE(parse_date("2026-1-1", "birth").ok());
  CHECK_FALSE(parse_date("2026-01-01 ", "birth").ok());
  CHECK_FALSE(parse_date("+026-01-01", "birth").ok());
  Error e = parse_date("2025-02-29", "birth").error();
  CHECK(e.message() == "birth must be a real calendar date, got \"2025-02-29\"");
}

TEST_CASE("civil dates convert to day numbers and back", "[core][time]") {
  CHECK(days_from_civil({1970, 1, 1}) == 0);
  CHECK(days_from_civil({1970, 1, 2}) == 1);
  CHECK(days_from_civil({1969, 12, 31}) == -1);
  CHECK(days_from_civil({2000, 3, 1}) == 11017);
  CHECK(days_from_civil({1900, 1, 1}) == -25567);
  CHECK(days_from_civil({2026, 11, 20}) == 20777);
  CHECK(civil_from_days(20777) == Date{2026, 11, 20});
  CHECK(civil_from_days(-1) == Date{1969, 12, 31});
  CHECK(civil_from_days(11016) == Date{2000, 2, 29});

  // Every day from 1880 to 2101 round-trips and follows the previous one.
  Date prev = civil_from_days(days_from_civil({1880, 1, 1}) - 1);
  CHECK(prev == Date{1879, 12, 31});
  for (int64_t n = days_from_civil({1880, 1, 1}); n <= days_from_civil({2101, 1, 1}); ++n) {
    const Date d = civil_from_days(n);
    if (days_from_civil(d) != n || !(prev < d)) FAIL("day " << n << " gives " << d.str());
    prev = d;
  }
}

TEST_CASE("adding days crosses months, years and leap days", "[core][time]") {
  CHECK(add_days({2026, 11, 20}, 30) == Date{2026, 12, 20});
  CHECK(add_days({2026, 12, 31}, 1) == Date{2027, 1, 1});
  CHECK(add_days({2024, 2, 28}, 1) == Date{2024, 2, 29});
  CHECK(add_days({2025, 2, 28}, 1) == Date{2025, 3, 1});
  CHECK(add_days({2026, 3, 1}, -1) == Date{2026, 2, 28});
  CHECK(days_between({2026, 11, 20}, {2027, 1, 19}) == 60);
  CHECK(days_between({2027, 1, 19}, {2026, 11, 20}) == -60);
}

TEST_CASE("dates print as YYYY-MM-DD and compare in calendar order", "[core][time]") {
  CHECK(Date{2026, 1, 5}.str() == "2026-01-05");
  CHECK(Date{987, 12, 31}.str() == "0987-12-31");
  CHECK(Date{2026, 1, 31} < Date{2026, 2, 1});
  CHECK(Date{2025, 12, 31} < Date{2026, 1, 1});
  CHECK(date_of("2026-11-20T09:00:00") == Date{2026, 11, 20});
}

TEST_CASE("local_time_from_ms shows the station's time at UTC+7", "[core][time]") {
  CHECK(local_time_from_ms(kStartMs, 420) == "2026-11-20T09:00:00");
  CHECK(local_time_from_ms(kStartMs, 0) == "2026-11-20T02:00:00");
  CHECK(local_time_from_ms(kStartMs + 1'999, 420) == "2026-11-20T09:00:01");  // milliseconds are dropped
  // 17:00 UTC is already the next day in Vietnam.
  CHECK(local_time_from_ms(kStartMs - 9 * kHourMs, 420) == "2026-11-20T00:00:00");
  CHECK(local_time_from_ms(kStartMs - 9 * kHourMs - 1, 420) == "2026-11-19T23:59:59");
  CHECK(local_time_from_ms(kStartMs + 15 * kHourMs, 420) == "2026-11-21T00:00:00");
  CHECK(local_time_from_ms(0, 420) == "1970-01-01T07:00:00");
  CHECK(local_time_from_ms(-1, 0) == "1969-12-31T23:59:59");
  CHECK(local_time_from_ms(-1'500, 420) == "1970-01-01T06:59:58");
}

TEST_CASE("ms_from_local_time is the inverse of local_time_from_ms", "[core][time]") {
  CHECK(ms_from_local_time("2026-11-20T09:00:00", 420) == kStartMs);
  CHECK(ms_from_local_time("2026-11-21T00:00:00", 420) == kStartMs + 15 * kHourMs);
  CHECK(ms_from_local_time("1970-01-01T07:00:00", 420) == 0);
  for (int64_t ms = kStartMs - 3 * kDayMs; ms <= kStartMs + 3 * kDayMs; ms += 37 * kMinuteMs + 13'000) {
    const std::string local = local_time_from_ms(ms, 420);
    CHECK(ms_from_local_time(local, 420) == ms);
  }
}

TEST_CASE_METHOD(StoreFixture, "the store's local time follows its clock at the station's offset", "[core][time]") {
  CHECK(store->local_now() == kStartLocal);
  CHECK(identity.utc_offset_minutes == kDefaultUtcOffsetMinutes);
  clock.set(kStartMs + 15 * kHourMs);
  CHECK(store->local_now() == "2026-11-21T00:00:00");
}
