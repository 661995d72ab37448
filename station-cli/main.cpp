// station-cli: the station's command line. Parses, dispatches, prints; the
// records and their rules live in tramsync_core.
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli.h"

namespace tramsync::cli {

std::unique_ptr<Store> Context::open(bool create) {
  if (!create) {
    FILE* f = std::fopen(db_path.c_str(), "rb");
    if (!f) {
      fail("station file " + db_path + " does not exist: run `station-cli init --station CODE --name NAME` first, "
           "or give --db PATH");
      return nullptr;
    }
    std::fclose(f);
  }
  auto store = Store::open(db_path);
  if (!store) {
    fail(store.error());
    return nullptr;
  }
  return std::move(store.value());
}

int Context::show(const Result<sync::Shown>& r) {
  if (!r) return fail(r.error());
  if (as_json) {
    print_json(r->json);
  } else {
    std::cout << r->text;
  }
  return kExitOk;
}

int Context::fail(const Error& e) {
  if (as_json) {
    print_json({{"error", e.message()}, {"field", e.field}, {"rule", e.rule}, {"value", e.value}});
  } else {
    std::cerr << "error: " << e.message() << '\n';
  }
  return kExitFailed;
}

int Context::fail(const std::string& message) {
  if (as_json) {
    print_json({{"error", message}});
  } else {
    std::cerr << "error: " << message << '\n';
  }
  return kExitFailed;
}

void Context::print_json(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

}  // namespace tramsync::cli

int main(int argc, char** argv) {
  using namespace tramsync::cli;
  // A file-size limit (ulimit -f, systemd's LimitFSIZE) reached while writing
  // must be an error the store reports as a full disk, not a signal that
  // kills the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  Context ctx;
  const char* env_db = std::getenv("TRAMSYNC_DB");
  ctx.db_path = env_db && *env_db ? env_db : "station.db";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) ctx.as_json = true;  // so parse errors come out as JSON too
  }

  CLI::App app{"station-cli — a commune health station's records, kept offline and ready to sync."};
  app.name("station-cli");
  app.fallthrough();  // global options are accepted after the command too
  app.require_subcommand(1);
  app.add_option("--db", ctx.db_path, "The station file (default: station.db here, or $TRAMSYNC_DB)");
  app.add_flag("--json", ctx.as_json, "Print machine-readable JSON (errors too)");
  app.footer(
      "Examples:\n"
      "  station-cli init --station TYT-SINHO --name \"Trạm Y tế xã Sìn Hồ\"\n"
      "  station-cli patient add --name \"Nguyễn Văn An\" --sex male --birth 1948 --village \"Bản Mới\" "
      "--category elderly\n"
      "  station-cli report daily\n"
      "Run `station-cli COMMAND --help` for each command.");

  setup_init(app, ctx);
  setup_status(app, ctx);
  setup_staff(app, ctx);
  setup_household(app, ctx);
  setup_patient(app, ctx);
  setup_visit(app, ctx);
  setup_item(app, ctx);
  setup_stock(app, ctx);
  setup_waste(app, ctx);
  setup_report(app, ctx);
  setup_changes(app, ctx);
  setup_conflicts(app, ctx);
  setup_sync(app, ctx);
  setup_hub(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (ctx.as_json) {
      ctx.print_json({{"error", e.what()}});
    } else {
      std::cerr << "error: " << e.what() << "\n(run with --help for usage)\n";
    }
    return kExitUsage;
  }
  if (!ctx.run) return kExitUsage;
  try {
    return ctx.run(ctx);
  } catch (const std::exception& e) {
    // A bug or a damaged file, not a user mistake: say so plainly.
    return ctx.fail(std::string("internal error: ") + e.what());
  }
}
