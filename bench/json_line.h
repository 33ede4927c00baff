// The benchmark's output: one flat JSON object per measurement, one per line
// on stdout, and the parser the --all driver uses to read them back from its
// child processes.
#ifndef STRATA_BENCH_JSON_LINE_H_
#define STRATA_BENCH_JSON_LINE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bench {

// Builds one JSON object, fields in insertion order.
class JsonLine final {
 public:
  JsonLine& Str(std::string_view key, std::string_view value);
  // Rounded to `decimals` places; integers print without a fraction.
  JsonLine& Num(std::string_view key, double value, int decimals = 1);
  JsonLine& Int(std::string_view key, int64_t value);
  JsonLine& Bool(std::string_view key, bool value);
  JsonLine& NumList(std::string_view key, const std::vector<double>& values, int decimals = 1);

  // The object, without a trailing newline.
  std::string ToString() const { return "{" + body_ + "}"; }
  // Prints the object and a newline to stdout and flushes, so a reader of
  // the pipe sees each measurement as soon as it is made.
  void Print() const;

 private:
  void Key(std::string_view key);
  std::string body_;
};

// A measurement line read back: its number and string fields by name.
struct ParsedLine {
  std::map<std::string, double, std::less<>> numbers;
  std::map<std::string, std::string, std::less<>> strings;

  std::string_view engine() const { return String("engine"); }
  std::string_view workload() const { return String("workload"); }
  std::string_view String(std::string_view key) const;
  std::optional<double> Number(std::string_view key) const;
};

// nullopt if `line` is not a JSON object. Arrays and nested objects are skipped.
std::optional<ParsedLine> ParseLine(std::string_view line);

}  // namespace strata::bench

#endif  // STRATA_BENCH_JSON_LINE_H_
