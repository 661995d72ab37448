// Validation where input enters. Each check returns an Error naming the field,
// the rule and the value; the store runs them before writing anything, and sync
// runs the same ones on records received from peers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tramsync/core/model.h"
#include "tramsync/core/status.h"
#include "tramsync/core/time.h"

namespace tramsync::validate {

// Plausible ranges of vital signs; a value outside is a typing mistake, refused.
inline constexpr double kTempMin = 30.0, kTempMax = 45.0;       // °C
inline constexpr int kSpo2Min = 50, kSpo2Max = 100;              // %
inline constexpr int kSysMin = 50, kSysMax = 260;                // mmHg
inline constexpr int kDiaMin = 30, kDiaMax = 160;                // mmHg
inline constexpr int kPulseMin = 20, kPulseMax = 250;            // beats per minute
inline constexpr int64_t kMaxQuantity = 100'000'000;
inline constexpr size_t kMaxTextBytes = 2000;
inline constexpr size_t kMaxNameBytes = 200;

Status one_of(const std::string& field, const std::string& value, const std::vector<std::string>& allowed);
// Non-empty (after trimming) valid UTF-8 of at most max_bytes.
Status required_text(const std::string& field, const std::string& value, size_t max_bytes = kMaxNameBytes);
// Valid UTF-8 of at most max_bytes (may be empty).
Status optional_text(const std::string& field, const std::string& value, size_t max_bytes = kMaxTextBytes);
Status positive(const std::string& field, int64_t value);
// YYYY or YYYY-MM-DD, a real date, not after `today`, not before 1880.
Status birth(const std::string& value, const Date& today);
Status patient(const PatientInput& in, const Date& today);
Status vitals(const VisitInput& in);
// An event time: absent means now; otherwise a real local time not after `now_local`.
Result<std::string> event_time(const std::optional<std::string>& at, const std::string& now_local);

std::string trim(const std::string& s);

}  // namespace tramsync::validate
