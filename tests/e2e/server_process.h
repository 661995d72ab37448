// Runs the real tramsync-server for the end-to-end tests, and talks HTTPS to it.
//
// ServerProcess::start() spawns `tramsync-server serve --db DB --listen
// 127.0.0.1:0 --self-signed CERT_DIR --json EXTRA...` through posix_spawn (no
// shell), its stdout on a pipe and its stderr (the JSON request log) in a file.
// It waits (poll, at most 20 s, no sleeping) for the one line the server prints
// once it listens, {"listening":...,"port":...,"fingerprint":...}, and fills
// port, url and fingerprint from it; the port is the free one the system
// chose, so tests never collide on a fixed port. A server that exits or stays
// silent instead makes start() throw, with what it printed.
//
// stop() sends SIGTERM and waits for the exit (a pidfd, polled; at most 10 s,
// then SIGKILL and -1); kill9() is a power cut. The destructor stops a server
// still running. One ServerProcess per server; not thread-safe.
//
// The https_* helpers make one request each with a fresh httplib::SSLClient
// whose certificate verification is off: these tests are about the server,
// the client's pinning is tested with the client.
#pragma once

#ifndef TRAMSYNC_SERVER_PATH
#error "TRAMSYNC_SERVER_PATH must be defined by the build (tests/CMakeLists.txt)"
#endif

#include <httplib.h>
#include <signal.h>
#include <sys/syscall.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include "cli_runner.h"

namespace tramsync::e2e {

inline constexpr const char* kTramsyncServer = TRAMSYNC_SERVER_PATH;

// httplib writes to sockets without MSG_NOSIGNAL on TLS connections: a server
// that closes a connection while a test still sends (a refused handshake, an
// oversized body) would otherwise end the whole test run with SIGPIPE.
inline void ignore_sigpipe() {
  static const bool done = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

class ServerProcess {
 public:
  // The server on `db` with a self-signed certificate in `cert_dir` (made on
  // first use). An empty cert_dir leaves --self-signed out, for extra_args
  // such as {"--insecure-http"}. The log goes to `log_path`, by default a new
  // file next to cert_dir (in the same parent directory).
  // `env` adds or overrides variables of the server's environment (FAKETIME ...).
  // `port` 0 picks a free one; a server restarted after a kill takes its old
  // port again, so the devices enrolled with it find it there.
  static std::unique_ptr<ServerProcess> start(const std::string& db, const std::string& cert_dir,
                                              std::vector<std::string> extra_args = {}, std::string log_path = "",
                                              const std::vector<std::pair<std::string, std::string>>& env = {},
                                              int port = 0) {
    static std::atomic<int> counter{0};
    ignore_sigpipe();
    if (log_path.empty()) {
      std::filesystem::path base = cert_dir.empty() ? std::filesystem::path(db).parent_path()
                                                    : std::filesystem::path(cert_dir).parent_path();
      log_path = (base / ("tramsync-server-" + std::to_string(++counter) + ".log")).string();
    }
    std::vector<std::string> args{"serve", "--db", db, "--listen", "127.0.0.1:" + std::to_string(port), "--json"};
    if (!cert_dir.empty()) {
      args.emplace_back("--self-signed");
      args.push_back(cert_dir);
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto p = launch(args, log_path, kTramsyncServer, env);
    p->await_listening(std::chrono::seconds(20));
    return p;
  }

  // tramsync-server ARGS... exactly, stdout on a pipe (read_line()), stderr
  // appended to `log_path`. Does not wait for anything.
  static std::unique_ptr<ServerProcess> launch(const std::vector<std::string>& args, const std::string& log_path,
                                               const char* program = kTramsyncServer,
                                               const std::vector<std::pair<std::string, std::string>>& env = {}) {
    std::unique_ptr<ServerProcess> p(new ServerProcess(log_path));
    p->program_ = program;
    p->spawn(args, env);
    return p;
  }

  // A station hub: `station-cli --db DB serve` with a self-signed certificate
  // in `cert_dir` (the same directory gives the same certificate after a restart).
  // `port` 0 picks a free one; a restarted hub takes its old port again, so
  // its devices find it where they enrolled.
  static std::unique_ptr<ServerProcess> start_hub(const std::string& db, const std::string& cert_dir, int port = 0) {
    ignore_sigpipe();
    const std::string log = (std::filesystem::path(cert_dir).parent_path() / "station-hub.log").string();
    auto p = launch({"--db", db, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--self-signed", cert_dir,
                     "--json"},
                    log, kStationCli);
    p->await_listening(std::chrono::seconds(20));
    return p;
  }

  ~ServerProcess() {
    if (running()) {
      if (stop() < 0) kill9();
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (pidfd_ >= 0) close(pidfd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port = 0;
  std::string url;          // "https://127.0.0.1:PORT"
  std::string fingerprint;  // "AB:CD:..." ("" for --insecure-http)

  // The next line of stdout (without its end), or nullopt when stdout closed
  // or nothing came within `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto nl = out_.find('\n', consumed_);
      if (nl != std::string::npos) {
        std::string line = out_.substr(consumed_, nl - consumed_);
        consumed_ = nl + 1;
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || out_fd_ < 0) return std::nullopt;
      pollfd fd{out_fd_, POLLIN, 0};
      int n = poll(&fd, 1, static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) return std::nullopt;
      if (n <= 0) continue;
      char buf[4096];
      ssize_t got = read(out_fd_, buf, sizeof buf);
      if (got > 0) {
        out_.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        return std::nullopt;
      }
    }
  }

  // Waits for the listening line (JSON) and fills port, url and fingerprint;
  // throws, with what the server printed, if it exits or stays silent.
  void await_listening(std::chrono::milliseconds timeout) {
    auto line = read_line(timeout);
    if (!line) fail_start(running() && !wait_exit(std::chrono::milliseconds(0)) ? "printed nothing in time"
                                                                                 : "exited before listening");
    json j = json::parse(*line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("listening")) fail_start("did not print the listening line");
    port = j.at("port").get<int>();
    url = j.at("listening").get<std::string>();
    fingerprint = j.value("fingerprint", "");
  }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exited_; }

  // SIGTERM, then the exit status (or 128 + signal). -1 when the server was
  // still running after 10 s: it is then killed.
  int stop() {
    if (!running()) return exit_code_;
    ::kill(pid_, SIGTERM);
    if (wait_exit(std::chrono::seconds(10))) return exit_code_;
    kill9();
    return -1;
  }

  // SIGKILL: the process dies wherever it is, like a power cut for its files.
  void kill9() {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(30));
  }

  // What the server wrote to stderr so far (its JSON log).
  std::string log() const {
    std::ifstream f(log_path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::vector<std::string> log_lines() const {
    std::vector<std::string> lines;
    std::istringstream s(log());
    std::string line;
    while (std::getline(s, line)) {
      if (!line.empty()) lines.push_back(line);
    }
    return lines;
  }
  const std::string& log_path() const { return log_path_; }
  // stdout so far (the listening line; anything after it is read by stop()).
  const std::string& out() const { return out_; }

 private:
  explicit ServerProcess(std::string log_path) : log_path_(std::move(log_path)) {}

  void spawn(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env) {
    int out_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program_));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> vars;
    for (char** e = environ; *e; ++e) {
      std::string v = *e;
      bool overridden = false;
      for (const auto& [k, val] : env) overridden = overridden || v.rfind(k + "=", 0) == 0;
      if (!overridden) vars.push_back(v);
    }
    for (const auto& [k, val] : env) vars.push_back(k + "=" + val);
    std::vector<char*> envp;
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    int rc = posix_spawn(&pid_, program_, &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(out_pipe[1]);
    if (rc != 0) {
      close(out_pipe[0]);
      pid_ = 0;
      throw std::runtime_error(std::string("cannot start ") + program_ + ": " + std::strerror(rc));
    }
    out_fd_ = out_pipe[0];
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));  // -1 on old kernels: then waitpid polling
  }

  [[noreturn]] void fail_start(const std::string& what) {
    if (running()) kill9();
    throw std::runtime_error(std::string(program_) + " " + what + "\nexit code: " + std::to_string(exit_code_) +
                             "\nstdout: " + out_ + "\nlog: " + log());
  }

  // Waits for the child to exit, up to `timeout`; true if it did.
  bool wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
        drain_stdout();
        return true;
      }
      if (r < 0 && errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (pidfd_ >= 0) {
        pollfd fd{pidfd_, POLLIN, 0};
        poll(&fd, 1, static_cast<int>(left.count()));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

  void drain_stdout() {
    if (out_fd_ < 0) return;
    char buf[4096];
    ssize_t got;
    while ((got = read(out_fd_, buf, sizeof buf)) > 0) out_.append(buf, static_cast<size_t>(got));
  }

  std::string log_path_;
  const char* program_ = kTramsyncServer;
  pid_t pid_ = 0;
  int out_fd_ = -1;
  int pidfd_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  std::string out_;
  size_t consumed_ = 0;  // of out_, by read_line()
};

// --- HTTPS to a server under test ------------------------------------------------------

// A client for 127.0.0.1:port that accepts any certificate, with short timeouts.
inline std::unique_ptr<httplib::SSLClient> tls_client(int port) {
  ignore_sigpipe();
  auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  c->enable_server_certificate_verification(false);
  c->set_connection_timeout(std::chrono::seconds(5));
  c->set_read_timeout(std::chrono::seconds(20));
  c->set_write_timeout(std::chrono::seconds(20));
  return c;
}

inline httplib::Result https_get(int port, const std::string& path, const httplib::Headers& headers = {}) {
  return tls_client(port)->Get(path.c_str(), headers);
}

inline httplib::Result https_post(int port, const std::string& path, const std::string& body,
                                  const httplib::Headers& headers = {},
                                  const std::string& content_type = "application/json") {
  return tls_client(port)->Post(path.c_str(), headers, body, content_type.c_str());
}

inline httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

}  // namespace tramsync::e2e
