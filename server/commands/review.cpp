// conflicts list / resolve, quarantine list / release / drop: the reviewer's
// decisions at the centre (core/review.h; shown by sync/review_admin.h, which
// GET /v1/conflicts, POST /v1/conflicts/ID/resolve and GET /v1/quarantine share).
#include <iostream>

#include "cli.h"
#include "tramsync/sync/review_admin.h"

namespace tramsync::server {

namespace {

// Runs `f` on the central file (which must exist).
template <typename F>
int with_store(Context& c, F&& f) {
  auto store = c.open(/*create=*/false);
  if (!store) return kExitFailed;
  return c.show(f(*store));
}

}  // namespace

void setup_conflicts(CLI::App& app, Context& ctx) {
  auto* conflicts = app.add_subcommand("conflicts", "Concurrent edits of one field, kept for review, and settling them");
  conflicts->require_subcommand(1);

  auto lo = std::make_shared<sync::ConflictQuery>();
  auto* list = conflicts->add_subcommand("list", "List open conflicts: the winning and the losing value of each");
  list->add_flag("--all", lo->all, "Resolved conflicts too, with how they were resolved");
  list->add_option("--station", lo->station, "Only this station's conflicts (its code)");
  list->footer(
      "WINNER is the value every node holds now; LOSER the concurrent edit it replaced. With --json: an array with\n"
      "full ids and the values as JSON.\n"
      "Example:\n  tramsync-server --db central.db conflicts list --station TYT-SINHO");
  on_run(list, ctx, [lo](Context& c) {
    return with_store(c, [&](Store& s) { return sync::conflict_list(s, *lo); });
  });

  struct ResolveOptions {
    std::string id, keep, note;
  };
  auto ro = std::make_shared<ResolveOptions>();
  auto* resolve = conflicts->add_subcommand("resolve", "Settle a conflict: keep the winner, the loser or another value");
  resolve->add_option("ID", ro->id, "The conflict's id, or its first 4 or more characters (see `conflicts list`)")
      ->required();
  resolve->add_option("--keep", ro->keep,
                      "winner: the value that stands now; loser: the edit that lost; anything else: that value, "
                      "read by the field's type")
      ->required();
  resolve->add_option("--note", ro->note, "Why (kept with the resolution, shown on every node)");
  resolve->footer(
      "The decision is an edit made at the centre: it syncs to the record's station on its devices' next sync,\n"
      "and every node closes its own conflicts over that field.\n"
      "Examples:\n"
      "  tramsync-server --db central.db conflicts resolve 1a2b3c4d --keep loser --note \"checked by phone\"\n"
      "  tramsync-server --db central.db conflicts resolve 1a2b3c4d --keep 0912345678");
  on_run(resolve, ctx, [ro](Context& c) {
    return with_store(c, [&](Store& s) { return sync::conflict_resolve(s, ro->id, ro->keep, ro->note); });
  });
}

void setup_quarantine(CLI::App& app, Context& ctx) {
  auto* quarantine =
      app.add_subcommand("quarantine", "Changes the centre held back (out of scope, invalid, a clock far ahead)");
  quarantine->require_subcommand(1);

  auto all = std::make_shared<bool>(false);
  auto* list = quarantine->add_subcommand("list", "List changes held for review, with the reason each was held");
  list->add_flag("--all", *all, "Decided entries too (applied, released, dropped)");
  list->footer("With --json: an array with each change's payload.\n"
               "Example:\n  tramsync-server --db central.db quarantine list --all");
  on_run(list, ctx, [all](Context& c) {
    auto store = c.open(/*create=*/false);
    if (!store) return kExitFailed;
    return c.show(sync::quarantine_list(*store, *all));
  });

  struct DecideOptions {
    int64_t id = 0;
    std::string text;
  };
  auto rel = std::make_shared<DecideOptions>();
  auto* release = quarantine->add_subcommand("release", "Apply a held change with the centre's authority");
  release->add_option("ID", rel->id, "The entry's number (see `quarantine list`)")->required();
  release->add_option("--note", rel->text, "Why (kept with the decision)");
  release->footer(
      "The record's own rules still apply; if it still cannot be applied nothing changes and the error says why.\n"
      "A released change keeps its origin and reaches the record's station on its devices' next sync.\n"
      "Example:\n  tramsync-server --db central.db quarantine release 12 --note \"tablet clock fixed\"");
  on_run(release, ctx, [rel](Context& c) {
    return with_store(c, [&](Store& s) { return sync::quarantine_release(s, rel->id, rel->text); });
  });

  auto drop = std::make_shared<DecideOptions>();
  auto* dropc = quarantine->add_subcommand("drop", "Decide never to apply a held change (it stays on record)");
  dropc->add_option("ID", drop->id, "The entry's number (see `quarantine list`)")->required();
  dropc->add_option("--reason", drop->text, "Why it is dropped (required)")->required();
  dropc->footer("Example:\n  tramsync-server --db central.db quarantine drop 13 --reason \"entered twice\"");
  on_run(dropc, ctx, [drop](Context& c) {
    return with_store(c, [&](Store& s) { return sync::quarantine_drop(s, drop->id, drop->text); });
  });
}

}  // namespace tramsync::server
