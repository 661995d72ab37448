#include <iostream>

#include "cli.h"
#include "output.h"

namespace tramsync::cli {

void setup_household(CLI::App& app, Context& ctx) {
  auto* hh = app.add_subcommand("household", "Households (hộ gia đình)");
  hh->require_subcommand(1);

  auto in = std::make_shared<HouseholdInput>();
  auto* add = hh->add_subcommand("add", "Register a household");
  add->add_option("--village", in->village, "Village (thôn/bản)")->required();
  add->add_option("--head", in->head_name, "Head of household");
  add->add_option("--address", in->address, "Address or directions");
  add->add_option("--phone", in->phone, "Phone");
  add->footer("Example:\n  station-cli household add --village \"Bản Mới\" --head \"Lò Văn Pâng\"");
  on_run(add, ctx, [in](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto id = store->add_household(*in);
    if (!id) return c.fail(id.error());
    if (c.as_json) {
      c.print_json({{"id", *id}});
    } else {
      std::cout << *id << '\n';
    }
    return kExitOk;
  });

  auto id = std::make_shared<std::string>();
  auto* show = hh->add_subcommand("show", "Show a household and its members");
  show->add_option("ID", *id, "Household id (or its first characters)")->required();
  show->footer("Example:\n  station-cli household show 3f2a9c1e");
  on_run(show, ctx, [id](Context& c) {
    auto store = c.open();
    if (!store) return kExitFailed;
    auto h = store->get_household(*id);
    if (!h) return c.fail(h.error());
    auto members = store->household_members(h->id);
    if (c.as_json) {
      json j = to_json(*h);
      j["members"] = json::array();
      for (const auto& m : members) j["members"].push_back(to_json(m));
      c.print_json(j);
      return kExitOk;
    }
    std::cout << "Household " << h->id << "\nVillage:  " << h->village << "\nHead:     " << h->head_name
              << "\nAddress:  " << h->address << "\nPhone:    " << h->phone << "\n\n";
    Table t({"ID", "NAME", "SEX", "BORN", "STATUS"});
    for (const auto& m : members) t.add({short_id(m.id), m.name, m.sex, m.birth, m.status});
    if (t.empty()) {
      std::cout << "No members registered yet.\n";
    } else {
      t.print(std::cout);
    }
    return kExitOk;
  });
}

}  // namespace tramsync::cli
