#include "json_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace strata::testing {
namespace {

void AppendCanonical(simdjson::dom::element element, std::string* out);

void AppendNumber(double value, std::string* out) {
  // An integral double (1e3, 2.0) is the same number as the integer; print
  // it as one so that either spelling from the node compares equal.
  if (std::trunc(value) == value && std::fabs(value) < 9.2e18) {
    *out += std::to_string(static_cast<int64_t>(value));
    return;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  *out += buffer;
}

void AppendCanonical(simdjson::dom::element element, std::string* out) {
  using simdjson::dom::element_type;
  switch (element.type()) {
    case element_type::NULL_VALUE:
      *out += "null";
      return;
    case element_type::BOOL:
      *out += bool(element) ? "true" : "false";
      return;
    case element_type::INT64:
      *out += std::to_string(int64_t(element));
      return;
    case element_type::UINT64:
      *out += std::to_string(uint64_t(element));
      return;
    case element_type::DOUBLE:
      AppendNumber(double(element), out);
      return;
    case element_type::STRING:
      *out += QuoteJson(std::string_view(element));
      return;
    case element_type::ARRAY: {
      *out += '[';
      bool first = true;
      for (simdjson::dom::element item : simdjson::dom::array(element)) {
        if (!first) *out += ',';
        first = false;
        AppendCanonical(item, out);
      }
      *out += ']';
      return;
    }
    case element_type::OBJECT: {
      // Sorting (key, value) pairs keeps duplicate keys, should a node ever
      // emit them, visible instead of silently merged.
      std::vector<std::pair<std::string, std::string>> members;
      for (simdjson::dom::key_value_pair member : simdjson::dom::object(element)) {
        std::string value;
        AppendCanonical(member.value, &value);
        members.emplace_back(QuoteJson(member.key), std::move(value));
      }
      std::sort(members.begin(), members.end());
      *out += '{';
      for (size_t i = 0; i < members.size(); ++i) {
        if (i > 0) *out += ',';
        *out += members[i].first + ':' + members[i].second;
      }
      *out += '}';
      return;
    }
  }
}

}  // namespace

JsonValue JsonValue::Parse(std::string_view text) {
  auto parser = std::make_shared<simdjson::dom::parser>();
  simdjson::dom::element element;
  simdjson::error_code error = parser->parse(text.data(), text.size()).get(element);
  if (error != simdjson::SUCCESS) {
    JsonValue invalid;
    invalid.error_ = simdjson::error_message(error);
    return invalid;
  }
  return JsonValue(std::move(parser), element);
}

JsonValue JsonValue::operator[](std::string_view key) const {
  simdjson::dom::element member;
  if (!IsObject() || element_.at_key(key).get(member) != simdjson::SUCCESS) {
    JsonValue missing;
    missing.error_ = "no member \"" + std::string(key) + "\"";
    return missing;
  }
  return JsonValue(parser_, member);
}

JsonValue JsonValue::operator[](size_t index) const {
  simdjson::dom::element item;
  if (!valid() || !element_.is_array() || element_.at(index).get(item) != simdjson::SUCCESS) {
    JsonValue missing;
    missing.error_ = "no element " + std::to_string(index);
    return missing;
  }
  return JsonValue(parser_, item);
}

size_t JsonValue::size() const {
  if (!valid()) return 0;
  if (element_.is_array()) return simdjson::dom::array(element_).size();
  if (element_.is_object()) return simdjson::dom::object(element_).size();
  return 0;
}

bool JsonValue::IsNull() const { return valid() && element_.is_null(); }
bool JsonValue::IsObject() const { return valid() && element_.is_object(); }

std::optional<int64_t> JsonValue::Int() const {
  if (!valid() || element_.type() != simdjson::dom::element_type::INT64) return std::nullopt;
  return int64_t(element_);
}

std::optional<bool> JsonValue::Bool() const {
  if (!valid() || !element_.is_bool()) return std::nullopt;
  return bool(element_);
}

std::optional<std::string> JsonValue::String() const {
  if (!valid() || !element_.is_string()) return std::nullopt;
  return std::string(std::string_view(element_));
}

std::string JsonValue::Canonical() const {
  if (!valid()) return "<invalid: " + error_ + ">";
  std::string out;
  AppendCanonical(element_, &out);
  return out;
}

std::string CanonicalJson(std::string_view text) { return JsonValue::Parse(text).Canonical(); }

::testing::AssertionResult SameJson(const JsonValue& actual, std::string_view expected) {
  JsonValue want = JsonValue::Parse(expected);
  if (!want.valid()) {
    return ::testing::AssertionFailure()
           << "expected text is not JSON (" << want.error() << "): " << expected;
  }
  if (actual.valid() && actual.Canonical() == want.Canonical()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "\n  actual:   " << actual.Canonical() << "\n  expected: " << want.Canonical();
}

::testing::AssertionResult SameJson(std::string_view actual, std::string_view expected) {
  return SameJson(JsonValue::Parse(actual), expected);
}

std::string WithMembers(std::string_view object, std::string_view members) {
  if (object.empty() || object.front() != '{') return std::string(object);
  std::string_view rest = object.substr(1);
  size_t first = rest.find_first_not_of(" \t\r\n");
  bool empty_object = first != std::string_view::npos && rest[first] == '}';
  // Appending (rather than "{" + ...) sidesteps a GCC 12 -Wrestrict false
  // positive on operator+(const char*, std::string&&).
  std::string out = "{";
  out.append(members);
  if (!empty_object) out += ',';
  out.append(rest);
  return out;
}

std::string QuoteJson(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", c);
          out += escape;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace strata::testing
