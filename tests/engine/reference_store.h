// ReferenceStore: the textbook multi-version store the engine is checked
// against. Every operation is the most literal reading of the spec: a map from
// key to the versions it received in arrival order, linear scans for every
// read, no indexes, no concurrency. Its only virtue is being obviously right.
#ifndef STRATA_TESTS_ENGINE_REFERENCE_STORE_H_
#define STRATA_TESTS_ENGINE_REFERENCE_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp.h"

namespace strata::testing {

// A key range as the model understands it: either explicit bounds or a
// prefix. Prefixes are kept as prefixes (not converted to bounds) so the
// engine's KeyRange::WithPrefix is checked against a plain starts_with.
struct ModelRange {
  std::string start;
  std::optional<std::string> end;
  std::optional<std::string> prefix;  // when set, start/end are ignored

  static ModelRange All() { return {}; }
  static ModelRange Bounds(std::string start, std::optional<std::string> end);
  static ModelRange Prefix(std::string prefix);

  bool Contains(std::string_view key) const;
  // The same range in the engine's vocabulary.
  KeyRange ToKeyRange() const;
  std::string ToString() const;
};

class ReferenceStore {
 public:
  explicit ReferenceStore(StoreOptions options = {}) : options_(options) {}

  // Every error a write may legitimately fail with (the spec does not order
  // the checks when several apply, e.g. an oversized value whose timestamp is
  // also compacted). Empty: the write must succeed.
  std::vector<StatusCode> WriteErrors(std::string_view key, std::optional<std::string_view> value,
                                      Timestamp timestamp) const;

  // Put/Delete apply the write if WriteErrors() is empty and return the
  // expected result; otherwise they return the first applicable error and
  // change nothing.
  Result<WriteResult> Put(std::string_view key, std::string_view value, Timestamp timestamp);
  Result<WriteResult> Delete(std::string_view key, Timestamp timestamp);

  Result<ReadResult> Get(std::string_view key, Timestamp read_timestamp = Timestamp::Max()) const;
  Result<ScanResult> Scan(const ModelRange& range, Timestamp read_timestamp, size_t limit) const;
  Result<HistoryResult> History(std::string_view key, std::optional<Timestamp> from,
                                std::optional<Timestamp> to, size_t limit) const;
  Result<ChangesResult> Changes(Timestamp since, const ModelRange& range, size_t limit) const;

  // Full sweep at max(current horizon, horizon); counts as one gc run. Also
  // what a RaiseHorizon plus CompactStep calls up to sweep_finished must
  // amount to, removals and stats included.
  CompactResult Compact(Timestamp horizon);

  StoreStats GetStats() const;
  Timestamp compaction_horizon() const { return horizon_; }
  std::optional<Timestamp> max_timestamp() const { return max_timestamp_; }

  // Keys that currently have at least one stored version, ascending.
  std::vector<std::string> Keys() const;

 private:
  struct Version {
    Timestamp timestamp;
    uint64_t version;
    bool deleted;
    std::string value;
  };
  struct KeyState {
    std::vector<Version> versions;  // arrival order
    uint64_t writes = 0;            // successful writes while the key existed
  };

  Result<WriteResult> Write(std::string_view key, std::optional<std::string_view> value,
                            Timestamp timestamp);
  // The newest version of `state` at or below `timestamp`, or nullptr.
  static const Version* VersionAt(const KeyState& state, Timestamp timestamp);
  bool BelowHorizon(Timestamp read_timestamp) const { return read_timestamp < horizon_; }

  StoreOptions options_;
  // std::string orders by unsigned bytes (char_traits<char>::compare is
  // memcmp), which is exactly the engine's key order.
  std::map<std::string, KeyState> keys_;
  Timestamp horizon_;
  std::optional<Timestamp> max_timestamp_;
  uint64_t gc_runs_ = 0;
  uint64_t gc_versions_removed_ = 0;
  uint64_t gc_bytes_reclaimed_ = 0;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_ENGINE_REFERENCE_STORE_H_
