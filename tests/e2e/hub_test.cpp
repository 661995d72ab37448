// Mobile devices, their station hub and the centre, as the real programs over
// TLS on loopback: `station-cli serve` on the station's file, mobile devices
// enrolled at the hub (some narrowed to villages), syncs in every order, a
// device syncing directly with the centre, revocations made at either place,
// and a new device's first sync cut by killing the hub.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "sync_fixture.h"

namespace tramsync::e2e {
namespace {

using Catch::Matchers::Contains;

const char* const kStation = "TYT-SINHO";

// A station file that is also its mobile teams' hub: enrolled with the centre
// and serving its own file.
struct Hub : Station {
  const TempDir& dir;
  std::unique_ptr<ServerProcess> server;
  Hub(const TempDir& d, Centre& centre) : Station(d, "hub"), dir(d) {
    init_and_enroll(centre, kStation, "Trạm Y tế xã Sìn Hồ");
    serve();
  }
  void serve() { server = ServerProcess::start_hub(db(), dir.file("hub-tls"), server ? server->port : 0); }
  std::string device_code(const std::vector<std::string>& villages = {}) {
    std::vector<std::string> args{"device", "add", "--name", "team"};
    if (!villages.empty()) {
      std::string v;
      for (const auto& x : villages) v += (v.empty() ? "" : ",") + x;
      args.insert(args.end(), {"--villages", v});
    }
    return cli.ok(args).at("enrollment_code");
  }
};

// A mobile team's device enrolled at the hub.
struct Mobile : Station {
  Mobile(const TempDir& d, const std::string& name, Hub& hub, const std::string& code) : Station(d, name) {
    cli.ok({"enroll", "--server", hub.server->url, "--code", code, "--pin", hub.server->fingerprint, "--name", name});
  }
  json sync_with(const std::string& url) { return cli.ok({"sync", "--server", url}); }
};

std::string visit(Station& s, const std::string& patient) {
  return s.cli.ok({"visit", "add", patient, "--temp", "37.5", "--spo2", "96"}).at("id");
}

// Every patient row as text, for comparing values across nodes.
std::vector<std::string> patient_rows(const std::string& db, const std::string& where = "1") {
  return query_texts(db, "SELECT id || '|' || name || '|' || village || '|' || phone || '|' || status FROM patients "
                         "WHERE " + where + " ORDER BY id");
}

// No change held twice, and no record without its change.
void check_no_duplicates(const std::string& db) {
  INFO(db);
  CHECK(query_int(db, "SELECT count(*) FROM (SELECT origin, origin_seq FROM changes GROUP BY 1, 2 HAVING count(*) > 1)") == 0);
  CHECK(query_int(db, "SELECT count(*) FROM quarantine WHERE status = 'held'") == 0);
}

}  // namespace

TEST_CASE("mobile device, station hub and centre: offline work everywhere, synced in every order, each node holds "
          "exactly its scope",
          "[e2e][hub]") {
  TempDir dir;
  Centre centre(dir);
  centre.admin({"item", "add", "--code", "PARA500", "--name", "Paracetamol 500mg", "--unit", "viên"});
  Hub hub(dir, centre);
  // The station's patients in two villages, and its stock, before any mobile device.
  const std::string an = hub.patient("Nguyễn Văn An", "Bản Mới");
  const std::string binh = hub.patient("Lò Văn Bình", "Nậm Tăm");
  visit(hub, an);
  visit(hub, binh);
  hub.sync();
  hub.cli.ok({"stock", "receive", "--item", "PARA500", "--qty", "200", "--lot", "P1", "--expiry", vn_day(300)});

  // A team for Bản Mới (typed without diacritics: villages compare folded).
  Mobile m(dir, "team-banmoi", hub, hub.device_code({"Ban Moi"}));
  m.sync();
  CHECK(ids(m.db(), "SELECT id FROM patients") == std::set<std::string>{an});
  CHECK(query_int(m.db(), "SELECT count(*) FROM visits") == 1);
  CHECK(query_int(m.db(), "SELECT count(*) FROM devices") == 0);  // registrations (token hashes) stay on servers
  // The station's stock reaches the team (receipts belong to no village).
  CHECK(query_int(m.db(), "SELECT coalesce(sum(quantity), 0) FROM stock_movements") == 200);

  // 1. mobile → hub → centre: a visit round in the village, offline.
  const std::string cuc = m.patient("Hà Thị Cúc", "Bản Mới");
  const std::string dung = m.patient("Giàng A Dũng", "Nậm Tăm");  // a new patient anywhere in the station
  visit(m, an);
  visit(m, cuc);
  m.cli.ok({"dispense", cuc, "--item", "PARA500", "--qty", "20", "--days", "10"});
  json ms = m.sync();
  CHECK(ms.at("quarantined") == 0);
  json hs = hub.sync();
  CHECK(hs.at("quarantined") == 0);
  const std::string m_origin = device_of(m.db());
  const int64_t m_made = changes_by(m.db(), m_origin);
  CHECK(m_made >= 5);
  // Relayed with their origin kept, each once.
  CHECK(changes_by(hub.db(), m_origin) == m_made);
  CHECK(changes_by(centre.db(), m_origin) == m_made);
  CHECK(ids(centre.db(), "SELECT id FROM patients") == std::set<std::string>{an, binh, cuc, dung});
  // The centre knows the hub's device and accepted its changes as relayed.
  CHECK(query_int(centre.db(), "SELECT count(*) FROM devices WHERE id = '" + m_origin + "' AND role = 'mobile'") == 1);

  // 2. centre → hub → mobile: the catalogue, and another device of the station
  // that syncs with the centre directly (a second laptop).
  centre.admin({"item", "add", "--code", "ORS", "--name", "Oresol", "--unit", "gói"});
  Station laptop(dir, "laptop");
  laptop.enroll(centre, centre.device_code(kStation, "station"));
  laptop.sync();
  const std::string em = laptop.patient("Vàng Thị Em", "Bản Mới");
  const std::string phu = laptop.patient("Sùng A Phư", "Nậm Tăm");
  laptop.sync();
  hub.sync();
  m.sync();
  CHECK(query_int(m.db(), "SELECT count(*) FROM items WHERE code = 'ORS'") == 1);
  CHECK(ids(m.db(), "SELECT id FROM patients") == std::set<std::string>{an, cuc, dung, em});
  CHECK(ids(hub.db(), "SELECT id FROM patients") == std::set<std::string>{an, binh, cuc, dung, em, phu});

  // 3. mobile directly to the centre: its token works there (the hub carried
  // its registration), no new code.
  m.cli.ok({"server", "add", "--server", centre.url(), "--pin", centre.pin()});
  const std::string gai = m.patient("Lò Thị Gái", "Bản Mới");
  visit(m, em);
  json direct = m.sync_with(centre.url());
  CHECK(direct.at("quarantined") == 0);
  CHECK(direct.at("server").at("quarantined") == 0);
  // It sent only its own changes, not what it had pulled from the hub.
  CHECK(direct.at("sent").get<int64_t>() == changes_by(m.db(), m_origin));
  CHECK(ids(centre.db(), "SELECT id FROM patients WHERE id = '" + gai + "'").size() == 1);
  // What it pulled from the centre is its scope again: no Nậm Tăm patient it did not make.
  CHECK(ids(m.db(), "SELECT id FROM patients") == std::set<std::string>{an, cuc, dung, em, gai});

  // 4. then via the hub again: what the centre already has is a duplicate
  // everywhere, the new work travels on.
  m.cli.ok({"patient", "update", an, "--phone", "0912345678"});
  json again = m.sync_with(hub.server->url);
  CHECK(again.at("quarantined") == 0);
  hub.sync();
  laptop.sync();
  m.sync_with(hub.server->url);
  m.sync_with(centre.url());

  // Everyone is quiet now: exactly the records each scope allows, the same values.
  const std::vector<std::string> all = patient_rows(centre.db());
  CHECK(all.size() == 7);
  CHECK(patient_rows(hub.db()) == all);
  CHECK(patient_rows(laptop.db()) == all);
  CHECK(patient_rows(m.db()) ==
        patient_rows(centre.db(), "village = 'Bản Mới' OR id = '" + dung + "'"));  // its village, and what it made
  CHECK(query_texts(m.db(), "SELECT phone FROM patients WHERE id = '" + an + "'").at(0) == "0912345678");
  for (const std::string& db : {centre.db(), hub.db(), laptop.db(), m.db()}) check_no_duplicates(db);
  for (const std::string& db : {centre.db(), hub.db(), laptop.db()}) {
    INFO(db);
    CHECK(changes_by(db, m_origin) == changes_by(m.db(), m_origin));
    CHECK(query_int(db, "SELECT count(*) FROM visits") == 5);
    CHECK(query_int(db, "SELECT sum(quantity) FROM stock_movements") == 180);
  }
  // The team holds the visits of its village's patients only.
  CHECK(query_int(m.db(), "SELECT count(*) FROM visits v JOIN patients p ON p.id = v.patient_id "
                          "WHERE p.village != 'Bản Mới'") == 0);
  CHECK(query_int(m.db(), "SELECT count(*) FROM visits") == 4);

  SECTION("a revocation made at the centre stops the device at the hub, and one made at the hub at the centre") {
    const std::string m_id = device_of(m.db());
    centre.admin({"device", "revoke", m_id});
    hub.sync();  // the hub hears of it
    CliResult r = m.cli.run({"sync", "--server", hub.server->url});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("revoked"));

    Mobile m2(dir, "team-all", hub, hub.device_code());
    m2.sync();
    hub.sync();  // the centre knows m2
    m2.cli.ok({"server", "add", "--server", centre.url(), "--pin", centre.pin()});
    hub.cli.ok({"device", "revoke", device_of(m2.db())});
    hub.sync();
    CliResult r2 = m2.cli.run({"sync", "--server", centre.url()});
    CHECK(r2.exit_code == 1);
    CHECK_THAT(r2.err, Contains("revoked"));
    // A whole-station team holds every patient.
    CHECK(patient_rows(m2.db()) == patient_rows(centre.db()));
  }
}

TEST_CASE("a device narrowed to one village never receives another's patients, widening brings them, narrowing "
          "stops them",
          "[e2e][hub][scope]") {
  TempDir dir;
  Centre centre(dir);
  Hub hub(dir, centre);
  std::set<std::string> moi, tam;
  for (int i = 0; i < 5; ++i) moi.insert(hub.patient("Bản Mới " + std::to_string(i), "Bản Mới"));
  for (int i = 0; i < 3; ++i) tam.insert(hub.patient("Nậm Tăm " + std::to_string(i), "Nậm Tăm"));
  for (const auto& p : moi) visit(hub, p);
  for (const auto& p : tam) visit(hub, p);
  const std::string household = hub.cli.ok({"household", "add", "--village", "Nậm Tăm", "--head", "Lò Văn Sáu"}).at("id");
  const std::string tam0 = *tam.begin();
  hub.cli.ok({"waste", "add", "--kind", "infectious", "--bags", "1", "--weight-kg", "0.5", "--patient", tam0});

  Mobile m(dir, "team", hub, hub.device_code({"Bản Mới"}));
  m.sync();
  CHECK(ids(m.db(), "SELECT id FROM patients") == moi);
  CHECK(query_int(m.db(), "SELECT count(*) FROM visits") == 5);
  CHECK(query_int(m.db(), "SELECT count(*) FROM households") == 0);
  CHECK(query_int(m.db(), "SELECT count(*) FROM waste_batches") == 0);
  // Not even as a change in its log: nothing of Nậm Tăm reached the device.
  for (const auto& p : tam) {
    CHECK(query_int(m.db(), "SELECT count(*) FROM changes WHERE record_id = '" + p + "' OR payload LIKE '%" + p +
                                "%'") == 0);
  }
  // A later Nậm Tăm patient does not come either.
  tam.insert(hub.patient("Nậm Tăm 9", "Nậm Tăm"));
  CHECK(m.sync().at("received") == 0);

  // Widened, without enrolling again: the next sync brings Nậm Tăm.
  const std::string m_id = device_of(m.db());
  hub.cli.ok({"device", "scope", m_id.substr(0, 8), "--villages", "Bản Mới,Nậm Tăm"});
  json w = m.sync();
  CHECK(w.at("scope_widened") == true);
  CHECK(w.at("here").at("quarantined") == 0);
  std::set<std::string> both = moi;
  both.insert(tam.begin(), tam.end());
  CHECK(ids(m.db(), "SELECT id FROM patients") == both);
  CHECK(query_int(m.db(), "SELECT count(*) FROM visits") == 8);
  CHECK(query_int(m.db(), "SELECT count(*) FROM households WHERE id = '" + household + "'") == 1);
  CHECK(query_int(m.db(), "SELECT count(*) FROM waste_batches") == 1);
  check_no_duplicates(m.db());

  // Narrowed to Nậm Tăm: Bản Mới's later edits stop coming; what the device
  // holds of Bản Mới stays as it was (docs/protocol.md, "Partial scopes").
  hub.cli.ok({"device", "scope", m_id.substr(0, 8), "--villages", "Nậm Tăm"});
  const std::string moi0 = *moi.begin();
  hub.cli.ok({"patient", "update", moi0, "--phone", "0987654321"});
  hub.cli.ok({"patient", "update", tam0, "--phone", "0911111111"});
  json n = m.sync();
  CHECK(n.at("scope_widened") == false);
  CHECK(n.at("received") == 1);
  CHECK(query_texts(m.db(), "SELECT phone FROM patients WHERE id = '" + tam0 + "'").at(0) == "0911111111");
  CHECK(query_texts(m.db(), "SELECT phone FROM patients WHERE id = '" + moi0 + "'").at(0) == "");
  CHECK(ids(m.db(), "SELECT id FROM patients") == both);

  // The device list at the hub and, after a sync, at the centre shows the scope.
  hub.sync();
  json listed = centre.admin({"device", "list"});
  bool seen = false;
  for (const auto& d : listed.at("devices")) {
    if (d.at("id") == m_id) {
      seen = true;
      CHECK(d.at("villages") == json::array({"Nậm Tăm"}));
    }
  }
  CHECK(seen);
}

TEST_CASE("a new device's first sync of 10,000 patients, cut by killing the hub half-way, resumes where it stopped",
          "[e2e][hub][crash]") {
  TempDir dir;
  Centre centre(dir);
  Hub hub(dir, centre);
  {
    std::ofstream csv(dir.file("patients.csv"));
    csv << "name,sex,birth,village,category\n";
    for (int i = 0; i < 10000; ++i) csv << "Bệnh nhân " << i << ",male,1955,Bản " << i % 23 << ",chronic\n";
  }
  hub.cli.ok({"patient", "import", dir.file("patients.csv")});
  Mobile m(dir, "new-tablet", hub, hub.device_code());
  const int64_t for_device = query_int(hub.db(), "SELECT count(*) FROM changes WHERE kind != 'device'");

  // The first sync in the background; the hub is killed once the tablet has
  // stored some of its pages.
  const pid_t pid = spawn_station_cli({"--db", m.db(), "sync", "--attempts", "2"});
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int64_t held = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    held = query_int(m.db(), "SELECT count(*) FROM patients");
    if (held >= 2000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  hub.server->kill9();
  int st = 0;
  waitpid(pid, &st, 0);
  INFO("the tablet held " << held << " patients when the hub was killed");
  REQUIRE(held >= 2000);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 1);  // the link failed: it says so and stops
  CHECK(query_texts(m.db(), "PRAGMA integrity_check").at(0) == "ok");
  const int64_t stored = query_int(m.db(), "SELECT count(*) FROM changes");
  const int64_t cursor = query_int(m.db(), "SELECT pull_cursor FROM peers WHERE url != ''");
  REQUIRE(stored < for_device);  // cut half-way, not after the end
  CHECK(cursor > 0);

  // The hub comes back (same certificate); the sync goes on from its cursor.
  hub.serve();
  json s = m.sync();
  CHECK(query_int(m.db(), "SELECT count(*) FROM patients") == 10000);
  CHECK(query_int(m.db(), "SELECT count(*) FROM changes") == for_device);
  // Nothing stored before was transferred again; the page in flight when the
  // hub died was never stored, so it is not a duplicate either.
  CHECK(s.at("received").get<int64_t>() == for_device - stored);
  CHECK(s.at("here").at("duplicates") == 0);
  check_no_duplicates(m.db());
  CHECK(patient_rows(m.db()) == patient_rows(hub.db()));
}

}  // namespace tramsync::e2e
