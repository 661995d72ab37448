// Secrets for device authentication: bearer tokens, one-time enrollment codes,
// and the hashing and comparison the server applies to them.
//
// The server never stores a token or an enrollment code, only sha256_hex() of
// it (of the normalized form, for codes), and compares a presented value's hash
// with the stored one through constant_time_equal() so the comparison time
// does not reveal how many leading characters matched.
//
// All randomness comes from OpenSSL's CSPRNG (RAND_bytes). A failing RAND_bytes
// means the process cannot make secrets at all; that is treated as a bug of the
// environment and throws std::runtime_error rather than returning a weak value.
// Every function here is thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace tramsync::auth {

// A fresh bearer token: 256 random bits as 64 lower-case hex characters.
// Throws std::runtime_error only if RAND_bytes fails.
std::string new_token();

// The characters an enrollment code is made of: digits and upper-case letters
// without the look-alikes 0/O, 1/I/L. 31 symbols.
inline constexpr std::string_view kEnrollmentAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

// A fresh one-time enrollment code for a person to read off one screen and type
// into another: 12 characters drawn uniformly (rejection sampling, no modulo
// bias) from kEnrollmentAlphabet, shown in three groups, "7KQ4-MZ2W-HX9C".
// Entropy: 12 * log2(31) = 59.4 bits. (A full 60 bits would need a 32-symbol
// alphabet or a 13th character; 59.4 bits is ample for a code that is single
// use, short-lived and checked by the server.)
// Throws std::runtime_error only if RAND_bytes fails.
std::string new_enrollment_code();

// The canonical form of a code as typed: ASCII letters upper-cased, spaces and
// dashes dropped, everything else kept (so a mistyped character still makes the
// code not match rather than being silently "corrected").
// "abcd efgh-jkmn" -> "ABCDEFGHJKMN".
std::string normalize_enrollment_code(std::string_view typed);

// What a server stores of an enrollment code, and looks a typed code up by:
// sha256_hex(normalize_enrollment_code(typed)).
std::string enrollment_code_hash(std::string_view typed);

// SHA-256 of the bytes of `data`, as 64 lower-case hex characters.
std::string sha256_hex(std::string_view data);

// True iff a and b hold the same bytes. For equal lengths the time taken does
// not depend on the content (CRYPTO_memcmp); different lengths return false at
// once, which reveals only the length (all stored hashes have the same length).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace tramsync::auth
