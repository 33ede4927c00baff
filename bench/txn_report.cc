#include "bench/txn_report.h"

#include <unistd.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <tuple>

#include "bench/bench_util.h"
#include "bench/report_table.h"

namespace strata::bench {
namespace {

constexpr int kLabelWidth = 18;
constexpr int kCellWidth = 21;  // "rocksdb-pessimistic" and a gap
constexpr int kRatioWidth = 9;

std::string Pad(std::string text, int width) {
  if (static_cast<int>(text.size()) < width) text.append(width - text.size(), ' ');
  return text;
}

std::string KeysLabel(double keys) {
  const auto n = static_cast<long long>(keys);
  if (n >= 1'000'000 && n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "M";
  if (n >= 1'000 && n % 1'000 == 0) return std::to_string(n / 1'000) + "k";
  return std::to_string(n);
}

// A column of the TX table: an engine, and for strata an isolation level.
struct Column {
  std::string engine;
  std::string isolation;  // empty: whatever the engine ran
  std::string header;
  std::string short_name;  // for the ratio headers
};

std::string ShortPeerName(std::string_view engine) {
  if (engine == "rocksdb-optimistic") return "occ";
  if (engine == "rocksdb-pessimistic") return "2pl";
  return std::string(engine);
}

const ParsedLine* FindTx(const std::vector<ParsedLine>& lines, const Column& column, double keys,
                         std::string_view dist, double threads) {
  for (const ParsedLine& line : lines) {
    if (line.workload() == "TX" && line.engine() == column.engine && line.Number("keys") == keys &&
        line.String("dist") == dist && line.Number("threads") == threads &&
        (column.isolation.empty() || line.String("isolation_requested") == column.isolation)) {
      return &line;
    }
  }
  return nullptr;
}

const ParsedLine* FindRo(const std::vector<ParsedLine>& lines, std::string_view engine,
                         double keys) {
  for (const ParsedLine& line : lines) {
    if (line.workload() == "RO" && line.engine() == engine && line.Number("keys") == keys) {
      return &line;
    }
  }
  return nullptr;
}

void FormatTx(const std::vector<std::string_view>& engines, const std::vector<ParsedLine>& lines,
              std::string* out) {
  // Rows: every (keys, dist, threads) measured, in a stable order.
  std::set<std::tuple<double, std::string, double>> rows;
  std::set<std::string> strata_isolations;
  const ParsedLine* any = nullptr;
  for (const ParsedLine& line : lines) {
    if (line.workload() != "TX") continue;
    any = &line;
    rows.emplace(line.Number("keys").value_or(0), std::string(line.String("dist")),
                 line.Number("threads").value_or(0));
    if (line.engine() == "strata") {
      strata_isolations.insert(std::string(line.String("isolation_requested")));
    }
  }
  if (any == nullptr) return;

  std::vector<Column> strata_columns;
  std::vector<Column> peer_columns;
  for (const std::string_view engine : engines) {
    if (engine == "strata") {
      // Snapshot first, the weaker level next to the peers that run it.
      for (const char* isolation : {"snapshot", "serializable"}) {
        if (!strata_isolations.contains(isolation)) continue;
        const bool si = std::string_view(isolation) == "snapshot";
        strata_columns.push_back(
            {"strata", isolation, si ? "strata SI" : "strata SER", si ? "SI" : "SER"});
      }
    } else {
      peer_columns.push_back({std::string(engine), "", std::string(engine), ShortPeerName(engine)});
    }
  }
  std::vector<Column> columns = strata_columns;
  columns.insert(columns.end(), peer_columns.begin(), peer_columns.end());

  *out += StrFormat(
      "\nTX: read 4 keys, write 2 of them (+1), retry on abort; committed txn/s (abort %% = "
      "aborts/attempts); median of %.0f runs x %.2g s\n",
      any->Number("median_of").value_or(0), any->Number("seconds_per_run").value_or(0));
  std::string header = Pad("keys dist    thr", kLabelWidth);
  for (const Column& c : columns) header += Pad(c.header, kCellWidth);
  for (const Column& s : strata_columns) {
    for (const Column& p : peer_columns)
      header += Pad(s.short_name + "/" + p.short_name, kRatioWidth);
  }
  *out += header + "\n" + std::string(header.size(), '-') + "\n";

  // The uniform target: strata's worst advantage over each peer.
  std::vector<double> worst_uniform(strata_columns.size() * peer_columns.size(),
                                    std::numeric_limits<double>::infinity());
  for (const auto& [keys, dist, threads] : rows) {
    std::string text = Pad(
        StrFormat("%-4s %-7s %.0f", KeysLabel(keys).c_str(), dist.c_str(), threads), kLabelWidth);
    for (const Column& c : columns) {
      const ParsedLine* line = FindTx(lines, c, keys, dist, threads);
      text += Pad(line == nullptr
                      ? "-"
                      : HumanCount(line->Number("ops_per_s").value_or(0)) +
                            StrFormat(" %.2f%%", 100 * line->Number("abort_rate").value_or(0)),
                  kCellWidth);
    }
    for (size_t s = 0; s < strata_columns.size(); ++s) {
      for (size_t p = 0; p < peer_columns.size(); ++p) {
        const ParsedLine* mine = FindTx(lines, strata_columns[s], keys, dist, threads);
        const ParsedLine* theirs = FindTx(lines, peer_columns[p], keys, dist, threads);
        const double a = mine ? mine->Number("ops_per_s").value_or(0) : 0;
        const double b = theirs ? theirs->Number("ops_per_s").value_or(0) : 0;
        if (a > 0 && b > 0) {
          text += Pad(StrFormat("x%.1f", a / b), kRatioWidth);
          if (dist == "uniform") {
            double& worst = worst_uniform[s * peer_columns.size() + p];
            worst = std::min(worst, a / b);
          }
        } else {
          text += Pad("-", kRatioWidth);
        }
      }
    }
    *out += text + "\n";
  }

  std::string target;
  bool all_met = true;
  bool any_target = false;
  for (size_t s = 0; s < strata_columns.size(); ++s) {
    for (size_t p = 0; p < peer_columns.size(); ++p) {
      const double worst = worst_uniform[s * peer_columns.size() + p];
      if (worst == std::numeric_limits<double>::infinity()) continue;
      any_target = true;
      all_met = all_met && worst >= kTxnTargetAdvantage;
      target += StrFormat("%s%s/%s >= x%.1f", target.empty() ? "" : ", ",
                          strata_columns[s].short_name.c_str(), peer_columns[p].short_name.c_str(),
                          worst);
    }
  }
  if (any_target) {
    *out += StrFormat(
        "target: strata >= x%.0f each RocksDB transactional DB on uniform keys: %s "
        "(worst uniform row: %s)\n",
        kTxnTargetAdvantage, all_met ? "MET" : "NOT MET", target.c_str());
  }
}

void FormatRo(const std::vector<std::string_view>& engines, const std::vector<ParsedLine>& lines,
              std::string* out) {
  std::set<double> key_counts;
  const ParsedLine* any = nullptr;
  for (const ParsedLine& line : lines) {
    if (line.workload() != "RO") continue;
    any = &line;
    key_counts.insert(line.Number("keys").value_or(0));
  }
  if (any == nullptr) return;
  constexpr int kRoLabelWidth = 35;
  constexpr int kRoCellWidth = 22;
  *out += StrFormat(
      "\nRO: read-only snapshot txns of %.0f point reads (uniform) on one thread, alone and "
      "while a second thread commits TX transactions; median of %.0f runs x %.2g s\n",
      any->Number("reads_per_txn").value_or(0), any->Number("median_of").value_or(0),
      any->Number("seconds_per_run").value_or(0));
  std::string header = Pad("", kRoLabelWidth);
  for (const std::string_view engine : engines) header += Pad(std::string(engine), kRoCellWidth);
  *out += header + "\n" + std::string(header.size(), '-') + "\n";
  struct Metric {
    const char* label;
    const char* field;
    bool rate;
  };
  constexpr Metric kMetrics[] = {
      {"ro txn/s alone", "reader_alone_ops_per_s", true},
      {"ro txn/s + writer", "ops_per_s", true},
      {"reader ratio with/alone", "reader_ratio", false},
      {"writer commits/s", "writer_commits_per_s", true},
  };
  for (const double keys : key_counts) {
    for (const Metric& metric : kMetrics) {
      std::string text = Pad(KeysLabel(keys) + " keys: " + metric.label, kRoLabelWidth);
      std::optional<double> strata_value;
      if (const ParsedLine* s = FindRo(lines, "strata", keys)) {
        strata_value = s->Number(metric.field);
      }
      for (const std::string_view engine : engines) {
        const ParsedLine* line = FindRo(lines, engine, keys);
        std::optional<double> value;
        if (line != nullptr) value = line->Number(metric.field);
        std::string cell = "-";
        if (value) {
          cell = metric.rate ? HumanCount(*value) : StrFormat("%.2f", *value);
          if (engine != "strata" && strata_value && *value > 0 && metric.rate) {
            cell += StrFormat(" (x%.2f)", *strata_value / *value);
          }
        }
        text += Pad(cell, kRoCellWidth);
      }
      *out += text + "\n";
    }
  }
}

}  // namespace

std::string FormatTxnReportTable(const std::vector<std::string_view>& engines,
                                 const std::vector<ParsedLine>& lines) {
  std::string out = "\nstrata-bench transactions summary\n";
  FormatTx(engines, lines, &out);
  FormatRo(engines, lines, &out);

  out += LoadAverageWarning(lines);
  out +=
      "\nxN = strata's committed txn/s (RO: read-only txn/s) / the peer's: > 1 means strata is "
      "faster.\n"
      "SI = strata snapshot isolation, SER = strata serializable; occ = rocksdb-optimistic, "
      "2pl = rocksdb-pessimistic.\n"
      "The RocksDB peers run one isolation (snapshot reads, written keys validated/locked: "
      "snapshot isolation) whichever strata runs;\nthe JSON lines' \"note\" says exactly what "
      "each engine validates, and aborts_* break their aborts down by cause.\n";
  for (const std::string_view engine : engines) {
    for (const ParsedLine& line : lines) {
      if (line.engine() != engine || line.workload() != "TX") continue;
      out +=
          StrFormat("  %-20s %.*s\n", std::string(engine).c_str(),
                    static_cast<int>(line.String("config").size()), line.String("config").data());
      break;
    }
  }
  return out;
}

}  // namespace strata::bench
