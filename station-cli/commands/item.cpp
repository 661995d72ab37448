#include <iostream>

#include "cli.h"

namespace tramsync::cli {

void setup_item(CLI::App& app, Context& ctx) {
  auto* item = app.add_subcommand("item", "Items: medicines, test kits, consumables, protective equipment, oxygen");
  item->require_subcommand(1);

  auto in = std::make_shared<ItemInput>();
  auto* add = item->add_subcommand("add", "Add an item this station keeps (e.g. a donation not in the catalogue)");
  add->add_option("--code", in->code, "Short code, e.g. AMLO5")->required();
  add->add_option("--name", in->name, "Name, e.g. \"Amlodipin 5mg\"")->required();
  add->add_option("--unit", in->unit, "Unit counted, e.g. tablet, box, cylinder")->required();
  add->add_option("--kind", in->kind, "medicine|test-kit|consumable|ppe|oxygen (default medicine)");
  add->add_option("--reserve", in->reserve, "Reserve level (cơ số dự phòng): below it the station must ask for more");
  add->footer("Example:\n  station-cli item add --code AMLO5 --name \"Amlodipin 5mg\" --unit tablet --reserve 200");
  on_run(add, ctx, [in](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto id = store->add_item(*in);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}});
    } else {
      std::cout << *id << '\n';
    }
    return kExitOk;
  });

  struct ReserveOptions {
    std::string item;
    int64_t level = 0;
  };
  auto r = std::make_shared<ReserveOptions>();
  auto* reserve = item->add_subcommand("reserve", "Set an item's reserve level at this station");
  reserve->add_option("ITEM", r->item, "Item code")->required();
  reserve->add_option("LEVEL", r->level, "Reserve level in the item's unit")->required();
  reserve->footer("Example:\n  station-cli item reserve AMLO5 300");
  on_run(reserve, ctx, [r](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    if (auto st = store->set_reserve(r->item, r->level); !st) return c.fail(st.error());
    if (c.as_json) {
      c.print_json({{"item", r->item}, {"reserve", r->level}});
    } else {
      std::cout << "Reserve of " << r->item << " set to " << r->level << '\n';
    }
    return kExitOk;
  });
}

}  // namespace tramsync::cli
