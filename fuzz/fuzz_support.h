// What the fuzz targets share: a property check that aborts (so libFuzzer, and
// the regression driver in the normal build, report the input), and a reader
// that turns the fuzz bytes into small structured choices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace tramsync::fuzz {

// A violated property is a crash: print what and abort.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void require(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

// Reads the input a byte at a time; past its end every read is 0, so any
// input, even empty, decodes to some choice.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  // 0 .. k-1 (0 when k is 0).
  size_t pick(size_t k) { return k == 0 ? 0 : byte() % k; }
  bool flag() { return (byte() & 1) != 0; }
  bool empty() const { return n_ == 0; }

 private:
  const uint8_t* p_;
  size_t n_;
};

}  // namespace tramsync::fuzz
