#include "bench/report_table.h"

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "bench/bench_util.h"

namespace strata::bench {
namespace {

constexpr int kLabelWidth = 30;
constexpr int kCellWidth = 17;

struct Row {
  std::string_view label;
  std::string_view workload;
  std::string_view field;
  bool higher_is_better;
  bool bytes;  // print as a plain number, not as a rate
};

constexpr Row kRows[] = {
    {"W1 point reads/s", "W1", "ops_per_s", true, false},
    {"W1 batched reads/s (16)", "W1", "batch_ops_per_s", true, false},
    {"W2 deep-history reads/s", "W2", "ops_per_s", true, false},
    {"W3 load puts/s", "W3", "ops_per_s", true, false},
    {"W4 scan keys/s (100/scan)", "W4", "ops_per_s", true, false},
    {"W4 scans/s", "W4", "scans_per_s", true, false},
    {"W4 scan keys/s (1000/scan)", "W4", "long_scan_keys_per_s", true, false},
    {"W4 count-only keys/s (1000)", "W4", "count_keys_per_s", true, false},
    {"W5 reads/s alone", "W5", "reader_alone_ops_per_s", true, false},
    {"W5 reads/s + writer", "W5", "ops_per_s", true, false},
    {"W5 reader ratio with/alone", "W5", "reader_ratio", true, true},
    {"W5 writer puts/s", "W5", "writer_puts_per_s", true, false},
    {"memory B/version (RSS)", "W3", "bytes_per_version", false, true},
    {"  beyond key+value", "W3", "overhead_bytes_per_version", false, true},
    {"disk B/version", "W3", "disk_bytes_per_version", false, true},
};

const ParsedLine* Find(const std::vector<ParsedLine>& lines, std::string_view engine,
                       std::string_view workload) {
  for (const ParsedLine& line : lines) {
    if (line.engine() == engine && line.workload() == workload) return &line;
  }
  return nullptr;
}

std::string Pad(std::string text, int width) {
  if (static_cast<int>(text.size()) < width) text.append(width - text.size(), ' ');
  return text;
}

}  // namespace

std::string LoadAverageWarning(const std::vector<ParsedLine>& lines) {
  double max_load = 0;
  for (const ParsedLine& line : lines) {
    max_load = std::max(max_load, line.Number("load_avg_1m").value_or(0));
  }
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  // The benchmarks themselves keep up to two threads busy and RocksDB adds
  // background threads, so only a load above CPUs + 1 points at outside work.
  if (max_load <= static_cast<double>(cpus) + 1) return "";
  return StrFormat(
      "WARNING: the 1-minute load average reached %.1f on %ld CPUs while measuring; "
      "if other work was running, these figures are noisy.\n",
      max_load, cpus);
}

std::string FormatReportTable(const std::vector<std::string_view>& engines,
                              const std::vector<ParsedLine>& lines) {
  std::string out;
  const ParsedLine* any_w1 = nullptr;
  const ParsedLine* any_w2 = nullptr;
  for (const ParsedLine& line : lines) {
    if (line.workload() == "W1") any_w1 = &line;
    if (line.workload() == "W2") any_w2 = &line;
  }
  out += "\nstrata-bench summary";
  if (any_w1 != nullptr) {
    out += StrFormat(" (W1/W3/W4/W5: %.0f keys x %.0f versions", any_w1->Number("keys").value_or(0),
                     any_w1->Number("versions").value_or(0));
    if (any_w2 != nullptr) {
      out += StrFormat("; W2: %.0f x %.0f", any_w2->Number("keys").value_or(0),
                       any_w2->Number("versions").value_or(0));
    }
    out += StrFormat("; %.0f ops; median of %.0f runs)", any_w1->Number("ops").value_or(0),
                     any_w1->Number("median_of").value_or(0));
  }
  out += "\n";
  out += Pad("", kLabelWidth);
  for (const std::string_view engine : engines) out += Pad(std::string(engine), kCellWidth);
  out += "\n";
  out += std::string(kLabelWidth + kCellWidth * engines.size(), '-') + "\n";

  bool any_locked = false;
  bool any_file = false;
  for (const Row& row : kRows) {
    bool row_has_data = false;
    std::string text = Pad(std::string(row.label), kLabelWidth);
    std::optional<double> strata_value;
    if (const ParsedLine* s = Find(lines, "strata", row.workload)) {
      strata_value = s->Number(row.field);
    }
    for (const std::string_view engine : engines) {
      const ParsedLine* line = Find(lines, engine, row.workload);
      std::optional<double> value;
      if (line != nullptr) value = line->Number(row.field);
      std::string cell;
      if (!value) {
        cell = row.workload == "W4" && line == nullptr && Find(lines, engine, "W1") != nullptr
                   ? "n/a (no order)"
                   : "-";
      } else {
        row_has_data = true;
        cell = row.bytes ? StrFormat("%.2f", *value) : HumanCount(*value);
        if (line->String("note").find("mutex") != std::string_view::npos) {
          cell += "†";
          any_locked = true;
        }
        if (row.field == "bytes_per_version" || row.field == "overhead_bytes_per_version") {
          if (line->Number("disk_bytes_per_version")) {
            cell += "*";
            any_file = true;
          }
        }
        if (engine != "strata" && strata_value && *value > 0 && *strata_value > 0) {
          const double advantage =
              row.higher_is_better ? *strata_value / *value : *value / *strata_value;
          cell += StrFormat(" (x%.2f)", advantage);
        }
      }
      // "†" is three bytes but one column wide.
      const int extra = cell.find("†") != std::string::npos ? 2 : 0;
      text += Pad(cell, kCellWidth + extra);
    }
    if (row_has_data) out += text + "\n";
  }
  if (const ParsedLine* node = Find(lines, "strata-node", "node")) {
    out += Pad("node msg/s (stdin->stdout)", kLabelWidth) +
           HumanCount(node->Number("ops_per_s").value_or(0)) +
           (node->Number("verified").value_or(0) != 0 ? "  (all replies verified)"
                                                      : "  (VERIFICATION FAILED)") +
           "\n";
  }
  if (const ParsedLine* s = Find(lines, "strata", "W3")) {
    if (auto v = s->Number("store_bytes_per_version")) {
      out += StrFormat(
          "strata's own estimate (GetStats().memory_bytes): %.2f B/version, %.2f "
          "beyond key+value\n",
          *v, s->Number("store_overhead_bytes_per_version").value_or(0));
    }
  }
  out += LoadAverageWarning(lines);
  out +=
      "\n(xN) = strata's advantage over that peer: strata/peer for rates, peer/strata for "
      "bytes;\n       > 1 means strata is better, < 1 means the peer is.\n";
  if (any_locked) out += "†  not thread-safe: reader and writer share one std::mutex in W5.\n";
  if (any_file) {
    out += "*  file-based: RSS growth counts caches and mapped pages, see the disk row.\n";
  }
  out += "n/a (no order): a hash map has no key order, so it cannot serve W4's range scans.\n";
  out += "Keys \"key\"+8 digits (11 B), values 16 B: 18.75 B of payload per version in W1.\n";
  for (const std::string_view engine : engines) {
    if (const ParsedLine* w1 = Find(lines, engine, "W1")) {
      const std::string_view config = w1->String("config");
      if (!config.empty()) {
        out += StrFormat("  %-15s %.*s\n", std::string(engine).c_str(),
                         static_cast<int>(config.size()), config.data());
      }
    }
  }
  return out;
}

}  // namespace strata::bench
