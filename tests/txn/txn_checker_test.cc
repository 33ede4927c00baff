// A randomized history checker. Worker threads run random transactions
// (point reads, range scans, puts and deletes) over a handful of keys, so
// that they conflict often, while a compactor keeps raising the horizon as
// far as the live transactions allow. Every committed transaction is
// recorded with its timestamps, every value it read and every write; the
// history is then checked against the isolation level's definition:
//
//  * serializable: replaying the committed transactions one at a time in
//    commit-timestamp order (a transaction without writes at its start
//    timestamp, which is then its commit timestamp) reproduces every value
//    every transaction read, its reads of its own writes included;
//  * both levels: every read equals the state made by the
//    transactions committed at or before its transaction's start timestamp,
//    plus the transaction's own earlier writes (snapshot isolation is
//    defined by it; serializable transactions read at their start too);
//  * both levels: no two committed transactions whose lifetimes overlap
//    wrote the same key (first committer wins).
//
// Values are unique per write, so a wrong read cannot pass by coincidence.
// A failure prints the seed; STRATA_TXN_SEED=<seed> repeats the random
// choices (not the thread interleaving). STRATA_STRESS_SECONDS sets the run
// time of each scenario.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp_oracle.h"
#include "strata/txn_store.h"
#include "support/worker_failures.h"
#include "txn_test_support.h"

namespace strata::txn_testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWorkers = 4;
constexpr int kKeys = 8;
constexpr int kMaxOpsPerTxn = 5;
// Enough for a meaningful history; more only slows the checks down.
constexpr int kMaxTxnsPerWorker = 20000;
// Keep going past the planned duration (up to this many times it) until
// the history holds at least this much, so the checks are never vacuous
// even on a slow sanitizer build.
constexpr int kMinCommits = 200;
constexpr int kMinConflicts = 5;
constexpr int kOvertimeFactor = 10;

using Failures = ::strata::testing::WorkerFailures;

// One step of a transaction, with what it returned.
struct Op {
  enum class Kind { kGet, kScan, kPut, kDelete };
  Kind kind = Kind::kGet;
  std::string key;                   // kGet, kPut, kDelete
  std::optional<std::string> value;  // kPut: the value written; kGet: the value read
  KeyRange range;                    // kScan
  size_t limit = 0;                  // kScan
  KeyValues scanned;                 // kScan: the items returned
  bool more = false;                 // kScan: the `more` flag returned

  bool writes() const { return kind == Kind::kPut || kind == Kind::kDelete; }
};

struct CommittedTxn {
  int worker = 0;
  uint64_t id = 0;
  bool read_only = false;
  Timestamp start;
  Timestamp commit;
  std::vector<Op> ops;

  bool writes() const {
    return std::any_of(ops.begin(), ops.end(), [](const Op& op) { return op.writes(); });
  }
};

std::string Describe(const Op& op) {
  std::ostringstream out;
  switch (op.kind) {
    case Op::Kind::kGet:
      out << "get " << op.key << " -> " << op.value.value_or("<absent>");
      break;
    case Op::Kind::kPut:
      out << "put " << op.key << " = " << *op.value;
      break;
    case Op::Kind::kDelete:
      out << "delete " << op.key;
      break;
    case Op::Kind::kScan:
      out << "scan [" << op.range.start << ", " << op.range.end.value_or("<end>") << ") limit "
          << op.limit << " -> {";
      for (const auto& [key, value] : op.scanned) out << " " << key << "=" << value;
      out << " }" << (op.more ? " more" : "");
      break;
  }
  return out.str();
}

std::string Describe(const CommittedTxn& txn) {
  std::ostringstream out;
  out << "txn " << txn.id << " (worker " << txn.worker << (txn.read_only ? ", read-only" : "")
      << ") start " << txn.start.value() << " commit " << txn.commit.value() << ":";
  for (const Op& op : txn.ops) out << "\n    " << Describe(op);
  return out.str();
}

// What a scan of `state` returns: the same contract as MvccStore::Scan.
std::pair<KeyValues, bool> ExpectedScan(const std::map<std::string, std::string>& state,
                                        const KeyRange& range, size_t limit) {
  KeyValues items;
  bool more = false;
  for (auto it = state.lower_bound(range.start); it != state.end(); ++it) {
    if (range.end && it->first >= *range.end) break;
    if (items.size() == limit) {
      more = true;
      break;
    }
    items.emplace_back(it->first, it->second);
  }
  return {items, more};
}

struct RunCounters {
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> conflicts{0};
  std::atomic<uint64_t> voluntary_aborts{0};
  std::atomic<uint64_t> compactions{0};
};

class Checker {
 public:
  Checker(Isolation isolation, uint64_t seed) : isolation_(isolation), seed_(seed) {
    for (int i = 0; i < kKeys; ++i) keys_.push_back(NumberedKey("k", i));
  }

  void Run(Clock::duration duration) {
    const Clock::time_point start = Clock::now();
    deadline_ = start + duration;
    hard_deadline_ = start + duration * kOvertimeFactor;
    std::vector<std::thread> threads;
    for (int worker = 0; worker < kWorkers; ++worker) {
      threads.emplace_back([this, worker] { Work(worker); });
    }
    threads.emplace_back([this] { Compact(); });
    for (std::thread& thread : threads) thread.join();
  }

  void Check() {
    failures_.Report();
    EXPECT_GE(counters_.commits.load(), static_cast<uint64_t>(kMinCommits));
    EXPECT_GE(counters_.conflicts.load(), static_cast<uint64_t>(kMinConflicts));
    EXPECT_EQ(history_.size(), counters_.commits.load());
    const TxnStats stats = db_.db.GetStats();
    EXPECT_EQ(stats.active_txns, 0u);
    EXPECT_EQ(stats.conflicts, counters_.conflicts.load());
    CheckTimestamps();
    CheckFirstCommitterWins();
    CheckReads();
  }

  const RunCounters& counters() const { return counters_; }
  size_t history_size() const { return history_.size(); }

 private:
  bool KeepGoing() const {
    const Clock::time_point now = Clock::now();
    if (now < deadline_) return true;
    const bool enough = counters_.commits.load() >= static_cast<uint64_t>(kMinCommits) &&
                        counters_.conflicts.load() >= static_cast<uint64_t>(kMinConflicts);
    return !enough && now < hard_deadline_;
  }

  const std::string& RandomKey(std::mt19937_64& rng) { return keys_[rng() % keys_.size()]; }

  void Work(int worker) {
    std::mt19937_64 rng(seed_ + static_cast<uint64_t>(worker));
    uint64_t writes = 0;
    std::vector<CommittedTxn> committed;
    for (int i = 0; i < kMaxTxnsPerWorker && KeepGoing(); ++i) {
      if (!RunOneTxn(worker, rng, &writes, &committed)) break;
    }
    std::lock_guard lock(history_mutex_);
    for (CommittedTxn& txn : committed) history_.push_back(std::move(txn));
    ++workers_done_;
  }

  // Runs one random transaction; false after a failure (stop this worker).
  bool RunOneTxn(int worker, std::mt19937_64& rng, uint64_t* writes,
                 std::vector<CommittedTxn>* committed) {
    CommittedTxn record;
    record.worker = worker;
    record.read_only = rng() % 5 == 0;
    Result<Transaction> begun =
        db_.db.Begin(record.read_only ? ReadOnly(isolation_) : ReadWrite(isolation_));
    if (!begun.ok()) {
      failures_.Add("Begin failed: " + StatusText(begun.status()));
      return false;
    }
    Transaction& txn = *begun;
    record.id = txn.id();
    record.start = txn.start_timestamp();

    const int op_count = 1 + static_cast<int>(rng() % kMaxOpsPerTxn);
    for (int i = 0; i < op_count; ++i) {
      Op op;
      const uint64_t dice = rng() % 10;
      if (dice < 4 || (record.read_only && dice < 7)) {
        op.kind = Op::Kind::kGet;
        op.key = RandomKey(rng);
        Result<ReadResult> read = txn.Get(op.key);
        if (!read.ok()) {
          failures_.Add("Get failed: " + StatusText(read.status()));
          return false;
        }
        if (read->found && !read->deleted) op.value = read->value;
      } else if (dice < 7 || record.read_only) {
        op.kind = Op::Kind::kScan;
        std::string a = RandomKey(rng), b = RandomKey(rng);
        if (a > b) std::swap(a, b);
        op.range.start = rng() % 4 == 0 ? "" : a;
        if (rng() % 4 != 0) op.range.end = b;
        op.limit = 1 + rng() % kKeys;
        Result<ScanResult> scan = txn.Scan(op.range, op.limit);
        if (!scan.ok()) {
          failures_.Add("Scan failed: " + StatusText(scan.status()));
          return false;
        }
        op.scanned = KeyValuesOf(*scan);
        op.more = scan->more;
      } else {
        op.kind = dice < 9 ? Op::Kind::kPut : Op::Kind::kDelete;
        op.key = RandomKey(rng);
        Status status;
        if (op.kind == Op::Kind::kPut) {
          // Unique per write, so every read names the write it saw.
          op.value = "w" + std::to_string(worker) + "." + std::to_string(++*writes);
          status = txn.Put(op.key, *op.value);
        } else {
          status = txn.Delete(op.key);
        }
        if (!status.ok()) {
          failures_.Add("write failed: " + StatusText(status));
          return false;
        }
      }
      record.ops.push_back(std::move(op));
      // Let other workers in between the steps, so that transactions
      // overlap (and conflict) often even on few cores.
      if (rng() % 2 == 0) std::this_thread::yield();
    }

    if (rng() % 20 == 0) {
      txn.Abort();
      ++counters_.voluntary_aborts;
      return true;
    }
    Result<Timestamp> commit = txn.Commit();
    if (commit.ok()) {
      record.commit = *commit;
      committed->push_back(std::move(record));
      ++counters_.commits;
      return true;
    }
    if (commit.status().code() == StatusCode::kConflict && !record.read_only) {
      ++counters_.conflicts;
      if (!txn.conflict_key().has_value()) failures_.Add("a conflict without conflict_key");
      return true;
    }
    failures_.Add("Commit failed: " + StatusText(commit.status()) + "\n  " + Describe(record));
    return false;
  }

  // Keeps the horizon as high as the live transactions allow, so that GC
  // runs under every snapshot; a read failing with kCompacted, or a stale
  // value, shows up in the history checks.
  void Compact() {
    while (workers_done_.load() < kWorkers) {
      db_.db.Compact(db_.db.oracle().Last());
      ++counters_.compactions;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // Start timestamps are unique, commit timestamps of writers are unique
  // and above their start, and a transaction without writes commits at its
  // start. Together: one total order of every start and commit.
  void CheckTimestamps() {
    std::map<uint64_t, std::string> seen;  // timestamp -> what used it
    auto claim = [&](Timestamp ts, const CommittedTxn& txn, const char* what) {
      auto [it, inserted] = seen.emplace(ts.value(), std::string(what) + " of " + Describe(txn));
      if (!inserted) {
        ADD_FAILURE() << "timestamp " << ts.value() << " used twice: by the " << it->second
                      << "\n  and by the " << what << " of " << Describe(txn);
      }
    };
    for (const CommittedTxn& txn : history_) {
      claim(txn.start, txn, "start");
      if (txn.writes()) {
        EXPECT_GT(txn.commit, txn.start) << Describe(txn);
        claim(txn.commit, txn, "commit");
      } else {
        EXPECT_EQ(txn.commit, txn.start) << "a transaction without writes " << Describe(txn);
      }
    }
  }

  // No two committed transactions that overlapped (start1 < commit2 and
  // start2 < commit1) wrote the same key. Sorted by commit timestamp, it is
  // enough to compare each writer of a key with the previous writer.
  void CheckFirstCommitterWins() {
    std::map<std::string, std::vector<const CommittedTxn*>> writers;
    for (const CommittedTxn& txn : history_) {
      std::set<std::string> keys;
      for (const Op& op : txn.ops) {
        if (op.writes()) keys.insert(op.key);
      }
      for (const std::string& key : keys) writers[key].push_back(&txn);
    }
    int reported = 0;
    for (auto& [key, txns] : writers) {
      std::sort(txns.begin(), txns.end(),
                [](const CommittedTxn* a, const CommittedTxn* b) { return a->commit < b->commit; });
      for (size_t i = 1; i < txns.size() && reported < 5; ++i) {
        if (txns[i]->start < txns[i - 1]->commit) {
          ++reported;
          ADD_FAILURE() << "overlapping transactions both wrote " << key << ":\n  "
                        << Describe(*txns[i - 1]) << "\n  " << Describe(*txns[i]);
        }
      }
    }
  }

  // Replays the committed writers in commit order and checks each
  // transaction's reads against the state as of its read point: every
  // commit strictly before it. Timestamps are unique, so for a start
  // timestamp "strictly before" is "at or before".
  template <typename ReadPoint>
  void CheckReadsAgainstReplay(const char* what, ReadPoint read_point) {
    SCOPED_TRACE(what);
    std::vector<const CommittedTxn*> writers;
    std::vector<const CommittedTxn*> by_read_point;
    for (const CommittedTxn& txn : history_) {
      if (txn.writes()) writers.push_back(&txn);
      by_read_point.push_back(&txn);
    }
    std::sort(writers.begin(), writers.end(),
              [](const CommittedTxn* a, const CommittedTxn* b) { return a->commit < b->commit; });
    std::sort(by_read_point.begin(), by_read_point.end(),
              [&](const CommittedTxn* a, const CommittedTxn* b) {
                return read_point(*a) < read_point(*b);
              });

    std::map<std::string, std::string> state;
    size_t applied = 0;
    int wrong = 0;
    for (const CommittedTxn* txn : by_read_point) {
      while (applied < writers.size() && writers[applied]->commit < read_point(*txn)) {
        ApplyWrites(*writers[applied++], &state);
      }
      if (std::optional<std::string> error = CheckTxnReads(*txn, state)) {
        if (++wrong <= 5) ADD_FAILURE() << *error << "\n  " << Describe(*txn);
      }
    }
    EXPECT_EQ(wrong, 0) << "transactions with wrong reads";

    // And the store ends where the replay of every writer ends.
    while (applied < writers.size()) ApplyWrites(*writers[applied++], &state);
    Result<ScanResult> final_scan = db_.store.Scan(KeyRange::All(), Timestamp::Max(), 1000);
    ASSERT_THAT(final_scan, IsOk());
    EXPECT_EQ(KeyValuesOf(*final_scan), KeyValues(state.begin(), state.end()));
  }

  // Under both levels a transaction reads the snapshot at its start plus
  // its own writes. Serializable histories must also replay serially in
  // commit order: the transaction behaves as if it ran entirely at its
  // commit timestamp.
  void CheckReads() {
    CheckReadsAgainstReplay("reads at the start snapshot",
                            [](const CommittedTxn& txn) { return txn.start; });
    if (isolation_ == Isolation::kSerializable) {
      CheckReadsAgainstReplay("serial replay in commit order",
                              [](const CommittedTxn& txn) { return txn.commit; });
    }
  }

  static void ApplyWrite(const Op& op, std::map<std::string, std::string>* state) {
    if (op.kind == Op::Kind::kPut) (*state)[op.key] = *op.value;
    if (op.kind == Op::Kind::kDelete) state->erase(op.key);
  }

  static void ApplyWrites(const CommittedTxn& txn, std::map<std::string, std::string>* state) {
    for (const Op& op : txn.ops) ApplyWrite(op, state);
  }

  // Walks the transaction's steps over `state` plus its own writes so far;
  // the first read that disagrees, described.
  static std::optional<std::string> CheckTxnReads(const CommittedTxn& txn,
                                                  const std::map<std::string, std::string>& state) {
    std::map<std::string, std::string> view = state;
    for (const Op& op : txn.ops) {
      switch (op.kind) {
        case Op::Kind::kPut:
        case Op::Kind::kDelete:
          ApplyWrite(op, &view);
          break;
        case Op::Kind::kGet: {
          auto it = view.find(op.key);
          std::optional<std::string> expected;
          if (it != view.end()) expected = it->second;
          if (expected != op.value) {
            return "read " + Describe(op) + ", expected " + expected.value_or("<absent>");
          }
          break;
        }
        case Op::Kind::kScan: {
          auto [items, more] = ExpectedScan(view, op.range, op.limit);
          if (items != op.scanned || more != op.more) {
            Op expected = op;
            expected.scanned = items;
            expected.more = more;
            return "read " + Describe(op) + ", expected " + Describe(expected);
          }
          break;
        }
      }
    }
    return std::nullopt;
  }

  const Isolation isolation_;
  const uint64_t seed_;
  std::vector<std::string> keys_;
  TestDb db_;
  Clock::time_point deadline_;
  Clock::time_point hard_deadline_;
  RunCounters counters_;
  std::atomic<int> workers_done_{0};
  Failures failures_;
  std::mutex history_mutex_;
  std::vector<CommittedTxn> history_;  // REQUIRES: history_mutex_ while workers run
};

uint64_t SeedForThisRun() {
  if (const char* env = std::getenv("STRATA_TXN_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device()();
}

void RunChecker(Isolation isolation) {
  const uint64_t seed = SeedForThisRun();
  SCOPED_TRACE(::testing::Message() << "STRATA_TXN_SEED=" << seed);
  Checker checker(isolation, seed);
  checker.Run(StressDuration(1.0));
  checker.Check();
  const RunCounters& c = checker.counters();
  std::printf("%s: %llu commits, %llu conflicts, %llu voluntary aborts, %llu compactions\n",
              IsolationName(isolation), static_cast<unsigned long long>(c.commits.load()),
              static_cast<unsigned long long>(c.conflicts.load()),
              static_cast<unsigned long long>(c.voluntary_aborts.load()),
              static_cast<unsigned long long>(c.compactions.load()));
}

TEST(TxnCheckerTest, SerializableHistoriesReplayInCommitOrder) {
  RunChecker(Isolation::kSerializable);
}

TEST(TxnCheckerTest, SnapshotHistoriesReadTheirSnapshotAndFirstCommitterWins) {
  RunChecker(Isolation::kSnapshot);
}

// The oracle itself under contention: every Next() is unique and each
// thread sees its own increasing, with Observe() calls racing in.
TEST(TxnCheckerTest, OracleHandsOutUniqueIncreasingTimestampsAcrossThreads) {
  LocalOracle oracle;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20'000;
  std::vector<std::vector<uint64_t>> issued(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&oracle, &issued, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (i % 100 == 0) oracle.Observe(Timestamp(oracle.Last().value() + 3));
        Result<Timestamp> next = oracle.Next();
        if (!next.ok()) return;
        issued[t].push_back(next->value());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<uint64_t> all;
  for (const std::vector<uint64_t>& mine : issued) {
    ASSERT_EQ(mine.size(), static_cast<size_t>(kPerThread));
    EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a timestamp issued twice";
  EXPECT_GE(oracle.Last().value(), all.back());
}

}  // namespace
}  // namespace strata::txn_testing
