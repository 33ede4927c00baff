#include "bench/json_line.h"

#include <simdjson.h>

#include <cmath>
#include <cstdio>

#include "bench/bench_util.h"

namespace strata::bench {
namespace {

void AppendEscaped(std::string_view s, std::string* out) {
  out->push_back('"');
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      *out += StrFormat("\\u%04x", c);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string FormatNumber(double value, int decimals) {
  if (!std::isfinite(value)) return "null";  // JSON has no NaN or infinity
  return StrFormat("%.*f", decimals, value);
}

}  // namespace

void JsonLine::Key(std::string_view key) {
  if (!body_.empty()) body_.push_back(',');
  AppendEscaped(key, &body_);
  body_.push_back(':');
}

JsonLine& JsonLine::Str(std::string_view key, std::string_view value) {
  Key(key);
  AppendEscaped(value, &body_);
  return *this;
}

JsonLine& JsonLine::Num(std::string_view key, double value, int decimals) {
  Key(key);
  body_ += FormatNumber(value, decimals);
  return *this;
}

JsonLine& JsonLine::Int(std::string_view key, int64_t value) {
  Key(key);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::Bool(std::string_view key, bool value) {
  Key(key);
  body_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::NumList(std::string_view key, const std::vector<double>& values, int decimals) {
  Key(key);
  body_.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) body_.push_back(',');
    body_ += FormatNumber(values[i], decimals);
  }
  body_.push_back(']');
  return *this;
}

void JsonLine::Print() const {
  const std::string line = ToString();
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string_view ParsedLine::String(std::string_view key) const {
  const auto it = strings.find(key);
  return it == strings.end() ? std::string_view() : std::string_view(it->second);
}

std::optional<double> ParsedLine::Number(std::string_view key) const {
  const auto it = numbers.find(key);
  if (it == numbers.end()) return std::nullopt;
  return it->second;
}

std::optional<ParsedLine> ParseLine(std::string_view line) {
  // The DOM parser: these lines are few and short, simplicity wins.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(line.data(), line.size()).get(root) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return std::nullopt;
  ParsedLine parsed;
  for (const auto field : object) {
    std::string key(field.key);
    double number = 0;
    std::string_view text;
    if (field.value.is_number() && field.value.get_double().get(number) == simdjson::SUCCESS) {
      parsed.numbers[key] = number;
    } else if (field.value.get_string().get(text) == simdjson::SUCCESS) {
      parsed.strings[key] = std::string(text);
    } else if (field.value.is_bool()) {
      parsed.numbers[key] = field.value.get_bool().value_unsafe() ? 1 : 0;
    }
  }
  return parsed;
}

}  // namespace strata::bench
