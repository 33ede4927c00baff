#include "protocol/body.h"

#include "protocol/canonical_json.h"
#include "protocol/key_codec.h"
#include "protocol/limits.h"

namespace strata::protocol {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string Abbreviate(std::string_view text) {
  constexpr size_t kMaxShown = 64;
  if (text.size() <= kMaxShown) return std::string(text);
  size_t cut = kMaxShown;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  std::string shown(text.substr(0, cut));
  shown.append("...");
  return shown;
}

ErrorReply Malformed(std::string text) { return {ErrorCode::kMalformedRequest, std::move(text)}; }

namespace {

std::string Quoted(std::string_view name) {
  // Built by append: GCC 12 reports a false -Wrestrict on "'" + std::string.
  std::string quoted(1, '\'');
  quoted.append(name).push_back('\'');
  return quoted;
}

// A client's value quoted in an error text, abbreviated.
std::string Describe(element e) { return Abbreviate(simdjson::to_string(e)); }

MaybeError Missing(std::string_view name) {
  return Malformed("field " + Quoted(name) + " is required");
}

// Reads a timestamp: a JSON integer in [0, 2^63-1].
MaybeError ParseTimestamp(element e, std::string_view name, Timestamp* out) {
  switch (e.type()) {
    case element_type::INT64: {
      int64_t v = int64_t(e);
      if (v < 0) {
        return Malformed("field " + Quoted(name) + " must be a timestamp from 0 to 2^63-1, got " +
                         std::to_string(v));
      }
      *out = Timestamp(static_cast<uint64_t>(v));
      return std::nullopt;
    }
    case element_type::UINT64:
      return Malformed("field " + Quoted(name) + " must be a timestamp from 0 to 2^63-1, got " +
                       std::to_string(uint64_t(e)));
    default:
      return Malformed("field " + Quoted(name) + " must be an integer timestamp, got " +
                       Describe(e));
  }
}

}  // namespace

MaybeError Body::Load(simdjson::dom::object object) {
  fields_.clear();
  for (auto [name, value] : object) {
    if (fields_.size() == kMaxBodyFields) {
      return Malformed("the body has more than " + std::to_string(kMaxBodyFields) + " fields");
    }
    for (const auto& [seen, unused] : fields_) {
      if (seen == name) return Malformed("field " + Quoted(name) + " appears twice");
    }
    fields_.emplace_back(name, value);
  }
  return std::nullopt;
}

std::optional<element> Body::Find(std::string_view name) const {
  for (const auto& [field, value] : fields_) {
    if (field == name) return value;
  }
  return std::nullopt;
}

MaybeError Body::RequiredTimestamp(std::string_view name, Timestamp* out) const {
  auto e = Find(name);
  if (!e) return Missing(name);
  return ParseTimestamp(*e, name, out);
}

MaybeError Body::OptionalTimestamp(std::string_view name, std::optional<Timestamp>* out) const {
  auto e = Find(name);
  out->reset();
  if (!e || e->is_null()) return std::nullopt;
  Timestamp ts;
  if (auto err = ParseTimestamp(*e, name, &ts)) return err;
  *out = ts;
  return std::nullopt;
}

MaybeError EncodeKeyElement(element key, std::string_view field, std::string* encoded) {
  switch (key.type()) {
    case element_type::INT64:
      EncodeIntegerKey(int64_t(key), encoded);
      return std::nullopt;
    case element_type::STRING: {
      std::string_view s(key);
      if (s.size() + 1 > kMaxKeyBytes) {
        return Malformed("field " + Quoted(field) + " is a key of " + std::to_string(s.size()) +
                         " bytes; keys are limited to " + std::to_string(kMaxKeyBytes - 1));
      }
      EncodeStringKey(s, encoded);
      return std::nullopt;
    }
    case element_type::UINT64:
      return Malformed("field " + Quoted(field) +
                       " is an integer key outside the 64-bit signed range");
    default:
      return Malformed("field " + Quoted(field) + " must be a key (a string or an integer), got " +
                       Describe(key));
  }
}

MaybeError Body::RequiredKey(std::string_view name, std::string* encoded) const {
  auto e = Find(name);
  if (!e) return Missing(name);
  return EncodeKeyElement(*e, name, encoded);
}

MaybeError Body::OptionalKey(std::string_view name, std::optional<std::string>* encoded) const {
  auto e = Find(name);
  encoded->reset();
  if (!e || e->is_null()) return std::nullopt;
  std::string key;
  if (auto err = EncodeKeyElement(*e, name, &key)) return err;
  *encoded = std::move(key);
  return std::nullopt;
}

MaybeError Body::RequiredUint(std::string_view name, uint64_t* out) const {
  auto e = Find(name);
  if (!e) return Missing(name);
  if (e->type() == element_type::INT64 && int64_t(*e) >= 0) {
    *out = static_cast<uint64_t>(int64_t(*e));
    return std::nullopt;
  }
  if (e->type() == element_type::UINT64) {
    *out = uint64_t(*e);
    return std::nullopt;
  }
  return Malformed("field " + Quoted(name) + " must be a non-negative integer, got " +
                   Describe(*e));
}

MaybeError Body::OptionalString(std::string_view name, std::optional<std::string_view>* out) const {
  auto e = Find(name);
  out->reset();
  if (!e || e->is_null()) return std::nullopt;
  if (!e->is_string()) {
    return Malformed("field " + Quoted(name) + " must be a string, got " + Describe(*e));
  }
  *out = std::string_view(*e);
  return std::nullopt;
}

MaybeError Body::OptionalBool(std::string_view name, std::optional<bool>* out) const {
  auto e = Find(name);
  out->reset();
  if (!e || e->is_null()) return std::nullopt;
  if (!e->is_bool()) {
    return Malformed("field " + Quoted(name) + " must be true or false, got " + Describe(*e));
  }
  *out = bool(*e);
  return std::nullopt;
}

MaybeError Body::RequiredValue(std::string_view name, std::string* json) const {
  auto e = Find(name);
  if (!e) return Missing(name);
  json->clear();
  AppendCanonicalJson(*e, json);
  if (json->size() > kMaxValueBytes) {
    return Malformed("field " + Quoted(name) + " is " + std::to_string(json->size()) +
                     " bytes of JSON; values are limited to " + std::to_string(kMaxValueBytes));
  }
  return std::nullopt;
}

MaybeError Body::Limit(size_t* out) const {
  auto e = Find("limit");
  if (!e || e->is_null()) {
    *out = kDefaultLimit;
    return std::nullopt;
  }
  if (e->type() == element_type::INT64) {
    int64_t v = int64_t(*e);
    if (v >= static_cast<int64_t>(kMinLimit) && v <= static_cast<int64_t>(kMaxLimit)) {
      *out = static_cast<size_t>(v);
      return std::nullopt;
    }
  }
  return Malformed("field 'limit' must be an integer from " + std::to_string(kMinLimit) + " to " +
                   std::to_string(kMaxLimit) + ", got " + Describe(*e));
}

MaybeError ParseIsolation(const Body& body, Isolation fallback, Isolation* out) {
  std::optional<std::string_view> name;
  if (auto err = body.OptionalString("isolation", &name)) return err;
  if (!name) {
    *out = fallback;
  } else if (*name == "snapshot") {
    *out = Isolation::kSnapshot;
  } else if (*name == "serializable") {
    *out = Isolation::kSerializable;
  } else {
    return Malformed("field 'isolation' must be \"snapshot\" or \"serializable\", got \"" +
                     Abbreviate(*name) + "\"");
  }
  return std::nullopt;
}

}  // namespace strata::protocol
