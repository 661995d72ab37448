// Calendar dates and station-local timestamps.
//
// Event times are stored as station-local text "YYYY-MM-DDTHH:MM:SS" (Vietnam is
// UTC+7 all year, no daylight saving), so they sort as text and a report's "today"
// is the station's day whatever time zone the laptop is set to. The offset is a
// property of the station file (default +420 minutes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tramsync/core/status.h"

namespace tramsync {

struct Date {
  int year = 0, month = 0, day = 0;
  std::string str() const;  // YYYY-MM-DD
  auto operator<=>(const Date&) const = default;
};

constexpr int kDefaultUtcOffsetMinutes = 7 * 60;

// Days since 1970-01-01 of a civil date, and back (Howard Hinnant's algorithms).
int64_t days_from_civil(const Date& d);
Date civil_from_days(int64_t days);
Date add_days(const Date& d, int64_t n);

// Parses YYYY-MM-DD, checking the day exists (2025-02-29 is refused).
Result<Date> parse_date(std::string_view text, std::string_view field);

// Parses YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS (also with a space
// instead of T) into the canonical "YYYY-MM-DDTHH:MM:SS".
Result<std::string> parse_local_time(std::string_view text, std::string_view field);

// The station-local time of `utc_ms`, as "YYYY-MM-DDTHH:MM:SS".
std::string local_time_from_ms(int64_t utc_ms, int utc_offset_minutes);
// Inverse of local_time_from_ms for a canonical local time string.
int64_t ms_from_local_time(std::string_view local, int utc_offset_minutes);

// The date part of a canonical local time.
Date date_of(std::string_view local_time);

// Whole days from `from` to `to` (may be negative).
inline int64_t days_between(const Date& from, const Date& to) {
  return days_from_civil(to) - days_from_civil(from);
}

}  // namespace tramsync
