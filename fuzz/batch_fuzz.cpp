// Fuzz target "batch": the change-batch decoder on untrusted bytes.
//
// What the server does with a push body (after httplib inflated it) and the
// client with a pull answer: parse the JSON, check its protocol version, decode
// the "changes" array (wire::decode_batch is exactly that sequence of
// wire_json.h's check_protocol and changes_from_json, which SyncService's push
// handler and client.cpp call). Bytes that start as a gzip stream are also
// inflated by gzip::decompress with the server's size limit (the client
// inflates every gzipped answer so), and the text decoded.
//
// Properties, beyond "no crash, no leak, no exception":
//   - a refusal names what is wrong (a non-empty message);
//   - what decodes, re-encoded by wire::encode_batch, decodes to the very same
//     changes (what a hub relays is what it received);
//   - gzip::decompress never returns more than its limit, and
//     decompress(compress(bytes)) gives the bytes back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "gzip.h"
#include "tramsync/sync/protocol.h"
#include "tramsync/sync/wire.h"

using namespace tramsync;
using fuzz::require;

namespace {

void check_decode(std::string_view text) {
  auto batch = wire::decode_batch(text);
  if (!batch) {
    require(!batch.error().message().empty(), "a refused batch must say why");
    return;
  }
  const std::string again = wire::encode_batch(*batch);
  auto round = wire::decode_batch(again);
  require(round.ok(), "a decoded batch, re-encoded, must decode: " + (round ? "" : round.error().message()));
  require(round->size() == batch->size(), "a re-encoded batch must keep its number of changes");
  for (size_t i = 0; i < batch->size(); ++i) {
    const Change& a = (*batch)[i];
    const Change& b = (*round)[i];
    require(a.seq == b.seq && a.origin == b.origin && a.origin_seq == b.origin_seq && a.hlc == b.hlc &&
                a.station_id == b.station_id && a.kind == b.kind && a.record_id == b.record_id &&
                a.payload == b.payload,
            "change " + std::to_string(i) + " differs after re-encoding");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_decode(bytes);

  constexpr size_t kLimit = static_cast<size_t>(protocol::kMaxRequestBytes);
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    if (auto plain = sync::gzip::decompress(bytes, kLimit)) {
      require(plain->size() <= kLimit, "gzip::decompress returned more than its limit");
      check_decode(*plain);
    }
  }
  auto back = sync::gzip::decompress(sync::gzip::compress(bytes), size);
  require(back && *back == bytes, "gzip::decompress(gzip::compress(x)) must give x back");
  return 0;
}
