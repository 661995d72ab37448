// gzip bodies for the sync transport (zlib). Private to sync/.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tramsync::sync::gzip {

// The gzip encoding of `data` (RFC 1952), default compression level.
std::string compress(std::string_view data);

// The decoded bytes of a gzip (or zlib) stream, or nullopt when the stream is
// corrupt, truncated, or would decode to more than `max_size` bytes (a small
// body that inflates to gigabytes is refused, not held in memory).
std::optional<std::string> decompress(std::string_view data, size_t max_size);

}  // namespace tramsync::sync::gzip
