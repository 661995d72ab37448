// The compiled libcpp-httplib was built with these; its classes' layout and
// the SSL classes themselves depend on them, so they must be on here even if
// the build gives this file no pkg-config flags for cpp-httplib.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include "tramsync/sync/tls.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "support/temp_dir.h"

using namespace tramsync;
namespace fs = std::filesystem;

namespace {

// A fresh temporary directory per test (tests/support/temp_dir.h).
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("tramsync-tls") {}
};

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Runs a shell command and returns what it printed on stdout.
std::string run(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
  return out;
}

// The certificate as the openssl command-line tool describes it.
std::string openssl_x509(const std::string& cert_path, const std::string& args) {
  return run("openssl x509 -in '" + cert_path + "' -noout " + args + " 2>&1");
}

std::string fingerprint_by_openssl_cli(const std::string& cert_path) {
  std::string out = openssl_x509(cert_path, "-fingerprint -sha256");  // "sha256 Fingerprint=AB:CD:...\n"
  auto eq = out.find('=');
  REQUIRE(eq != std::string::npos);
  out = out.substr(eq + 1);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
std::unique_ptr<X509, X509Free> read_cert(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "r"), std::fclose);
  REQUIRE(f != nullptr);
  std::unique_ptr<X509, X509Free> cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert != nullptr);
  return cert;
}

struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};

// An HTTPS server on 127.0.0.1, an ephemeral port, answering GET /ping with
// "ok", running on its own thread until the object is destroyed.
class TestServer {
 public:
  // `prepare` runs on the server's SSL_CTX before it accepts connections.
  template <typename Prepare>
  TestServer(const tls::CertificateFiles& files, Prepare prepare)
      : server_(files.cert_path.c_str(), files.key_path.c_str()) {
    REQUIRE(server_.is_valid());
    prepare(server_.ssl_context());
    server_.Get("/ping", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() only works once listening has begun, so wait for that (bounded).
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(server_.is_running());
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  ~TestServer() {
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::SSLServer server_;
  int port_ = -1;
  std::thread thread_;
};

void harden(SSL_CTX* ctx) { REQUIRE(tls::harden_server_context(ctx)); }

// A client that does not check the certificate at all: only the protocol
// settings under test decide whether it connects.
void configure_client(httplib::SSLClient& client) {
  client.enable_server_certificate_verification(false);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(5));
}

}  // namespace

// ---------------------------------------------------------------------------
// Certificate files

TEST_CASE("ensure_self_signed makes an owner-only key and certificate in a new 0700 directory", "[sync][tls]") {
  TempDir tmp;
  const std::string dir = tmp / "server-tls";
  auto made = tls::ensure_self_signed(dir);
  REQUIRE(made);
  CHECK(made->created);
  CHECK(made->cert_path == dir + "/cert.pem");
  CHECK(made->key_path == dir + "/key.pem");
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(made->cert_path) == 0600);
  CHECK(mode_of(made->key_path) == 0600);
  CHECK(made->fingerprint.size() == 95);
  CHECK(made->fingerprint == tls::normalize_fingerprint(made->fingerprint));
}

TEST_CASE("files are owner-only even under a permissive umask", "[sync][tls]") {
  TempDir tmp;
  const mode_t old = ::umask(0);
  auto made = tls::ensure_self_signed(tmp / "tls");
  ::umask(old);
  REQUIRE(made);
  CHECK(mode_of(tmp / "tls") == 0700);
  CHECK(mode_of(made->key_path) == 0600);
  CHECK(mode_of(made->cert_path) == 0600);
}

TEST_CASE("a second call reuses the pair and reports the same fingerprint", "[sync][tls]") {
  TempDir tmp;
  auto first = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(first);
  REQUIRE(first->created);
  auto second = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(second);
  CHECK_FALSE(second->created);
  CHECK(second->fingerprint == first->fingerprint);
  CHECK(second->cert_path == first->cert_path);

  auto other = tls::ensure_self_signed(tmp / "elsewhere");
  REQUIRE(other);
  CHECK(other->fingerprint != first->fingerprint);  // a new key and serial every time
}

TEST_CASE("the fingerprint is what the openssl tool prints", "[sync][tls]") {
  TempDir tmp;
  auto made = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(made);
  const std::string by_cli = fingerprint_by_openssl_cli(made->cert_path);
  CHECK(made->fingerprint == by_cli);
  auto read_back = tls::certificate_fingerprint(made->cert_path);
  REQUIRE(read_back);
  CHECK(*read_back == by_cli);
}

TEST_CASE("the certificate is a v3 EC P-256 server certificate for loopback, valid 10 years", "[sync][tls]") {
  TempDir tmp;
  auto made = tls::ensure_self_signed(tmp / "tls", "station-7");
  REQUIRE(made);

  const std::string text = openssl_x509(made->cert_path, "-text");
  INFO(text);
  CHECK(text.find("Version: 3 (0x2)") != std::string::npos);
  CHECK(text.find("Subject: CN = station-7") != std::string::npos);
  CHECK(text.find("Issuer: CN = station-7") != std::string::npos);
  CHECK(text.find("Public-Key: (256 bit)") != std::string::npos);
  CHECK(text.find("NIST CURVE: P-256") != std::string::npos);
  CHECK(text.find("ecdsa-with-SHA256") != std::string::npos);
  CHECK(text.find("CA:FALSE") != std::string::npos);
  CHECK(text.find("TLS Web Server Authentication") != std::string::npos);
  CHECK(text.find("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1") != std::string::npos);

  auto cert = read_cert(made->cert_path);
  int days = 0;
  int seconds = 0;
  REQUIRE(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) == 1);
  CHECK(days >= 3650);
  CHECK(days <= 3654);
  CHECK(X509_cmp_current_time(X509_get0_notBefore(cert.get())) < 0);  // already valid
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  CHECK(serial->length >= 16);  // random, not 0 or 1
  CHECK((serial->type & V_ASN1_NEG) == 0);
}

TEST_CASE("a common name that cannot go in a certificate is refused", "[sync][tls]") {
  TempDir tmp;
  auto empty = tls::ensure_self_signed(tmp / "a", "");
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code == ErrorCode::kInvalid);
  CHECK(empty.error().field == "common_name");
  auto too_long = tls::ensure_self_signed(tmp / "b", std::string(65, 'x'));
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().field == "common_name");
  CHECK_FALSE(fs::exists(tmp / "b"));
}

TEST_CASE("a certificate without its key is not silently replaced", "[sync][tls]") {
  TempDir tmp;
  auto made = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(made);
  fs::remove(made->key_path);
  auto again = tls::ensure_self_signed(tmp / "tls");
  REQUIRE_FALSE(again);
  CHECK(again.error().code == ErrorCode::kConflict);
  CHECK(again.error().value == made->cert_path);
  CHECK(again.error().message().find("key.pem") != std::string::npos);
  CHECK(fingerprint_by_openssl_cli(made->cert_path) == made->fingerprint);  // untouched
}

TEST_CASE("a key that does not belong to the certificate is reported", "[sync][tls]") {
  TempDir tmp;
  auto a = tls::ensure_self_signed(tmp / "a");
  auto b = tls::ensure_self_signed(tmp / "b");
  REQUIRE(a);
  REQUIRE(b);
  fs::copy_file(b->key_path, a->key_path, fs::copy_options::overwrite_existing);
  auto mixed = tls::ensure_self_signed(tmp / "a");
  REQUIRE_FALSE(mixed);
  CHECK(mixed.error().code == ErrorCode::kInvalid);
  CHECK(mixed.error().value == a->key_path);
}

TEST_CASE("a file that is not a PEM certificate is reported, not crashed on", "[sync][tls]") {
  TempDir tmp;
  auto missing = tls::certificate_fingerprint(tmp / "nope.pem");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kIo);
  CHECK(missing.error().value == tmp / "nope.pem");

  std::ofstream(tmp / "junk.pem") << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
  auto junk = tls::certificate_fingerprint(tmp / "junk.pem");
  REQUIRE_FALSE(junk);
  CHECK(junk.error().code == ErrorCode::kInvalid);
}

TEST_CASE("normalize_fingerprint accepts colons or none, any case, and nothing else", "[sync][tls]") {
  const std::string canonical =
      "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";
  CHECK(tls::normalize_fingerprint(canonical) == canonical);
  CHECK(tls::normalize_fingerprint("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == canonical);
  CHECK(tls::normalize_fingerprint("ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:7a:9c:b4:10:ff:"
                                   "61:f2:00:15:ad") == canonical);
  CHECK(tls::normalize_fingerprint("  BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\n") ==
        canonical);

  CHECK(tls::normalize_fingerprint("").empty());
  CHECK(tls::normalize_fingerprint(canonical.substr(0, canonical.size() - 3)).empty());  // 31 bytes
  CHECK(tls::normalize_fingerprint(canonical + ":00").empty());                          // 33 bytes
  CHECK(tls::normalize_fingerprint(canonical.substr(0, canonical.size() - 1)).empty());  // odd digit count
  std::string not_hex = canonical;
  not_hex[0] = 'G';
  CHECK(tls::normalize_fingerprint(not_hex).empty());
}

// ---------------------------------------------------------------------------
// Context settings

TEST_CASE("a hardened server context refuses old protocols, compression and renegotiation", "[sync][tls]") {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  REQUIRE(ctx);
  SSL_CTX_clear_options(ctx.get(), SSL_OP_NO_COMPRESSION);
  REQUIRE(tls::harden_server_context(ctx.get()));
  CHECK(SSL_CTX_get_min_proto_version(ctx.get()) == TLS1_2_VERSION);
  const uint64_t options = SSL_CTX_get_options(ctx.get());
  CHECK((options & SSL_OP_NO_COMPRESSION) != 0);
  CHECK((options & SSL_OP_NO_RENEGOTIATION) != 0);
  CHECK((options & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);

  auto null_ctx = tls::harden_server_context(nullptr);
  REQUIRE_FALSE(null_ctx);
  CHECK(null_ctx.error().code == ErrorCode::kInvalid);
}

TEST_CASE("a pin verifier sets peer verification and TLS 1.2 on the client context", "[sync][tls]") {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx);
  const std::string pin(64, 'a');
  tls::PinnedVerifier verifier(pin);
  CHECK(verifier.expected() == tls::normalize_fingerprint(pin));
  CHECK(verifier.seen().empty());
  CHECK_FALSE(verifier.rejected());
  REQUIRE(verifier.install(ctx.get()));
  CHECK(SSL_CTX_get_verify_mode(ctx.get()) == SSL_VERIFY_PEER);
  CHECK(SSL_CTX_get_min_proto_version(ctx.get()) == TLS1_2_VERSION);
}

TEST_CASE("a pin that is not a SHA-256 fingerprint is refused at install", "[sync][tls]") {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx);
  tls::PinnedVerifier verifier("AB:CD");
  CHECK(verifier.expected().empty());
  auto st = verifier.install(ctx.get());
  REQUIRE_FALSE(st);
  CHECK(st.error().code == ErrorCode::kInvalid);
  CHECK(st.error().field == "fingerprint");
  CHECK(st.error().value == "AB:CD");
  CHECK(SSL_CTX_get_verify_mode(ctx.get()) == SSL_VERIFY_NONE);  // nothing half-installed

  tls::PinnedVerifier good(std::string(64, 'a'));
  CHECK_FALSE(good.install(nullptr));
}

// ---------------------------------------------------------------------------
// Round trips on loopback

TEST_CASE("a client pinned to the server's certificate gets through", "[sync][tls]") {
  TempDir tmp;
  auto files = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(files);
  TestServer server(*files, harden);

  tls::PinnedVerifier pin(files->fingerprint);  // outlives the client
  httplib::SSLClient client("127.0.0.1", server.port());
  configure_client(client);
  REQUIRE(pin.install(client.ssl_context()));

  auto res = client.Get("/ping");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "ok");
  CHECK(pin.seen() == files->fingerprint);
  CHECK_FALSE(pin.rejected());
}

TEST_CASE("a pin in another spelling is the same pin", "[sync][tls]") {
  TempDir tmp;
  auto files = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(files);
  TestServer server(*files, harden);

  std::string sloppy;
  for (char c : files->fingerprint) {
    if (c != ':') sloppy += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  tls::PinnedVerifier pin(sloppy);
  httplib::SSLClient client("127.0.0.1", server.port());
  configure_client(client);
  REQUIRE(pin.install(client.ssl_context()));
  auto res = client.Get("/ping");
  REQUIRE(res);
  CHECK(res->body == "ok");
}

TEST_CASE("a server whose certificate does not match the pin is refused and named", "[sync][tls]") {
  TempDir tmp;
  auto files = tls::ensure_self_signed(tmp / "tls");
  auto other = tls::ensure_self_signed(tmp / "other");
  REQUIRE(files);
  REQUIRE(other);
  TestServer server(*files, harden);

  tls::PinnedVerifier pin(other->fingerprint);
  httplib::SSLClient client("127.0.0.1", server.port());
  configure_client(client);
  REQUIRE(pin.install(client.ssl_context()));

  auto res = client.Get("/ping");
  REQUIRE_FALSE(res);
  CHECK(res.error() == httplib::Error::SSLConnection);  // the handshake itself was aborted
  CHECK(pin.rejected());
  CHECK(pin.seen() == files->fingerprint);
  CHECK(pin.expected() == other->fingerprint);
  const Error e = pin.mismatch_error();
  CHECK(e.code == ErrorCode::kRefused);
  CHECK(e.message() == "connect: server certificate mismatch: expected " + other->fingerprint + ", got \"" +
                           files->fingerprint + "\"");

  SECTION("a later matching handshake with the same verifier clears the rejection") {
    TestServer pinned_server(*other, harden);  // the server the pin names
    httplib::SSLClient client2("127.0.0.1", pinned_server.port());
    configure_client(client2);
    REQUIRE(pin.install(client2.ssl_context()));
    REQUIRE(client2.Get("/ping"));
    CHECK_FALSE(pin.rejected());
    CHECK(pin.seen() == other->fingerprint);
  }
}

TEST_CASE("pinning fails closed even if httplib's own verification is left on", "[sync][tls]") {
  TempDir tmp;
  auto files = tls::ensure_self_signed(tmp / "tls");
  auto other = tls::ensure_self_signed(tmp / "other");
  REQUIRE(files);
  REQUIRE(other);
  TestServer server(*files, harden);

  tls::PinnedVerifier pin(other->fingerprint);
  httplib::SSLClient client("127.0.0.1", server.port());
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(5));
  // enable_server_certificate_verification(false) forgotten on purpose.
  REQUIRE(pin.install(client.ssl_context()));

  auto res = client.Get("/ping");
  REQUIRE_FALSE(res);
  CHECK(res.error() == httplib::Error::SSLServerVerification);
  CHECK(client.get_openssl_verify_result() == X509_V_ERR_CERT_REJECTED);
  CHECK(pin.rejected());
  CHECK(pin.seen() == files->fingerprint);
}

TEST_CASE("a hardened server refuses a client that cannot speak TLS 1.2", "[sync][tls]") {
  TempDir tmp;
  auto files = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(files);

  // Both ends are made as permissive as OpenSSL allows (security level 0,
  // every protocol), so that only harden_server_context() stands between a
  // TLS 1.1 client and the server.
  auto permissive = [](SSL_CTX* ctx) {
    SSL_CTX_set_security_level(ctx, 0);
    REQUIRE(SSL_CTX_set_min_proto_version(ctx, 0) == 1);
    REQUIRE(SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0") == 1);
  };
  auto tls11_client_get = [&](int port) {
    httplib::SSLClient client("127.0.0.1", port);
    configure_client(client);
    permissive(client.ssl_context());
    REQUIRE(SSL_CTX_set_max_proto_version(client.ssl_context(), TLS1_1_VERSION) == 1);
    return client.Get("/ping");
  };

  SECTION("control: without hardening the TLS 1.1 client connects") {
    TestServer server(*files, permissive);
    auto res = tls11_client_get(server.port());
    REQUIRE(res);
    CHECK(res->body == "ok");
  }
  SECTION("with hardening it does not") {
    TestServer server(*files, [&](SSL_CTX* ctx) {
      permissive(ctx);
      harden(ctx);
    });
    auto res = tls11_client_get(server.port());
    REQUIRE_FALSE(res);
    CHECK(res.error() == httplib::Error::SSLConnection);
  }
}

TEST_CASE("a hardened server speaks TLS 1.2 only with forward-secret AEAD suites", "[sync][tls]") {
  TempDir tmp;
  auto files = tls::ensure_self_signed(tmp / "tls");
  REQUIRE(files);

  // A TLS 1.2 client offering a single suite.
  auto tls12_client_get = [&](int port, const char* cipher) {
    httplib::SSLClient client("127.0.0.1", port);
    configure_client(client);
    REQUIRE(SSL_CTX_set_max_proto_version(client.ssl_context(), TLS1_2_VERSION) == 1);
    REQUIRE(SSL_CTX_set_cipher_list(client.ssl_context(), cipher) == 1);
    return client.Get("/ping");
  };

  TestServer server(*files, harden);
  SECTION("ECDHE with AES-GCM or ChaCha20-Poly1305 is accepted") {
    CHECK(tls12_client_get(server.port(), "ECDHE-ECDSA-AES128-GCM-SHA256"));
    CHECK(tls12_client_get(server.port(), "ECDHE-ECDSA-AES256-GCM-SHA384"));
    CHECK(tls12_client_get(server.port(), "ECDHE-ECDSA-CHACHA20-POLY1305"));
  }
  SECTION("a CBC suite is refused") {
    auto res = tls12_client_get(server.port(), "ECDHE-ECDSA-AES128-SHA256");
    REQUIRE_FALSE(res);
    CHECK(res.error() == httplib::Error::SSLConnection);
  }
  SECTION("control: an unhardened server accepts that CBC suite") {
    TestServer plain(*files, [](SSL_CTX*) {});
    CHECK(tls12_client_get(plain.port(), "ECDHE-ECDSA-AES128-SHA256"));
  }
}
