// Runs the real station-cli binary for the end-to-end tests.
//
// A CliRunner starts station-cli (STATION_CLI_PATH, set by the build) with an
// argument vector through posix_spawn: no shell is involved, so Vietnamese text,
// quotes, semicolons and spaces reach the program exactly as written here. The
// child runs in the test's own temporary directory with stdin from /dev/null;
// its stdout and stderr are read to the end (both pipes polled together, so a
// chatty child cannot deadlock) and its exit status is returned. The child's
// environment is the test's own with the runner's overrides applied, so a test
// can set TRAMSYNC_DB or TZ for the child without touching its own environment.
//
// Not thread-safe; one runner per test. Nothing here sleeps.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/temp_dir.h"

extern char** environ;

namespace tramsync::e2e {

using json = nlohmann::json;

#ifndef STATION_CLI_PATH
#error "STATION_CLI_PATH must be defined by the build (tests/CMakeLists.txt)"
#endif
inline constexpr const char* kStationCli = STATION_CLI_PATH;

// A fresh temporary directory per test (tests/support/temp_dir.h).
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("tramsync-e2e") {}
};

// What one run of station-cli did.
struct CliResult {
  std::vector<std::string> args;  // as passed, without the program name
  int exit_code = -1;             // exit status, or 128 + signal number when killed by a signal
  std::string out, err;

  // The command line and its output, for INFO() when an assertion fails.
  std::string describe() const {
    std::ostringstream s;
    s << "station-cli";
    for (const auto& a : args) s << " [" << a << "]";
    s << "\nexit code: " << exit_code << "\nstdout: " << (out.size() > 4000 ? out.substr(0, 4000) + "..." : out)
      << "\nstderr: " << (err.size() > 4000 ? err.substr(0, 4000) + "..." : err);
    return s.str();
  }

  // stdout parsed as one JSON document; fails the test when it is not JSON.
  json parsed() const {
    json j = json::parse(out, nullptr, /*allow_exceptions=*/false);
    INFO(describe());
    REQUIRE_FALSE(j.is_discarded());
    return j;
  }

  // stderr split into lines (without the line ends).
  std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    std::string line;
    std::istringstream s(err);
    while (std::getline(s, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
    return lines;
  }

  // The lines of stderr that start with "error:".
  std::vector<std::string> error_lines() const {
    std::vector<std::string> lines;
    for (auto& l : err_lines()) {
      if (l.rfind("error:", 0) == 0) lines.push_back(l);
    }
    return lines;
  }
};

// Runs `program` with `args` in `cwd` with exactly the environment `env`
// ("KEY=value" strings), capturing stdout, stderr and the exit status.
inline CliResult spawn_and_capture(const std::string& program, const std::vector<std::string>& args,
                                   const std::vector<std::string>& env, const std::string& cwd) {
  CliResult result;
  result.args = args;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);  // dup2 clears O_CLOEXEC on 1 and 2
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
  }

  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

// station-cli bound to one station file and one working directory.
class CliRunner {
 public:
  CliRunner(std::string db_path, std::string work_dir) : db_(std::move(db_path)), cwd_(std::move(work_dir)) {
    // The test's own TRAMSYNC_DB (a developer's shell may set it) must not leak in.
    unset_env("TRAMSYNC_DB");
  }

  const std::string& db() const { return db_; }
  const std::string& cwd() const { return cwd_; }

  // Environment changes for the child only.
  void set_env(const std::string& key, const std::string& value) { env_[key] = value; }
  void unset_env(const std::string& key) { env_[key] = std::nullopt; }

  // station-cli --db DB ARGS...
  CliResult run(const std::vector<std::string>& args) const {
    std::vector<std::string> full{"--db", db_};
    full.insert(full.end(), args.begin(), args.end());
    return run_raw(full);
  }

  // station-cli --db DB ARGS... --json
  CliResult run_json(const std::vector<std::string>& args) const {
    std::vector<std::string> full = args;
    full.emplace_back("--json");
    return run(full);
  }

  // station-cli ARGS... exactly (no --db added).
  CliResult run_raw(const std::vector<std::string>& args) const {
    if (wrapper_.empty()) return spawn_and_capture(kStationCli, args, child_env(), cwd_);
    std::vector<std::string> full(wrapper_.begin() + 1, wrapper_.end());
    full.emplace_back(kStationCli);
    full.insert(full.end(), args.begin(), args.end());
    CliResult r = spawn_and_capture(wrapper_.front(), full, child_env(), cwd_);
    r.args = args;
    return r;
  }

  // Runs station-cli through a program that execs it, e.g. {"/usr/bin/prlimit",
  // "--fsize=100000"}; {} runs it directly again.
  void set_wrapper(std::vector<std::string> wrapper) { wrapper_ = std::move(wrapper); }

  // Runs `args` with --json, requires success and returns the parsed stdout.
  json ok(const std::vector<std::string>& args) const {
    CliResult r = run_json(args);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    return r.parsed();
  }

 private:
  std::vector<std::string> child_env() const {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : env_) {
      if (v) {
        env[k] = *v;
      } else {
        env.erase(k);
      }
    }
    std::vector<std::string> out;
    out.reserve(env.size());
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
  }

  std::string db_, cwd_;
  std::map<std::string, std::optional<std::string>> env_;
  std::vector<std::string> wrapper_;
};

}  // namespace tramsync::e2e
