// duplicates list | merge KEEP OTHER: patient records that may be one person
// (a person who moved, or was registered twice), found at the centre across
// stations, and linked so reports count the person once (core/review.h).
#include <iostream>

#include "cli.h"
#include "output.h"

namespace tramsync::server {

namespace {

json to_json(const DuplicateRecord& r) {
  return {{"id", r.id},
          {"station_code", r.station_code},
          {"name", r.name},
          {"sex", r.sex},
          {"birth", r.birth},
          {"village", r.village},
          {"national_id", r.national_id},
          {"status", r.status},
          {"last_visit", r.last_visit.empty() ? json(nullptr) : json(r.last_visit)}};
}

json to_json(const DuplicatePair& p) {
  return {{"a", to_json(p.a)},
          {"b", to_json(p.b)},
          {"same_national_id", p.same_national_id},
          {"same_name_birth", p.same_name_birth},
          {"village_distance", p.village_distance < 0 ? json(nullptr) : json(p.village_distance)},
          {"reasons", p.reasons}};
}

std::string describe(const DuplicateRecord& r) {
  return r.station_code + " " + short_id(r.id) + "  " + r.name + ", " + r.birth + ", " + r.village +
         (r.national_id.empty() ? "" : ", id " + r.national_id) + (r.status == "active" ? "" : " (" + r.status + ")") +
         ", last visit " + (r.last_visit.empty() ? "never" : r.last_visit.substr(0, 10));
}

}  // namespace

void setup_duplicates(CLI::App& app, Context& ctx) {
  auto* dup = app.add_subcommand("duplicates", "Patients that may be one person, across stations; link them");
  dup->require_subcommand(1);

  auto q = std::make_shared<DuplicateQuery>();
  auto* list = dup->add_subcommand("list", "Candidate pairs: the same national id, or the same name (without "
                                           "diacritics) and birth date and a close village");
  list->add_option("--station", q->station, "Only pairs with a record of this station (its code)");
  list->add_option("--district", q->district, "Only pairs with a record in this district");
  list->footer("Pairs already linked are not listed. Link one with: duplicates merge KEEP OTHER");
  on_run(list, ctx, [q](Context& c) {
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    auto pairs = store->duplicate_candidates(*q);
    if (!pairs) return c.fail(pairs.error());
    if (c.as_json) {
      json out = json::array();
      for (const auto& p : *pairs) out.push_back(to_json(p));
      c.print_json(out);
      return kExitOk;
    }
    if (pairs->empty()) {
      std::cout << "No duplicate candidates.\n";
      return kExitOk;
    }
    for (const auto& p : *pairs) {
      std::cout << "  " << describe(p.a) << "\n  " << describe(p.b) << "\n    why: ";
      for (size_t i = 0; i < p.reasons.size(); ++i) std::cout << (i ? "; " : "") << p.reasons[i];
      std::cout << "\n    link: tramsync-server duplicates merge " << p.a.id << ' ' << p.b.id << "\n\n";
    }
    std::cout << pairs->size() << " candidate pair(s)\n";
    return kExitOk;
  });

  struct MergeArgs {
    std::string keep, other;
  };
  auto m = std::make_shared<MergeArgs>();
  auto* merge = dup->add_subcommand("merge", "Link OTHER to KEEP as one person: reports count them once; both "
                                             "records and their histories stay, and the link syncs to OTHER's "
                                             "station");
  merge->add_option("KEEP", m->keep, "The record kept as the person's (id or a prefix of 4+ characters)")->required();
  merge->add_option("OTHER", m->other, "The record linked to it")->required();
  on_run(merge, ctx, [m](Context& c) {
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    auto r = store->merge_patients(m->keep, m->other);
    if (!r) return c.fail(r.error());
    if (c.as_json) {
      json changes = json::array();
      for (const auto& ch : r->changes) changes.push_back({{"record_id", ch.record_id}, {"hlc", ch.hlc}});
      c.print_json({{"keep", r->keep_id},
                    {"keep_station_code", r->keep_station_code},
                    {"other", r->other_id},
                    {"relinked", r->relinked},
                    {"changes", changes}});
      return kExitOk;
    }
    std::cout << "Linked " << r->other_id << " to " << r->keep_id << " (station " << r->keep_station_code
              << "): reports count them as one person.\n";
    for (const auto& id : r->relinked) std::cout << "Also re-linked " << id << ", which was linked to the other.\n";
    std::cout << "The link reaches the stations on their next sync.\n";
    return kExitOk;
  });

  auto u = std::make_shared<std::string>();
  auto* unlink = dup->add_subcommand("unlink", "Undo a wrong link: OTHER is its own person again (syncs to its "
                                               "station)");
  unlink->add_option("OTHER", *u, "The linked record (id or a prefix of 4+ characters)")->required();
  on_run(unlink, ctx, [u](Context& c) {
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    auto r = store->unlink_patient(*u);
    if (!r) return c.fail(r.error());
    if (c.as_json) {
      c.print_json({{"other", r->other_id}, {"was_linked_to", r->keep_id}, {"changes", r->changes.size()}});
      return kExitOk;
    }
    std::cout << "Unlinked " << r->other_id << " from " << r->keep_id
              << ": reports count it as its own person again; the stations learn it on their next sync.\n";
    return kExitOk;
  });
}

}  // namespace tramsync::server
