#include <iostream>

#include "cli.h"
#include "output.h"

namespace tramsync::cli {

void setup_waste(CLI::App& app, Context& ctx) {
  auto* waste = app.add_subcommand("waste", "Medical waste from home care: batches and their chain of custody");
  waste->require_subcommand(1);

  auto in = std::make_shared<WasteBatchInput>();
  auto* add = waste->add_subcommand("add", "A new batch of bags, at stage bagged (prints the batch id)");
  add->add_option("--kind", in->kind, "infectious|sharps|general")->required();
  add->add_option("--bags", in->bags, "Number of bags")->required();
  add->add_option("--weight-kg", in->weight_kg, "Weight in kg")->required();
  add->add_option("--patient", in->patient_id, "Patient it came from");
  add->add_option("--household", in->household_id, "Household it came from");
  add->add_option("--note", in->note, "Note");
  add->add_option("--at", in->at, "When: YYYY-MM-DD[THH:MM], default now");
  add->footer("Example:\n  station-cli waste add --kind infectious --bags 2 --weight-kg 1.5 --patient 3f2a9c1e");
  on_run(add, ctx, [in](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto id = store->add_waste_batch(*in);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}});
    } else {
      std::cout << *id << '\n';
    }
    return kExitOk;
  });

  auto mv = std::make_shared<WasteMoveInput>();
  auto* move = waste->add_subcommand("move", "Move a batch forward: collected, stored, handed-over, treated");
  move->add_option("BATCH", mv->batch_id, "Batch id (or its first characters)")->required();
  move->add_option("--stage", mv->stage, "collected|stored|handed-over|treated")->required();
  move->add_option("--to", mv->to_org, "Who takes it (required for handed-over)");
  move->add_option("--note", mv->note, "Note");
  move->add_option("--at", mv->at, "When: YYYY-MM-DD[THH:MM], default now");
  move->footer("Example:\n  station-cli waste move 7c0d2e11 --stage handed-over --to \"BV Đa khoa huyện\"");
  on_run(move, ctx, [mv](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto id = store->move_waste(*mv);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}});
    } else {
      std::cout << *id << '\n';
    }
    return kExitOk;
  });

  struct ListOptions {
    bool pending = false;
    std::optional<int64_t> older;
  };
  auto lo = std::make_shared<ListOptions>();
  auto* list = waste->add_subcommand("list", "Waste batches with their stage and age");
  list->add_flag("--pending", lo->pending, "Only batches not yet treated");
  list->add_option("--older-than-days", lo->older, "Only batches older than N days")->check(at_least(0));
  list->footer("Example:\n  station-cli waste list --pending --older-than-days 2");
  on_run(list, ctx, [lo](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto batches = store->list_waste(lo->pending, lo->older);
    if (c.as_json) {
      json arr = json::array();
      for (const auto& b : batches) arr.push_back(to_json(b));
      c.print_json(arr);
      return kExitOk;
    }
    Table t({"BATCH", "KIND", "BAGS", "KG", "STAGE", "SINCE", "HOLDER", "AGE"});
    for (const auto& b : batches) {
      t.add({short_id(b.id), b.kind, std::to_string(b.bags), fmt_number(b.weight_kg), b.stage,
             b.stage_at.substr(0, 16), b.holder.empty() ? "station" : b.holder, std::to_string(b.age_days) + "d"});
    }
    t.print(std::cout);
    std::cout << batches.size() << " batch" << (batches.size() == 1 ? "" : "es") << '\n';
    return kExitOk;
  });
}

}  // namespace tramsync::cli
