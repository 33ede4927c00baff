// The crash test's bookkeeping and its checker.
//
// CrashModel is what the client knows about the store: every version whose
// write was acknowledged (or observed by an acknowledged read), and every
// request that was sent but not answered when the node was killed. After a
// restart, CheckRecovery compares that knowledge with the recovered state
// (every key's full history plus mvcc_stats) and returns one sentence per
// violation. It does no I/O, so what it demands is readable in one place.
//
// Identifying versions: every value the workload writes is unique (it names
// the cycle and the request), so a recovered version is traced back to the
// request that wrote it by its value alone; a tombstone by (key, timestamp),
// since raw deletes are the only deletes the workload sends.
#ifndef STRATA_TESTS_DURABILITY_CRASH_MODEL_H_
#define STRATA_TESTS_DURABILITY_CRASH_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace strata::testing {

// One stored version of a key. `value` is canonical JSON (empty for a
// tombstone); `version` 0 means "not known yet" (a transaction's write: its
// commit reply carries no version numbers; recovery reveals them).
struct StoredVersion {
  bool deleted = false;
  std::string value;
  int64_t version = 0;
};

// Key (JSON text, e.g. `3` or `"k3"`) -> timestamp -> version.
using KeyHistory = std::map<int64_t, StoredVersion>;
using StoreHistory = std::map<std::string, KeyHistory>;

// What compaction to `horizon` leaves of `history` (PROTOCOL.md section 3):
// per key, everything above the horizon plus the newest version at or below
// it, unless that one is a delete; a key left with nothing is forgotten.
void ApplyCompaction(StoreHistory* history, int64_t horizon);

// `text` cut to about `limit` characters ("...(12345 bytes)" marks a cut):
// values may be 100 KB long, messages should stay readable.
std::string Abbreviate(const std::string& text, size_t limit = 60);

// "key 3 at 120: put "r4-17" (version 2)" style description for messages.
std::string Describe(const std::string& key, int64_t timestamp, const StoredVersion& version);
std::string DescribeHistory(const StoreHistory& history, const std::string& key);

// A raw mvcc_put / mvcc_delete that was sent and not answered.
struct UnackedRawWrite {
  std::string key;
  int64_t timestamp = 0;
  bool deleted = false;
  std::string value;  // canonical JSON; empty for a delete
  std::string request;
};

// A transaction whose txn_commit was sent and not answered: it may have
// committed (all of `writes` at one timestamp above `start`) or not (none).
struct UnackedCommit {
  int64_t txn_id = 0;
  int64_t start = 0;
  std::vector<std::pair<std::string, std::string>> writes;  // key, canonical value
};

struct CrashModel {
  // Every version known to exist, with the compactions acknowledged so far
  // already applied (ApplyCompaction), as the node must have it.
  StoreHistory known;
  // The highest horizon an acknowledged mvcc_compact reported, and the
  // highest timestamp any mvcc_compact (answered or not) asked for: the
  // recovered horizon must lie between them.
  int64_t acked_horizon = 0;
  int64_t max_compact_requested = 0;
  // The highest timestamp the node acknowledged or handed out: raw write
  // timestamps it confirmed, txn start and commit timestamps. Recovery's
  // oracle must stay above it.
  int64_t max_acked_timestamp = 0;
  // The highest timestamp of an acknowledged write (mvcc_stats
  // max_timestamp, "highest timestamp ever written", must not be below it).
  int64_t max_acked_write = 0;
  std::vector<UnackedRawWrite> unacked_raw;
  std::vector<UnackedCommit> unacked_commits;
  // Values of writes that must never become visible: transactions that got
  // a conflict or were still open at the crash, raw writes that failed.
  // value -> what it was.
  std::map<std::string, std::string> never_visible;
  // Every value written before this cycle or acknowledged in it, with where
  // it went, to explain a version that turns up somewhere else.
  std::map<std::string, std::string> origin;
};

// What the restarted node reports.
struct RecoveredState {
  StoreHistory history;  // every key's mvcc_history (all pages)
  int64_t horizon = 0;   // mvcc_stats compaction_horizon
  std::optional<int64_t> max_timestamp;
  int64_t keys = 0, versions = 0, tombstones = 0, active_txns = 0;
  bool min_active_snapshot_null = true;
  bool wal_failure_null = true;
};

// Every way `recovered` contradicts `model`, one sentence each (empty: the
// recovery is correct). Covers: acknowledged versions lost or changed
// (value, tombstone, version number), the horizon going backwards or
// beyond any request, unanswered raw writes that appear changed or
// elsewhere, transactions visible in part or at several timestamps,
// versions nobody wrote, version numbers that are not consecutive, and
// mvcc_stats disagreeing with the histories.
std::vector<std::string> CheckRecovery(const CrashModel& model, const RecoveredState& recovered);

}  // namespace strata::testing

#endif  // STRATA_TESTS_DURABILITY_CRASH_MODEL_H_
