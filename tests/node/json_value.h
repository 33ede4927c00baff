// JsonValue: a parsed JSON document (simdjson DOM) with the few accessors the
// protocol tests need, and a canonical text form for structural comparison.
//
// The protocol promises JSON values, not text: field order is free and a
// value may be re-serialized. Comparing canonical forms (object members
// sorted, numbers and strings normalized) checks exactly that, and a failed
// comparison prints two readable documents side by side.
#ifndef STRATA_TESTS_NODE_JSON_VALUE_H_
#define STRATA_TESTS_NODE_JSON_VALUE_H_

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace strata::testing {

class JsonValue {
 public:
  // An invalid value (what a failed parse or a missing member yields).
  JsonValue() = default;

  // Parses `text`; on failure the result is invalid and error() says why.
  static JsonValue Parse(std::string_view text);

  bool valid() const { return parser_ != nullptr; }
  const std::string& error() const { return error_; }
  simdjson::dom::element element() const { return element_; }

  // Member `key` of an object; invalid if this is not an object or lacks it.
  JsonValue operator[](std::string_view key) const;
  // Element `index` of an array; invalid if out of range.
  JsonValue operator[](size_t index) const;
  size_t size() const;  // members of an object or elements of an array, else 0

  bool IsNull() const;
  bool IsObject() const;
  std::optional<int64_t> Int() const;  // only for JSON integers that fit int64
  std::optional<bool> Bool() const;
  std::optional<std::string> String() const;

  // Canonical text: objects with members sorted, no whitespace, numbers
  // normalized so that equal values print equally. "<invalid: why>" for an
  // invalid value, so that comparisons involving it fail visibly.
  std::string Canonical() const;

 private:
  JsonValue(std::shared_ptr<simdjson::dom::parser> parser, simdjson::dom::element element)
      : parser_(std::move(parser)), element_(element) {}

  // The parser owns the document's storage; sub-values share it.
  std::shared_ptr<simdjson::dom::parser> parser_;
  simdjson::dom::element element_;
  std::string error_;
};

// Canonical form of a JSON text (see JsonValue::Canonical).
std::string CanonicalJson(std::string_view text);

// Whether `actual` and `expected` are the same JSON value. Unlike comparing
// canonical texts, it fails when either side does not parse, so two broken
// documents never compare equal; the message shows both canonical forms.
::testing::AssertionResult SameJson(const JsonValue& actual, std::string_view expected);
::testing::AssertionResult SameJson(std::string_view actual, std::string_view expected);

// Inserts `members` (e.g. `"msg_id":3`) as the first members of the JSON
// object text `object`, which must start with '{'.
std::string WithMembers(std::string_view object, std::string_view members);

// `text` as a JSON string literal, quotes included.
std::string QuoteJson(std::string_view text);

}  // namespace strata::testing

#endif  // STRATA_TESTS_NODE_JSON_VALUE_H_
