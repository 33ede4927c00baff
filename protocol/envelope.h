// Envelope: one input line parsed into the Maelstrom message frame.
//
// {"src": ..., "dest": ..., "body": {"type": ..., "msg_id": ..., ...}}
//
// The parser validates the whole line (JSON syntax, UTF-8, nesting depth)
// before anything reads it, and sorts failures into the two kinds the
// protocol distinguishes: a line whose sender and msg_id are known gets an
// error reply; any other bad line can only be logged.
#ifndef STRATA_PROTOCOL_ENVELOPE_H_
#define STRATA_PROTOCOL_ENVELOPE_H_

#include <simdjson.h>

#include <string>
#include <string_view>

#include "protocol/body.h"
#include "protocol/errors.h"

namespace strata::protocol {

struct Envelope {
  std::string_view src;
  std::string_view dest;
  std::string_view type;
  bool has_msg_id = false;
  std::string msg_id_json;  // the request's msg_id as JSON, echoed as in_reply_to
  Body body;
};

enum class ParseOutcome {
  kOk,            // the envelope is complete
  kMalformed,     // src and msg_id are known: answer with the error
  kUnanswerable,  // log the error and go on
};

class EnvelopeParser final {
 public:
  EnvelopeParser();

  // Parses `line`. The envelope's views stay valid until the next call.
  // A line simdjson refuses whole (too deep, an integer beyond 64 bits) is
  // answered when its src and msg_id can still be read (PeekEnvelope).
  ParseOutcome Parse(std::string_view line, Envelope* out, ErrorReply* error);
  // The start of a line longer than kMaxLineBytes (the rest is never
  // buffered): kMalformed with error 12 naming the limit if its src and
  // msg_id are in it, else kUnanswerable.
  ParseOutcome ParseOverlong(std::string_view start, Envelope* out, ErrorReply* error);

 private:
  ParseOutcome Peeked(std::string_view text, simdjson::error_code code, Envelope* out,
                      ErrorReply* error);
  std::string peeked_src_;  // what out->src views after a peek
  simdjson::dom::parser parser_;
  std::string padded_;  // the line plus the zero padding simdjson reads past the end
};

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_ENVELOPE_H_
