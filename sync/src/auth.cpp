#include "tramsync/sync/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstddef>
#include <stdexcept>

namespace tramsync::auth {
namespace {

constexpr std::size_t kTokenBytes = 32;  // 256 bits
constexpr std::size_t kEnrollmentLength = 12;
constexpr std::size_t kEnrollmentGroup = 4;

void random_bytes(unsigned char* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed: the system random source is unavailable");
  }
}

std::string lower_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::string new_token() {
  std::array<unsigned char, kTokenBytes> bytes{};
  random_bytes(bytes.data(), bytes.size());
  return lower_hex(bytes.data(), bytes.size());
}

std::string new_enrollment_code() {
  // Rejection sampling: a byte below the largest multiple of the alphabet size
  // (248 = 8 * 31) maps to a symbol without bias; the others are redrawn.
  constexpr unsigned kSymbols = kEnrollmentAlphabet.size();
  constexpr unsigned kLimit = 256 - 256 % kSymbols;
  std::string symbols;
  symbols.reserve(kEnrollmentLength);
  std::array<unsigned char, 16> pool{};
  while (symbols.size() < kEnrollmentLength) {
    random_bytes(pool.data(), pool.size());
    for (unsigned char b : pool) {
      if (b >= kLimit) continue;
      symbols += kEnrollmentAlphabet[b % kSymbols];
      if (symbols.size() == kEnrollmentLength) break;
    }
  }
  std::string code;
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    if (i > 0 && i % kEnrollmentGroup == 0) code += '-';
    code += symbols[i];
  }
  return code;
}

std::string normalize_enrollment_code(std::string_view typed) {
  std::string out;
  out.reserve(typed.size());
  for (char c : typed) {
    if (c == ' ' || c == '-') continue;
    out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(SHA-256) failed");
  }
  return lower_hex(md.data(), len);
}

std::string enrollment_code_hash(std::string_view typed) {
  return sha256_hex(normalize_enrollment_code(typed));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace tramsync::auth
