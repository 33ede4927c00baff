#include "protocol/canonical_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/json_writer.h"

namespace strata::protocol {

namespace {

template <typename Number>
void AppendNumber(Number v, std::string* out) {
  char buf[32];
  auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
  out->append(buf, end - buf);
}

void AppendDouble(double v, std::string* out) {
  const bool integral = std::trunc(v) == v;
  // A double that holds an integer exactly is written as that integer, so
  // 1.0 and 1 are one value (as JSON, and as most clients, see them).
  if (integral && std::fabs(v) < 9007199254740992.0) {  // 2^53
    AppendNumber(static_cast<int64_t>(v), out);
    return;
  }
  char buf[32];
  // Shortest text that reads back as the same double. A larger integral
  // value keeps an exponent: as plain digits it could exceed 64 bits and
  // read back as an integer parsers refuse (simdjson does).
  auto end = integral ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific).ptr
                      : std::to_chars(buf, buf + sizeof(buf), v).ptr;
  out->append(buf, end - buf);
}

}  // namespace

void AppendCanonicalJson(simdjson::dom::element value, std::string* out) {
  using simdjson::dom::element_type;
  switch (value.type()) {
    case element_type::OBJECT: {
      std::vector<std::pair<std::string_view, simdjson::dom::element>> members;
      for (auto [name, member] : simdjson::dom::object(value)) members.emplace_back(name, member);
      std::stable_sort(members.begin(), members.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      out->push_back('{');
      for (size_t i = 0; i < members.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonString(out, members[i].first);
        out->push_back(':');
        AppendCanonicalJson(members[i].second, out);
      }
      out->push_back('}');
      return;
    }
    case element_type::ARRAY: {
      out->push_back('[');
      bool first = true;
      for (simdjson::dom::element item : simdjson::dom::array(value)) {
        if (!first) out->push_back(',');
        first = false;
        AppendCanonicalJson(item, out);
      }
      out->push_back(']');
      return;
    }
    case element_type::STRING:
      AppendJsonString(out, std::string_view(value));
      return;
    case element_type::INT64:
      AppendNumber(int64_t(value), out);
      return;
    case element_type::UINT64:
      AppendNumber(uint64_t(value), out);
      return;
    case element_type::DOUBLE:
      AppendDouble(double(value), out);
      return;
    case element_type::BOOL:
      out->append(bool(value) ? "true" : "false");
      return;
    case element_type::NULL_VALUE:
      out->append("null");
      return;
  }
}

}  // namespace strata::protocol
