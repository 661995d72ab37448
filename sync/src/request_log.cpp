#include "tramsync/sync/request_log.h"

#include <chrono>
#include <cmath>

#include "tramsync/core/time.h"

namespace tramsync::sync {

using json = nlohmann::ordered_json;

std::string utc_timestamp() {
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03lldZ", static_cast<long long>(ms % 1000));
  return local_time_from_ms(ms, 0) + frac;  // offset 0: UTC
}

namespace {
double round_ms(double ms) { return std::round(ms * 100.0) / 100.0; }
}  // namespace

void RequestLogger::request(const RequestLog& r) {
  json line = {{"request_id", r.request_id}, {"endpoint", r.endpoint}, {"status", r.status},
               {"device", r.device},         {"station", r.station},   {"changes", r.changes},
               {"bytes_in", r.bytes_in},     {"bytes_out", r.bytes_out}, {"ms", round_ms(r.ms)},
               {"remote", r.remote},         {"error", r.error}};
  write(std::move(line));
}

void RequestLogger::request(const std::string& endpoint, const std::string& method, const std::string& remote,
                            int status, int64_t bytes_in, int64_t bytes_out, double ms, const std::string& error) {
  json line = {{"endpoint", endpoint}, {"method", method.substr(0, 16)}, {"status", status},
               {"bytes_in", bytes_in}, {"bytes_out", bytes_out},        {"ms", round_ms(ms)},
               {"remote", remote},     {"error", error}};
  write(std::move(line));
}

void RequestLogger::event(const std::string& name, nlohmann::ordered_json fields) {
  json line = json::object();
  line["event"] = name;
  for (auto& [k, v] : fields.items()) line[k] = v;
  write(std::move(line));
}

void RequestLogger::write(nlohmann::ordered_json line) {
  json out = {{"ts", utc_timestamp()}};
  for (auto& [k, v] : line.items()) out[k] = v;
  std::string text = out.dump(-1, ' ', false, json::error_handler_t::replace);
  text += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

}  // namespace tramsync::sync
