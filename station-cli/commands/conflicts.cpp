// conflicts: this device's record of concurrent edits (read-only). Staff see
// which of their edits lost to another device's, and, once the centre decided,
// that it is resolved and how. Deciding is the centre's (`tramsync-server
// conflicts resolve`); the decision arrives with the next sync.
#include <iostream>

#include "cli.h"
#include "tramsync/sync/review_admin.h"

namespace tramsync::cli {

void setup_conflicts(CLI::App& app, Context& ctx) {
  auto all = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("conflicts", "Concurrent edits of one field this device found, and their resolution");
  cmd->add_flag("--all", *all, "Resolved conflicts too, with how the centre resolved them");
  cmd->footer(
      "WINNER is the value every device holds now; LOSER the concurrent edit it replaced. The centre reviews\n"
      "each conflict; its decision arrives with a sync and closes the conflict here.\n"
      "With --json: an array with full ids and the values as JSON.\n"
      "Example:\n  station-cli conflicts --all");
  on_run(cmd, ctx, [all](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    return c.show(sync::conflict_list(*store, sync::ConflictQuery{*all, ""}));
  });
}

}  // namespace tramsync::cli
