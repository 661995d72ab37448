#include <iostream>

#include "cli.h"

namespace tramsync::cli {

void setup_staff(CLI::App& app, Context& ctx) {
  auto* staff = app.add_subcommand("staff", "Station staff");
  staff->require_subcommand(1);
  auto in = std::make_shared<StaffInput>();
  auto* add = staff->add_subcommand("add", "Add a member of staff");
  add->add_option("--name", in->name, "Full name")->required();
  add->add_option("--role", in->role, "Role: doctor, nurse, midwife, village health worker ...");
  add->footer("Example:\n  station-cli staff add --name \"Lò Thị Mai\" --role nurse");
  on_run(add, ctx, [in](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto id = store->add_staff(*in);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}});
    } else {
      std::cout << *id << '\n';
    }
    return kExitOk;
  });
}

}  // namespace tramsync::cli
