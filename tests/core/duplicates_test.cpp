// Duplicate patients at the centre (Store::duplicate_candidates, merge_patients,
// unlink_patient; core/review.h): the same person registered at two stations,
// or twice, found by national id or by folded name, birth and a close village,
// linked so reports count the person once, and the link synced to the station
// of the record linked.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fixture.h"
#include "node.h"
#include "tramsync/core/review.h"
#include "tramsync/core/text.h"

using namespace tramsync;
using namespace tramsync::test;

namespace {


// A centre with three stations in two districts, one device each.
struct Province {
  Province() {
    centre.id = must(centre.store->init_central("Sở Y tế")).device_id;
    stations.push_back(must(centre.store->add_station("TYT-ANHOA", "Trạm Y tế xã An Hòa", "Huyện Đông Anh", "Hà Nội")));
    stations.push_back(must(centre.store->add_station("TYT-DONGHOI", "Trạm Y tế xã Đông Hội", "Huyện Đông Anh", "Hà Nội")));
    stations.push_back(must(centre.store->add_station("TYT-SOCSON", "Trạm Y tế xã Phù Linh", "Huyện Sóc Sơn", "Hà Nội")));
    for (size_t i = 0; i < stations.size(); ++i) {
      devices.push_back(std::make_unique<Node>(200 + i));
      Node& d = *devices.back();
      d.id = d.ids.new_id();
      must(d.store->init_device(stations[i], d.id, "laptop"));
    }
  }

  // Registers a patient on station i's device and pushes it to the centre.
  std::string add(size_t i, const std::string& name, const std::string& birth, const std::string& village,
                  const std::string& national_id = "") {
    PatientInput in;
    in.name = name;
    in.sex = "female";
    in.birth = birth;
    in.village = village;
    in.national_id = national_id;
    in.categories = {"elderly"};
    const std::string id = must(devices[i]->store->add_patient(in));
    push(i);
    return id;
  }

  void push(size_t i) { REQUIRE(push_to(centre, *devices[i], stations[i].id).quarantined == 0); }
  void pull(size_t i) { pull_from(centre, *devices[i], stations[i].id); }

  std::vector<DuplicatePair> list(const DuplicateQuery& q = {}) { return must(centre.store->duplicate_candidates(q)); }

  Node centre{1};
  std::vector<StationInfo> stations;
  std::vector<std::unique_ptr<Node>> devices;
};

// The pair of ids (a, b) of each candidate, in the order listed.
std::vector<std::pair<std::string, std::string>> ids_of(const std::vector<DuplicatePair>& pairs) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& p : pairs) out.emplace_back(p.a.id, p.b.id);
  return out;
}

}  // namespace

TEST_CASE("edit distance counts code points, so villages compare letter by letter", "[duplicates]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("Đông", "Dong") == 2);  // Đ/D and ô/o, not their bytes
  CHECK(edit_distance("Nậm Tăm", "Nậm Tăm 2") == 2);
  CHECK(edit_distance(fold_for_search("Bản Mới"), fold_for_search("ban moi")) == 0);
  CHECK(edit_distance(fold_for_search("Thôn Đông"), fold_for_search("Thon Dong 2")) == 2);
}

TEST_CASE("duplicate candidates: national id, or folded name and birth with a close village", "[duplicates]") {
  Province pv;
  const std::string lan = pv.add(0, "Nguyễn Thị Lan", "1950", "Thôn Đông");
  const std::string lan_again = pv.add(1, "NGUYEN THI LAN", "1950", "Thon Dong");       // moved: the same person
  const std::string lan_near = pv.add(1, "Nguyễn  Thị Lan", "1950", "Thôn Đông 2");      // village 2 letters apart
  const std::string lan_far = pv.add(2, "Nguyễn Thị Lan", "1950", "Thôn Bắc Xa");        // another village
  const std::string lan_younger = pv.add(2, "Nguyễn Thị Lan", "1951", "Thôn Đông");      // another birth year
  const std::string id_a = pv.add(0, "Lò Thị Hoa", "1940", "Thôn Nam", "001140000111");
  const std::string id_b = pv.add(2, "Lo Hoa", "1941", "Xóm Chợ", "001140000111");  // same national id, all else differs
  const std::string tu = pv.add(2, "Hà Văn Tư", "1960", "Xóm Chợ");  // registered twice at Sóc Sơn
  const std::string tu_again = pv.add(2, "Hà Văn Tư", "1960", "Xóm Chợ");

  std::vector<DuplicatePair> all = pv.list();
  INFO("pairs: " << all.size());
  auto has = [&](const std::vector<DuplicatePair>& ps, const std::string& x, const std::string& y) {
    return std::any_of(ps.begin(), ps.end(), [&](const DuplicatePair& p) {
      return (p.a.id == x && p.b.id == y) || (p.a.id == y && p.b.id == x);
    });
  };
  // The pair of x and y, which must be listed.
  auto pair_of = [&](const std::string& x, const std::string& y) -> const DuplicatePair& {
    auto it = std::find_if(all.begin(), all.end(), [&](const DuplicatePair& p) {
      return (p.a.id == x && p.b.id == y) || (p.a.id == y && p.b.id == x);
    });
    REQUIRE(it != all.end());
    return *it;
  };
  CHECK(all.size() == 5);
  CHECK_FALSE(has(all, lan, lan_far));
  CHECK_FALSE(has(all, lan, lan_younger));
  // Within a pair the record of the smaller (station code, name, id) comes first.
  const DuplicatePair& moved = pair_of(lan, lan_again);
  CHECK(moved.a.id == lan);
  CHECK(moved.same_name_birth);
  CHECK_FALSE(moved.same_national_id);
  CHECK(moved.village_distance == 0);
  CHECK(moved.reasons == std::vector<std::string>{"the same name and birth date in the same village"});
  CHECK(moved.a.station_code == "TYT-ANHOA");
  CHECK(moved.b.station_code == "TYT-DONGHOI");
  CHECK(moved.a.last_visit.empty());
  CHECK(pair_of(lan, lan_near).village_distance == 2);
  CHECK(pair_of(lan_again, lan_near).same_name_birth);
  const DuplicatePair& by_id = pair_of(id_a, id_b);
  CHECK(by_id.same_national_id);
  CHECK_FALSE(by_id.same_name_birth);
  CHECK(by_id.village_distance == -1);
  CHECK(by_id.reasons == std::vector<std::string>{"the same national id 001140000111"});
  CHECK(pair_of(tu, tu_again).a.station_code == "TYT-SOCSON");

  // Scopes: pairs with a record in the station or district asked for.
  auto soc_son = pv.list({"TYT-SOCSON", ""});
  CHECK(ids_of(soc_son).size() == 2);
  CHECK(has(soc_son, id_a, id_b));
  CHECK(has(soc_son, tu, tu_again));
  auto dong_anh = pv.list({"", "huyen dong anh"});
  CHECK(dong_anh.size() == 4);
  CHECK_FALSE(has(dong_anh, tu, tu_again));
  CHECK(pv.list({"", "Huyện Sóc Sơn"}).size() == 2);
  CHECK(pv.list({"TYT-DONGHOI", ""}).size() == 3);  // each of its two records with the other and with An Hòa's
  Error unknown = must_fail(pv.centre.store->duplicate_candidates({"TYT-NOWHERE", ""}));
  CHECK(unknown.code == ErrorCode::kNotFound);
  CHECK(unknown.value == "TYT-NOWHERE");
  Error no_district = must_fail(pv.centre.store->duplicate_candidates({"", "Huyện Mê Linh"}));
  CHECK(no_district.field == "district");
}

TEST_CASE("merge links one record to the kept one, syncs to its station, and can be undone", "[duplicates]") {
  Province pv;
  const std::string keep = pv.add(0, "Nguyễn Thị Lan", "1950", "Thôn Đông");
  const std::string other = pv.add(1, "Nguyen Thi Lan", "1950", "Thon Dong");
  const std::string third = pv.add(2, "Nguyễn Thị Lan", "1950", "Thôn Đông");
  REQUIRE(pv.list().size() == 3);

  SECTION("refusals name the rule") {
    Error same = must_fail(pv.centre.store->merge_patients(keep, keep));
    CHECK(same.field == "OTHER");
    Error unknown = must_fail(pv.centre.store->merge_patients(keep, "ffffffff-no-such"));
    CHECK(unknown.value == "ffffffff-no-such");
    // On a station's file there is no linking.
    Error station = must_fail(pv.devices[0]->store->merge_patients(keep, keep));
    CHECK(station.field == "file");
    CHECK(pv.list().size() == 3);  // nothing changed
  }

  SECTION("a link, re-pointed links, and an unlink") {
    const int64_t seq = pv.centre.store->last_seq();
    // The third record is linked to `other` first; linking `other` to `keep`
    // re-points it, so links stay one level deep.
    PatientMerge first = must(pv.centre.store->merge_patients(other, third));
    CHECK(first.relinked.empty());
    CHECK(first.changes.size() == 1);
    PatientMerge m = must(pv.centre.store->merge_patients(keep, other.substr(0, 8)));
    CHECK(m.keep_id == keep);
    CHECK(m.keep_station_code == "TYT-ANHOA");
    CHECK(m.other_id == other);
    CHECK(m.relinked == std::vector<std::string>{third});
    REQUIRE(m.changes.size() == 2);
    CHECK(m.changes[0].record_id == other);
    CHECK(m.changes[0].station_id == pv.stations[1].id);
    CHECK(m.changes[1].record_id == third);
    CHECK(m.changes[1].station_id == pv.stations[2].id);
    CHECK(pv.centre.store->last_seq() == seq + 3);
    CHECK(must(pv.centre.store->get_patient(other)).same_as == keep);
    CHECK(must(pv.centre.store->get_patient(other)).same_as_station == "TYT-ANHOA");
    CHECK(must(pv.centre.store->get_patient(third)).same_as == keep);
    CHECK(must(pv.centre.store->get_patient(keep)).same_as.empty());
    CHECK(pv.list().empty());  // all three are one person now

    // Refused: a kept record that is itself linked, and a record linked already.
    Error linked_keep = must_fail(pv.centre.store->merge_patients(other, keep));
    CHECK(linked_keep.field == "KEEP");
    CHECK_THAT(linked_keep.rule, Contains(keep));
    Error again = must_fail(pv.centre.store->merge_patients(keep, other));
    CHECK(again.field == "OTHER");
    CHECK_THAT(again.rule, Contains("already linked"));

    // The stations learn it on their next sync: only their own records.
    pv.pull(1);
    pv.pull(2);
    pv.pull(0);
    CHECK(must(pv.devices[1]->store->get_patient(other)).same_as == keep);
    CHECK(must(pv.devices[1]->store->get_patient(other)).same_as_station == "TYT-ANHOA");
    CHECK(must(pv.devices[2]->store->get_patient(third)).same_as == keep);
    CHECK(must(pv.devices[0]->store->get_patient(keep)).same_as.empty());
    CHECK_FALSE(pv.devices[0]->store->get_patient(other).ok());  // never sent to An Hòa

    // Unlinking makes `other` its own person again, everywhere.
    PatientMerge u = must(pv.centre.store->unlink_patient(other));
    CHECK(u.keep_id == keep);
    CHECK(u.changes.size() == 1);
    CHECK(must(pv.centre.store->get_patient(other)).same_as.empty());
    const auto pairs = pv.list();
    REQUIRE(pairs.size() == 2);  // other with keep, other with third (third stays linked to keep)
    Error not_linked = must_fail(pv.centre.store->unlink_patient(other));
    CHECK(not_linked.field == "OTHER");
    pv.pull(1);
    CHECK(must(pv.devices[1]->store->get_patient(other)).same_as.empty());
  }
}

TEST_CASE("the daily census counts a linked person once, and still counts one whose kept record was closed",
          "[duplicates]") {
  Province pv;
  const std::string keep = pv.add(0, "Nguyễn Thị Lan", "1950", "Thôn Đông");
  const std::string other = pv.add(1, "Nguyen Thi Lan", "1950", "Thon Dong");
  auto under_care = [&] {
    CentralReport r = must(pv.centre.store->central_report("daily", {}));
    const ReportTable& totals = r.tables.at(1);
    const auto& cols = totals.columns;
    const size_t i = static_cast<size_t>(std::find(cols.begin(), cols.end(), "under_care") - cols.begin());
    REQUIRE(i < cols.size());
    return std::get<int64_t>(totals.rows.at(0).at(i));
  };
  CHECK(under_care() == 2);  // two records, not yet known to be one person
  must(pv.centre.store->merge_patients(keep, other));
  CHECK(under_care() == 1);

  // She moved for good: An Hòa closes its record; Đông Hội's stays under care. Still one person, counted once.
  PatientUpdate up;
  up.status = "moved";
  must(pv.devices[0]->store->update_patient(keep, up));
  pv.push(0);
  CHECK(must(pv.centre.store->get_patient(keep)).status == "moved");
  CHECK(under_care() == 1);
}

TEST_CASE("followup lists at most --limit patients per station, worst first, and its counts stay complete",
          "[reports]") {
  Province pv;
  pv.add(0, "Lò Văn A", "1940", "Bản Một");
  pv.centre.clock.advance(kDayMs);
  pv.devices[0]->clock.advance(kDayMs);
  pv.add(0, "Lò Văn B", "1941", "Bản Một");
  pv.add(0, "Lò Văn C", "1942", "Bản Một");
  pv.add(1, "Lò Văn D", "1943", "Bản Hai");
  const int many = kDefaultListLimit + 1;  // Đông Hội has more than the default lists
  for (int i = 0; i < many; ++i) pv.add(1, "Hà Thị " + std::to_string(i), "1950", "Bản Hai");
  pv.centre.clock.advance(40 * kDayMs);  // every one of them past the 30-day limit
  auto table_of = [](const CentralReport& r, const std::string& name) -> const ReportTable& {
    for (const auto& t : r.tables) {
      if (t.name == name) return t;
    }
    FAIL("no table " << name);
    return r.tables.at(0);
  };
  auto overdue_of = [&](std::optional<int> limit, const std::string& station = "") {
    CentralReportOptions o;
    o.list_limit = limit;
    o.station = station;
    return must(pv.centre.store->central_report("followup", o));
  };
  const CentralReport two = overdue_of(2);
  const ReportTable& listed = table_of(two, "overdue");
  REQUIRE(listed.rows.size() == 4);  // two of each station's
  CHECK(std::get<std::string>(listed.rows[0][2]) == "Lò Văn A");  // the longest without contact first
  CHECK(std::get<int64_t>(table_of(two, "by_station").rows[0][3]) == 3);  // the counts are complete
  CHECK(std::get<int64_t>(table_of(two, "by_station").rows[1][3]) == many + 1);
  auto says_cut = [](const CentralReport& r) {
    return std::any_of(r.notes.begin(), r.notes.end(),
                       [](const std::string& n) { return n.find("patients per station, the worst first") != n.npos; });
  };
  CHECK(says_cut(two));
  CHECK(std::any_of(two.notes.begin(), two.notes.end(),
                    [](const std::string& n) { return n.find("at most 2 patients per station") != n.npos; }));
  CHECK(table_of(overdue_of(0), "overdue").rows.size() == static_cast<size_t>(3 + many + 1));
  CHECK_FALSE(says_cut(overdue_of(0)));
  // The default for several stations: An Hòa's 3, and Đông Hội's first kDefaultListLimit.
  const CentralReport by_default = overdue_of(std::nullopt);
  CHECK(table_of(by_default, "overdue").rows.size() == static_cast<size_t>(3 + kDefaultListLimit));
  CHECK(says_cut(by_default));
  // Settings out of range are named as the option that was wrong.
  CentralReportOptions bad;
  bad.settings.covid_overdue_days = -1;
  Error covid = must_fail(pv.centre.store->central_report("followup", bad));
  CHECK(covid.field == "covid-days");
  CHECK(covid.value == "-1");
  // One station's report lists all of it.
  CHECK(table_of(overdue_of(std::nullopt, "TYT-DONGHOI"), "overdue").rows.size() == static_cast<size_t>(many + 1));
}
