#include "protocol/json_writer.h"

#include <array>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace strata::protocol {

namespace {

// Bytes that cannot appear raw inside a JSON string.
constexpr auto kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = table['\\'] = true;
  return table;
}();

void AppendEscaped(std::string* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out->append("\\\"");
      break;
    case '\\':
      out->append("\\\\");
      break;
    case '\n':
      out->append("\\n");
      break;
    case '\r':
      out->append("\\r");
      break;
    case '\t':
      out->append("\\t");
      break;
    case '\b':
      out->append("\\b");
      break;
    case '\f':
      out->append("\\f");
      break;
    default: {
      const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out->append(escaped, sizeof(escaped));
    }
  }
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t run_start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!kNeedsEscape[c]) continue;
    out->append(s.data() + run_start, i - run_start);
    AppendEscaped(out, c);
    run_start = i + 1;
  }
  out->append(s.data() + run_start, s.size() - run_start);
  out->push_back('"');
}

void JsonWriter::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ == 0) return;
  uint64_t bit = uint64_t{1} << (depth_ - 1);
  if (has_elements_ & bit) out_->push_back(',');
  has_elements_ |= bit;
}

JsonWriter& JsonWriter::Open(char c) {
  if (depth_ == kMaxDepth) throw std::length_error("JsonWriter: nesting beyond 64 levels");
  Separate();
  out_->push_back(c);
  ++depth_;
  has_elements_ &= ~(uint64_t{1} << (depth_ - 1));
  return *this;
}

JsonWriter& JsonWriter::Close(char c) {
  out_->push_back(c);
  --depth_;
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view name) {
  Separate();
  // Member names are the protocol's own literals: nothing to escape. Short
  // ones (all of ours) are assembled on the stack and appended at once: this
  // runs about ten times per reply.
  char buf[64];
  if (name.size() + 3 <= sizeof(buf)) {
    buf[0] = '"';
    std::memcpy(buf + 1, name.data(), name.size());
    buf[name.size() + 1] = '"';
    buf[name.size() + 2] = ':';
    out_->append(buf, name.size() + 3);
  } else {
    out_->push_back('"');
    out_->append(name);
    out_->append("\":", 2);
  }
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view s) {
  Separate();
  AppendJsonString(out_, s);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t v) {
  Separate();
  char buf[24];
  auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
  out_->append(buf, end - buf);
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t v) {
  Separate();
  char buf[24];
  auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
  out_->append(buf, end - buf);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool v) {
  Separate();
  out_->append(v ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_->append("null");
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view json) {
  Separate();
  out_->append(json);
  return *this;
}

}  // namespace strata::protocol
