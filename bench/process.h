// The real tramsync-server as a child process, for the benchmarks that measure
// it from outside: started on 127.0.0.1 with a port the system picks and a
// self-signed certificate, its peak memory read from /proc, stopped with SIGTERM.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"

extern char** environ;

namespace tramsync::bench {

// The program `name` of this build tree: the bench runs from BUILD/bench/, the
// programs sit in BUILD/server/ and BUILD/station-cli/.
inline std::string sibling_program(const std::string& dir, const std::string& name) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (self.parent_path().parent_path() / dir / name).string();
}

class ServerProcess {
 public:
  // `serve --db DB --listen 127.0.0.1:0 --self-signed CERT_DIR --json EXTRA...`,
  // its request log (stderr) to `log_path`. Throws with what it printed when it
  // does not say it listens within 30 s.
  ServerProcess(const std::string& program, const std::string& db, const std::string& cert_dir,
                const std::string& log_path, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{program, "serve", "--db", db, "--listen", "127.0.0.1:0", "--self-signed", cert_dir,
                                  "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rc = posix_spawn(&pid_, program.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      throw std::runtime_error("cannot start " + program);
    }
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (text.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{out[0], POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    auto j = nlohmann::json::parse(text.substr(0, text.find('\n')), nullptr, false);
    if (!j.is_object() || !j.contains("port")) {
      stop();
      throw std::runtime_error("the server did not start: " + text + " (log: " + log_path + ")");
    }
    port_ = j["port"].get<int>();
    fingerprint_ = j.value("fingerprint", "");
  }
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& fingerprint() const { return fingerprint_; }
  pid_t pid() const { return pid_; }
  double peak_mib() const { return proc_status_mib(pid_, "VmHWM"); }

  // SIGTERM and wait (SIGKILL after 20 s). The exit status, or -1.
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 2000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      usleep(10'000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string fingerprint_;
};

}  // namespace tramsync::bench
