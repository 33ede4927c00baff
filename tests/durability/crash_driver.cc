#include "crash_driver.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <numeric>
#include <sstream>
#include <thread>

namespace strata::testing {
namespace {

using std::chrono::milliseconds;

constexpr size_t kKeys = 32;
constexpr size_t kRawKeys = 20;
constexpr size_t kTxnKeys = 20;

std::string StatusText(std::optional<int> status) {
  if (!status) return "no exit within the timeout";
  if (WIFEXITED(*status)) return "exit status " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return "killed by signal " + std::to_string(WTERMSIG(*status));
  return "wait status " + std::to_string(*status);
}

// Highest timestamp of any stored version.
int64_t MaxTimestamp(const StoreHistory& history) {
  int64_t highest = 0;
  for (const auto& [key, versions] : history) {
    if (!versions.empty()) highest = std::max(highest, versions.rbegin()->first);
  }
  return highest;
}

}  // namespace

CrashDriver::CrashDriver(CrashRunOptions options, std::string data_dir)
    : options_(std::move(options)), data_dir_(std::move(data_dir)), rng_(options_.seed) {
  // A small key set, so that keys collect many versions, transactions
  // collide with raw writes, and compaction has work; integers and strings,
  // since the two encode differently.
  for (size_t i = 0; i < kKeys / 2; ++i) keys_.push_back(std::to_string(i * 7));
  for (size_t i = kKeys / 2; i < kKeys; ++i) keys_.push_back(QuoteJson("key-" + std::to_string(i)));
}

CrashDriver::~CrashDriver() = default;

std::vector<std::string> CrashDriver::NodeArgs() {
  std::vector<std::string> args = {"--data-dir",
                                   data_dir_,
                                   "--sync",
                                   options_.sync,
                                   "--checkpoint-log-mb",
                                   std::to_string(options_.checkpoint_log_mb)};
  if (options_.sync == "batch") {
    // Each incarnation groups differently: no wait at all, the default
    // ~1 ms, or long enough that many requests share a sync.
    static constexpr int kDelays[] = {0, 100, 1000, 3000};
    sync_delay_us_ = kDelays[rng_() % std::size(kDelays)];
    args.insert(args.end(), {"--sync-delay-us", std::to_string(sync_delay_us_)});
  }
  return args;
}

std::string CrashDriver::Where() const {
  std::ostringstream out;
  out << "kill #" << kill_number_ << " of " << options_.kills << " (seed " << options_.seed
      << ", --sync " << options_.sync << ", --checkpoint-log-mb " << options_.checkpoint_log_mb
      << (options_.sync == "batch" ? ", --sync-delay-us " + std::to_string(sync_delay_us_) : "")
      << "; replay with STRATA_CRASH_SEED=" << options_.seed
      << " STRATA_CRASH_KILLS=" << options_.kills << "; data dir " << data_dir_ << ")";
  return out.str();
}

void CrashDriver::Run() {
  const auto started = std::chrono::steady_clock::now();
  for (;;) {
    SCOPED_TRACE("after " + Where());
    if (!Recover() || kill_number_ == options_.kills) break;
    ++kill_number_;
    RunWorkload();
    if (::testing::Test::HasFailure()) break;
  }
  if (node_ != nullptr && !::testing::Test::HasFailure()) {
    // The last incarnation ends cleanly: end of input, exit status 0.
    std::optional<int> status = node_->process().WaitForExit(NodeConnection::kTimeout);
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "node did not exit cleanly at end of input: " << StatusText(status) << "; stderr:\n"
        << node_->process().StderrTail();
  }
  summary_.elapsed =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
}

// ---------------------------------------------------------------------------
// Recovery

bool CrashDriver::Recover() {
  // Now and then the node is killed again while it recovers (before it
  // even gets init): recovery itself must be crash-safe.
  if (kill_number_ > 0 && std::uniform_int_distribution<int>(0, 9)(rng_) == 0) {
    NodeConnection victim(NodeArgs());
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20000)(rng_)));
    std::optional<int> status = victim.Kill();
    if (status && WIFEXITED(*status)) {
      ADD_FAILURE() << "the node exited by itself while recovering (" << StatusText(status)
                    << "); stderr:\n"
                    << victim.process().StderrTail();
      return false;
    }
    ++summary_.kills_during_recovery;
  }

  node_ = std::make_unique<NodeConnection>(NodeArgs());
  JsonValue init = node_->Call(R"({"type":"init","node_id":"n1","node_ids":["n1"]})");
  if (init["type"].String() != "init_ok") {
    ADD_FAILURE() << "restart on " << data_dir_ << " failed: reply to init " << init.Canonical()
                  << "; stderr:\n"
                  << node_->process().StderrTail();
    return false;
  }
  checkpoints_this_incarnation_ = 0;

  // Transactions open at the crash are gone (before any new transaction
  // could take their ids).
  for (size_t i = 0; i < open_at_crash_.size() && i < 3; ++i) {
    JsonValue reply =
        node_->Call(R"({"type":"txn_put","txn_id":)" + std::to_string(open_at_crash_[i]) +
                    R"(,"key":"stale","value":1})");
    EXPECT_EQ(reply["code"].Int(), 14)
        << "transaction " << open_at_crash_[i]
        << " was open at the crash; after the restart txn_put naming it must be error 14, got "
        << reply.Canonical();
  }

  const RecoveredState state = ReadRecoveredState();
  for (const std::string& problem : CheckRecovery(model_, state)) {
    ADD_FAILURE() << problem;
  }
  CheckReadPaths(state);
  CheckFreshTimestamps(state);
  AdoptRecoveredState(state);
  return !::testing::Test::HasFailure();
}

RecoveredState CrashDriver::ReadRecoveredState() {
  RecoveredState state;
  JsonValue stats = node_->CallOk(R"({"type":"mvcc_stats"})", "mvcc_stats_ok");
  for (const char* field :
       {"wal_appended_lsn", "wal_durable_lsn", "wal_syncs", "checkpoints", "wal_failure"}) {
    EXPECT_TRUE(stats[field].valid())
        << "mvcc_stats with --data-dir lacks " << field << ": " << stats.Canonical();
  }
  state.horizon = stats["compaction_horizon"].Int().value_or(-1);
  state.max_timestamp = stats["max_timestamp"].Int();
  state.keys = stats["keys"].Int().value_or(-1);
  state.versions = stats["versions"].Int().value_or(-1);
  state.tombstones = stats["tombstones"].Int().value_or(-1);
  state.active_txns = stats["active_txns"].Int().value_or(-1);
  state.min_active_snapshot_null = stats["min_active_snapshot"].IsNull();
  state.wal_failure_null = stats["wal_failure"].IsNull();
  checkpoints_this_incarnation_ = stats["checkpoints"].Int().value_or(0);

  for (const std::string& key : keys_) {
    // Without start_timestamp the history starts at the oldest surviving
    // version (which may be at or below the horizon); later pages start
    // just above the last timestamp seen.
    std::optional<int64_t> next_start;
    for (;;) {
      std::string body = R"({"type":"mvcc_history","key":)" + key + R"(,"limit":10000)";
      if (next_start) body += R"(,"start_timestamp":)" + std::to_string(*next_start);
      body += "}";
      JsonValue reply = node_->CallOk(body, "mvcc_history_ok");
      JsonValue versions = reply["versions"];
      if (!versions.valid()) break;
      for (size_t i = 0; i < versions.size(); ++i) {
        JsonValue entry = versions[i];
        StoredVersion version;
        version.version = entry["version"].Int().value_or(-1);
        version.deleted = entry["deleted"].Bool().value_or(false);
        if (!version.deleted) version.value = entry["value"].Canonical();
        const int64_t timestamp = entry["timestamp"].Int().value_or(-1);
        state.history[key][timestamp] = version;
        next_start = timestamp + 1;
      }
      if (reply["more"].Bool() != true || versions.size() == 0) break;
    }
  }
  return state;
}

void CrashDriver::CheckReadPaths(const RecoveredState& state) {
  // Recovery rebuilds several structures (the hash index for point reads,
  // the ordered index for scans, the version arrays behind history and
  // changes); all must describe the same recovered versions.
  std::map<std::string, std::string> newest;  // key -> canonical (value, version, as_of)
  for (const auto& [key, versions] : state.history) {
    if (versions.empty()) continue;
    const auto& [timestamp, version] = *versions.rbegin();
    newest[key] = (version.deleted ? "<deleted>" : version.value) + " v" +
                  std::to_string(version.version) + "@" + std::to_string(timestamp);
  }
  for (const std::string& key : keys_) {
    JsonValue reply = node_->CallOk(R"({"type":"mvcc_get","key":)" + key + "}", "mvcc_get_ok");
    std::string got = "<none>";
    if (reply["as_of_timestamp"].Int()) {
      got = (reply["deleted"].Bool() == true ? "<deleted>" : reply["value"].Canonical()) + " v" +
            std::to_string(reply["version"].Int().value_or(-1)) + "@" +
            std::to_string(*reply["as_of_timestamp"].Int());
    }
    const auto want = newest.find(key);
    EXPECT_EQ(got, want == newest.end() ? "<none>" : want->second)
        << "after recovery mvcc_get of " << key << " disagrees with its mvcc_history "
        << DescribeHistory(state.history, key);
  }

  std::set<std::string> scanned;
  JsonValue scan = node_->CallOk(R"({"type":"mvcc_scan","limit":10000})", "mvcc_scan_ok");
  for (size_t i = 0; i < scan["items"].size(); ++i) {
    JsonValue item = scan["items"][i];
    scanned.insert(item["key"].Canonical() + "=" + item["value"].Canonical() + " v" +
                   std::to_string(item["version"].Int().value_or(-1)) + "@" +
                   std::to_string(item["as_of_timestamp"].Int().value_or(-1)));
  }
  std::set<std::string> visible;
  for (const auto& [key, description] : newest) {
    if (description.rfind("<deleted>", 0) != 0) visible.insert(key + "=" + description);
  }
  EXPECT_EQ(scanned, visible) << "after recovery mvcc_scan disagrees with the histories";

  // Every version above the horizon, once, in mvcc_changes; pages are cut
  // between timestamps (a transaction's versions share one), so a cut
  // page is re-read from its last complete timestamp.
  std::set<std::string> changes;
  int64_t since = state.horizon;
  for (;;) {
    JsonValue reply = node_->CallOk(
        R"({"type":"mvcc_changes","limit":10000,"since_timestamp":)" + std::to_string(since) + "}",
        "mvcc_changes_ok");
    JsonValue page = reply["changes"];
    const bool more = reply["more"].Bool() == true && page.size() > 0;
    const int64_t last = more ? page[page.size() - 1]["timestamp"].Int().value_or(0) : 0;
    for (size_t i = 0; i < page.size(); ++i) {
      JsonValue change = page[i];
      const int64_t timestamp = change["timestamp"].Int().value_or(-1);
      if (more && timestamp == last) break;
      changes.insert(
          change["key"].Canonical() + "@" + std::to_string(timestamp) + " v" +
          std::to_string(change["version"].Int().value_or(-1)) + "=" +
          (change["deleted"].Bool() == true ? "<deleted>" : change["value"].Canonical()));
    }
    if (!more || last - 1 <= since) break;
    since = last - 1;
  }
  std::set<std::string> expected;
  for (const auto& [key, versions] : state.history) {
    for (auto it = versions.upper_bound(state.horizon); it != versions.end(); ++it) {
      expected.insert(key + "@" + std::to_string(it->first) + " v" +
                      std::to_string(it->second.version) + "=" +
                      (it->second.deleted ? "<deleted>" : it->second.value));
    }
  }
  if (changes != expected) {
    std::vector<std::string> missing, extra;
    std::set_difference(expected.begin(), expected.end(), changes.begin(), changes.end(),
                        std::back_inserter(missing));
    std::set_difference(changes.begin(), changes.end(), expected.begin(), expected.end(),
                        std::back_inserter(extra));
    ADD_FAILURE() << "after recovery mvcc_changes since the horizon " << state.horizon
                  << " disagrees with the histories: " << missing.size()
                  << " versions missing (first: "
                  << (missing.empty() ? "-" : Abbreviate(missing.front(), 120)) << "), "
                  << extra.size()
                  << " extra (first: " << (extra.empty() ? "-" : Abbreviate(extra.front(), 120))
                  << ")";
  }
}

void CrashDriver::CheckFreshTimestamps(const RecoveredState& state) {
  JsonValue begin = node_->CallOk(R"({"type":"txn_begin","isolation":"snapshot"})", "txn_begin_ok");
  const int64_t start = begin["start_timestamp"].Int().value_or(-1);
  const int64_t id = begin["txn_id"].Int().value_or(-1);
  const int64_t bound = std::max(
      {model_.max_acked_timestamp, MaxTimestamp(state.history), state.max_timestamp.value_or(0)});
  EXPECT_GT(start, bound)
      << "TIMESTAMP REUSE: the first txn_begin after the restart returned start_timestamp " << start
      << ", not above " << bound
      << " (highest timestamp acknowledged or handed out before the crash: "
      << model_.max_acked_timestamp
      << "; highest recovered version: " << MaxTimestamp(state.history) << ")";
  // Whether a new transaction may reuse an id an earlier incarnation
  // handed out is checked by DurabilityTest.TxnIdsAreNotReusedAfterRestart;
  // here only the stale ids checked in Recover() (before this begin) count.
  model_.max_acked_timestamp = std::max(model_.max_acked_timestamp, start);
  Observe(start);
  node_->CallOk(R"({"type":"txn_abort","txn_id":)" + std::to_string(id) + "}", "txn_abort_ok");
}

void CrashDriver::AdoptRecoveredState(const RecoveredState& state) {
  // Unanswered writes the crash dropped must stay dropped forever.
  for (const UnackedRawWrite& write : model_.unacked_raw) {
    const auto key = state.history.find(write.key);
    const bool kept = key != state.history.end() && key->second.count(write.timestamp) != 0;
    ++(kept ? summary_.unacked_raw_kept : summary_.unacked_raw_dropped);
    if (!kept && !write.deleted) {
      model_.never_visible[write.value] = "unanswered " + Abbreviate(write.request, 200) +
                                          ", dropped by kill #" + std::to_string(kill_number_);
    }
  }
  for (const UnackedCommit& txn : model_.unacked_commits) {
    bool kept = false;
    for (const auto& [key, value] : txn.writes) {
      const auto versions = state.history.find(key);
      if (versions == state.history.end()) continue;
      for (const auto& [timestamp, version] : versions->second) kept |= version.value == value;
    }
    ++(kept ? summary_.unacked_commits_kept : summary_.unacked_commits_dropped);
    if (!kept) {
      for (const auto& [key, value] : txn.writes) {
        model_.never_visible[value] = "transaction " + std::to_string(txn.txn_id) +
                                      " (commit unanswered, dropped by kill #" +
                                      std::to_string(kill_number_) + ")";
      }
    }
  }

  // From here on the recovered state is the truth the next cycle builds on.
  model_.known = state.history;
  model_.acked_horizon = std::max(model_.acked_horizon, state.horizon);
  model_.max_compact_requested = std::max(model_.max_compact_requested, state.horizon);
  model_.unacked_raw.clear();
  model_.unacked_commits.clear();
  for (const auto& [key, versions] : state.history) {
    for (const auto& [timestamp, version] : versions) {
      if (!version.deleted) model_.origin.emplace(version.value, Describe(key, timestamp, version));
    }
  }
  const int64_t recovered_max =
      std::max(MaxTimestamp(state.history), state.max_timestamp.value_or(0));
  model_.max_acked_timestamp = std::max(model_.max_acked_timestamp, recovered_max);
  Observe(recovered_max);
  Observe(state.horizon);

  pending_.clear();
  raw_.clear();
  txns_.clear();
  raw_by_value_.clear();
  txn_by_value_.clear();
  recent_raw_timestamps_.clear();
  open_at_crash_.clear();
  oracle_requests_in_flight_ = 0;
  crashed_ = false;
}

// ---------------------------------------------------------------------------
// Workload

std::string CrashDriver::NewValue(std::string_view tag) {
  // Unique by construction: the kill number and a counter.
  std::string id = "c" + std::to_string(kill_number_) + "-" + std::string(tag) +
                   std::to_string(++value_counter_);
  // Mostly short values (stored inline), some long ones (stored as blobs,
  // and they make the log grow so that checkpoints and segment roll-over
  // happen within the run).
  const int size_class = std::uniform_int_distribution<int>(0, 99)(rng_);
  size_t pad = 0;
  if (size_class >= 90) {
    pad = std::uniform_int_distribution<size_t>(1000, options_.max_value_bytes)(rng_);
  } else if (size_class >= 65) {
    pad = std::uniform_int_distribution<size_t>(10, 200)(rng_);
  }
  // 64 random letters repeated: contents do not matter, only size.
  std::string pattern(64, 'x');
  for (char& c : pattern) c = static_cast<char>('a' + rng_() % 26);
  std::string padding;
  while (padding.size() < pad) padding += pattern;
  padding.resize(pad);
  std::string text = std::uniform_int_distribution<int>(0, 4)(rng_) == 0
                         ? R"({"id":)" + QuoteJson(id) + R"(,"pad":)" + QuoteJson(padding) + "}"
                         : QuoteJson(id + (pad ? "-" + padding : ""));
  return CanonicalJson(text);
}

int64_t CrashDriver::NextRawTimestamp() {
  // Every unanswered begin or commit may take one oracle timestamp above
  // what the client knows; a raw write must stay above all of them (a raw
  // write at or below a live snapshot is refused).
  const int64_t timestamp =
      clock_ + 2 * oracle_requests_in_flight_ + std::uniform_int_distribution<int64_t>(1, 20)(rng_);
  Observe(timestamp);
  return timestamp;
}

void CrashDriver::QueueRawWrite(bool deleted) {
  RawWrite write;
  write.key = keys_[rng_() % kRawKeys];
  write.timestamp = NextRawTimestamp();
  write.deleted = deleted;
  if (deleted) {
    write.request = R"({"type":"mvcc_delete","key":)" + write.key + R"(,"timestamp":)" +
                    std::to_string(write.timestamp) + "}";
  } else {
    write.value = NewValue("r");
    write.request = R"({"type":"mvcc_put","key":)" + write.key + R"(,"value":)" + write.value +
                    R"(,"timestamp":)" + std::to_string(write.timestamp) + "}";
    raw_by_value_[write.value] = raw_.size();
  }
  recent_raw_timestamps_.push_back(write.timestamp);
  pending_[node_->Queue(write.request)] = {Kind::kRawWrite, raw_.size(), write.timestamp};
  raw_.push_back(std::move(write));
  ++requests_this_cycle_;
}

void CrashDriver::QueueBegin(bool abandoned) {
  TxnRecord txn;
  txn.abandoned = abandoned;
  pending_[node_->Queue(R"({"type":"txn_begin","isolation":"snapshot"})")] = {Kind::kBegin,
                                                                              txns_.size()};
  txns_.push_back(std::move(txn));
  ++oracle_requests_in_flight_;
  ++requests_this_cycle_;
}

void CrashDriver::QueueTxnWrites(size_t index) {
  TxnRecord& txn = txns_[index];
  // Transactions write the last kTxnKeys keys; raw writes the first
  // kRawKeys. The overlap gives conflicts, the rest commits.
  std::vector<size_t> order(kTxnKeys);
  std::iota(order.begin(), order.end(), keys_.size() - kTxnKeys);
  std::shuffle(order.begin(), order.end(), rng_);
  const size_t count = std::uniform_int_distribution<size_t>(2, 4)(rng_);
  const std::string id = std::to_string(txn.id);
  for (size_t i = 0; i < count; ++i) {
    const std::string& key = keys_[order[i]];
    std::string value = NewValue("t" + id + "-");
    txn_by_value_[value] = index;
    pending_[node_->Queue(R"({"type":"txn_put","txn_id":)" + id + R"(,"key":)" + key +
                          R"(,"value":)" + value + "}")] = {Kind::kTxnPut, index};
    txn.writes.emplace_back(key, std::move(value));
  }
  // The commit follows its puts in the same write: the node may group all
  // of them, and other clients' requests, into one log sync.
  pending_[node_->Queue(R"({"type":"txn_commit","txn_id":)" + id + "}")] = {Kind::kCommit, index};
  txn.commit_sent = true;
  ++oracle_requests_in_flight_;
  requests_this_cycle_ += static_cast<int64_t>(count) + 1;
}

void CrashDriver::QueueCompact() {
  // Below every unanswered write and every commit in flight (their commit
  // timestamps are above their starts), so that the acknowledged horizon's
  // effect on what the client knows is exact; and lagging behind the
  // newest writes, so that acknowledged versions above it remain to check.
  if (recent_raw_timestamps_.size() < 10) return;
  int64_t low = clock_ + 1;
  for (const auto& [msg_id, pending] : pending_) {
    if (pending.kind == Kind::kRawWrite) low = std::min(low, pending.timestamp);
    if (pending.kind == Kind::kCommit) low = std::min(low, txns_[pending.index].start);
  }
  const size_t lag = std::uniform_int_distribution<size_t>(
      5, std::min<size_t>(200, recent_raw_timestamps_.size() - 1))(rng_);
  const int64_t timestamp =
      std::min(recent_raw_timestamps_[recent_raw_timestamps_.size() - 1 - lag], low - 1);
  if (timestamp <= model_.max_compact_requested) return;
  model_.max_compact_requested = timestamp;
  pending_[node_->Queue(R"({"type":"mvcc_compact","timestamp":)" + std::to_string(timestamp) +
                        "}")] = {Kind::kCompact, 0, timestamp};
  ++requests_this_cycle_;
}

void CrashDriver::QueueRandomRequest() {
  const int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
  if (roll < 50) {
    QueueRawWrite(/*deleted=*/false);
  } else if (roll < 60) {
    QueueRawWrite(/*deleted=*/true);
  } else if (roll < 82) {
    QueueBegin(/*abandoned=*/false);
  } else if (roll < 84) {
    QueueBegin(/*abandoned=*/true);
  } else if (roll < 94) {
    // Reads: a reply may show a write whose own reply has not come yet;
    // it must then be durable too.
    const size_t key = rng_() % keys_.size();
    pending_[node_->Queue(R"({"type":"mvcc_get","key":)" + keys_[key] + "}")] = {Kind::kGet, key};
    ++requests_this_cycle_;
  } else if (roll < 98) {
    QueueCompact();
  } else {
    pending_[node_->Queue(R"({"type":"mvcc_stats"})")] = {Kind::kStats};
    ++requests_this_cycle_;
  }
}

void CrashDriver::RunWorkload() {
  requests_this_cycle_ = 0;
  const int64_t target =
      std::uniform_int_distribution<int64_t>(options_.min_requests, options_.max_requests)(rng_);
  // The checkpointer looks at the log's size only now and then (about every
  // 100 ms), while a cycle's requests take about as long: with automatic
  // checkpoints, half the cycles pause once so that one can start, and
  // the workload (and maybe the kill) runs into it.
  int64_t pause_at = -1;
  if (options_.checkpoint_log_mb > 0 && rng_() % 2 == 0) {
    pause_at = std::uniform_int_distribution<int64_t>(target / 2, target)(rng_);
  }
  constexpr size_t kMaxBatch = 12;
  while (requests_this_cycle_ < target && !::testing::Test::HasFailure()) {
    if (pause_at >= 0 && requests_this_cycle_ >= pause_at) {
      pause_at = -1;
      std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(80, 250)(rng_)));
    }
    if (pending_.size() + kMaxBatch <= static_cast<size_t>(options_.window)) {
      const size_t batch = std::uniform_int_distribution<size_t>(1, kMaxBatch)(rng_);
      for (size_t i = 0; i < batch; ++i) QueueRandomRequest();
      if (!node_->Flush()) {
        ADD_FAILURE() << "node stopped accepting requests; stderr:\n"
                      << node_->process().StderrTail();
        return;
      }
      PumpReplies(milliseconds(0));
    } else if (!PumpReplies(NodeConnection::kTimeout)) {
      return;
    }
  }
  Crash();
}

void CrashDriver::AwaitCheckpoint(milliseconds limit) {
  const int64_t before = checkpoints_this_incarnation_;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (checkpoints_this_incarnation_ == before && std::chrono::steady_clock::now() < deadline &&
         !::testing::Test::HasFailure()) {
    pending_[node_->Queue(R"({"type":"mvcc_stats"})")] = {Kind::kStats};
    if (!node_->Flush() || !PumpReplies(NodeConnection::kTimeout)) return;
    std::this_thread::sleep_for(milliseconds(2));
  }
}

bool CrashDriver::PumpReplies(milliseconds first_timeout) {
  std::optional<JsonValue> reply = node_->Poll(first_timeout);
  if (!reply) {
    if (first_timeout.count() == 0) return true;
    ADD_FAILURE() << "no reply within " << first_timeout.count() << " ms with " << pending_.size()
                  << " requests in flight; stderr:\n"
                  << node_->process().StderrTail();
    return false;
  }
  for (; reply; reply = node_->Poll(milliseconds(0))) HandleReply(*reply);
  // Transactions whose begin was just answered queued their writes.
  if (node_->queued_bytes() > 0 && !crashed_ && !node_->Flush()) {
    ADD_FAILURE() << "node stopped accepting requests; stderr:\n" << node_->process().StderrTail();
    return false;
  }
  return true;
}

void CrashDriver::HandleReply(const JsonValue& body) {
  const std::optional<int64_t> in_reply_to = body["in_reply_to"].Int();
  auto found = in_reply_to ? pending_.find(*in_reply_to) : pending_.end();
  if (found == pending_.end()) {
    ADD_FAILURE() << "reply to no request in flight: " << body.Canonical();
    return;
  }
  const Pending pending = found->second;
  pending_.erase(found);
  const std::string type = body["type"].String().value_or("");

  switch (pending.kind) {
    case Kind::kRawWrite: {
      RawWrite& write = raw_[pending.index];
      write.answered = true;
      if (type != (write.deleted ? "mvcc_delete_ok" : "mvcc_put_ok")) {
        ADD_FAILURE() << "unexpected reply to " << Abbreviate(write.request, 200) << ": "
                      << Abbreviate(body.Canonical(), 400);
        return;
      }
      const std::optional<int64_t> version = body["version"].Int();
      EXPECT_TRUE(body["timestamp"].Int() == write.timestamp && version && *version >= 1)
          << "reply to " << Abbreviate(write.request, 200) << ": " << body.Canonical();
      model_.known[write.key][write.timestamp] = {write.deleted, write.value, version.value_or(0)};
      if (!write.deleted)
        model_.origin[write.value] = "acknowledged " + Abbreviate(write.request, 200);
      model_.max_acked_timestamp = std::max(model_.max_acked_timestamp, write.timestamp);
      model_.max_acked_write = std::max(model_.max_acked_write, write.timestamp);
      ++summary_.acked_writes;
      return;
    }
    case Kind::kBegin: {
      --oracle_requests_in_flight_;
      TxnRecord& txn = txns_[pending.index];
      if (type != "txn_begin_ok") {
        ADD_FAILURE() << "unexpected reply to txn_begin: " << body.Canonical();
        return;
      }
      txn.id = body["txn_id"].Int().value_or(-1);
      txn.start = body["start_timestamp"].Int().value_or(-1);
      model_.max_acked_timestamp = std::max(model_.max_acked_timestamp, txn.start);
      Observe(txn.start);
      if (!txn.abandoned && !crashed_) QueueTxnWrites(pending.index);
      return;
    }
    case Kind::kTxnPut:
      EXPECT_EQ(type, "txn_put_ok")
          << "transaction " << txns_[pending.index].id << ": " << body.Canonical();
      return;
    case Kind::kCommit: {
      --oracle_requests_in_flight_;
      TxnRecord& txn = txns_[pending.index];
      txn.finished = true;
      if (type == "txn_commit_ok") {
        const int64_t commit = body["commit_timestamp"].Int().value_or(-1);
        EXPECT_GT(commit, txn.start) << "transaction " << txn.id << ": " << body.Canonical();
        for (const auto& [key, value] : txn.writes) {
          auto [slot, inserted] =
              model_.known[key].try_emplace(commit, StoredVersion{false, value, 0});
          EXPECT_TRUE(inserted || slot->second.value == value)
              << "transaction " << txn.id << " committed at " << commit << " where "
              << Describe(key, commit, slot->second) << " already was";
          model_.origin[value] = "write to " + key + " of transaction " + std::to_string(txn.id) +
                                 " acknowledged at commit timestamp " + std::to_string(commit);
        }
        model_.max_acked_timestamp = std::max(model_.max_acked_timestamp, commit);
        model_.max_acked_write = std::max(model_.max_acked_write, commit);
        Observe(commit);
        ++summary_.commits;
        summary_.acked_writes += static_cast<int64_t>(txn.writes.size());
      } else if (type == "error" && body["code"].Int() == 30) {
        // Snapshot isolation: a raw write landed on one of its keys after
        // its start. None of its writes may ever be visible.
        for (const auto& [key, value] : txn.writes) {
          model_.never_visible[value] =
              "transaction " + std::to_string(txn.id) + ", whose commit failed with a conflict";
        }
        ++summary_.conflicts;
      } else {
        ADD_FAILURE() << "unexpected reply to txn_commit of " << txn.id << ": " << body.Canonical();
      }
      return;
    }
    case Kind::kCompact: {
      if (type != "mvcc_compact_ok") {
        ADD_FAILURE() << "unexpected reply to mvcc_compact at " << pending.timestamp << ": "
                      << body.Canonical();
        return;
      }
      const int64_t horizon = body["horizon"].Int().value_or(-1);
      EXPECT_LE(horizon, pending.timestamp) << body.Canonical();
      if (horizon > model_.acked_horizon) {
        model_.acked_horizon = horizon;
        ApplyCompaction(&model_.known, horizon);
      }
      ++summary_.compactions;
      return;
    }
    case Kind::kGet:
      LearnFromRead(pending.index, body);
      return;
    case Kind::kStats:
      EXPECT_EQ(type, "mvcc_stats_ok") << body.Canonical();
      EXPECT_TRUE(body["wal_failure"].IsNull()) << "the log failed: " << body.Canonical();
      checkpoints_this_incarnation_ =
          std::max(checkpoints_this_incarnation_, body["checkpoints"].Int().value_or(0));
      summary_.max_wal_bytes =
          std::max(summary_.max_wal_bytes, body["wal_bytes"].Int().value_or(0));
      return;
  }
}

void CrashDriver::LearnFromRead(size_t key_index, const JsonValue& reply) {
  // A read's reply is sent only once everything it saw is durable, so a
  // write it shows is as good as acknowledged, even if that write's own
  // reply never arrives.
  if (reply["type"].String() != "mvcc_get_ok") {
    ADD_FAILURE() << "unexpected reply to mvcc_get: " << reply.Canonical();
    return;
  }
  const std::optional<int64_t> as_of = reply["as_of_timestamp"].Int();
  const int64_t version = reply["version"].Int().value_or(0);
  if (!as_of) return;  // nothing visible
  const std::string& key = keys_[key_index];
  if (reply["deleted"].Bool() == true) {
    for (const RawWrite& write : raw_) {
      if (write.deleted && write.key == key && write.timestamp == *as_of && !write.answered) {
        model_.known[key][*as_of] = {true, "", version};
        ++summary_.reads_of_unanswered;
      }
    }
    return;
  }
  const std::string value = reply["value"].Canonical();
  if (auto raw = raw_by_value_.find(value); raw != raw_by_value_.end()) {
    const RawWrite& write = raw_[raw->second];
    EXPECT_TRUE(write.key == key && write.timestamp == *as_of)
        << "mvcc_get of " << key << " returned " << Abbreviate(reply.Canonical(), 200)
        << ", written by " << Abbreviate(write.request, 200);
    if (!write.answered) {
      model_.known[key][*as_of] = {false, value, version};
      ++summary_.reads_of_unanswered;
    }
  } else if (auto txn = txn_by_value_.find(value); txn != txn_by_value_.end()) {
    const TxnRecord& record = txns_[txn->second];
    if (record.commit_sent && !record.finished) {
      ++summary_.reads_of_unanswered;
      for (const auto& [write_key, write_value] : record.writes) {
        model_.known[write_key][*as_of] = {false, write_value, write_key == key ? version : 0};
      }
    }
  }
}

void CrashDriver::Crash() {
  // Where the kill lands: right after a write (most requests in flight),
  // after a short random delay (some syncs done), once everything was
  // answered (nothing in flight), or in the middle of a request line.
  // With automatic checkpoints also: right after one completed, or at a
  // random moment of the next 100 ms (while one may be running).
  const int styles = options_.checkpoint_log_mb > 0 ? 6 : 4;
  switch (std::uniform_int_distribution<int>(0, styles - 1)(rng_)) {
    case 0:
      break;
    case 1:
      std::this_thread::sleep_for(
          std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(rng_)));
      break;
    case 2:
      while (!pending_.empty() && !::testing::Test::HasFailure()) {
        // Abandoned transactions never send more, so this ends.
        if (!PumpReplies(NodeConnection::kTimeout)) return;
      }
      break;
    case 3:
      for (int i = 0; i < 4; ++i) QueueRandomRequest();
      node_->Flush(std::uniform_int_distribution<size_t>(1, 40)(rng_));
      break;
    case 4:
      AwaitCheckpoint(milliseconds(300));
      break;
    case 5:
      std::this_thread::sleep_for(
          std::chrono::microseconds(std::uniform_int_distribution<int>(0, 100000)(rng_)));
      break;
  }
  crashed_ = true;
  const std::optional<int> status = node_->Kill();
  if (!status || !WIFSIGNALED(*status) || WTERMSIG(*status) != SIGKILL) {
    ADD_FAILURE() << "the node was not running when killed: " << StatusText(status) << "; stderr:\n"
                  << node_->process().StderrTail();
  }
  // Replies the node wrote before it died were acknowledged: a client may
  // have acted on them.
  while (std::optional<JsonValue> reply = node_->Poll(milliseconds(0))) HandleReply(*reply);
  RecordUnanswered();
  ++summary_.kills;
  summary_.checkpoints += checkpoints_this_incarnation_;
  if (checkpoints_this_incarnation_ > 0) ++summary_.kills_after_checkpoint;
  node_.reset();
}

void CrashDriver::RecordUnanswered() {
  for (const auto& [msg_id, pending] : pending_) {
    if (pending.kind == Kind::kRawWrite) {
      const RawWrite& write = raw_[pending.index];
      model_.unacked_raw.push_back(
          {write.key, write.timestamp, write.deleted, write.value, write.request});
    } else if (pending.kind == Kind::kCommit) {
      const TxnRecord& txn = txns_[pending.index];
      model_.unacked_commits.push_back({txn.id, txn.start, txn.writes});
    }
  }
  for (const TxnRecord& txn : txns_) {
    if (txn.id < 0 || txn.finished) continue;  // begin unanswered, or commit answered
    open_at_crash_.push_back(txn.id);
  }
  std::shuffle(open_at_crash_.begin(), open_at_crash_.end(), rng_);
  summary_.requests += requests_this_cycle_;
}

}  // namespace strata::testing
