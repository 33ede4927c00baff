// Group commit under load (label concurrency: runs under ThreadSanitizer).
//
// Four writers (two committing transactions, two making raw writes) run
// against one durable store while another thread takes checkpoints in a
// loop and compacts; after they stop and the store is reopened, every write
// that was acknowledged is there, with its timestamp. In kBatch the log must
// really group: fewer fsyncs than acknowledged writes.
//
// Each writer writes keys of its own, each key once, so "present after
// reopen" is a plain lookup and compaction never removes an acknowledged
// value.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "storage_test_support.h"
#include "strata/store.h"
#include "strata/txn_store.h"
#include "support/worker_failures.h"

namespace strata::storage_testing {
namespace {

struct Acknowledged {
  std::string key;
  std::string value;
  Timestamp timestamp;
};

class GroupCommitTest : public ::testing::TestWithParam<SyncMode> {};

TEST_P(GroupCommitTest, EveryAcknowledgedWriteSurvivesReopen) {
  const SyncMode mode = GetParam();
  TempDir dir;
  StoreOpenOptions options = SmallOptions(mode);
  options.durability.batch_delay = std::chrono::microseconds(1000);
  options.durability.segment_bytes = 16 << 10;
  // Background checkpoints as well as the explicit ones.
  options.durability.checkpoint_after_log_bytes = 64 << 10;

  constexpr int kTxnWriters = 2;
  constexpr int kRawWriters = 2;
  std::vector<std::vector<Acknowledged>> acknowledged(kTxnWriters + kRawWriters);
  uint64_t acknowledged_writes = 0;  // commits and raw writes that returned ok
  uint64_t syncs = 0;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    TxnStore& db = store->db();
    testing::WorkerFailures failures;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;

    for (int w = 0; w < kTxnWriters; ++w) {
      threads.emplace_back([&, w] {
        for (uint64_t n = 0; !stop.load(); ++n) {
          Result<Transaction> txn = db.Begin();
          if (!txn.ok()) {
            failures.Add(StrCat("Begin: ", StatusText(txn.status())));
            return;
          }
          std::vector<Acknowledged> writes;
          for (uint64_t j = 0; j < 1 + n % 3; ++j) {
            writes.push_back(
                {NumberedKey(StrCat("t", std::to_string(w), "-"), n * 4 + j), "v", {}});
            const Status put = txn->Put(writes.back().key, writes.back().value);
            if (!put.ok()) failures.Add(StrCat("Put: ", StatusText(put)));
          }
          Result<Timestamp> committed = txn->Commit();
          if (!committed.ok()) {
            failures.Add("Commit (keys of this thread only, so no conflict): " +
                         StatusText(committed.status()));
            continue;
          }
          for (Acknowledged& write : writes) {
            write.timestamp = *committed;
            acknowledged[w].push_back(std::move(write));
          }
        }
      });
    }
    for (int w = kTxnWriters; w < kTxnWriters + kRawWriters; ++w) {
      threads.emplace_back([&, w] {
        for (uint64_t n = 0; !stop.load(); ++n) {
          Result<Timestamp> ts = db.oracle().Next();
          if (!ts.ok()) {
            failures.Add(StrCat("Next: ", StatusText(ts.status())));
            return;
          }
          const std::string key = NumberedKey(StrCat("r", std::to_string(w), "-"), n);
          Result<WriteResult> put = db.RawPut(key, std::to_string(n), *ts);
          if (put.ok()) {
            acknowledged[w].push_back({key, std::to_string(n), *ts});
          } else if (put.status().code() != StatusCode::kPreconditionFailed &&
                     put.status().code() != StatusCode::kCompacted) {
            // Refused below a live snapshot or the horizon is fine; anything
            // else is not.
            failures.Add(StrCat("RawPut: ", StatusText(put.status())));
          }
        }
      });
    }
    // Checkpoints back to back, and a compaction a little behind the newest
    // timestamp between them.
    threads.emplace_back([&] {
      while (!stop.load()) {
        const Status s = store->Checkpoint();
        if (!s.ok()) failures.Add(StrCat("Checkpoint: ", StatusText(s)));
        const uint64_t last = db.oracle().Last().value();
        if (last > 100) db.Compact(Timestamp(last - 100));
      }
    });

    std::this_thread::sleep_for(StressDuration(1.0));
    stop = true;
    for (std::thread& t : threads) t.join();
    failures.Report();

    const DurabilityStats stats = store->GetDurabilityStats();
    EXPECT_FALSE(stats.failure.has_value()) << *stats.failure;
    EXPECT_EQ(stats.durable_lsn, stats.appended_lsn);
    EXPECT_GT(stats.checkpoints, 0u);
    syncs = stats.syncs;
    for (int w = 0; w < kTxnWriters; ++w) {
      // A commit is one record however many keys it wrote.
      uint64_t commits = 0;
      Timestamp previous;
      for (const Acknowledged& write : acknowledged[w]) {
        if (write.timestamp != previous) ++commits;
        previous = write.timestamp;
      }
      acknowledged_writes += commits;
    }
    for (int w = kTxnWriters; w < kTxnWriters + kRawWriters; ++w) {
      acknowledged_writes += acknowledged[w].size();
    }
  }

  std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
  ASSERT_NE(store, nullptr);
  uint64_t missing = 0;
  for (const std::vector<Acknowledged>& writes : acknowledged) {
    ASSERT_FALSE(writes.empty()) << "a writer made no progress at all";
    for (const Acknowledged& write : writes) {
      Result<ReadResult> read = store->mvcc().Get(write.key);
      ASSERT_TRUE(read.ok()) << StatusText(read.status());
      if (read->found && !read->deleted && read->value == write.value &&
          read->timestamp == write.timestamp) {
        continue;
      }
      if (++missing <= 5) {
        ADD_FAILURE() << "acknowledged " << write.key << " = " << write.value << " at "
                      << write.timestamp.value() << ", after reopen: "
                      << (read->found ? "value " + read->value + " at " +
                                            std::to_string(read->timestamp.value())
                                      : std::string("not found"));
      }
    }
  }
  EXPECT_EQ(missing, 0u);

  std::cout << "[ info     ] " << SyncModeName(mode) << ": " << acknowledged_writes
            << " acknowledged commits and raw writes, " << syncs << " fsyncs\n";
  if (mode == SyncMode::kBatch) {
    // Four writers waiting in the same batch window share an fsync.
    EXPECT_LT(syncs, acknowledged_writes) << "group commit did not group";
  }
}

// A compaction and a checkpoint started together, then reopen: the
// horizon must survive whichever goes first. (The checkpoint starts its log
// after the horizon's record, so the record is not replayed; the
// checkpoint itself must hold the horizon then, even if the compaction had
// appended its record but not yet raised the horizon in memory when the
// checkpoint looked.) The window is narrow, so this runs many short
// episodes for STRATA_STRESS_SECONDS (default 1); it catches a lost horizon
// only now and then, and never fails spuriously.
TEST(CheckpointRaceTest, CompactionRacingACheckpointKeepsTheHorizon) {
  TempDir dir;
  const StoreOpenOptions options = SmallOptions(SyncMode::kNone);
  const auto deadline = std::chrono::steady_clock::now() + StressDuration(1.0);
  uint64_t ts = 10;
  int episodes = 0;
  while (std::chrono::steady_clock::now() < deadline || episodes < 20) {
    ++episodes;
    Timestamp horizon;
    {
      std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
      ASSERT_NE(store, nullptr);
      ASSERT_TRUE(store->db().RawPut("k", "v", Timestamp(ts + 5)).ok());
      ts += 10;
      std::atomic<int> ready{0};
      auto start_together = [&] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
      };
      std::thread compactor([&] {
        start_together();
        horizon = store->db().Compact(Timestamp(ts)).horizon;
      });
      start_together();
      const Status checkpointed = store->Checkpoint();
      compactor.join();
      ASSERT_TRUE(checkpointed.ok()) << StatusText(checkpointed);
      ASSERT_EQ(horizon, Timestamp(ts));
    }
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(store->mvcc().compaction_horizon(), horizon)
        << "episode " << episodes << ": the horizon went back after reopen (checkpoint at LSN "
        << store->recovery().checkpoint_lsn.value_or(0) << ", "
        << store->recovery().records_replayed << " records replayed)";
  }
}

INSTANTIATE_TEST_SUITE_P(SyncModes, GroupCommitTest,
                         ::testing::Values(SyncMode::kBatch, SyncMode::kAlways, SyncMode::kNone),
                         [](const ::testing::TestParamInfo<SyncMode>& info) {
                           return std::string(SyncModeName(info.param)).substr(1);
                         });

}  // namespace
}  // namespace strata::storage_testing
