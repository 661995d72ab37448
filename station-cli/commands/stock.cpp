#include <iostream>

#include "cli.h"
#include "output.h"

namespace tramsync::cli {

namespace {

int print_id(Context& c, const Result<std::string>& id) {
  if (!id) return c.fail(id.error());
  if (c.as_json) {
    c.print_json({{"id", *id}});
  } else {
    std::cout << *id << '\n';
  }
  return kExitOk;
}

int print_ids(Context& c, const Result<std::vector<std::string>>& ids) {
  if (!ids) return c.fail(ids.error());
  if (c.as_json) {
    c.print_json({{"id", ids->front()}, {"ids", *ids}});
  } else {
    for (const auto& id : *ids) std::cout << id << '\n';
  }
  return kExitOk;
}

int run_show(Context& c) {
  auto store = c.open();
  if (!store) return kExitFailed;
  auto items = store->stock();
  if (c.as_json) {
    json arr = json::array();
    for (const auto& s : items) arr.push_back(to_json(s));
    c.print_json(arr);
    return kExitOk;
  }
  Table t({"ITEM", "NAME", "LOT", "EXPIRY", "ON HAND", "RESERVE", "FLAGS"});
  for (const auto& s : items) {
    std::string flags;
    if (s.under_reserve) flags += "UNDER RESERVE ";
    if (s.expiring_soon > 0) flags += "EXPIRING " + std::to_string(s.expiring_soon) + " ";
    if (s.expired_on_hand > 0) flags += "EXPIRED " + std::to_string(s.expired_on_hand) + " ";
    t.add({s.item_code, s.item_name, "(all usable)", "", std::to_string(s.on_hand) + " " + s.unit,
           s.reserve ? std::to_string(*s.reserve) : "-", flags});
    for (const auto& l : s.lots) {
      t.add({"", "", l.lot, l.expiry, std::to_string(l.on_hand),  "",
             l.expired ? "expired" : (l.expiring_soon ? "expiring soon" : "")});
    }
  }
  if (t.empty()) {
    std::cout << "No stock recorded yet.\n";
  } else {
    t.print(std::cout);
  }
  return kExitOk;
}

}  // namespace

void setup_stock(CLI::App& app, Context& ctx) {
  auto* stock = app.add_subcommand("stock", "Stock on hand per item and lot; receive, adjust, write off, transfer");
  stock->require_subcommand(0, 1);
  stock->footer("Without a subcommand: on hand per item and lot, reserve, under-reserve and expiry flags.\n"
                "Example:\n  station-cli stock");
  stock->callback([&ctx, stock]() {
    if (stock->get_subcommands().empty()) ctx.run = run_show;
  });

  auto rc = std::make_shared<ReceiveInput>();
  auto* receive = stock->add_subcommand("receive", "Record a receipt from the district or a donor");
  receive->add_option("--item", rc->item, "Item code")->required();
  receive->add_option("--qty", rc->quantity, "Quantity in the item's unit")->required();
  receive->add_option("--lot", rc->lot, "Lot number")->required();
  receive->add_option("--expiry", rc->expiry, "Expiry date YYYY-MM-DD")->required();
  receive->add_option("--source", rc->source, "Who sent it, e.g. \"TTYT huyện Sìn Hồ\"");
  receive->add_option("--at", rc->at, "When: YYYY-MM-DD[THH:MM], default now");
  receive->footer("Example:\n  station-cli stock receive --item AMLO5 --qty 500 --lot A2311 --expiry 2027-06-30 "
                  "--source \"TTYT huyện\"");
  on_run(receive, ctx, [rc](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    return print_id(c, store->receive(*rc));
  });

  auto ad = std::make_shared<AdjustInput>();
  auto* adjust = stock->add_subcommand("adjust", "Correct stock after a count (+N or -N)");
  adjust->add_option("--item", ad->item, "Item code")->required();
  adjust->add_option("--qty", ad->quantity, "Signed change, e.g. -3 or 10")->required();
  adjust->add_option("--reason", ad->reason, "Why, e.g. \"count on 20/11\"")->required();
  adjust->add_option("--lot", ad->lot, "Lot (required when the item has several)");
  adjust->add_option("--at", ad->at, "When: YYYY-MM-DD[THH:MM], default now");
  adjust->footer("Example:\n  station-cli stock adjust --item AMLO5 --qty -3 --reason \"count 20/11\"");
  on_run(adjust, ctx, [ad](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    return print_ids(c, store->adjust(*ad));
  });

  auto wo = std::make_shared<WriteoffInput>();
  auto* writeoff = stock->add_subcommand("writeoff", "Write off expired, damaged or lost stock");
  writeoff->add_option("--item", wo->item, "Item code")->required();
  writeoff->add_option("--lot", wo->lot, "Lot")->required();
  writeoff->add_option("--qty", wo->quantity, "Quantity")->required();
  writeoff->add_option("--reason", wo->reason, "expired|damaged|lost")->required();
  writeoff->add_option("--at", wo->at, "When: YYYY-MM-DD[THH:MM], default now");
  writeoff->footer("Example:\n  station-cli stock writeoff --item AMLO5 --lot A2209 --qty 20 --reason expired");
  on_run(writeoff, ctx, [wo](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    return print_id(c, store->write_off(*wo));
  });

  auto to = std::make_shared<TransferInput>();
  auto* tout = stock->add_subcommand("transfer-out", "Send stock to another station or unit");
  tout->add_option("--item", to->item, "Item code")->required();
  tout->add_option("--lot", to->lot, "Lot")->required();
  tout->add_option("--qty", to->quantity, "Quantity")->required();
  tout->add_option("--to", to->counterpart, "Receiving station or unit")->required();
  tout->add_option("--at", to->at, "When: YYYY-MM-DD[THH:MM], default now");
  tout->footer("Example:\n  station-cli stock transfer-out --item O2-40L --lot B1 --qty 2 --to TYT-NAMTAM");
  on_run(tout, ctx, [to](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    return print_id(c, store->transfer_out(*to));
  });

  auto ti = std::make_shared<TransferInput>();
  auto* tin = stock->add_subcommand("transfer-in", "Receive stock sent by another station or unit");
  tin->add_option("--item", ti->item, "Item code")->required();
  tin->add_option("--lot", ti->lot, "Lot")->required();
  tin->add_option("--expiry", ti->expiry, "Expiry date YYYY-MM-DD")->required();
  tin->add_option("--qty", ti->quantity, "Quantity")->required();
  tin->add_option("--from", ti->counterpart, "Sending station or unit")->required();
  tin->add_option("--at", ti->at, "When: YYYY-MM-DD[THH:MM], default now");
  tin->footer("Example:\n  station-cli stock transfer-in --item O2-40L --lot B1 --expiry 2028-01-01 --qty 2 "
              "--from TYT-SINHO");
  on_run(tin, ctx, [ti](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    return print_id(c, store->transfer_in(*ti));
  });

  auto dp = std::make_shared<DispenseInput>();
  auto* dispense = app.add_subcommand("dispense", "Hand out medicine to a patient (first expiry first out)");
  dispense->add_option("PATIENT", dp->patient_id, "Patient id (or its first characters)")->required();
  dispense->add_option("--item", dp->item, "Item code")->required();
  dispense->add_option("--qty", dp->quantity, "Quantity in the item's unit")->required();
  dispense->add_option("--days", dp->days_supply, "Days of supply: sets the next refill date");
  dispense->add_option("--lot", dp->lot, "Take from this lot (default: the earliest expiry first)");
  dispense->add_option("--at", dp->at, "When: YYYY-MM-DD[THH:MM], default now");
  dispense->footer("Example:\n  station-cli dispense 3f2a9c1e --item AMLO5 --qty 60 --days 60");
  on_run(dispense, ctx, [dp](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    return print_ids(c, store->dispense(*dp));
  });
}

}  // namespace tramsync::cli
