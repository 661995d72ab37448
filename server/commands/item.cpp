// item add: an item of the shared catalogue, which every station pulls.
#include <iostream>

#include "cli.h"

namespace tramsync::server {

void setup_item(CLI::App& app, Context& ctx) {
  auto* item = app.add_subcommand("item", "The shared catalogue: medicines, test kits, consumables, PPE, oxygen");
  item->require_subcommand(1);

  auto in = std::make_shared<ItemInput>();
  auto* add = item->add_subcommand("add", "Add an item to the catalogue every station receives");
  add->add_option("--code", in->code, "Short code, e.g. AMLO5")->required();
  add->add_option("--name", in->name, "Name, e.g. \"Amlodipin 5mg\"")->required();
  add->add_option("--unit", in->unit, "Unit counted, e.g. tablet, box, cylinder")->required();
  add->add_option("--kind", in->kind, "medicine|test-kit|consumable|ppe|oxygen (default medicine)");
  add->footer(
      "A reserve level (cơ số dự phòng) belongs to one station: set it there with `station-cli item reserve`.\n"
      "Example:\n"
      "  tramsync-server --db central.db item add --code AMLO5 --name \"Amlodipin 5mg\" --unit tablet");
  on_run(add, ctx, [in](Context& c) {
    auto store = c.open(/*create=*/true);
    if (!store) return kExitFailed;
    auto id = store->add_item(*in);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}, {"code", in->code}, {"catalogue", true}});
    } else {
      std::cout << "Item " << in->code << " added to the catalogue: " << *id << '\n';
    }
    return kExitOk;
  });
}

}  // namespace tramsync::server
