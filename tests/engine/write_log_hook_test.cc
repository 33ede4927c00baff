// The engine's side of durability: what it hands a WriteLog, when, and what
// it does when the log refuses; and the export / restore calls that
// checkpoints and recovery are built on. The log itself is tested in
// tests/storage/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/write_log.h"
#include "test_support.h"

namespace strata {
namespace {

using ::strata::testing::StatusIs;
using ::strata::testing::Ts;
using ::testing::ElementsAre;

// Remembers every record; can be told to refuse the next append.
class RecordingLog final : public WriteLog {
 public:
  struct Write {
    std::string key;
    std::optional<std::string> value;
    uint64_t version;
    bool operator==(const Write&) const = default;
  };
  struct Record {
    uint64_t lsn;
    uint64_t timestamp;  // the writes' timestamp, or the horizon
    bool horizon;
    std::vector<Write> writes;
  };

  Result<uint64_t> AppendWrites(Timestamp timestamp, std::span<const LoggedWrite> writes) override {
    if (refuse_) return Status::Unavailable("disk full (test)");
    Record record{++last_, timestamp.value(), false, {}};
    for (const LoggedWrite& w : writes) {
      record.writes.push_back({std::string(w.key),
                               w.value ? std::optional<std::string>(*w.value) : std::nullopt,
                               w.version});
    }
    records.push_back(std::move(record));
    return last_;
  }
  Result<uint64_t> AppendHorizon(Timestamp horizon) override {
    if (refuse_) return Status::Unavailable("disk full (test)");
    records.push_back({++last_, horizon.value(), true, {}});
    return last_;
  }
  Status AwaitDurable(uint64_t) override { return Status::Ok(); }
  uint64_t last_appended_lsn() const override { return last_; }

  void set_refuse(bool refuse) { refuse_ = refuse; }
  std::vector<Record> records;

 private:
  uint64_t last_ = 0;
  bool refuse_ = false;
};

TEST(WriteLogHookTest, EveryWriteIsLoggedWithTheVersionItGets) {
  RecordingLog log;
  MvccStore store({.write_log = &log});
  Result<WriteResult> first = store.Put("a", "1", Ts(10));
  Result<WriteResult> second = store.Delete("a", Ts(20));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->lsn, 1u);
  EXPECT_EQ(second->lsn, 2u);
  ASSERT_EQ(log.records.size(), 2u);
  EXPECT_THAT(log.records[0].writes, ElementsAre(RecordingLog::Write{"a", "1", 1}));
  EXPECT_THAT(log.records[1].writes, ElementsAre(RecordingLog::Write{"a", std::nullopt, 2}));
  EXPECT_EQ(log.records[1].timestamp, 20u);
}

TEST(WriteLogHookTest, ARetryIsNotLoggedAgainButWaitsForTheLastRecord) {
  RecordingLog log;
  MvccStore store({.write_log = &log});
  ASSERT_TRUE(store.Put("a", "1", Ts(10)).ok());
  ASSERT_TRUE(store.Put("b", "1", Ts(11)).ok());
  Result<WriteResult> retry = store.Put("a", "1", Ts(10));
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->retry);
  EXPECT_EQ(log.records.size(), 2u);
  EXPECT_EQ(retry->lsn, 2u);  // the original may still be in flight
}

TEST(WriteLogHookTest, ABatchIsOneRecordNumberedPerKey) {
  RecordingLog log;
  MvccStore store({.write_log = &log});
  ASSERT_TRUE(store.Put("a", "0", Ts(1)).ok());
  uint64_t lsn = 0;
  ASSERT_TRUE(store.ApplyBatch({{"a", "x"}, {"b", std::nullopt}}, Ts(5), &lsn).ok());
  EXPECT_EQ(lsn, 2u);
  ASSERT_EQ(log.records.size(), 2u);
  EXPECT_THAT(log.records[1].writes, ElementsAre(RecordingLog::Write{"a", "x", 2},
                                                 RecordingLog::Write{"b", std::nullopt, 1}));
}

TEST(WriteLogHookTest, ARefusedWriteChangesNothing) {
  RecordingLog log;
  MvccStore store({.write_log = &log});
  ASSERT_TRUE(store.Put("a", "1", Ts(10)).ok());
  log.set_refuse(true);
  EXPECT_THAT(store.Put("a", "2", Ts(20)).status(), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(store.ApplyBatch({{"a", "3"}, {"b", "3"}}, Ts(30)),
              StatusIs(StatusCode::kUnavailable));
  store.RaiseHorizon(Ts(15));
  EXPECT_EQ(store.compaction_horizon(), Ts(0));  // a horizon that was not logged does not rise
  EXPECT_EQ(store.GetStats().versions, 1u);
  EXPECT_EQ(store.max_timestamp(), Ts(10));
  log.set_refuse(false);
  // The version counter did not move either.
  Result<WriteResult> next = store.Put("a", "2", Ts(20));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, 2u);
}

TEST(WriteLogHookTest, TheHorizonIsLoggedBeforeTheSweepAndOnlyWhenItRises) {
  RecordingLog log;
  MvccStore store({.write_log = &log});
  ASSERT_TRUE(store.Put("a", "1", Ts(10)).ok());
  ASSERT_TRUE(store.Put("a", "2", Ts(20)).ok());
  CompactResult compacted = store.Compact(Ts(15));
  EXPECT_EQ(compacted.lsn, 3u);
  store.Compact(Ts(12));  // lower: nothing to log
  ASSERT_EQ(log.records.size(), 3u);
  EXPECT_TRUE(log.records[2].horizon);
  EXPECT_EQ(log.records[2].timestamp, 15u);
}

TEST(WriteLogHookTest, ExportSeesEveryVersionInKeyOrderInBatches) {
  RecordingLog log;
  MvccStore store({.write_log = &log});
  for (std::string key : {"k0", "k1", "k2", "k3", "k4"}) {
    ASSERT_TRUE(store.Put(key, "v", Ts(10 + (key[1] - '0'))).ok());
  }
  ASSERT_TRUE(store.Delete("k1", Ts(30)).ok());
  std::string cursor;
  std::vector<std::string> keys;
  std::vector<uint64_t> cuts;
  int batches = 0;
  bool done = false;
  while (!done) {
    ++batches;
    done = store.ExportKeys(
        &cursor, 2, [&] { cuts.push_back(log.last_appended_lsn()); },
        [&](std::string_view key, uint64_t write_count, std::span<const ExportedVersion> versions) {
          keys.emplace_back(key);
          if (key == "k1") {
            EXPECT_EQ(write_count, 2u);
            ASSERT_EQ(versions.size(), 2u);
            EXPECT_EQ(versions[0].value, "v");
            EXPECT_TRUE(versions[1].deleted);
            EXPECT_EQ(versions[1].version, 2u);
          }
        });
  }
  EXPECT_EQ(batches, 3);
  EXPECT_THAT(keys, ElementsAre("k0", "k1", "k2", "k3", "k4"));
  EXPECT_THAT(cuts, ElementsAre(6u, 6u, 6u));
}

TEST(WriteLogHookTest, RestoreKeepsVersionNumbersAndIsIdempotent) {
  MvccStore store;  // recovery runs before the log is attached to anything
  const std::string_view v1 = "one";
  store.RestoreVersion("a", Ts(20), 7, &v1, 7);
  store.RestoreVersion("a", Ts(10), 6, nullptr, 7);  // older, arriving second
  store.RestoreVersion("a", Ts(20), 7, &v1, 7);      // again: no change
  store.RestoreHorizon(Ts(5));
  store.RestoreMaxTimestamp(Ts(99));
  Result<HistoryResult> history = store.History("a", std::nullopt, std::nullopt, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->versions.size(), 2u);
  EXPECT_EQ(history->versions[0].version, 6u);
  EXPECT_TRUE(history->versions[0].deleted);
  EXPECT_EQ(history->versions[1].version, 7u);
  EXPECT_EQ(store.compaction_horizon(), Ts(5));
  EXPECT_EQ(store.max_timestamp(), Ts(99));
  // The counter continues from the restored one.
  Result<WriteResult> next = store.Put("a", "two", Ts(30));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, 8u);
}

}  // namespace
}  // namespace strata
