// TLS for the sync link: the server's development certificate, the settings
// every TLS context gets, and certificate pinning for clients.
//
// The server speaks HTTPS only, TLS 1.2 or newer (see DESIGN.md, "Who may see
// and write what"). For development and for stations without a CA, the server
// makes itself a self-signed certificate (ensure_self_signed) and prints its
// fingerprint; a client then pins that fingerprint (PinnedVerifier) instead of
// trusting a CA.
//
// This header names OpenSSL types only by forward declaration; the functions
// take the SSL_CTX* that httplib::SSLServer::ssl_context() and
// httplib::SSLClient::ssl_context() return.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "tramsync/core/status.h"

// Declared exactly as OpenSSL declares them, so either header may come first.
struct ssl_ctx_st;
typedef struct ssl_ctx_st SSL_CTX;  // NOLINT(modernize-use-using)
struct x509_store_ctx_st;

namespace tramsync::tls {

// The files ensure_self_signed() found or made.
struct CertificateFiles {
  std::string cert_path;    // <dir>/cert.pem, PEM X.509 certificate
  std::string key_path;     // <dir>/key.pem, PEM PKCS#8 private key
  std::string fingerprint;  // of cert_path, canonical form (certificate_fingerprint)
  bool created = false;     // true: made now; false: an existing pair reused
};

// Makes sure <dir> holds a certificate and its private key for the server.
//
// If <dir>/cert.pem and <dir>/key.pem both exist they are reused, after
// checking that they parse and that the key belongs to the certificate
// (created == false). If neither exists, <dir> is created if missing (mode
// 0700; an existing directory keeps its mode) and a new pair is written:
//   - an EC P-256 key;
//   - a self-signed X.509 v3 certificate, subject and issuer CN=<common_name>,
//     a random positive 159-bit serial, valid from one hour ago (tolerating
//     skewed device clocks) for 10 years, SHA-256 signature, with
//     basicConstraints critical CA:FALSE, keyUsage critical digitalSignature,
//     extendedKeyUsage serverAuth, a subjectKeyIdentifier, and
//     subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1.
// Both files are created with O_EXCL and mode 0600 (owner only, whatever the
// umask), fsync'd, key first; if writing the certificate fails the new key is
// removed again (created == true).
//
// Errors (values): common_name empty or longer than 64 bytes (kInvalid); only
// one of the two files present (kConflict: remove it, or supply both); a file
// that is not PEM or a key that does not match the certificate (kInvalid);
// anything the file system refuses (kIo, with the OS reason).
// Two processes racing on one directory cannot produce a mixed pair (O_EXCL),
// but the loser may get an error (EEXIST, or a pair it found half-written).
Result<CertificateFiles> ensure_self_signed(const std::string& dir, const std::string& common_name = "tramsync");

// The SHA-256 fingerprint of the certificate in the PEM file cert_path, over
// its DER encoding: 32 bytes as upper-case hex pairs joined by ':'
// ("AB:CD:...", 95 characters) -- what `openssl x509 -noout -fingerprint
// -sha256` prints after "Fingerprint=".
Result<std::string> certificate_fingerprint(const std::string& cert_path);

// The canonical form of a fingerprint as typed or pasted: colons and ASCII
// white space dropped, any case accepted, then re-emitted as certificate_fingerprint()
// does. Returns "" unless what remains is exactly 64 hex digits.
std::string normalize_fingerprint(std::string_view typed);

// Settings for the server's context, applied before it accepts connections
// (httplib::SSLServer::ssl_context(), or inside the SSLServer setup callback):
//   - minimum protocol TLS 1.2;
//   - no TLS compression (CRIME), no renegotiation at all, no session
//     resumption on renegotiation;
//   - the server's cipher order wins, and TLS 1.2 is limited to forward-secret
//     AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305). TLS 1.3 suites are
//     left at OpenSSL's defaults, which are all AEAD and forward secret.
// Returns kInvalid for a null ctx, kIo if OpenSSL refuses a setting.
Status harden_server_context(SSL_CTX* ctx);

// The client half: minimum protocol TLS 1.2, no compression, no
// renegotiation. PinnedVerifier::install() applies it; a client that verifies
// against a CA file instead should call it on its context itself.
Status harden_client_context(SSL_CTX* ctx);

// Certificate pinning for a client: the server is accepted iff the SHA-256
// fingerprint of the leaf certificate it presents equals the pin. The chain,
// the host name and the validity dates are deliberately not checked -- the pin
// identifies the exact certificate, which is what a self-signed station server
// has. The fingerprint actually presented is recorded, so a caller can say
// "certificate mismatch: expected X, got Y" (mismatch_error()).
//
// Use with httplib 0.11.4:
//
//   tls::PinnedVerifier pin(fingerprint_from_config);   // declared BEFORE the client
//   httplib::SSLClient client(host, port);
//   client.enable_server_certificate_verification(false);
//   if (auto st = pin.install(client.ssl_context()); !st) return st.error();
//   auto res = client.Get("/...");
//   if (!res && pin.rejected()) return pin.mismatch_error();
//
// Why verification is turned off in httplib: with it on (the default),
// SSLClient calls SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr) on every
// connection, which overrides the SSL_VERIFY_PEER that install() sets on the
// context, so a wrong certificate no longer aborts the handshake; httplib
// then checks SSL_get_verify_result() itself and, on success, also checks the
// host name against the certificate, which a station reached by LAN address
// would fail. With it off, httplib leaves the context's verify mode alone and
// this verifier decides alone. (If a caller forgets, pinning still fails
// closed: a mismatch leaves X509_V_ERR_CERT_REJECTED as the verify result,
// which httplib turns into Error::SSLServerVerification.) With httplib's
// verification off, client.get_openssl_verify_result() stays 0 even when the
// pin rejects a server: ask rejected() instead.
//
// Never call set_follow_location(true) on a pinned client: httplib 0.11.4
// follows a redirect to another host or port with a fresh SSLClient that has
// its own SSL_CTX -- without this verifier, and with verification off -- so a
// redirect would reach a server whose certificate nobody checks.
//
// Lifetime: install() stores `this` in the SSL_CTX as the callback argument,
// so the verifier must outlive every handshake made with that context -- in
// practice, declare it before the SSLClient (or as an earlier member) so it is
// destroyed after. It can be neither copied nor moved for the same reason.
// Installing a second verifier on the same context replaces the first.
//
// Thread-safety: handshakes on several threads may share one verifier; the
// recorded state is guarded by a mutex. rejected()/seen() describe the most
// recent handshake to finish verification.
class PinnedVerifier {
 public:
  // `pin` in any form normalize_fingerprint() accepts. An unusable pin is
  // reported by install(), not here.
  explicit PinnedVerifier(std::string_view pin);
  PinnedVerifier(const PinnedVerifier&) = delete;
  PinnedVerifier& operator=(const PinnedVerifier&) = delete;

  // Sets harden_client_context(), SSL_VERIFY_PEER and this verifier's
  // callback on ctx. kInvalid if the pin is not a SHA-256 fingerprint (field
  // "fingerprint") or ctx is null.
  Status install(SSL_CTX* ctx);

  // The pin in canonical form ("" if the pin given was unusable).
  const std::string& expected() const { return expected_; }
  // The fingerprint of the last leaf certificate a server presented, canonical
  // form; "" before any handshake.
  std::string seen() const;
  // True iff the last certificate presented did not match the pin.
  bool rejected() const;
  // kRefused, context "connect", field "server certificate":
  // "connect: server certificate mismatch: expected <pin>, got "<seen>"".
  Error mismatch_error() const;

 private:
  static int verify_callback(x509_store_ctx_st* store, void* self);

  std::string raw_pin_;
  std::string expected_;
  mutable std::mutex mu_;
  std::string seen_;       // GUARDED_BY(mu_)
  bool rejected_ = false;  // GUARDED_BY(mu_)
};

}  // namespace tramsync::tls
