#include "tramsync/sync/enrollment.h"

#include "tramsync/core/clock.h"
#include "tramsync/core/time.h"
#include "tramsync/sync/auth.h"

namespace tramsync::sync {

Result<IssuedCode> issue_enrollment_code(Store& store, const std::string& station_code, const std::string& role,
                                         const std::string& device_name, int64_t hours, Clock* clock, const std::vector<std::string>& villages) {
  if (hours < 1 || hours > kMaxCodeHours) {
    return Error::invalid("expires", "must be from 1 to " + std::to_string(kMaxCodeHours) + " hours",
                          std::to_string(hours))
        .in("enrollment code");
  }
  IssuedCode issued;
  issued.code = auth::new_enrollment_code();
  issued.role = role;
  issued.station_code = station_code;
  SystemClock system_clock;
  issued.expires_at_ms = (clock ? clock : &system_clock)->now_ms() + hours * 3600 * 1000;
  auto id = store.identity();
  issued.expires_at =
      local_time_from_ms(issued.expires_at_ms, id ? id->utc_offset_minutes : kDefaultUtcOffsetMinutes);
  if (auto st = store.add_enrollment_code(auth::enrollment_code_hash(issued.code), station_code, role, device_name, issued.expires_at_ms, villages); !st) {
    return st.error();
  }
  return issued;
}

}  // namespace tramsync::sync
