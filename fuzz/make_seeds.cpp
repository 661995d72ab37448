// tramsync-fuzz-seeds OUT: writes the seed corpus of the fuzz targets to
// OUT/batch/, OUT/push/ and OUT/merge/ (fuzz/README.md). Deterministic: the
// same files every run, so `git diff fuzz/corpus` shows what changed.
//
//   push/real-*     the push bodies of a real sync (sync_with_peer through a
//                   MemoryTransport) of a station device after a day's work:
//                   patients, a household, edits, visits, a receipt, dispenses,
//                   a void, waste; several batch sizes, as the client sends them.
//                   The device is PushHarness's, so the bodies name the device
//                   and station the "push" target enrols.
//   batch/real-*    the same push bodies and the pull answers the device got,
//                   some gzipped (as they cross the wire);
//   */edge-*        hand-made edge cases: wrong types, missing fields, bounds
//                   (hlc 2^63, 201-byte ids, seq 0), other protocol versions,
//                   invalid UTF-8, truncation, deep nesting, an empty batch;
//   merge/*         bytes for the merge target (any bytes are valid input).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "gzip.h"
#include "push_harness.h"

using namespace tramsync;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

std::string name(const char* prefix, size_t i, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%02zu%s", prefix, i, ext);
  return buf;
}

// A day of a station's work on the device, one action at a time, a minute apart.
void station_day(fuzz::PushHarness& h) {
  Store& s = h.device();
  auto tick = [&] { h.device_clock().advance(60'000); };
  using fuzz::must;
  std::vector<std::string> patients;
  const std::string hh = must(s.add_household(HouseholdInput{"Bản Tả Van", "Giàng A Páo", "nhà 12", "0912000111"}),
                              "add_household");
  tick();
  const char* names[] = {"Giàng Thị Mỷ", "Lò Văn Sử", "Nguyễn Thị Hoa", "Vàng Seo Tủa", "Trần Văn An"};
  for (int i = 0; i < 5; ++i) {
    PatientInput p;
    p.name = names[i];
    p.sex = i % 2 ? "male" : "female";
    p.birth = std::to_string(1950 + 12 * i) + "-0" + std::to_string(1 + i) + "-15";
    p.village = i < 3 ? "Bản Tả Van" : "Bản Hầu Thào";
    if (i < 2) p.household_id = hh;
    if (i % 2 == 0) p.categories = {"chronic"};
    if (i == 0) p.conditions = {"hypertension"};
    p.phone = i == 3 ? "" : "09" + std::to_string(12345670 + i);
    patients.push_back(must(s.add_patient(p), "add_patient"));
    tick();
  }
  PatientUpdate up;
  up.phone = "0987654321";
  up.add_categories = {"elderly"};
  must(s.update_patient(patients[0], up), "update_patient");
  tick();
  const std::string lot = must(s.receive(ReceiveInput{"PARA500", 500, "L2025-11", "2027-06-30", "Trung tâm Y tế", {}}),
                               "receive");
  tick();
  must(s.receive(ReceiveInput{"AMLO5", 300, "A77", "2026-12-31", "Trung tâm Y tế", {}}), "receive");
  tick();
  std::string visit;
  for (size_t i = 0; i < patients.size(); ++i) {
    VisitInput v;
    v.patient_id = patients[i];
    v.temp_c = 36.6 + 0.3 * static_cast<double>(i);
    v.spo2 = 97 - static_cast<int>(i);
    v.bp_sys = 120 + 10 * static_cast<int>(i);
    v.bp_dia = 80;
    v.pulse = 72;
    v.symptoms = {"ho", "sốt"};
    v.note = i == 2 ? "tái khám sau 7 ngày" : "";
    v.refer = i == 4;
    visit = must(s.add_visit(v), "add_visit");
    tick();
    must(s.dispense(DispenseInput{patients[i], i % 2 ? "AMLO5" : "PARA500", 10 + static_cast<int64_t>(i), 30, {}, {}}),
         "dispense");
    tick();
  }
  must(s.void_event(visit, "nhập nhầm bệnh nhân"), "void_event");
  tick();
  WasteBatchInput w;
  w.kind = "infectious";
  w.bags = 2;
  w.weight_kg = 1.5;
  w.patient_id = patients[3];
  w.note = "bông băng";
  must(s.add_waste_batch(w), "add_waste_batch");
  (void)lot;
}

std::vector<std::string> edge_cases() {
  const std::string dev = "11111111-2222-4333-8444-555555555555";
  const std::string st = "7d4b38fd-d975-4612-9775-c4743dafc12c";
  json good = {{"seq", 1},          {"origin", dev},       {"origin_seq", 1},
               {"hlc", 115589939200000000ULL}, {"station_id", st}, {"kind", "patient"},
               {"record_id", "9f094e7b-2c8b-4060-9a49-1a0469306db8"},
               {"payload", {{"op", "upsert"}, {"fields", {{"name", "Lù Thị Chi"}, {"village", "Bản Mới"}}}}}};
  auto batch = [](json changes, json protocol = 1) { return json{{"protocol", protocol}, {"changes", changes}}.dump(); };
  auto with = [&](const char* field, json v) {
    json c = good;
    c[field] = v;
    return batch(json::array({c}));
  };
  auto without = [&](const char* field) {
    json c = good;
    c.erase(field);
    return batch(json::array({c}));
  };
  std::vector<std::string> out = {
      batch(json::array({good})),
      batch(json::array()),
      batch(json::array({good}), 2),
      batch(json::array({good}), 0),
      batch(json::array({good}), "1"),
      json{{"changes", json::array({good})}}.dump(),
      json{{"protocol", 1}, {"changes", good}}.dump(),
      json{{"protocol", 1}, {"changes", nullptr}}.dump(),
      "[]",
      "null",
      "",
      "{",
      "{\"protocol\":1,\"changes\":[{\"seq\":1,\"origin\":\"a",  // truncated
      with("hlc", 9223372036854775808ULL),
      with("hlc", 9223372036854775807ULL),
      with("hlc", -1),
      with("hlc", 1.5),
      with("seq", 0),
      with("seq", -1),
      with("origin_seq", 0),
      with("origin_seq", 99999999999999999999.0),
      with("origin", ""),
      with("origin", std::string(201, 'x')),
      with("record_id", std::string(200, 'r')),
      with("station_id", ""),
      with("kind", "spaceship"),
      with("payload", "{}"),
      with("payload", json::array()),
      with("payload", {{"op", "upsert"}, {"fields", {{"name", std::string(5000, 'N')}}}}),
      with("payload", {{"op", "insert"}, {"event", nullptr}}),
      without("payload"),
      without("hlc"),
      without("origin"),
      batch(json::array({good, good})),
      std::string("{\"protocol\":1,\"changes\":[{\"origin\":\"\xff\xfe\"}]}"),
      std::string("{\"protocol\":1,\"changes\":[],\"x\":\"\\ud800\"}"),
      "{\"protocol\":1,\"changes\":[" + std::string(200, '[') + std::string(200, ']') + "]}",
      "{\"protocol\":1,\"changes\":[{\"payload\":" + std::string(300, '[') + std::string(300, ']') + "}]}",
      "{\"protocol\":1e400,\"changes\":[]}",
      "{\"protocol\":1,\"protocol\":2,\"changes\":[]}",
  };
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: tramsync-fuzz-seeds OUT_DIR   (writes OUT_DIR/batch, OUT_DIR/push, OUT_DIR/merge)\n";
    return 2;
  }
  const fs::path out = argv[1];
  try {
    fuzz::PushHarness h("seeds");
    std::vector<std::string> pushes, pulls;
    h.transport().before = [&](const sync::Request& req) -> std::optional<Error> {
      if (req.path == "/v1/push") pushes.push_back(req.body);
      return std::nullopt;
    };
    h.transport().after = [&](const sync::Request& req, const sync::Response& res) -> std::optional<Error> {
      if (req.path == "/v1/pull") pulls.push_back(res.body);
      return std::nullopt;
    };
    // The first sync sends the station's own record and takes the catalogue.
    sync::SyncOptions first;
    first.clock = &h.device_clock();
    fuzz::must(sync::sync_with_peer(h.device(), h.transport(), h.peer_id(), first), "first sync");
    station_day(h);
    // Several batch sizes; a push that was acknowledged is not sent again, so
    // each size gets a day of its own.
    for (int64_t size : {1, 3, 7, 500}) {
      sync::SyncOptions so;
      so.batch_changes = size;
      so.clock = &h.device_clock();
      fuzz::must(sync::sync_with_peer(h.device(), h.transport(), h.peer_id(), so), "sync");
      if (size != 500) station_day(h);
    }
    size_t i = 0;
    for (const auto& p : pushes) {
      write(out / "push" / name("real-push", i, ".json"), p);
      write(out / "batch" / name("real-push", i, ".json"), p);
      if (i % 4 == 0) write(out / "batch" / name("real-push", i, ".json.gz"), sync::gzip::compress(p));
      ++i;
    }
    i = 0;
    for (const auto& p : pulls) {
      write(out / "batch" / name("real-pull", i, ".json"), p);
      ++i;
    }
    i = 0;
    for (const auto& e : edge_cases()) {
      write(out / "batch" / name("edge", i, ".json"), e);
      write(out / "push" / name("edge", i, ".json"), e);
      ++i;
    }
    write(out / "batch" / "edge-gzip-truncated.gz", sync::gzip::compress(pushes.front()).substr(0, 40));
    std::mt19937_64 rng(6);
    for (size_t k = 0; k < 24; ++k) {
      std::string bytes(8 + k, '\0');
      for (auto& c : bytes) c = static_cast<char>(rng());
      write(out / "merge" / name("random", k, ".bin"), bytes);
    }
    std::cout << "wrote " << pushes.size() << " push bodies, " << pulls.size() << " pull answers, "
              << edge_cases().size() << " edge cases and 24 merge inputs under " << out << "\n";
  } catch (const std::exception& e) {
    std::cerr << "tramsync-fuzz-seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
