// tramsync-server: the central node's program. `serve` runs the HTTPS sync
// server; the other commands manage the central file (stations, devices, the
// shared catalogue). Parses, dispatches, prints; the rules live in
// tramsync_core and tramsync_sync.
#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli.h"
#include "tramsync/sync/protocol.h"

#ifndef TRAMSYNC_VERSION
#define TRAMSYNC_VERSION "dev"
#endif

namespace tramsync::server {

std::unique_ptr<Store> Context::open(bool create, const std::string& central_name) {
  std::error_code ec;
  if (!create && !std::filesystem::exists(db_path, ec)) {
    fail("central file " + db_path +
         " does not exist: run `tramsync-server station add` or `tramsync-server serve` first, or give --db PATH");
    return nullptr;
  }
  auto opened = Store::open(db_path);
  if (!opened) {
    fail(opened.error());
    return nullptr;
  }
  std::unique_ptr<Store> store = std::move(opened.value());
  if (!store->initialized()) {
    if (!create) {
      fail("central file " + db_path + " was never initialised: run `tramsync-server station add` or "
           "`tramsync-server serve` first");
      return nullptr;
    }
    if (auto id = store->init_central(central_name); !id) {
      fail(id.error());
      return nullptr;
    }
  }
  auto id = store->identity();
  if (!id) {
    fail(id.error());
    return nullptr;
  }
  // A station's file has a station; the centre's has none. (A reviewer's own
  // file has none either and cannot be told apart here: see the README.)
  if (!id->station_id.empty()) {
    fail(db_path + " is the file of station " + id->station_code +
         ", not a central file: give the centre's file with --db");
    return nullptr;
  }
  return store;
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
    std::cerr << "error: " << e.message() << std::endl;
  }
  return kExitFailed;
}

int Context::fail(const std::string& message) {
  if (as_json) {
    print_json({{"error", message}});
  } else {
    std::cerr << "error: " << message << std::endl;
  }
  return kExitFailed;
}

void Context::print_json(const json& j) {
  std::cout << j.dump(one_line_json ? -1 : 2, ' ', false, json::error_handler_t::replace) << std::endl;
}

}  // namespace tramsync::server

int main(int argc, char** argv) {
  using namespace tramsync::server;
  // A file-size limit (ulimit -f, systemd's LimitFSIZE) reached while writing
  // must be an error the store reports as a full disk, not a signal that
  // kills the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  Context ctx;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--json") ctx.as_json = true;  // so parse errors come out as JSON too
  }

  CLI::App app{"tramsync-server — the central node of TramSync: stations sync their records with it over HTTPS."};
  app.name("tramsync-server");
  app.fallthrough();  // global options are accepted after the command too
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tramsync-server ") + TRAMSYNC_VERSION + " (sync protocol " +
                                        std::to_string(tramsync::protocol::kVersion) + ")");
  app.add_option("--db", ctx.db_path, "The central file (default: central.db here)");
  app.add_flag("--json", ctx.as_json, "Print machine-readable JSON (errors too)");
  app.footer(
      "Examples:\n"
      "  tramsync-server --db central.db station add --code TYT-SINHO --name \"Trạm Y tế xã Sìn Hồ\" "
      "--district \"Sìn Hồ\" --province \"Lai Châu\"\n"
      "  tramsync-server --db central.db serve --listen 0.0.0.0:8443 --self-signed ./tls\n"
      "  tramsync-server --db central.db device list\n"
      "Run `tramsync-server COMMAND --help` for each command.");

  setup_serve(app, ctx);
  setup_station(app, ctx);
  setup_device(app, ctx);
  setup_item(app, ctx);
  setup_report(app, ctx);
  setup_conflicts(app, ctx);
  setup_quarantine(app, ctx);
  setup_duplicates(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
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
