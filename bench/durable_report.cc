#include "bench/durable_report.h"

#include <optional>
#include <set>
#include <string_view>

#include "bench/bench_util.h"

namespace strata::bench {
namespace {

// The DW configurations in table order: strata's transactions, its raw
// writes, then RocksDB, each from the most to the least durable mode.
struct Config {
  std::string_view engine;
  std::string_view sync;
  std::string_view label;
  std::string_view sync_label;
};

constexpr Config kConfigs[] = {
    {"strata", "always", "strata, txn", "always"},
    {"strata", "batch", "strata, txn", "batch"},
    {"strata", "none", "strata, txn", "none"},
    {"strata-raw", "always", "strata, raw put", "always"},
    {"strata-raw", "batch", "strata, raw put", "batch"},
    {"strata-raw", "none", "strata, raw put", "none"},
    {"rocksdb", "always", "RocksDB", "sync=true"},
    {"rocksdb", "none", "RocksDB", "sync=false"},
};

// The target: with group commit, strata at least matches RocksDB's
// synced write throughput at this many writers.
constexpr double kTargetWriters = 8;

const ParsedLine* FindDw(const std::vector<ParsedLine>& lines, std::string_view engine,
                         std::string_view sync, double threads) {
  for (const ParsedLine& line : lines) {
    if (line.workload() == "DW" && line.engine() == engine && line.String("sync") == sync &&
        line.Number("threads") == threads) {
      return &line;
    }
  }
  return nullptr;
}

// The RocksDB line a strata figure is compared with: the synced one for
// strata's synced modes, the unsynced one for kNone.
const ParsedLine* Peer(const std::vector<ParsedLine>& lines, std::string_view sync,
                       double threads) {
  return FindDw(lines, "rocksdb", sync == "none" ? "none" : "always", threads);
}

std::string Rate(double value) {
  if (value >= 1e6) return StrFormat("%.2f M", value / 1e6);
  if (value >= 1e5) return StrFormat("%.0f k", value / 1e3);
  if (value >= 1e4) return StrFormat("%.1f k", value / 1e3);
  if (value >= 1e3) return StrFormat("%.2f k", value / 1e3);
  return StrFormat("%.0f", value);
}

std::string Micros(std::optional<double> us) {
  if (!us) return "-";
  if (*us >= 1000) return StrFormat("%.2f ms", *us / 1000);
  if (*us >= 10) return StrFormat("%.0f µs", *us);
  return StrFormat("%.1f µs", *us);
}

std::string Millis(double ms) {
  if (ms >= 100) return StrFormat("%.0f ms", ms);
  return StrFormat("%.1f ms", ms);
}

std::string Bytes(double bytes) {
  if (bytes >= 1e9) return StrFormat("%.2f GB", bytes / 1e9);
  if (bytes >= 1e6) return StrFormat("%.0f MB", bytes / 1e6);
  if (bytes >= 1e3) return StrFormat("%.0f kB", bytes / 1e3);
  return StrFormat("%.0f B", bytes);
}

std::string Versions(double versions) {
  if (versions >= 1e6) return StrFormat("%gM", versions / 1e6);
  if (versions >= 1e3) return StrFormat("%gk", versions / 1e3);
  return StrFormat("%.0f", versions);
}

void FormatWrites(const std::vector<ParsedLine>& lines, std::string* out) {
  std::set<double> writer_counts;
  const ParsedLine* any = nullptr;
  for (const ParsedLine& line : lines) {
    if (line.workload() != "DW") continue;
    any = &line;
    writer_counts.insert(line.Number("threads").value_or(0));
  }
  if (any == nullptr) return;
  *out += StrFormat(
      "\nDW: durable writes, %.0f-byte keys from %.0f keys, %.0f-byte values, every write "
      "acknowledged only once durable; median of %.0f runs x %.2g s, a fresh store per run\n\n",
      any->Number("key_bytes").value_or(0), any->Number("keys").value_or(0),
      any->Number("value_bytes").value_or(0), any->Number("median_of").value_or(0),
      any->Number("seconds_per_run").value_or(0));
  *out +=
      "| writers | engine | sync | writes/s | p50 | p99 | p99.9 | writes per fsync | vs RocksDB "
      "|\n|---|---|---|---|---|---|---|---|---|\n";
  for (const double threads : writer_counts) {
    for (const Config& c : kConfigs) {
      const ParsedLine* line = FindDw(lines, c.engine, c.sync, threads);
      if (line == nullptr) continue;
      const double rate = line->Number("ops_per_s").value_or(0);
      std::string per_fsync = "-";
      if (auto w = line->Number("writes_per_fsync")) per_fsync = StrFormat("%.2f", *w);
      if (c.sync == "none" && !line->Number("writes_per_fsync")) per_fsync = "no fsync";
      std::string ratio;
      if (c.engine != "rocksdb") {
        const ParsedLine* peer = Peer(lines, c.sync, threads);
        const double theirs = peer != nullptr ? peer->Number("ops_per_s").value_or(0) : 0;
        ratio =
            theirs > 0 ? StrFormat(rate / theirs >= 10 ? "×%.1f" : "×%.2f", rate / theirs) : "-";
      }
      *out += StrFormat("| %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n", threads,
                        std::string(c.label).c_str(), std::string(c.sync_label).c_str(),
                        Rate(rate).c_str(), Micros(line->Number("p50_us")).c_str(),
                        Micros(line->Number("p99_us")).c_str(),
                        Micros(line->Number("p999_us")).c_str(), per_fsync.c_str(), ratio.c_str());
    }
  }
  *out +=
      "\nvs RocksDB: strata's writes/s / RocksDB's with sync=true (strata's always and batch "
      "rows) or sync=false (its none rows); > 1: strata is faster.\n";

  // The target, for each synced strata mode measured at kTargetWriters.
  const ParsedLine* peer = FindDw(lines, "rocksdb", "always", kTargetWriters);
  if (peer == nullptr) return;
  const double theirs = peer->Number("ops_per_s").value_or(0);
  std::string verdicts;
  bool met = false;
  for (const Config& c : kConfigs) {
    if (c.engine != "strata" || c.sync == "none") continue;
    const ParsedLine* mine = FindDw(lines, c.engine, c.sync, kTargetWriters);
    if (mine == nullptr || theirs <= 0) continue;
    const double ratio = mine->Number("ops_per_s").value_or(0) / theirs;
    met = met || ratio >= 1;
    verdicts +=
        StrFormat("%s%s ×%.2f", verdicts.empty() ? "" : ", ", std::string(c.sync).c_str(), ratio);
  }
  if (!verdicts.empty()) {
    *out +=
        StrFormat("target: strata's group commit >= RocksDB sync=true at %.0f writers: %s (%s)\n",
                  kTargetWriters, met ? "MET" : "NOT MET", verdicts.c_str());
  }
}

void FormatRecovery(const std::vector<ParsedLine>& lines, std::string* out) {
  std::set<double> sizes;
  const ParsedLine* any = nullptr;
  for (const ParsedLine& line : lines) {
    if (line.workload() != "DR") continue;
    any = &line;
    sizes.insert(line.Number("versions").value_or(0));
  }
  if (any == nullptr) return;
  *out += StrFormat(
      "\nDR: recovery, keys x %.0f versions of %.0f-byte values; time to reopen (median of %.0f); "
      "cold = the store's files evicted from the page cache first, warm = right after\n\n",
      any->Number("versions_per_key").value_or(0), any->Number("value_bytes").value_or(0),
      any->Number("median_of").value_or(0));
  *out +=
      "| versions | engine | reopen from | on disk | cold | cold per M versions | warm | warm "
      "per M versions |\n|---|---|---|---|---|---|---|---|\n";
  for (const double versions : sizes) {
    for (const std::string_view engine : {"strata", "rocksdb"}) {
      for (const ParsedLine& line : lines) {
        if (line.workload() != "DR" || line.engine() != engine ||
            line.Number("versions") != versions) {
          continue;
        }
        const std::string name = engine == "strata" ? "strata" : "RocksDB";
        for (const std::string_view variant : {"replay", "reopen"}) {
          const std::string v(variant);
          double disk = line.Number("log_bytes").value_or(0);
          if (variant == "reopen") {
            disk = engine == "strata" ? line.Number("checkpoint_bytes").value_or(0) +
                                            line.Number("tail_log_bytes").value_or(0)
                                      : line.Number("sst_bytes").value_or(0);
          }
          *out +=
              StrFormat("| %s | %s | %s | %s | %s | %s | %s | %s |\n",
                        Versions(line.Number(v + "_versions").value_or(0)).c_str(), name.c_str(),
                        std::string(line.String(v + "_label")).c_str(), Bytes(disk).c_str(),
                        Millis(line.Number(v + "_cold_ms").value_or(0)).c_str(),
                        Millis(line.Number(v + "_cold_ms_per_mversion").value_or(0)).c_str(),
                        Millis(line.Number(v + "_warm_ms").value_or(0)).c_str(),
                        Millis(line.Number(v + "_warm_ms_per_mversion").value_or(0)).c_str());
        }
      }
    }
  }
  *out +=
      "\nstrata rebuilds every version in memory when it opens; RocksDB opens its files and reads "
      "data on demand, so its open after a flush is no recovery work at all (a side reference).\n";
}

// Above this share of the CPUs used by other processes during a
// measurement, the figures are flagged as noisy.
constexpr double kNoisyOtherCpu = 0.10;

// How much other work ran meanwhile. Not the load average: writers blocked
// in fsync count towards it (8 of them make a load of 8 on an idle machine).
std::string NoiseNote(const std::vector<ParsedLine>& lines) {
  double worst = -1;
  std::string where;
  for (const ParsedLine& line : lines) {
    if (line.workload() != "DW" && line.workload() != "DR") continue;
    const double share =
        line.Number("other_cpu_share_max").value_or(line.Number("other_cpu_share").value_or(0));
    if (share > worst) {
      worst = share;
      where = StrFormat("%s %s", std::string(line.engine()).c_str(),
                        std::string(line.workload()).c_str());
      if (line.workload() == "DW") {
        where += StrFormat(" sync=%s writers=%.0f", std::string(line.String("sync")).c_str(),
                           line.Number("threads").value_or(0));
      }
    }
  }
  if (worst < 0) return "";
  return StrFormat(
      "%sother processes used at most %.0f%% of the CPUs during a measurement (%s)%s\n",
      worst > kNoisyOtherCpu ? "WARNING: " : "", 100 * worst, where.c_str(),
      worst > kNoisyOtherCpu ? "; the figures are noisy" : "");
}

}  // namespace

std::string FormatDurableReport(const std::vector<ParsedLine>& lines) {
  std::string out = "\nstrata-bench durability summary\n";
  FormatWrites(lines, &out);
  FormatRecovery(lines, &out);
  out += '\n';
  out += NoiseNote(lines);
  // Each engine's configuration, once.
  std::set<std::string> seen;
  std::string configs;
  for (const ParsedLine& line : lines) {
    if (line.workload() != "DW" && line.workload() != "DR") continue;
    const std::string config = std::string(line.engine()) + " " + std::string(line.workload()) +
                               ": " + std::string(line.String("config"));
    if (seen.insert(config).second) configs += "  " + config + "\n";
  }
  if (!configs.empty()) out += "\nconfigurations:\n" + configs;
  return out;
}

}  // namespace strata::bench
