#include "enrollment.h"

#include "tramsync/core/clock.h"
#include "tramsync/core/time.h"
#include "tramsync/sync/auth.h"

namespace tramsync::server {

Result<IssuedCode> issue_enrollment_code(Store& store, const std::string& station_code, const std::string& role,
                                         const std::string& device_name, int64_t hours) {
  if (hours < 1 || hours > kMaxCodeHours) {
    return Error::invalid("expires", "must be from 1 to " + std::to_string(kMaxCodeHours) + " hours",
                          std::to_string(hours))
        .in("device add");
  }
  IssuedCode issued;
  issued.code = auth::new_enrollment_code();
  issued.role = role;
  issued.station_code = station_code;
  issued.expires_at_ms = SystemClock().now_ms() + hours * 3600 * 1000;
  auto id = store.identity();
  issued.expires_at =
      local_time_from_ms(issued.expires_at_ms, id ? id->utc_offset_minutes : kDefaultUtcOffsetMinutes);
  const std::string hash = auth::sha256_hex(auth::normalize_enrollment_code(issued.code));
  if (auto st = store.add_enrollment_code(hash, station_code, role, device_name, issued.expires_at_ms); !st) {
    return st.error();
  }
  return issued;
}

}  // namespace tramsync::server
