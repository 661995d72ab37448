#include "tramsync/sync/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <utility>

namespace tramsync::tls {
namespace {

namespace fs = std::filesystem;

constexpr long kValidityDays = 3652;        // 10 years, leap days included
constexpr long kBackdateSeconds = 60 * 60;  // tolerate a device clock an hour behind
constexpr std::size_t kMaxCommonName = 64;  // ub_common_name (RFC 5280)
constexpr std::size_t kSerialBytes = 20;    // RFC 5280 maximum
constexpr const char* kTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";

// RAII for the OpenSSL handles used here.
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtFree>;

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports whether close succeeded (it can report a failed write-back).
  bool close() {
    int fd = std::exchange(fd_, -1);
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

Error io_error(std::string context, std::string what, const std::string& path, int err) {
  return Error{ErrorCode::kIo, std::move(context), "file", std::move(what) + " (" + std::strerror(err) + ")", path};
}

// An OpenSSL call that should not fail on valid input did: out of memory or a
// broken library. Reported as a value, since a caller (server start-up) can say so.
Error openssl_error(const std::string& step) { return Error{ErrorCode::kIo, "tls", "openssl", step + " failed", ""}; }

std::string colon_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(n * 3);
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ':';
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0x0f];
  }
  return out;
}

// The canonical fingerprint of a certificate; "" only if OpenSSL fails.
std::string fingerprint_of(const X509* cert) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md.data(), &len) != 1) return "";
  return colon_hex(md.data(), len);
}

Result<std::string> read_whole_file(const std::string& context, const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return io_error(context, "cannot be opened", path, errno);
  std::string data;
  std::array<char, 4096> buf{};
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(context, "cannot be read", path, errno);
    if (n == 0) break;
    data.append(buf.data(), static_cast<std::size_t>(n));
  }
  return data;
}

Result<X509Ptr> load_certificate(const std::string& context, const std::string& path) {
  auto pem = read_whole_file(context, path);
  if (!pem) return pem.error();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  if (!bio) return openssl_error("BIO_new_mem_buf");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Error{ErrorCode::kInvalid, context, "file", "must hold a PEM certificate", path};
  return cert;
}

Result<PkeyPtr> load_private_key(const std::string& context, const std::string& path) {
  auto pem = read_whole_file(context, path);
  if (!pem) return pem.error();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  if (!bio) return openssl_error("BIO_new_mem_buf");
  // A null password callback with a null password: an encrypted key fails to
  // load instead of prompting on the terminal.
  PkeyPtr key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (!key) return Error{ErrorCode::kInvalid, context, "file", "must hold an unencrypted PEM private key", path};
  return key;
}

// Writes a new file with mode 0600; fails if the path exists. On failure the
// partly written file is removed.
Status write_new_private_file(const std::string& context, const std::string& path, const std::string& data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return io_error(context, "cannot be created", path, errno);
  auto fail = [&](const char* what) {
    int err = errno;
    ::unlink(path.c_str());
    return io_error(context, what, path, err);
  };
  // The umask can only have narrowed 0600; make the mode exact either way.
  if (::fchmod(fd.get(), 0600) != 0) return fail("cannot be made owner-only");
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot be written");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("cannot be flushed to disk");
  if (!fd.close()) return fail("cannot be closed");
  return {};
}

// Makes the new directory entries durable (best effort: not every file system
// supports fsync on a directory).
void sync_directory(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

Status make_private_directory(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return Error{ErrorCode::kIo, "create certificate", "directory", "is not a directory", dir};
    }
    return {};
  }
  fs::path parent = fs::path(dir).parent_path();
  if (!parent.empty() && !fs::exists(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec) return io_error("create certificate", "cannot create the parent directory", dir, ec.value());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return io_error("create certificate", "cannot create the directory", dir, errno);
  }
  if (::chmod(dir.c_str(), 0700) != 0) return io_error("create certificate", "cannot be made owner-only", dir, errno);
  return {};
}

Status add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX v3{};
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, &v3, nid, value));
  if (!ext) return openssl_error(std::string("extension ") + OBJ_nid2sn(nid));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return openssl_error("X509_add_ext");
  return {};
}

Status set_random_serial(X509* cert) {
  std::array<unsigned char, kSerialBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return openssl_error("RAND_bytes");
  bytes[0] &= 0x7f;  // positive as a DER INTEGER
  bytes[0] |= 0x40;  // never zero, always 20 bytes long
  BnPtr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn) return openssl_error("BN_bin2bn");
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) return openssl_error("BN_to_ASN1_INTEGER");
  return {};
}

Result<X509Ptr> make_certificate(EVP_PKEY* key, const std::string& common_name) {
  X509Ptr cert(X509_new());
  if (!cert) return openssl_error("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return openssl_error("X509_set_version");
  if (auto st = set_random_serial(cert.get()); !st) return st.error();
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(kValidityDays), 0, nullptr) == nullptr) {
    return openssl_error("setting the validity period");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    return Error{ErrorCode::kInvalid, "create certificate", "common_name", "must be valid UTF-8", common_name};
  }
  if (X509_set_issuer_name(cert.get(), name) != 1) return openssl_error("X509_set_issuer_name");
  if (X509_set_pubkey(cert.get(), key) != 1) return openssl_error("X509_set_pubkey");

  const std::pair<int, const char*> extensions[] = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
  };
  for (const auto& [nid, value] : extensions) {
    if (auto st = add_extension(cert.get(), nid, value); !st) return st.error();
  }
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) return openssl_error("X509_sign");
  return cert;
}

Result<std::string> to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return openssl_error("PEM_write_bio_X509");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Result<std::string> to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return openssl_error("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Result<CertificateFiles> reuse_pair(CertificateFiles files) {
  const std::string context = "load certificate";
  auto cert = load_certificate(context, files.cert_path);
  if (!cert) return cert.error();
  auto key = load_private_key(context, files.key_path);
  if (!key) return key.error();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return Error{ErrorCode::kInvalid, context, "file", "must hold the private key of " + files.cert_path,
                 files.key_path};
  }
  files.fingerprint = fingerprint_of(cert->get());
  if (files.fingerprint.empty()) return openssl_error("X509_digest");
  files.created = false;
  return files;
}

Result<CertificateFiles> create_pair(const std::string& dir, const std::string& common_name, CertificateFiles files) {
  const std::string context = "create certificate";
  if (auto st = make_private_directory(dir); !st) return st.error();

  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return openssl_error("EC P-256 key generation");
  auto cert = make_certificate(key.get(), common_name);
  if (!cert) return cert.error();
  auto key_pem = to_pem(key.get());
  if (!key_pem) return key_pem.error();
  auto cert_pem = to_pem(cert->get());
  if (!cert_pem) return cert_pem.error();

  // Key first: a certificate on disk always has its key beside it.
  if (auto st = write_new_private_file(context, files.key_path, *key_pem); !st) return st.error();
  if (auto st = write_new_private_file(context, files.cert_path, *cert_pem); !st) {
    ::unlink(files.key_path.c_str());
    return st.error();
  }
  sync_directory(dir);

  files.fingerprint = fingerprint_of(cert->get());
  if (files.fingerprint.empty()) return openssl_error("X509_digest");
  files.created = true;
  return files;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

Result<CertificateFiles> ensure_self_signed(const std::string& dir, const std::string& common_name) {
  if (dir.empty()) return Error::invalid("directory", "must not be empty", dir).in("create certificate");
  if (common_name.empty() || common_name.size() > kMaxCommonName) {
    return Error::invalid("common_name", "must be 1 to 64 bytes long", common_name).in("create certificate");
  }
  CertificateFiles files;
  files.cert_path = (fs::path(dir) / "cert.pem").string();
  files.key_path = (fs::path(dir) / "key.pem").string();

  std::error_code ec;
  const bool have_cert = fs::exists(files.cert_path, ec);
  const bool have_key = fs::exists(files.key_path, ec);
  if (have_cert && have_key) return reuse_pair(std::move(files));
  if (have_cert != have_key) {
    const std::string& present = have_cert ? files.cert_path : files.key_path;
    const char* missing = have_cert ? "key.pem" : "cert.pem";
    return Error{ErrorCode::kConflict, "create certificate", "file",
                 std::string("exists without ") + missing + " beside it (remove it to make a new pair, or supply both)",
                 present};
  }
  return create_pair(dir, common_name, std::move(files));
}

Result<std::string> certificate_fingerprint(const std::string& cert_path) {
  auto cert = load_certificate("read certificate", cert_path);
  if (!cert) return cert.error();
  std::string fp = fingerprint_of(cert->get());
  if (fp.empty()) return openssl_error("X509_digest");
  return fp;
}

std::string normalize_fingerprint(std::string_view typed) {
  std::array<unsigned char, 32> bytes{};
  std::size_t digits = 0;
  for (char c : typed) {
    if (c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (!is_hex(c) || digits >= 2 * bytes.size()) return "";
    unsigned v = (c <= '9') ? unsigned(c - '0') : (c <= 'F') ? unsigned(c - 'A' + 10) : unsigned(c - 'a' + 10);
    bytes[digits / 2] = static_cast<unsigned char>(bytes[digits / 2] << 4 | v);
    ++digits;
  }
  if (digits != 2 * bytes.size()) return "";
  return colon_hex(bytes.data(), bytes.size());
}

Status harden_server_context(SSL_CTX* ctx) {
  if (ctx == nullptr) return Error::invalid("ssl context", "must not be null", "").in("tls");
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return openssl_error("setting minimum TLS 1.2");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return openssl_error("setting the TLS 1.2 cipher list");
  // No TLS 1.3 session tickets: no client resumes a session (station-cli is a
  // new process each sync and keeps one connection for all of it), and the
  // two tickets OpenSSL sends by default are 510 of the ~1.7 KB a handshake
  // costs on a 2G link (bench/sync_bench.cpp).
  if (SSL_CTX_set_num_tickets(ctx, 0) != 1) return openssl_error("turning off session tickets");
  return {};
}

Status harden_client_context(SSL_CTX* ctx) {
  if (ctx == nullptr) return Error::invalid("ssl context", "must not be null", "").in("tls");
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return openssl_error("setting minimum TLS 1.2");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  return {};
}

PinnedVerifier::PinnedVerifier(std::string_view pin) : raw_pin_(pin), expected_(normalize_fingerprint(pin)) {}

Status PinnedVerifier::install(SSL_CTX* ctx) {
  if (expected_.empty()) {
    return Error::invalid("fingerprint", "must be a SHA-256 fingerprint (64 hex digits, colons optional)", raw_pin_)
        .in("pin certificate");
  }
  if (auto st = harden_client_context(ctx); !st) return st;
  SSL_CTX_set_cert_verify_callback(ctx, &PinnedVerifier::verify_callback, this);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return {};
}

std::string PinnedVerifier::seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

bool PinnedVerifier::rejected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rejected_;
}

Error PinnedVerifier::mismatch_error() const {
  return Error::refused("server certificate", "mismatch: expected " + expected_, seen()).in("connect");
}

// Called by OpenSSL in place of X509_verify_cert() during the handshake.
// Returns 1 to accept; 0 with an error set on the store to reject. Must not throw.
int PinnedVerifier::verify_callback(x509_store_ctx_st* store, void* self) {
  auto* verifier = static_cast<PinnedVerifier*>(self);
  try {
    X509* leaf = X509_STORE_CTX_get0_cert(store);
    std::string fp = leaf != nullptr ? fingerprint_of(leaf) : std::string();
    // Fingerprints are public, so a plain comparison is fine here.
    const bool ok = !fp.empty() && fp == verifier->expected_;
    {
      std::lock_guard<std::mutex> lock(verifier->mu_);
      verifier->seen_ = fp;
      verifier->rejected_ = !ok;
    }
    X509_STORE_CTX_set_error(store, ok ? X509_V_OK : X509_V_ERR_CERT_REJECTED);
    return ok ? 1 : 0;
  } catch (...) {  // bad_alloc: reject rather than unwind through OpenSSL's C frames
    X509_STORE_CTX_set_error(store, X509_V_ERR_OUT_OF_MEM);
    return 0;
  }
}

}  // namespace tramsync::tls
