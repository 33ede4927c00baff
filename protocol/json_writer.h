// JsonWriter: appends compact JSON to a std::string, managing commas.
//
// Hand-written because the JSON library we parse with (simdjson) has no
// public builder, and replies are small, flat and on the hot path: this
// appends straight into the output buffer with std::to_chars, no DOM.
#ifndef STRATA_PROTOCOL_JSON_WRITER_H_
#define STRATA_PROTOCOL_JSON_WRITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::protocol {

// Appends `s` as a JSON string literal (quotes included). `s` must be UTF-8;
// control characters, quotes and backslashes are escaped.
void AppendJsonString(std::string* out, std::string_view s);

class JsonWriter final {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  // A writer that appends members to an object someone else opened and
  // already wrote members into: the first member gets a leading comma.
  static JsonWriter ContinuingObject(std::string* out) {
    JsonWriter w(out);
    w.depth_ = 1;
    w.has_elements_ = 1;
    return w;
  }

  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }

  // The name of the next member of the current object. REQUIRES: `name`
  // needs no escaping (member names are the protocol's own literals).
  JsonWriter& Key(std::string_view name);

  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  // Already-serialized JSON (a stored value).
  JsonWriter& Raw(std::string_view json);

  // Shorthands for a member: Key(name) then the value.
  JsonWriter& Field(std::string_view name, std::string_view s) { return Key(name).String(s); }
  JsonWriter& FieldUint(std::string_view name, uint64_t v) { return Key(name).Uint(v); }
  // The value, or null when there is none.
  JsonWriter& FieldUintOrNull(std::string_view name, const std::optional<uint64_t>& v) {
    Key(name);
    return v ? Uint(*v) : Null();
  }
  JsonWriter& FieldStringOrNull(std::string_view name, const std::optional<std::string>& s) {
    Key(name);
    return s ? String(*s) : Null();
  }

 private:
  JsonWriter& Open(char c);
  JsonWriter& Close(char c);
  void Separate();  // a comma unless this is the first element at this depth

  // One bit of has_elements_ per level. Replies nest 4 deep; deeper is a
  // bug, reported by an exception that the node turns into error 13.
  static constexpr int kMaxDepth = 64;

  std::string* out_;
  uint64_t has_elements_ = 0;  // bit d: the container at depth d is non-empty
  int depth_ = 0;
  bool after_key_ = false;
};

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_JSON_WRITER_H_
