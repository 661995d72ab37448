// Fuzz target "push": an enrolled station device's POST /v1/push with the fuzz
// bytes as its body, through SyncService::handle, the very function the
// server's HTTP workers call (after httplib inflated the body), on a real
// central file: authentication, JSON decoding, the size bounds and
// Store::apply_changes (validation, merge, quarantine, the change log).
//
// Properties, beyond "no crash, no leak":
//   - never a 500 (a handler that threw) nor a 503 (nothing else is writing);
//   - a refusal (4xx) says why in JSON and leaves the change log as it was;
//   - an accepted push accounts for every change it carried (applied +
//     duplicates + quarantined = the changes decoded) and adds exactly
//     `applied` rows of the device to the log;
//   - the same body pushed again applies nothing and adds nothing (a retried
//     push is never doubled).
// The centre keeps what earlier inputs pushed, as a server does.
#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_support.h"
#include "push_harness.h"
#include "tramsync/sync/wire.h"

using namespace tramsync;
using fuzz::require;
using json = nlohmann::json;

namespace {

struct Target {
  fuzz::PushHarness harness{"push"};
  sqlite3* db = nullptr;
  sqlite3_stmt* count = nullptr;

  Target() {
    require(sqlite3_open_v2(harness.central_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK,
            "cannot open the central file");
    require(sqlite3_prepare_v2(db, "SELECT count(*) FROM changes WHERE from_peer = ?1", -1, &count, nullptr) ==
                SQLITE_OK,
            "cannot prepare the count");
    sqlite3_bind_text(count, 1, harness.device_id().c_str(), -1, SQLITE_TRANSIENT);
  }
  ~Target() {
    sqlite3_finalize(count);
    sqlite3_close(db);
  }

  // Rows of the change log the device sent.
  int64_t device_rows() {
    sqlite3_reset(count);
    require(sqlite3_step(count) == SQLITE_ROW, "cannot count the change log");
    return sqlite3_column_int64(count, 0);
  }
};

Target& target() {
  static Target t;  // destroyed at exit, which removes the centre's folder
  return t;
}

// Pushes `body` and checks the answer; returns what it applied.
int64_t push_and_check(Target& t, const std::string& body, int64_t decoded) {
  const int64_t before = t.device_rows();
  sync::Response res = t.harness.push(body);
  const std::string shown = std::to_string(res.status) + " " + res.body.substr(0, 300);
  require(res.status != 500, "the push handler failed: " + shown);
  require(res.status != 503, "the server said it was busy with nothing else running: " + shown);
  json answer = json::parse(res.body, nullptr, false);
  require(answer.is_object(), "the answer is not a JSON object: " + shown);
  if (res.status != 200) {
    require(res.status >= 400 && res.status < 500, "unexpected status: " + shown);
    require(answer.contains("error") && answer["error"].is_string() && !answer["error"].get<std::string>().empty(),
            "a refusal must say why: " + shown);
    require(t.device_rows() == before, "a refused push changed the change log: " + shown);
    return -1;
  }
  require(decoded >= 0, "the server accepted a body the decoder refuses: " + shown);
  const int64_t applied = answer.value("applied", int64_t{-1});
  const int64_t duplicates = answer.value("duplicates", int64_t{-1});
  const int64_t quarantined = answer.value("quarantined", int64_t{-1});
  require(applied >= 0 && duplicates >= 0 && quarantined >= 0, "the answer lacks its counts: " + shown);
  require(applied + duplicates + quarantined == decoded,
          "the answer accounts for " + std::to_string(applied + duplicates + quarantined) + " changes of " +
              std::to_string(decoded) + ": " + shown);
  require(t.device_rows() - before == applied, "the log grew by " + std::to_string(t.device_rows() - before) +
                                                   " rows, the answer says " + std::to_string(applied) + " applied");
  return applied;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Target& t = target();
  const std::string body(reinterpret_cast<const char*>(data), size);
  auto decoded = wire::decode_batch(body);
  const int64_t n = decoded ? static_cast<int64_t>(decoded->size()) : -1;
  if (push_and_check(t, body, n) < 0) return 0;
  const int64_t again = push_and_check(t, body, n);
  require(again == 0, "the same push sent again applied " + std::to_string(again) + " changes");
  return 0;
}
