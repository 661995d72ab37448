// What every tramsync-server command shares: the global options, the central
// file, output. The same shape as station-cli's (station-cli/cli.h): each noun
// has a setup_<noun>() that registers its subcommands, and the chosen one sets
// Context::run.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>

#include "tramsync/core/status.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/device_admin.h"

namespace tramsync::server {

using json = nlohmann::json;

// Exit codes: 0 done, 1 the action was refused or failed, 2 the command line was wrong.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// The name a central file gets when a command has to initialise it and was
// not told another (serve --name).
inline constexpr const char* kDefaultCentralName = "centre";

struct Context {
  std::string db_path = "central.db";  // --db
  bool as_json = false;                // --json
  // JSON printed on one line instead of indented: `serve` prints one line per
  // document so a supervisor (or a test) can read its stdout line by line.
  bool one_line_json = false;
  // The command chosen on the command line; set by its CLI11 callback.
  std::function<int(Context&)> run;

  // Opens the central file. With `create`, a missing file is made, and a file
  // not yet initialised becomes a central node's (named `central_name`);
  // without it, a missing file is an error. A station's or device's file is
  // refused. Prints the error and returns nullptr when it cannot.
  std::unique_ptr<Store> open(bool create, const std::string& central_name = kDefaultCentralName);

  // Prints an error (one line "error: ..." on stderr, or {"error": ...} on
  // stdout with --json) and returns kExitFailed.
  int fail(const Error& e);
  int fail(const std::string& message);
  // Prints one JSON document on stdout (indented unless one_line_json) and flushes.
  void print_json(const json& j);
  // Prints what an admin helper of tramsync_sync produced (sync/device_admin.h):
  // its JSON with --json, else its text; an error as fail() does.
  int show(const Result<sync::Shown>& r);
};

// Sets `ctx.run` when the subcommand is chosen.
inline void on_run(CLI::App* cmd, Context& ctx, std::function<int(Context&)> f) {
  cmd->callback([&ctx, f = std::move(f)]() { ctx.run = f; });
}

// Each noun registers its commands.
void setup_serve(CLI::App& app, Context& ctx);
void setup_station(CLI::App& app, Context& ctx);
void setup_report(CLI::App& app, Context& ctx);
void setup_device(CLI::App& app, Context& ctx);
void setup_item(CLI::App& app, Context& ctx);
// The reviewer's decisions (core/review.h): commands/review.cpp, commands/duplicates.cpp.
void setup_conflicts(CLI::App& app, Context& ctx);
void setup_quarantine(CLI::App& app, Context& ctx);
void setup_duplicates(CLI::App& app, Context& ctx);

}  // namespace tramsync::server
