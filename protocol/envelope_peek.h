// PeekEnvelope: who sent a line that cannot be parsed, and which request of
// theirs it was, so the node can answer it instead of leaving the client to
// time out.
//
// simdjson refuses a whole document that is too long, nests too deeply, or
// holds an integer outside 64 bits, and says nothing about the parts it
// read. This scanner is written by hand because no library reads "as much
// of a broken JSON document as there is": it walks the tokens of the
// message's start with a depth counter (no recursion, so any depth is safe),
// and picks out the envelope's "src", the body's "msg_id", and the first
// body field holding an integer that does not fit 64 bits. It reads only
// the bytes it is given (a prefix of an over-long line is fine) and never
// allocates more than the strings it returns.
#ifndef STRATA_PROTOCOL_ENVELOPE_PEEK_H_
#define STRATA_PROTOCOL_ENVELOPE_PEEK_H_

#include <optional>
#include <string>
#include <string_view>

namespace strata::protocol {

struct PeekedEnvelope {
  std::optional<std::string> src;
  std::optional<std::string> msg_id_json;  // an integer, as written
  // The first body field whose value is an integer outside [-2^63, 2^64).
  std::optional<std::string> out_of_range_field;
};

PeekedEnvelope PeekEnvelope(std::string_view text);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_ENVELOPE_PEEK_H_
