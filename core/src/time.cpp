#include "tramsync/core/time.h"

#include <cctype>
#include <cstdio>

namespace tramsync {

std::string Date::str() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

int64_t days_from_civil(const Date& d) {
  int64_t y = d.year - (d.month <= 2 ? 1 : 0);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t mp = (d.month + 9) % 12;
  int64_t doy = (153 * mp + 2) / 5 + d.day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

Date civil_from_days(int64_t z) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Date{static_cast<int>(y + (m <= 2 ? 1 : 0)), m, d};
}

Date add_days(const Date& d, int64_t n) { return civil_from_days(days_from_civil(d) + n); }

namespace {
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

int days_in_month(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}
}  // namespace

Result<Date> parse_date(std::string_view text, std::string_view field) {
  Date d;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !digits(text, 0, 4, d.year) ||
      !digits(text, 5, 2, d.month) || !digits(text, 8, 2, d.day)) {
    return Error::invalid(std::string(field), "must be a date YYYY-MM-DD", std::string(text));
  }
  if (d.year < 1800 || d.month < 1 || d.month > 12 || d.day < 1 || d.day > days_in_month(d.year, d.month)) {
    return Error::invalid(std::string(field), "must be a real calendar date", std::string(text));
  }
  return d;
}

Result<std::string> parse_local_time(std::string_view text, std::string_view field) {
  const std::string f(field);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  auto date = parse_date(text.substr(0, 10), field);
  if (!date) {
    if (text.size() < 10) return Error::invalid(f, "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM", std::string(text));
    Error e = date.error();
    e.value = std::string(text);
    return e;
  }
  int hh = 0, mm = 0, ss = 0;
  if (text.size() > 10) {
    bool ok = (text[10] == 'T' || text[10] == ' ') && (text.size() == 16 || text.size() == 19) &&
              digits(text, 11, 2, hh) && text[13] == ':' && digits(text, 14, 2, mm);
    if (ok && text.size() == 19) ok = text[16] == ':' && digits(text, 17, 2, ss);
    if (!ok) return Error::invalid(f, "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM", std::string(text));
    if (hh > 23 || mm > 59 || ss > 59) return Error::invalid(f, "must be a real time of day", std::string(text));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02d", date->str().c_str(), hh, mm, ss);
  return std::string(buf);
}

std::string local_time_from_ms(int64_t utc_ms, int utc_offset_minutes) {
  int64_t local_s = utc_ms / 1000 + int64_t{utc_offset_minutes} * 60;
  if (utc_ms < 0 && utc_ms % 1000 != 0) --local_s;
  int64_t days = local_s >= 0 ? local_s / 86400 : (local_s - 86399) / 86400;
  int64_t rem = local_s - days * 86400;
  Date d = civil_from_days(days);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02d", d.str().c_str(), static_cast<int>(rem / 3600),
                static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  return buf;
}

int64_t ms_from_local_time(std::string_view local, int utc_offset_minutes) {
  Date d = date_of(local);
  int hh = 0, mm = 0, ss = 0;
  digits(local, 11, 2, hh);
  digits(local, 14, 2, mm);
  digits(local, 17, 2, ss);
  int64_t s = days_from_civil(d) * 86400 + hh * 3600 + mm * 60 + ss - int64_t{utc_offset_minutes} * 60;
  return s * 1000;
}

Date date_of(std::string_view local_time) {
  Date d;
  digits(local_time, 0, 4, d.year);
  digits(local_time, 5, 2, d.month);
  digits(local_time, 8, 2, d.day);
  return d;
}

}  // namespace tramsync
