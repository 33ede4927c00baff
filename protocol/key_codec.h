// KeyCodec: wire keys (JSON integers and strings) <-> engine key bytes.
//
// The engine orders keys by their bytes; the protocol orders integers first,
// numerically, then strings by their UTF-8 bytes, and keeps 1 and "1"
// distinct. A one-byte tag does both: integers get tag 0x00 and 8 big-endian
// bytes with the sign bit flipped (so negative numbers sort first), strings
// get tag 0x01 and their bytes.
#ifndef STRATA_PROTOCOL_KEY_CODEC_H_
#define STRATA_PROTOCOL_KEY_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/json_writer.h"

namespace strata::protocol {

inline constexpr char kIntegerKeyTag = '\x00';
inline constexpr char kStringKeyTag = '\x01';
// Keys from this tag on are the node's own (cluster state kept in the
// store, cluster/durable_state.h): no client key has it, and every range a
// client names ends before it.
inline constexpr char kFirstInternalKeyTag = '\x02';

void EncodeIntegerKey(int64_t key, std::string* out);
void EncodeStringKey(std::string_view key, std::string* out);

// Writes an encoded key back as its JSON value.
void WriteKey(JsonWriter* writer, std::string_view encoded);
// The same as text: how error messages quote a key.
std::string KeyText(std::string_view encoded);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_KEY_CODEC_H_
