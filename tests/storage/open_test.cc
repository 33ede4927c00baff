// Opening a durable store: an empty or missing directory, a simple round
// trip in every sync mode, what "acknowledged" means for durable_lsn, the
// LOCK that keeps a second Open out, the timestamp oracle across reopens
// (it must never hand out a timestamp twice), and the WAL files laid out as
// storage/wal_format.h documents them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage_test_support.h"
#include "strata/store.h"
#include "strata/txn_store.h"

namespace strata::storage_testing {
namespace {

using ::testing::HasSubstr;

// Begin() that must work; returns the transaction's start timestamp after
// aborting it (tests here only care about the timestamp handed out).
Timestamp BeginAndAbort(Store& store) {
  Result<Transaction> txn = store.db().Begin();
  EXPECT_TRUE(txn.ok()) << StatusText(txn.status());
  if (!txn.ok()) return Timestamp();
  const Timestamp start = txn->start_timestamp();
  txn->Abort();
  return start;
}

TEST(StoreOpenTest, EmptyDirectoryOpensEmptyAndTakesTheLock) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  const RecoveryReport& report = store->recovery();
  EXPECT_FALSE(report.checkpoint_lsn.has_value());
  EXPECT_EQ(report.records_replayed, 0u);
  EXPECT_FALSE(report.torn_tail.has_value());
  EXPECT_EQ(store->dir(), dir.path());
  EXPECT_TRUE(store->health().ok()) << StatusText(store->health());
  EXPECT_TRUE(std::filesystem::exists(dir.File("LOCK")));
  EXPECT_EQ(CaptureState(store->mvcc()).keys.size(), 0u);
}

TEST(StoreOpenTest, CreatesAMissingDirectory) {
  TempDir dir;
  const std::string nested = dir.File("not-yet-there");
  {
    std::unique_ptr<Store> store = OpenOrFail(nested);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->db().RawPut("k", "v", Timestamp(5)).ok());
  }
  std::unique_ptr<Store> reopened = OpenOrFail(nested);
  ASSERT_NE(reopened, nullptr);
  Result<ReadResult> read = reopened->mvcc().Get("k");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->value, "v");
}

// A replay says how far it is and how long is left (here after every 4096
// records: the interval is set to nothing).
TEST(StoreOpenTest, ReplaySaysHowMuchIsLeft) {
  TempDir dir;
  {
    StoreOpenOptions options;
    options.durability.sync = SyncMode::kNone;
    options.durability.checkpoint_after_log_bytes = 0;
    auto store = Store::Open(dir.path(), options);
    ASSERT_TRUE(store.ok());
    for (uint64_t i = 1; i <= 20000; ++i) {
      ASSERT_TRUE(
          store.value()->db().RawPut("k" + std::to_string(i % 100), "v", Timestamp(i)).ok());
    }
  }
  std::vector<std::string> lines;
  StoreOpenOptions options;
  options.durability.checkpoint_after_log_bytes = 0;
  options.durability.replay_progress_every = std::chrono::milliseconds(0);
  options.durability.progress = [&](std::string_view line) { lines.emplace_back(line); };
  auto store = Store::Open(dir.path(), options);
  ASSERT_TRUE(store.ok());
  const uint64_t replayed = store.value()->recovery().records_replayed;
  EXPECT_GE(replayed, 20000u);
  const auto left = std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("recovery: replayed ") == 0 && l.find(" MiB of log (") != std::string::npos &&
           l.find(" s left") != std::string::npos;
  });
  // One line per 4096 records replayed.
  EXPECT_EQ(static_cast<uint64_t>(left), replayed / 4096) << ::testing::PrintToString(lines);
}

// The simplest round trip, once per sync mode: raw puts, a delete, a
// re-put, a compaction, then reopen and compare everything observable.
TEST(StoreOpenTest, RawWritesAndCompactionSurviveReopenInEverySyncMode) {
  for (SyncMode mode : kAllSyncModes) {
    SCOPED_TRACE(SyncModeName(mode));
    TempDir dir;
    StoreState before;
    uint64_t appended = 0;
    {
      std::unique_ptr<Store> store = OpenOrFail(dir.path(), SmallOptions(mode));
      ASSERT_NE(store, nullptr);
      TxnStore& db = store->db();
      ASSERT_TRUE(db.RawPut("a", "1", Timestamp(10)).ok());
      ASSERT_TRUE(db.RawPut("a", "2", Timestamp(20)).ok());
      ASSERT_TRUE(db.RawDelete("a", Timestamp(30)).ok());
      ASSERT_TRUE(db.RawPut("a", "4", Timestamp(40)).ok());
      ASSERT_TRUE(db.RawPut("b", std::string(300, 'x'), Timestamp(15)).ok());  // out of line
      ASSERT_TRUE(db.RawDelete("c", Timestamp(12)).ok());  // a tombstone only: forgotten below
      EXPECT_EQ(db.Compact(Timestamp(25)).horizon, Timestamp(25));
      ASSERT_TRUE(db.RawPut("a", "5", Timestamp(50)).ok());
      before = CaptureState(store->mvcc(), {"a", "b", "c"});
      appended = store->appended_lsn();
    }
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), SmallOptions(mode));
    ASSERT_NE(store, nullptr);
    const StoreState after = CaptureState(store->mvcc(), {"a", "b", "c"});
    EXPECT_EQ(DescribeDifference(before, after), "") << ToString(before);
    EXPECT_EQ(after.horizon, Timestamp(25));
    EXPECT_EQ(after.max_timestamp, Timestamp(50));
    EXPECT_GE(store->recovery().last_lsn, appended);
    EXPECT_FALSE(store->recovery().torn_tail.has_value());

    // "c" was compacted away entirely, yet its version count goes on (as in
    // the in-memory store): versions never depend on when compaction ran.
    // "a" goes on counting from 5.
    Result<WriteResult> c = store->db().RawPut("c", "new", Timestamp(60));
    ASSERT_TRUE(c.ok()) << StatusText(c.status());
    EXPECT_EQ(c->version, 2u);
    Result<WriteResult> a = store->db().RawPut("a", "6", Timestamp(60));
    ASSERT_TRUE(a.ok()) << StatusText(a.status());
    EXPECT_EQ(a->version, 6u);
    // The horizon survived: a write at it is still refused.
    EXPECT_EQ(store->db().RawPut("z", "late", Timestamp(25)).status().code(),
              StatusCode::kCompacted);
  }
}

// wait_for_durability: a write that returned is durable already.
TEST(StoreOpenTest, AcknowledgedWritesAreDurableWhenTheyReturn) {
  for (SyncMode mode : {SyncMode::kAlways, SyncMode::kBatch}) {
    SCOPED_TRACE(SyncModeName(mode));
    TempDir dir;
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), SmallOptions(mode));
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 1; i <= 5; ++i) {
      Result<WriteResult> put = store->db().RawPut("k", std::to_string(i), Timestamp(i));
      ASSERT_TRUE(put.ok()) << StatusText(put.status());
      EXPECT_GT(put->lsn, 0u);
      EXPECT_GE(store->durable_lsn(), put->lsn);
    }
    Result<Transaction> txn = store->db().Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->Put("t", "1").ok());
    ASSERT_TRUE(txn->Commit().ok());
    EXPECT_EQ(store->durable_lsn(), store->appended_lsn());
    const DurabilityStats stats = store->GetDurabilityStats();
    EXPECT_EQ(stats.appended_lsn, store->appended_lsn());
    EXPECT_EQ(stats.durable_lsn, store->durable_lsn());
    EXPECT_GE(stats.records, 6u);
    EXPECT_GE(stats.syncs, 1u);
    EXPECT_FALSE(stats.failure.has_value());
    // Every group commit is in the histograms once, with its records.
    const LogHistograms& h = stats.histograms;
    uint64_t groups = 0, fsyncs = 0;
    for (uint64_t c : h.group_counts) groups += c;
    for (uint64_t c : h.sync_counts) fsyncs += c;
    EXPECT_EQ(groups, stats.syncs);
    EXPECT_EQ(fsyncs, stats.syncs);
    EXPECT_GE(h.group_records_sum, 6u) << "the five puts and the commit";
    EXPECT_LT(h.group_records_sum, stats.records) << "which also counts each group's mark";
    EXPECT_GT(h.sync_seconds_sum, 0.0);
  }
}

// Without wait_for_durability writes return early; Sync() catches up.
TEST(StoreOpenTest, SyncMakesEverythingAppendedDurable) {
  TempDir dir;
  StoreOpenOptions options = SmallOptions(SyncMode::kBatch);
  options.durability.wait_for_durability = false;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 1; i <= 50; ++i) {
      ASSERT_TRUE(store->db().RawPut(NumberedKey("k", i), "v", Timestamp(i)).ok());
    }
    ASSERT_TRUE(store->Sync().ok());
    EXPECT_GE(store->durable_lsn(), store->appended_lsn());
  }
  std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(CaptureState(store->mvcc()).keys.size(), 50u);
  // Closing without Sync() still makes everything appended durable.
  for (uint64_t i = 51; i <= 60; ++i) {
    ASSERT_TRUE(store->db().RawPut(NumberedKey("k", i), "v", Timestamp(i)).ok());
  }
  store.reset();
  store = OpenOrFail(dir.path(), options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(CaptureState(store->mvcc()).keys.size(), 60u);
}

// The two callbacks: on_durable fires as durable_lsn advances, progress
// gets single lines (no newline) during recovery and checkpoints.
TEST(StoreOpenTest, DurabilityCallbacksAreCalled) {
  TempDir dir;
  std::atomic<int> durable_calls{0};
  std::mutex lines_mutex;
  std::vector<std::string> lines;
  StoreOpenOptions options = SmallOptions(SyncMode::kBatch);
  options.durability.on_durable = [&] { durable_calls.fetch_add(1); };
  options.durability.progress = [&](std::string_view line) {
    std::lock_guard lock(lines_mutex);
    lines.emplace_back(line);
  };
  for (int round = 0; round < 2; ++round) {
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 1; i <= 10; ++i) {
      ASSERT_TRUE(store->db().RawPut("k", std::to_string(i), Timestamp(round * 100 + i)).ok());
    }
    ASSERT_TRUE(store->Checkpoint().ok());
  }
  EXPECT_GT(durable_calls.load(), 0);
  std::lock_guard lock(lines_mutex);
  EXPECT_FALSE(lines.empty()) << "recovery and checkpoints reported no progress at all";
  for (const std::string& line : lines) {
    EXPECT_FALSE(line.empty());
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  }
}

// Records bigger than a segment and than one preallocation step: a 6 MiB
// value and a commit of 3,000 keys, in kAlways.
TEST(StoreOpenTest, RecordsLargerThanASegmentSurviveReopen) {
  TempDir dir;
  const std::string big(6 << 20, 'B');
  StoreState before;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), SmallOptions(SyncMode::kAlways));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->db().RawPut("big", big, Timestamp(1)).ok());
    Result<Transaction> txn = store->db().Begin();
    ASSERT_TRUE(txn.ok());
    for (uint64_t i = 0; i < 3000; ++i) {
      ASSERT_TRUE(txn->Put(NumberedKey("batch-", i), std::string(100, 'v')).ok());
    }
    ASSERT_TRUE(txn->Commit().ok());
    ASSERT_TRUE(store->db().RawPut("after", "small", Timestamp(1u << 30)).ok());
    before = CaptureState(store->mvcc());
  }
  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(DescribeDifference(before, CaptureState(store->mvcc())), "");
  EXPECT_EQ(before.keys.size(), 3002u);
}

// The last timestamp there is: written, it exhausts the oracle, and it must
// stay exhausted after a reopen (not wrap around or start over).
TEST(StoreOpenTest, TheHighestTimestampSurvivesReopen) {
  TempDir dir;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->db().RawPut("k", "last", Timestamp::Max()).ok());
    EXPECT_EQ(store->db().Begin().status().code(), StatusCode::kUnavailable);
    ASSERT_TRUE(store->Checkpoint().ok());
  }
  for (int round = 0; round < 2; ++round) {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->mvcc().max_timestamp(), Timestamp::Max());
    Result<ReadResult> read = store->mvcc().Get("k");
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(read->value, "last");
    EXPECT_EQ(store->db().Begin().status().code(), StatusCode::kUnavailable);
  }
}

// ---------------------------------------------------------------------------
// LOCK.

TEST(StoreLockTest, SecondOpenIsUnavailableUntilTheFirstCloses) {
  TempDir dir;
  std::unique_ptr<Store> first = OpenOrFail(dir.path());
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->db().RawPut("k", "v", Timestamp(1)).ok());

  Result<std::unique_ptr<Store>> second = Store::Open(dir.path(), SmallOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << StatusText(second.status());
  EXPECT_THAT(second.status().message(), HasSubstr(dir.path()));
  // The failed Open must not have disturbed the open store.
  ASSERT_TRUE(first->db().RawPut("k", "w", Timestamp(2)).ok());

  first.reset();
  std::unique_ptr<Store> third = OpenOrFail(dir.path());
  ASSERT_NE(third, nullptr);
  Result<ReadResult> read = third->mvcc().Get("k");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->value, "w");
  EXPECT_EQ(read->version, 2u);
}

// ---------------------------------------------------------------------------
// The oracle.

// Many begins and no write at all, then reopen, twenty times: every begin
// after a reopen starts above every timestamp handed out before it. (A
// durable oracle reserves ranges ahead; nothing else in the log would
// remember these timestamps.)
TEST(StoreOracleTest, ReopenWithoutWritesNeverReissuesATimestamp) {
  TempDir dir;
  Timestamp highest_issued;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), SmallOptions(kAllSyncModes[round % 3]));
    ASSERT_NE(store, nullptr);
    const Timestamp first = BeginAndAbort(*store);
    EXPECT_GT(first, highest_issued);
    // The reservation may skip ahead, but not absurdly (the header promises
    // jumps of about 2^20): 20 rounds must not eat the timestamp space.
    EXPECT_LT(first.value() - highest_issued.value(), uint64_t{1} << 24);
    highest_issued = first;
    for (int i = 0; i < 200; ++i) {
      // Read-only commits take no log record either.
      Result<Transaction> txn = store->db().Begin();
      ASSERT_TRUE(txn.ok());
      EXPECT_GT(txn->start_timestamp(), highest_issued);
      highest_issued = txn->start_timestamp();
      Result<Timestamp> committed = txn->Commit();
      ASSERT_TRUE(committed.ok());
      highest_issued = std::max(highest_issued, *committed);
    }
  }
}

// Timestamps the oracle observed rather than issued (raw writes, compaction
// requests) must also stay behind it after a reopen.
TEST(StoreOracleTest, ReopenStaysAboveObservedTimestamps) {
  TempDir dir;
  const Timestamp raw_write(uint64_t{1} << 40);
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->db().RawPut("far", "future", raw_write).ok());
  }
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    EXPECT_GT(BeginAndAbort(*store), raw_write);
    EXPECT_EQ(store->db().Compact(Timestamp(raw_write.value() + 1000)).horizon,
              Timestamp(raw_write.value() + 1000));
  }
  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->mvcc().compaction_horizon(), Timestamp(raw_write.value() + 1000));
  EXPECT_GT(BeginAndAbort(*store), Timestamp(raw_write.value() + 1000));
}

// A checkpoint taken while the oracle's reservation record is appended but
// not yet durable (Begin waits for it) must still carry the reservation:
// the checkpoint deletes the segment that holds the record, so otherwise
// nothing remembers the timestamps handed out under it.
TEST(StoreOracleTest, CheckpointDuringAReservationKeepsIt) {
  TempDir dir;
  StoreOpenOptions options = SmallOptions(SyncMode::kBatch);
  // A long batch window: the first Begin's reservation waits this long for
  // its fsync, and the checkpoint below runs inside that wait.
  options.durability.batch_delay = std::chrono::milliseconds(300);
  Timestamp highest_issued;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    std::thread first_begin([&] { highest_issued = BeginAndAbort(*store); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(store->Checkpoint().ok());
    first_begin.join();
    for (int i = 0; i < 5; ++i) highest_issued = std::max(highest_issued, BeginAndAbort(*store));
  }
  std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
  ASSERT_NE(store, nullptr);
  EXPECT_GT(BeginAndAbort(*store), highest_issued)
      << "the oracle hands out timestamps again after a reopen (checkpoint at LSN "
      << store->recovery().checkpoint_lsn.value_or(0) << ")";
}

// ---------------------------------------------------------------------------
// The documented layout.

// Reads the segments with the tests' own reader of storage/wal_format.h:
// valid headers, names that carry the first LSN, LSNs consecutive across
// records and segments, and each write in exactly one record, in order.
TEST(WalFormatTest, SegmentsFollowTheDocumentedLayout) {
  TempDir dir;
  constexpr uint64_t kWrites = 200;
  uint64_t appended = 0;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 0; i < kWrites; ++i) {
      ASSERT_TRUE(store->db()
                      .RawPut(NumberedKey("key-", i), NumberedKey("value-", i), Timestamp(i + 1))
                      .ok());
    }
    appended = store->appended_lsn();
  }
  const std::vector<WalSegmentInfo> segments = ReadWal(dir.path());
  ASSERT_GE(segments.size(), 3u) << "4096-byte segments should have rolled over";
  uint64_t next_lsn = segments.front().first_lsn;
  EXPECT_EQ(next_lsn, 1u) << "LSNs start at 1";
  std::vector<uint64_t> record_of_write(kWrites, 0);
  std::vector<int> mentions(kWrites, 0);
  for (const WalSegmentInfo& segment : segments) {
    SCOPED_TRACE(segment.name);
    EXPECT_TRUE(segment.header_ok);
    EXPECT_EQ(segment.name, WalSegmentName(segment.first_lsn));
    EXPECT_EQ(segment.first_lsn, next_lsn);
    EXPECT_FALSE(segment.stopped_at_bad_record.has_value()) << *segment.stopped_at_bad_record;
    for (const WalRecordInfo& record : segment.records) {
      EXPECT_EQ(record.offset % 8, 0u);
      EXPECT_EQ(record.lsn, next_lsn);
      next_lsn = record.lsn + 1;
      for (uint64_t i = 0; i < kWrites; ++i) {
        if (record.Mentions(NumberedKey("key-", i))) {
          ++mentions[i];
          record_of_write[i] = record.lsn;
        }
      }
    }
  }
  // Closing may append (e.g. an oracle reservation), never lose.
  EXPECT_GE(next_lsn - 1, appended) << "the last record on disk is at least the last acknowledged";
  for (uint64_t i = 0; i < kWrites; ++i) {
    EXPECT_EQ(mentions[i], 1) << "write " << i;
    if (i > 0) {
      EXPECT_GT(record_of_write[i], record_of_write[i - 1]) << "write " << i;
    }
  }

  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->recovery().last_lsn, next_lsn - 1);
  EXPECT_EQ(store->recovery().records_replayed, next_lsn - 1);
  EXPECT_EQ(store->recovery().segments_read, segments.size());
}

}  // namespace
}  // namespace strata::storage_testing
