// A centre and one enrolled station device in one process, for the "push"
// fuzz target and the seed maker: the same set-up every time (seeded ids, a
// fixed clock), so the push bodies the seed maker captured from the device's
// real sync name the device and station the harness enrols.
//
// The centre is a SyncService over a file in a folder of its own (under
// $TRAMSYNC_FUZZ_TMP, else /dev/shm when it exists, else the temp folder),
// removed when the harness is destroyed. The device is a station file made
// offline (`init`) and enrolled through /v1/enroll over a MemoryTransport.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "tramsync/core/clock.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/auth.h"
#include "tramsync/sync/client.h"
#include "tramsync/sync/memory_transport.h"
#include "tramsync/sync/service.h"

namespace tramsync::fuzz {

inline constexpr int64_t kHarnessNowMs = 1'763'700'000'000;  // 2025-11-21, fixed
inline constexpr const char* kStationCode = "T001";

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message());
  return std::move(r.value());
}
inline void must(Status s, const char* what) {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message());
}

inline std::filesystem::path harness_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path base;
  if (const char* t = std::getenv("TRAMSYNC_FUZZ_TMP"); t && *t) {
    base = t;
  } else if (fs::is_directory("/dev/shm")) {
    base = "/dev/shm";  // the centre fsyncs every push; memory keeps the target fast
  } else {
    base = fs::temp_directory_path();
  }
  fs::path dir = base / ("tramsync-fuzz-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

class PushHarness {
 public:
  explicit PushHarness(const std::string& name) : dir_(harness_dir(name)) {
    central_path_ = (dir_ / "central.tramsync").string();
    {
      StoreOptions o;
      o.clock = &central_clock_;
      o.ids = &central_ids_;
      auto central = must(Store::open(central_path_, o), "open the centre");
      must(central->init_central("Trung tâm Y tế huyện (fuzz)"), "init_central");
      must(central->add_item(ItemInput{"PARA500", "Paracetamol 500mg", "viên", "medicine", std::nullopt}), "add_item");
      must(central->add_item(ItemInput{"AMLO5", "Amlodipin 5mg", "viên", "medicine", std::nullopt}), "add_item");
      must(central->add_station(kStationCode, "Trạm Y tế xã Tả Van", "Sa Pa", "Lào Cai"), "add_station");
      code_ = auth::new_enrollment_code();
      must(central->add_enrollment_code(auth::enrollment_code_hash(code_), kStationCode, "station", "máy trạm",
                                        kHarnessNowMs + 86'400'000),
           "add_enrollment_code");
    }
    sync::ServiceOptions so;
    so.db_path = central_path_;
    so.store_options.clock = &central_clock_;
    so.enroll_attempts_per_minute = 1'000'000;
    service_ = std::make_unique<sync::SyncService>(so, std::make_shared<sync::TokenAuthorizer>());
    transport_ = std::make_unique<sync::MemoryTransport>(*service_, "127.0.0.1");

    StoreOptions d;
    d.clock = &device_clock_;
    d.ids = &device_ids_;
    device_ = must(Store::open((dir_ / "device.tramsync").string(), d), "open the device");
    must(device_->init_station(kStationCode, "Trạm Y tế xã Tả Van", "máy trạm", "Sa Pa", "Lào Cai"), "init_station");
    sync::EnrollParams ep;
    ep.server_url = "http://127.0.0.1:1";
    ep.code = code_;
    auto enrolled = must(sync::enroll(*device_, *transport_, ep, &device_clock_), "enroll");
    peer_id_ = enrolled.peer.id;
    device_id_ = enrolled.identity.device_id;
    token_ = sync::peer_settings(enrolled.peer).token;
  }
  ~PushHarness() {
    device_.reset();
    transport_.reset();
    service_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PushHarness(const PushHarness&) = delete;
  PushHarness& operator=(const PushHarness&) = delete;

  // POST /v1/push with the device's token and `body` as sent (plain JSON).
  sync::Response push(const std::string& body) {
    sync::Request req;
    req.method = "POST";
    req.path = "/v1/push";
    req.headers["Authorization"] = "Bearer " + token_;
    req.headers["Content-Type"] = "application/json";
    req.body = body;
    return transport_->roundtrip(req).value();
  }

  sync::SyncService& service() { return *service_; }
  sync::MemoryTransport& transport() { return *transport_; }
  Store& device() { return *device_; }
  ManualClock& device_clock() { return device_clock_; }
  const std::string& central_path() const { return central_path_; }
  const std::string& peer_id() const { return peer_id_; }
  const std::string& device_id() const { return device_id_; }

 private:
  std::filesystem::path dir_;
  std::string central_path_, code_, token_, peer_id_, device_id_;
  ManualClock central_clock_{kHarnessNowMs}, device_clock_{kHarnessNowMs};
  RandomIdSource central_ids_{1}, device_ids_{2};
  std::unique_ptr<sync::SyncService> service_;
  std::unique_ptr<sync::MemoryTransport> transport_;
  std::unique_ptr<Store> device_;
};

}  // namespace tramsync::fuzz
