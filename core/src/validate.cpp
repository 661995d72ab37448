#include "tramsync/core/validate.h"

#include <algorithm>
#include <cmath>

#include "tramsync/core/text.h"

namespace tramsync::validate {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

Status one_of(const std::string& field, const std::string& value, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return {};
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : "|") + a;
  return Error::invalid(field, "must be one of " + list, value);
}

Status optional_text(const std::string& field, const std::string& value, size_t max_bytes) {
  if (!is_valid_utf8(value)) return Error::invalid(field, "must be valid UTF-8 text", "(invalid bytes)");
  if (value.size() > max_bytes) {
    return Error::invalid(field, "must be at most " + std::to_string(max_bytes) + " bytes",
                          value.substr(0, 40) + "...");
  }
  return {};
}

Status required_text(const std::string& field, const std::string& value, size_t max_bytes) {
  if (trim(value).empty()) return Error::invalid(field, "must not be empty", value);
  return optional_text(field, value, max_bytes);
}

Status positive(const std::string& field, int64_t value) {
  if (value <= 0) return Error::invalid(field, "must be greater than 0", std::to_string(value));
  if (value > kMaxQuantity) {
    return Error::invalid(field, "must be at most " + std::to_string(kMaxQuantity), std::to_string(value));
  }
  return {};
}

Status birth(const std::string& value, const Date& today) {
  Date d;
  if (value.size() == 4 && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    d = Date{std::stoi(value), 1, 1};
  } else {
    auto parsed = parse_date(value, "birth");
    if (!parsed) {
      Error e = parsed.error();
      e.rule = "must be YYYY or a real date YYYY-MM-DD";
      return e;
    }
    d = *parsed;
  }
  if (d.year < 1880) return Error::invalid("birth", "must not be before 1880", value);
  if (d > today) return Error::invalid("birth", "must not be in the future", value);
  return {};
}

Status patient(const PatientInput& in, const Date& today) {
  if (auto s = required_text("name", in.name); !s) return s;
  if (auto s = one_of("sex", in.sex, kSexes); !s) return s;
  if (auto s = birth(in.birth, today); !s) return s;
  if (auto s = required_text("village", in.village); !s) return s;
  for (const auto& c : in.categories) {
    if (auto s = one_of("category", c, kCategories); !s) return s;
  }
  for (const auto& c : in.conditions) {
    if (auto s = required_text("condition", c); !s) return s;
  }
  if (auto s = optional_text("phone", in.phone, 40); !s) return s;
  if (auto s = optional_text("national_id", in.national_id, 40); !s) return s;
  return {};
}

namespace {
template <typename T>
Status in_range(const std::string& field, const std::optional<T>& v, T lo, T hi, const char* unit) {
  if (!v) return {};
  bool bad = *v < lo || *v > hi;
  if constexpr (std::is_floating_point_v<T>) bad = bad || !std::isfinite(*v);
  if (!bad) return {};
  auto fmt = [](T x) {
    std::string s = std::to_string(x);
    if constexpr (std::is_floating_point_v<T>) {
      s.erase(s.find_last_not_of('0') + 1);
      if (!s.empty() && s.back() == '.') s.pop_back();
    }
    return s;
  };
  return Error::invalid(field, "must be between " + fmt(lo) + " and " + fmt(hi) + " " + unit, fmt(*v));
}
}  // namespace

Status vitals(const VisitInput& in) {
  if (auto s = in_range("temp", in.temp_c, kTempMin, kTempMax, "°C"); !s) return s;
  if (auto s = in_range("spo2", in.spo2, kSpo2Min, kSpo2Max, "%"); !s) return s;
  if (in.bp_sys.has_value() != in.bp_dia.has_value()) {
    return Error::invalid("bp", "must give both systolic and diastolic as SYS/DIA", "");
  }
  if (auto s = in_range("bp systolic", in.bp_sys, kSysMin, kSysMax, "mmHg"); !s) return s;
  if (auto s = in_range("bp diastolic", in.bp_dia, kDiaMin, kDiaMax, "mmHg"); !s) return s;
  if (in.bp_sys && *in.bp_sys <= *in.bp_dia) {
    return Error::invalid("bp", "systolic must be greater than diastolic",
                          std::to_string(*in.bp_sys) + "/" + std::to_string(*in.bp_dia));
  }
  if (auto s = in_range("pulse", in.pulse, kPulseMin, kPulseMax, "per minute"); !s) return s;
  for (const auto& sym : in.symptoms) {
    if (auto s = required_text("symptom", sym); !s) return s;
  }
  if (auto s = optional_text("note", in.note); !s) return s;
  return {};
}

Result<std::string> event_time(const std::optional<std::string>& at, const std::string& now_local) {
  if (!at) return now_local;
  auto t = parse_local_time(*at, "at");
  if (!t) return t.error();
  if (*t > now_local) {
    return Error::invalid("at", "must not be in the future (station time now " + now_local.substr(0, 16) + ")", *at);
  }
  return t;
}

}  // namespace tramsync::validate
