// What every station-cli command shares: the global options, the store, output.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tramsync/core/status.h"
#include "tramsync/core/store.h"
#include "tramsync/sync/device_admin.h"

namespace tramsync::cli {

using json = nlohmann::json;

// Exit codes: 0 done, 1 the action was refused or failed, 2 the command line was wrong.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct Context {
  std::string db_path;  // --db, TRAMSYNC_DB, or station.db
  bool as_json = false;  // --json
  // The command chosen on the command line; set by its CLI11 callback.
  std::function<int(Context&)> run;

  // Opens the station file (creating it only when `create`), printing the error
  // and returning nullptr when it cannot.
  std::unique_ptr<Store> open(bool create = false);

  // Prints an error (one line on stderr, or {"error": ...} on stdout with --json)
  // and returns kExitFailed.
  int fail(const Error& e);
  int fail(const std::string& message);
  // Prints a JSON value (always pretty-printed, one document).
  void print_json(const json& j);
  // Prints what an admin helper of tramsync_sync produced (sync/device_admin.h):
  // its JSON with --json, else its text; an error as fail() does.
  int show(const Result<sync::Shown>& r);
};

// Option checks whose refusal is one short line naming the value, unlike
// CLI11's PositiveNumber/NonNegativeNumber (which print the range of a double).
inline CLI::Validator at_least(long long lo) {
  return CLI::Validator(
      [lo](std::string& v) -> std::string {
        try {
          size_t used = 0;
          long long n = std::stoll(v, &used);
          if (used == v.size() && n >= lo) return {};
        } catch (const std::exception&) {
        }
        return "must be a whole number of " + std::to_string(lo) + " or more, got " + v;
      },
      "N>=" + std::to_string(lo));
}

// Sets `ctx.run` when the subcommand is chosen.
inline void on_run(CLI::App* cmd, Context& ctx, std::function<int(Context&)> f) {
  cmd->callback([&ctx, f = std::move(f)]() { ctx.run = f; });
}

// Each noun registers its commands.
void setup_init(CLI::App& app, Context& ctx);
void setup_status(CLI::App& app, Context& ctx);
void setup_staff(CLI::App& app, Context& ctx);
void setup_household(CLI::App& app, Context& ctx);
void setup_patient(CLI::App& app, Context& ctx);
void setup_visit(CLI::App& app, Context& ctx);
void setup_item(CLI::App& app, Context& ctx);
void setup_stock(CLI::App& app, Context& ctx);
void setup_waste(CLI::App& app, Context& ctx);
void setup_report(CLI::App& app, Context& ctx);
void setup_changes(CLI::App& app, Context& ctx);
void setup_conflicts(CLI::App& app, Context& ctx);  // read-only: the centre resolves
void setup_sync(CLI::App& app, Context& ctx);  // enroll, sync
void setup_hub(CLI::App& app, Context& ctx);   // serve, device, server

}  // namespace tramsync::cli
