// CrashDriver: the kill-and-recover loop of the durability crash test.
//
// One cycle: start strata-node on the data directory (recovering whatever
// the previous incarnation left), check the recovered state against what
// the client knows (CheckRecovery plus the oracle and stale-transaction
// rules), then stream a random pipelined workload and SIGKILL the node at a
// random moment with requests in flight. The next cycle continues from the
// recovered state, so crashes also land on a store that was itself
// recovered, during checkpoints, and during recovery.
//
// The workload is built so that every request's outcome is predictable
// except for the crash itself:
//  - raw writes use strictly increasing timestamps above every timestamp
//    the node may have handed out (so they never land under a live
//    snapshot, and per key arrival order equals timestamp order: surviving
//    version numbers must be consecutive);
//  - mvcc_compact asks for a timestamp below every unanswered write, so an
//    acknowledged compaction's effect on the known versions is exact;
//  - every value written is unique, so a recovered version names the
//    request that wrote it.
#ifndef STRATA_TESTS_DURABILITY_CRASH_DRIVER_H_
#define STRATA_TESTS_DURABILITY_CRASH_DRIVER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "crash_model.h"
#include "node_connection.h"

namespace strata::testing {

struct CrashRunOptions {
  std::string sync = "batch";  // --sync always|batch|none
  int checkpoint_log_mb = 0;   // --checkpoint-log-mb (0: never automatically)
  int kills = 20;
  uint64_t seed = 1;
  // Requests per cycle before the kill, drawn uniformly.
  int min_requests = 30;
  int max_requests = 2000;
  // One value in ten is long, up to this size: the log must grow past
  // --checkpoint-log-mb within one incarnation for checkpoints to happen.
  size_t max_value_bytes = 24000;
  // Most requests in flight at once (pipelining depth).
  int window = 48;
};

// What a run did, printed at the end so that a passing run shows it tested
// something (e.g. that unanswered writes were both kept and dropped).
struct CrashRunSummary {
  int kills = 0;
  int kills_during_recovery = 0;
  int64_t requests = 0;
  int64_t acked_writes = 0;          // raw writes and transaction writes
  int64_t unacked_raw_kept = 0;      // unanswered at the kill, recovered
  int64_t unacked_raw_dropped = 0;   // unanswered at the kill, gone
  int64_t unacked_commits_kept = 0;  // unanswered commits recovered whole
  int64_t unacked_commits_dropped = 0;
  int64_t commits = 0, conflicts = 0, compactions = 0;
  int64_t checkpoints = 0;         // summed over incarnations (mvcc_stats)
  int64_t max_wal_bytes = 0;       // most log bytes one incarnation appended (mvcc_stats)
  int kills_after_checkpoint = 0;  // kills of an incarnation that had written one
  // mvcc_get replies that showed a write whose own reply had not come yet
  // (it must survive the kill as if acknowledged).
  int64_t reads_of_unanswered = 0;
  std::chrono::milliseconds elapsed{0};
};

class CrashDriver {
 public:
  CrashDriver(CrashRunOptions options, std::string data_dir);
  ~CrashDriver();

  // Runs options.kills crash cycles, then one last recovery check. Reports
  // failures through GoogleTest (each names the kill number and the seed)
  // and stops after the first cycle that had one.
  void Run();
  const CrashRunSummary& summary() const { return summary_; }

 private:
  // What an unanswered request was; the map from msg_id holds these.
  enum class Kind { kRawWrite, kBegin, kTxnPut, kCommit, kCompact, kGet, kStats };
  struct Pending {
    Kind kind;
    size_t index = 0;       // into raw_ or txns_; for kGet the key index
    int64_t timestamp = 0;  // kCompact: requested timestamp
  };
  struct RawWrite {
    std::string key;
    int64_t timestamp = 0;
    bool deleted = false;
    std::string value;  // canonical JSON
    std::string request;
    bool answered = false;
  };
  struct TxnRecord {
    int64_t id = -1, start = -1;
    bool abandoned = false;  // left open on purpose: must be gone after the crash
    bool commit_sent = false, finished = false;
    int64_t sent_after_clock = 0;  // the client clock when its begin was sent
    std::vector<std::pair<std::string, std::string>> writes;  // key, canonical value
  };

  // The node's command line; with --sync batch a random --sync-delay-us.
  std::vector<std::string> NodeArgs();
  // Starts the node and checks the recovered state; false on failure.
  bool Recover();
  // Fetches every key's full history and mvcc_stats.
  RecoveredState ReadRecoveredState();
  // mvcc_get, mvcc_scan and mvcc_changes agree with the histories.
  void CheckReadPaths(const RecoveredState& state);
  // Check 4 and the stale-transaction rule, then adopts the recovered state.
  void CheckFreshTimestamps(const RecoveredState& state);
  void AdoptRecoveredState(const RecoveredState& state);

  // Streams the workload, then kills the node at a random moment.
  void RunWorkload();
  void QueueRandomRequest();
  void QueueRawWrite(bool deleted);
  void QueueBegin(bool abandoned);
  void QueueTxnWrites(size_t txn);
  void QueueCompact();
  // Handles the replies that arrive (waiting up to `first_timeout` for the
  // first), then sends what they triggered; false after a failure.
  bool PumpReplies(std::chrono::milliseconds first_timeout);
  // Polls mvcc_stats until the node reports one more checkpoint.
  void AwaitCheckpoint(std::chrono::milliseconds limit);
  void HandleReply(const JsonValue& body);
  void LearnFromRead(size_t key_index, const JsonValue& reply);
  void Crash();
  // Turns the requests still unanswered at the kill into model entries.
  void RecordUnanswered();

  // A fresh unique value (canonical JSON) of random size.
  std::string NewValue(std::string_view tag);
  int64_t NextRawTimestamp();
  void Observe(int64_t timestamp) { clock_ = std::max(clock_, timestamp); }
  std::string Where() const;  // "kill #3 (seed 42, sync batch)"

  const CrashRunOptions options_;
  const std::string data_dir_;
  std::mt19937_64 rng_;
  std::vector<std::string> keys_;  // JSON texts
  std::unique_ptr<NodeConnection> node_;
  int kill_number_ = 0;
  int sync_delay_us_ = 0;
  int64_t value_counter_ = 0;

  // Client clock: the highest timestamp sent or learned; raw writes go above.
  int64_t clock_ = 0;
  int64_t oracle_requests_in_flight_ = 0;  // begins and commits unanswered
  CrashModel model_;
  std::vector<int64_t> open_at_crash_;  // txn ids, to check they are gone

  // This cycle's requests.
  std::map<int64_t, Pending> pending_;
  std::vector<RawWrite> raw_;
  std::vector<TxnRecord> txns_;
  std::map<std::string, size_t> raw_by_value_;
  std::map<std::string, size_t> txn_by_value_;
  std::vector<int64_t> recent_raw_timestamps_;
  int64_t requests_this_cycle_ = 0;
  int64_t checkpoints_this_incarnation_ = 0;
  // Set at the kill: replies read afterwards must not queue more requests.
  bool crashed_ = false;

  CrashRunSummary summary_;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_DURABILITY_CRASH_DRIVER_H_
