// The workloads W1-W5 and the data they run on. Every engine gets the same
// keys, values, timestamps and operation sequences (fixed seeds), so the
// numbers are comparable across engines and across runs.
//
//   W1  point reads at random timestamps, 1M keys x 4 versions
//   W2  the same on deep history, 10k keys x 1,000 versions
//   W3  load: puts/s while loading W1's data set, and memory per version
//   W4  range scans of 100 consecutive keys at a snapshot timestamp
//   W5  W1's reads alone, then with a concurrent writer appending versions
#ifndef STRATA_BENCH_WORKLOADS_H_
#define STRATA_BENCH_WORKLOADS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/engine_adapter.h"
#include "bench/json_line.h"

namespace strata::bench {

// keys x versions, version round r (1-based) at timestamp r * kTsStep.
class Dataset final {
 public:
  static constexpr uint64_t kTsStep = 10;
  static constexpr size_t kValueBytes = 16;
  static constexpr size_t kKeyBytes = 11;  // "key" + 8 digits, the same for every engine

  Dataset(uint64_t keys, uint64_t versions);

  uint64_t keys() const { return keys_.size(); }
  uint64_t versions() const { return versions_; }
  uint64_t total_versions() const { return keys() * versions_; }
  const std::string& key(uint64_t index) const { return keys_[index]; }
  // The key order of every load round: one fixed shuffle, so neither the
  // hash engines nor the ordered ones get the easy sequential pattern.
  const std::vector<uint32_t>& load_order() const { return load_order_; }
  uint64_t max_ts() const { return versions_ * kTsStep; }
  // The timestamp a read at `read_ts` finds for any key (0: none).
  uint64_t VisibleTs(uint64_t read_ts) const;
  // Key and value bytes the data set holds: keys once, values per version.
  uint64_t payload_bytes() const { return keys() * kKeyBytes + total_versions() * kValueBytes; }

  // The 16-byte value of key `index` at `ts`, unique per (key, ts).
  static void Value(uint64_t index, uint64_t ts, char* out);

 private:
  std::vector<std::string> keys_;
  uint64_t versions_;
  std::vector<uint32_t> load_order_;
};

// Options shared by the workloads.
struct RunOptions {
  uint64_t ops = 1'000'000;  // reads (W1, W2, W5) or keys scanned (W4)
  int runs = 3;              // each measurement is the median of this many
};

// Puts every version of `data` into `engine` (round by round) and makes
// them visible; returns the seconds it took.
double Load(EngineAdapter& engine, const Dataset& data);

// W1 / W2: random keys at random timestamps in [0, max_ts + kTsStep].
JsonLine RunPointReads(EngineAdapter& engine, const Dataset& data, const RunOptions& options,
                       std::string_view workload);
// W4; nullopt for engines without key order.
std::optional<JsonLine> RunScans(EngineAdapter& engine, const Dataset& data,
                                 const RunOptions& options);
// W5. Appends versions to `engine`, so it runs after the other read workloads.
JsonLine RunConcurrent(EngineAdapter& engine, const Dataset& data, const RunOptions& options);

// W3, one run in this (fresh) process: the "W3-run" line SummarizeLoad reads.
JsonLine RunLoadOnce(std::string_view engine_name, uint64_t keys, uint64_t versions);
// W3: the median over the per-run lines of fresh processes.
JsonLine SummarizeLoad(std::string_view engine_name, const std::vector<ParsedLine>& runs,
                       uint64_t keys, uint64_t versions);

}  // namespace strata::bench

#endif  // STRATA_BENCH_WORKLOADS_H_
