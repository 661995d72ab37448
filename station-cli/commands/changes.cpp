#include <iostream>

#include "cli.h"
#include "output.h"
#include "tramsync/sync/wire.h"

namespace tramsync::cli {

void setup_changes(CLI::App& app, Context& ctx) {
  struct Options {
    int64_t after = 0;
    int64_t limit = 100;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("changes", "The change log: every write, in order, as it will be sent");
  cmd->add_option("--after", o->after, "Only changes after this log position (default 0)")
      ->check(at_least(0));
  cmd->add_option("--limit", o->limit, "At most N changes (default 100)")->check(at_least(1));
  cmd->footer("With --json: the changes in the protocol's wire format.\nExample:\n  station-cli changes --after 120");
  on_run(cmd, ctx, [o](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto changes = store->changes_after(o->after, o->limit);
    if (c.as_json) {
      std::cout << wire::encode_batch(changes) << '\n';
      return kExitOk;
    }
    Table t({"SEQ", "ORIGIN", "ORIGIN SEQ", "HLC", "KIND", "RECORD"});
    for (const auto& ch : changes) {
      t.add({std::to_string(ch.seq), short_id(ch.origin), std::to_string(ch.origin_seq), std::to_string(ch.hlc),
             ch.kind, short_id(ch.record_id)});
    }
    t.print(std::cout);
    return kExitOk;
  });
}

}  // namespace tramsync::cli
