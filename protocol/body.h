// Body: a request body's fields with typed, validating accessors.
//
// Every accessor turns a missing or ill-typed field into error 12 whose text
// names the field and what was expected, so handlers never touch raw JSON.
// Duplicate fields are refused up front: which of two values a client meant
// is not ours to guess.
#ifndef STRATA_PROTOCOL_BODY_H_
#define STRATA_PROTOCOL_BODY_H_

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/errors.h"
#include "strata/timestamp.h"
#include "strata/txn_store.h"

namespace strata::protocol {

using MaybeError = std::optional<ErrorReply>;

class Body final {
 public:
  // Takes the fields of `object`. Views stay valid while the parsed document does.
  MaybeError Load(simdjson::dom::object object);

  std::optional<simdjson::dom::element> Find(std::string_view name) const;

  MaybeError RequiredTimestamp(std::string_view name, Timestamp* out) const;
  MaybeError OptionalTimestamp(std::string_view name, std::optional<Timestamp>* out) const;
  // A key (JSON integer or string), encoded for the engine (key_codec.h).
  MaybeError RequiredKey(std::string_view name, std::string* encoded) const;
  MaybeError OptionalKey(std::string_view name, std::optional<std::string>* encoded) const;
  // A non-negative integer (ids).
  MaybeError RequiredUint(std::string_view name, uint64_t* out) const;
  MaybeError OptionalString(std::string_view name, std::optional<std::string_view>* out) const;
  MaybeError OptionalBool(std::string_view name, std::optional<bool>* out) const;
  // Any JSON value, in canonical form (canonical_json.h) for storage.
  MaybeError RequiredValue(std::string_view name, std::string* json) const;
  // `limit`: kMinLimit..kMaxLimit, kDefaultLimit when omitted.
  MaybeError Limit(size_t* out) const;

  // Every field, in the order received.
  const std::vector<std::pair<std::string_view, simdjson::dom::element>>& fields() const {
    return fields_;
  }

 private:
  std::vector<std::pair<std::string_view, simdjson::dom::element>> fields_;
};

// The optional field 'isolation' ("snapshot" or "serializable"), or
// `fallback` when it is absent.
MaybeError ParseIsolation(const Body& body, Isolation fallback, Isolation* out);

// Encodes a JSON key element; `field` names it in the error.
MaybeError EncodeKeyElement(simdjson::dom::element key, std::string_view field,
                            std::string* encoded);

// Error 12 with `text`.
ErrorReply Malformed(std::string text);

// `text` cut to at most 64 bytes (at a UTF-8 character boundary, "..."
// appended), for quoting client input in an error text: an error never
// echoes a megabyte back.
std::string Abbreviate(std::string_view text);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_BODY_H_
