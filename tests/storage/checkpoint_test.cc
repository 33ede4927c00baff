// Checkpoints: Checkpoint() writes the whole store to checkpoint-<LSN>.ckpt
// and deletes the log segments it covers, recovery loads it and replays only
// the log after it; a damaged checkpoint makes Open fail naming it (the log
// it replaced is gone, so there is nothing to fall back on), a leftover
// .ckpt.tmp from a crash mid-checkpoint is ignored and removed; and a
// checkpoint taken while writers and compaction keep going (a fuzzy
// checkpoint: consistent per batch of keys, completed by replaying the log)
// still recovers exactly the final state.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage_test_support.h"
#include "strata/store.h"
#include "strata/txn_store.h"
#include "support/worker_failures.h"

namespace strata::storage_testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

// 200 puts of 100-byte values over 100 keys, some deletes, a compaction:
// several segments' worth, with history and tombstones.
void WriteHistory(Store& store, uint64_t first_ts) {
  TxnStore& db = store.db();
  for (uint64_t i = 0; i < 200; ++i) {
    ASSERT_TRUE(db.RawPut(NumberedKey("key-", i % 100), NumberedKey("value-", i, 100),
                          Timestamp(first_ts + i))
                    .ok());
  }
  for (uint64_t i = 0; i < 100; i += 7) {
    ASSERT_TRUE(db.RawDelete(NumberedKey("key-", i), Timestamp(first_ts + 200 + i)).ok());
  }
  db.Compact(Timestamp(first_ts + 150));
}

TEST(CheckpointTest, DeletesCoveredSegmentsAndRecoveryReplaysOnlyTheRest) {
  TempDir dir;
  uint64_t checkpoint_lsn = 0;
  uint64_t last_lsn = 0;
  StoreState before;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    WriteHistory(*store, 1);
    const size_t segments_before = WalSegmentNames(dir.path()).size();
    ASSERT_GE(segments_before, 4u);

    ASSERT_TRUE(store->Checkpoint().ok());
    const DurabilityStats stats = store->GetDurabilityStats();
    ASSERT_TRUE(stats.last_checkpoint_lsn.has_value());
    checkpoint_lsn = *stats.last_checkpoint_lsn;
    EXPECT_EQ(stats.checkpoints, 1u);
    EXPECT_THAT(CheckpointNames(dir.path()),
                ::testing::ElementsAre(CheckpointName(checkpoint_lsn)));
    EXPECT_TRUE(ListFiles(dir.path(), "", ".tmp").empty());

    // No segment whose records all lie at or below the checkpoint is left.
    const std::vector<WalSegmentInfo> segments = ReadWal(dir.path());
    EXPECT_LT(segments.size(), segments_before);
    for (size_t i = 0; i + 1 < segments.size(); ++i) {
      EXPECT_GT(segments[i + 1].first_lsn, checkpoint_lsn + 1)
          << segments[i].name << " is covered by the checkpoint but was kept";
    }

    // Writes after the checkpoint: all the next recovery should replay.
    for (uint64_t i = 0; i < 20; ++i) {
      ASSERT_TRUE(store->db().RawPut(NumberedKey("late-", i), "v", Timestamp(1000 + i)).ok());
    }
    before = CaptureState(store->mvcc());
    last_lsn = store->appended_lsn();
  }
  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  const RecoveryReport& report = store->recovery();
  EXPECT_EQ(report.checkpoint_lsn, checkpoint_lsn);
  EXPECT_GE(report.last_lsn, last_lsn);
  EXPECT_EQ(report.records_replayed, report.last_lsn - checkpoint_lsn);
  EXPECT_GE(report.records_replayed, 20u);
  EXPECT_GT(report.checkpoint_keys, 0u);
  EXPECT_EQ(DescribeDifference(before, CaptureState(store->mvcc())), "");
}

TEST(CheckpointTest, EmptyStoreAndRepeatedCheckpoints) {
  TempDir dir;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Checkpoint().ok());  // nothing written yet
  }
  StoreState before;
  uint64_t newest = 0;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(CaptureState(store->mvcc()).keys.size(), 0u);
    WriteHistory(*store, 1);
    ASSERT_TRUE(store->Checkpoint().ok());
    ASSERT_TRUE(store->Checkpoint().ok());  // nothing new since the last one
    WriteHistory(*store, 1000);
    ASSERT_TRUE(store->Checkpoint().ok());
    newest = store->GetDurabilityStats().last_checkpoint_lsn.value_or(0);
    before = CaptureState(store->mvcc());
  }
  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->recovery().checkpoint_lsn, newest) << "the newest checkpoint is the one loaded";
  EXPECT_EQ(DescribeDifference(before, CaptureState(store->mvcc())), "");
}

// A store with a checkpoint and a little log after it, built once per test.
class DamagedCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      std::unique_ptr<Store> store = OpenOrFail(pristine_.path());
      ASSERT_NE(store, nullptr);
      WriteHistory(*store, 1);
      ASSERT_TRUE(store->Checkpoint().ok());
      ASSERT_TRUE(store->db().RawPut("after", "checkpoint", Timestamp(5000)).ok());
      state_ = CaptureState(store->mvcc());
    }
    const std::vector<std::string> names = CheckpointNames(pristine_.path());
    ASSERT_THAT(names, SizeIs(1));
    checkpoint_ = names[0];
    size_ = FileSize(pristine_.File(checkpoint_));
    ASSERT_GT(size_, 16u);
  }

  // Open on a fresh copy damaged by `damage` must fail naming the
  // checkpoint and an offset at or before `damaged_at` (a checksummed block
  // that holds the damaged byte starts there at the latest).
  template <typename Damage>
  void ExpectOpenFails(Damage damage, std::optional<uint64_t> damaged_at) {
    TempDir copy;
    CopyDirFiles(pristine_.path(), copy.path());
    damage(copy.File(checkpoint_));
    Result<std::unique_ptr<Store>> store = Store::Open(copy.path(), SmallOptions());
    ASSERT_FALSE(store.ok()) << "Open accepted a damaged checkpoint";
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << StatusText(store.status());
    EXPECT_THAT(store.status().message(), HasSubstr(checkpoint_));
    if (!damaged_at) return;
    bool names_offset = false;
    for (uint64_t n : NumbersIn(store.status().message(), checkpoint_)) {
      names_offset = names_offset || n <= *damaged_at;
    }
    EXPECT_TRUE(names_offset) << "no offset at or before " << *damaged_at
                              << " in: " << store.status().message();
  }

  TempDir pristine_;
  std::string checkpoint_;
  uint64_t size_ = 0;
  StoreState state_;
};

TEST_F(DamagedCheckpointTest, FlippedByteAnywhereFailsNamingFileAndOffset) {
  for (uint64_t offset : {uint64_t{0}, uint64_t{9}, size_ / 3, size_ / 2, size_ - 9, size_ - 1}) {
    SCOPED_TRACE("byte " + std::to_string(offset) + " of " + std::to_string(size_));
    ExpectOpenFails([&](const std::string& path) { FlipByte(path, offset); }, offset);
  }
}

TEST_F(DamagedCheckpointTest, TruncatedFileFails) {
  for (uint64_t length : {uint64_t{0}, uint64_t{5}, size_ / 2, size_ - 1}) {
    SCOPED_TRACE("cut to " + std::to_string(length) + " of " + std::to_string(size_));
    ExpectOpenFails([&](const std::string& path) { TruncateFile(path, length); }, std::nullopt);
  }
}

// A crash while writing the next checkpoint leaves checkpoint-<LSN>.ckpt.tmp
// (any content): Open ignores it, loads the real one, and removes it.
TEST_F(DamagedCheckpointTest, LeftoverTemporaryFileIsIgnoredAndRemoved) {
  const uint64_t lsn = std::stoull(checkpoint_.substr(std::string("checkpoint-").size(), 20));
  std::mt19937 rng(99);
  std::string garbage(3000, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  const std::string newer = CheckpointName(lsn + 1) + ".tmp";
  const std::string older = CheckpointName(lsn) + ".tmp";  // same LSN as the good one
  WriteFileBytes(pristine_.File(newer), garbage);
  WriteFileBytes(pristine_.File(older), "");
  {
    std::unique_ptr<Store> store = OpenOrFail(pristine_.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->recovery().checkpoint_lsn, lsn);
    EXPECT_EQ(DescribeDifference(state_, CaptureState(store->mvcc())), "");
    EXPECT_FALSE(std::filesystem::exists(pristine_.File(newer)));
    EXPECT_FALSE(std::filesystem::exists(pristine_.File(older)));
    // And the next checkpoint writes its own temporary file without trouble.
    ASSERT_TRUE(store->db().RawPut("more", "x", Timestamp(6000)).ok());
    ASSERT_TRUE(store->Checkpoint().ok());
    state_ = CaptureState(store->mvcc());
  }
  std::unique_ptr<Store> store = OpenOrFail(pristine_.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(DescribeDifference(state_, CaptureState(store->mvcc())), "");
}

// ---------------------------------------------------------------------------
// The fuzzy checkpoint.

TxnOptions SnapshotIsolation() {
  TxnOptions options;
  options.isolation = Isolation::kSnapshot;
  return options;
}

// Two writers (transactions over shared keys; raw puts and deletes over keys
// of their own), a compactor close behind the newest timestamp, and
// checkpoints one after another meanwhile; then reopen and compare with the
// final state. Thousands of preloaded keys make each checkpoint take many
// export batches, so writes land on both sides of its cursor.
TEST(FuzzyCheckpointTest, ConcurrentWritersAndCompactionRecoverTheFinalState) {
  constexpr uint64_t kTxnKeys = 3000;
  constexpr uint64_t kRawKeys = 1000;
  constexpr int kRounds = 3;
  const auto round_time = StressDuration(0.3);
  TempDir dir;
  StoreOpenOptions options = SmallOptions(SyncMode::kNone);
  options.durability.segment_bytes = 64 << 10;

  // The raw writer owns its keys, so it knows each one's write count: the
  // last version it was handed (0: none since the key was forgotten).
  std::map<std::string, uint64_t> raw_versions;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    StoreState before;
    std::vector<std::string> forgotten_raw_keys;
    {
      std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
      ASSERT_NE(store, nullptr);
      TxnStore& db = store->db();
      if (round == 0) {
        Transaction txn = std::move(*db.Begin());
        for (uint64_t i = 0; i < kTxnKeys; ++i)
          ASSERT_TRUE(txn.Put(NumberedKey("t-", i), "0").ok());
        ASSERT_TRUE(txn.Commit().ok());
      }

      testing::WorkerFailures failures;
      std::atomic<bool> stop{false};
      std::thread txn_writer([&] {
        std::mt19937 rng(round * 10 + 1);
        while (!stop.load()) {
          Result<Transaction> txn = db.Begin(SnapshotIsolation());
          if (!txn.ok()) {
            failures.Add(StrCat("Begin: ", StatusText(txn.status())));
            return;
          }
          for (int w = 0; w < 3; ++w) {
            const std::string key = NumberedKey("t-", rng() % kTxnKeys);
            const Status s =
                rng() % 5 == 0 ? txn->Delete(key) : txn->Put(key, std::to_string(rng()));
            if (!s.ok()) failures.Add(StrCat("txn write: ", StatusText(s)));
          }
          Result<Timestamp> committed = txn->Commit();
          if (!committed.ok() && committed.status().code() != StatusCode::kConflict) {
            failures.Add(StrCat("Commit: ", StatusText(committed.status())));
          }
        }
      });
      std::thread raw_writer([&] {
        std::mt19937 rng(round * 10 + 2);
        while (!stop.load()) {
          const std::string key = NumberedKey("r-", rng() % kRawKeys);
          // A third of the writes travel back in time (below newer
          // versions of the key; refused at or below the horizon or a
          // live snapshot), so arrival order and timestamp order differ.
          Timestamp ts = *db.oracle().Next();
          if (rng() % 3 == 0)
            ts = Timestamp(ts.value() - std::min<uint64_t>(ts.value(), rng() % 30));
          Result<WriteResult> written = rng() % 4 == 0
                                            ? db.RawDelete(key, ts)
                                            : db.RawPut(key, std::string(rng() % 64, 'r'), ts);
          if (written.ok()) {
            raw_versions[key] = written->version;
          } else if (written.status().code() != StatusCode::kPreconditionFailed &&
                     written.status().code() != StatusCode::kCompacted) {
            failures.Add(StrCat("raw write: ", StatusText(written.status())));
          }
        }
      });
      std::thread compactor([&] {
        while (!stop.load()) {
          const uint64_t last = db.oracle().Last().value();
          if (last > 40) db.Compact(Timestamp(last - 40));
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      });

      const auto deadline = std::chrono::steady_clock::now() + round_time;
      int checkpoints = 0;
      while (std::chrono::steady_clock::now() < deadline || checkpoints < 3) {
        const Status s = store->Checkpoint();
        EXPECT_TRUE(s.ok()) << StatusText(s);
        ++checkpoints;
      }
      stop = true;
      txn_writer.join();
      raw_writer.join();
      compactor.join();
      failures.Report();

      // Sweep everything (single-threaded now), so the raw keys whose last
      // write was a tombstone below the horizon are retired: no version
      // left, but their write counts must survive the checkpoint too.
      db.Compact(db.oracle().Last());
      before = CaptureState(store->mvcc());
      EXPECT_GT(store->GetDurabilityStats().checkpoints, 0u);
    }

    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(store->recovery().checkpoint_lsn.has_value());
    ASSERT_EQ(DescribeDifference(before, CaptureState(store->mvcc())), "");
    // Write counts survived too (they are in no version a read can see):
    // the next write of each raw key continues its count.
    const Timestamp probe_ts = *store->db().oracle().Next();
    int shown = 0;
    for (auto& [key, version] : raw_versions) {
      Result<WriteResult> probe = store->db().RawPut(key, "probe", probe_ts);
      ASSERT_TRUE(probe.ok()) << StatusText(probe.status());
      if (probe->version != version + 1 && ++shown <= 5) {
        ADD_FAILURE() << key << ": the next write got version " << probe->version << ", expected "
                      << version + 1;
      }
      version = probe->version;
    }
  }
}

}  // namespace
}  // namespace strata::storage_testing
