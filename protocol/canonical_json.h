// Canonical JSON: one text per JSON value.
//
// Values are stored as text and a retry is recognized by comparing texts, so
// two spellings of one value ({"x":1,"y":2} and {"y":2,"x":1}, or 1.0 and 1)
// must become the same text. Objects get their members sorted by name
// (bytewise), numbers their shortest round-trip form, strings the minimal
// escaping; what comes back is the same JSON value the client sent.
#ifndef STRATA_PROTOCOL_CANONICAL_JSON_H_
#define STRATA_PROTOCOL_CANONICAL_JSON_H_

#include <simdjson.h>

#include <string>

namespace strata::protocol {

// Appends the canonical text of `value`. Recursion is bounded by the
// parser's depth limit (limits.h).
void AppendCanonicalJson(simdjson::dom::element value, std::string* out);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_CANONICAL_JSON_H_
