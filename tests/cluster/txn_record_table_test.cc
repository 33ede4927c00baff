// TxnRecordTable: the single point of truth about a transaction's fate.
#include "cluster/txn_record_table.h"

#include <gtest/gtest.h>

#include <vector>

namespace strata::cluster {
namespace txn_record_table_test {

using std::chrono::milliseconds;
using Clock = TxnRecordTable::Clock;

const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);
constexpr milliseconds kTimeout(1000);
const std::vector<uint32_t> kParticipants = {0, 2};

TxnId Txn(uint64_t stamp, uint32_t coordinator = 0) { return TxnId{stamp, coordinator}; }

TEST(TxnRecordTableTest, CreateThenCommit) {
  TxnRecordTable table(kTimeout);
  ASSERT_TRUE(table.Create(Txn(10), kParticipants, kT0).ok());
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.pending(), 1u);
  ASSERT_TRUE(table.Find(Txn(10)).has_value());
  EXPECT_EQ(table.Find(Txn(10))->status, TxnStatus::kPending);

  TxnRecord committed = table.Commit(Txn(10), Timestamp(42));
  EXPECT_EQ(committed.status, TxnStatus::kCommitted);
  EXPECT_EQ(committed.commit_timestamp, Timestamp(42));
  EXPECT_EQ(table.pending(), 0u);

  // Committing again keeps the first timestamp.
  TxnRecord again = table.Commit(Txn(10), Timestamp(99));
  EXPECT_EQ(again.status, TxnStatus::kCommitted);
  EXPECT_EQ(again.commit_timestamp, Timestamp(42));
  // An abort or push cannot undo a commit.
  EXPECT_EQ(table.Abort(Txn(10)).status, TxnStatus::kCommitted);
  EXPECT_EQ(table.Push(Txn(10), kT0 + std::chrono::hours(1)).status, TxnStatus::kCommitted);
  EXPECT_EQ(table.pending(), 0u);
}

TEST(TxnRecordTableTest, CreateIsIdempotentWhilePending) {
  TxnRecordTable table(kTimeout);
  ASSERT_TRUE(table.Create(Txn(10), kParticipants, kT0).ok());
  ASSERT_TRUE(
      table.Create(Txn(10), kParticipants, kT0 + milliseconds(900)).ok());  // a retry refreshes
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.pending(), 1u);
  // Heartbeat refreshed by the retried create: 900 + 500 < 900 + 1000.
  EXPECT_EQ(table.Push(Txn(10), kT0 + milliseconds(1400)).status, TxnStatus::kPending);
}

TEST(TxnRecordTableTest, CreateOfAFinishedRecordIsAConflict) {
  TxnRecordTable table(kTimeout);
  EXPECT_EQ(table.Abort(Txn(10)).status, TxnStatus::kAborted);
  Status refused = table.Create(Txn(10), kParticipants, kT0);
  EXPECT_EQ(refused.code(), StatusCode::kConflict);
  EXPECT_NE(refused.message().find("10@0"), std::string::npos) << refused.message();
  EXPECT_EQ(table.pending(), 0u);

  ASSERT_TRUE(table.Create(Txn(11), kParticipants, kT0).ok());
  table.Commit(Txn(11), Timestamp(5));
  EXPECT_EQ(table.Create(Txn(11), kParticipants, kT0).code(), StatusCode::kConflict);
  EXPECT_EQ(table.Find(Txn(11))->status, TxnStatus::kCommitted);
}

TEST(TxnRecordTableTest, AbortOfPendingOrMissing) {
  TxnRecordTable table(kTimeout);
  ASSERT_TRUE(table.Create(Txn(10), kParticipants, kT0).ok());
  EXPECT_EQ(table.Abort(Txn(10)).status, TxnStatus::kAborted);
  EXPECT_EQ(table.pending(), 0u);
  // A missing record is left ABORTED.
  EXPECT_EQ(table.Abort(Txn(20)).status, TxnStatus::kAborted);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find(Txn(20))->status, TxnStatus::kAborted);
  // Aborting twice is fine.
  EXPECT_EQ(table.Abort(Txn(20)).status, TxnStatus::kAborted);
  EXPECT_EQ(table.size(), 2u);
}

TEST(TxnRecordTableTest, CommitAfterAbortReturnsAborted) {
  TxnRecordTable table(kTimeout);
  ASSERT_TRUE(table.Create(Txn(10), kParticipants, kT0).ok());
  table.Abort(Txn(10));
  TxnRecord record = table.Commit(Txn(10), Timestamp(42));
  EXPECT_EQ(record.status, TxnStatus::kAborted);
  EXPECT_EQ(table.Find(Txn(10))->status, TxnStatus::kAborted);
  EXPECT_EQ(table.pending(), 0u);
}

TEST(TxnRecordTableTest, CommitOfAMissingRecordLeavesItAborted) {
  TxnRecordTable table(kTimeout);
  EXPECT_EQ(table.Commit(Txn(10), Timestamp(42)).status, TxnStatus::kAborted);
  EXPECT_EQ(table.Find(Txn(10))->status, TxnStatus::kAborted);
  EXPECT_EQ(table.Create(Txn(10), kParticipants, kT0).code(), StatusCode::kConflict);
  EXPECT_EQ(table.pending(), 0u);
}

TEST(TxnRecordTableTest, PushOfAMissingRecordLeavesAnAbortedTombstone) {
  TxnRecordTable table(kTimeout);
  EXPECT_EQ(table.Push(Txn(10), kT0).status, TxnStatus::kAborted);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.pending(), 0u);
  // The prepare arriving late cannot bring it back.
  EXPECT_EQ(table.Create(Txn(10), kParticipants, kT0).code(), StatusCode::kConflict);
  EXPECT_EQ(table.Commit(Txn(10), Timestamp(42)).status, TxnStatus::kAborted);
}

TEST(TxnRecordTableTest, PushAbortsOnlyAStalePendingRecord) {
  TxnRecordTable table(kTimeout);
  ASSERT_TRUE(table.Create(Txn(10), kParticipants, kT0).ok());
  // Fresh: kept.
  EXPECT_EQ(table.Push(Txn(10), kT0 + milliseconds(999)).status, TxnStatus::kPending);
  EXPECT_EQ(table.pending(), 1u);
  // Not heartbeated for the whole timeout: aborted.
  EXPECT_EQ(table.Push(Txn(10), kT0 + kTimeout).status, TxnStatus::kAborted);
  EXPECT_EQ(table.pending(), 0u);
  // The coordinator comes back too late.
  EXPECT_EQ(table.Commit(Txn(10), Timestamp(42)).status, TxnStatus::kAborted);
}

TEST(TxnRecordTableTest, HeartbeatKeepsARecordFromBeingPushed) {
  TxnRecordTable table(kTimeout);
  EXPECT_FALSE(table.Heartbeat(Txn(10), kT0).has_value());  // no record yet
  EXPECT_EQ(table.size(), 0u);                              // and none made
  ASSERT_TRUE(table.Create(Txn(10), kParticipants, kT0).ok());
  for (int i = 1; i <= 5; ++i) {
    std::optional<TxnRecord> record = table.Heartbeat(Txn(10), kT0 + i * milliseconds(800));
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->status, TxnStatus::kPending);
    EXPECT_EQ(table.Push(Txn(10), kT0 + i * milliseconds(800) + milliseconds(999)).status,
              TxnStatus::kPending);
  }
  // Heartbeats stop: the next push after the timeout aborts.
  EXPECT_EQ(table.Push(Txn(10), kT0 + milliseconds(4000) + kTimeout).status, TxnStatus::kAborted);
  // A heartbeat of a finished record reports it.
  std::optional<TxnRecord> record = table.Heartbeat(Txn(10), kT0 + milliseconds(9000));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->status, TxnStatus::kAborted);
}

TEST(TxnRecordTableTest, ForgetAbortedBeforeKeepsPendingAndCommittedRecords) {
  TxnRecordTable table(kTimeout);
  ASSERT_TRUE(table.Create(Txn(1), kParticipants, kT0).ok());
  table.Commit(Txn(1), Timestamp(5));                          // committed, old: kept until Forget
  ASSERT_TRUE(table.Create(Txn(2), kParticipants, kT0).ok());  // pending, old
  table.Abort(Txn(3, 1));                                      // aborted, old: forgotten
  table.Abort(Txn(20));                                        // aborted, newer: kept
  EXPECT_EQ(table.size(), 4u);

  EXPECT_EQ(table.ForgetAbortedBefore(10), std::vector<TxnId>{Txn(3, 1)});
  EXPECT_FALSE(table.Find(Txn(3, 1)).has_value());
  // A push of the forgotten one answers ABORTED again, as it did.
  EXPECT_EQ(table.Push(Txn(3, 1), kT0).status, TxnStatus::kAborted);
  ASSERT_TRUE(table.Find(Txn(1)).has_value());
  EXPECT_EQ(table.Find(Txn(1))->status, TxnStatus::kCommitted);
  EXPECT_EQ(table.Find(Txn(2))->status, TxnStatus::kPending);
  EXPECT_TRUE(table.Find(Txn(20)).has_value());

  // A committed record goes only once every participant resolved (Forget);
  // a pending one cannot be forgotten that way.
  EXPECT_FALSE(table.Forget(Txn(2)));
  EXPECT_TRUE(table.Forget(Txn(1)));
  EXPECT_FALSE(table.Find(Txn(1)).has_value());
  EXPECT_EQ(table.pending(), 1u);
}

TEST(TxnRecordTableTest, CommittedBeforeListsCommittedRecordsWithTheirParticipants) {
  TxnRecordTable table(kTimeout);
  ASSERT_TRUE(table.Create(Txn(1), {1, 2, 3}, kT0).ok());
  table.Commit(Txn(1), Timestamp(50));
  ASSERT_TRUE(table.Create(Txn(2), kParticipants, kT0).ok());
  table.Commit(Txn(2), Timestamp(70));
  ASSERT_TRUE(table.Create(Txn(3), kParticipants, kT0).ok());  // pending
  table.Abort(Txn(4));                                         // aborted
  ASSERT_TRUE(table.Create(Txn(5), kParticipants, kT0).ok());
  table.Commit(Txn(5), Timestamp(40));
  table.Commit(Txn(5), Timestamp(90));  // a repeat keeps the first timestamp

  auto old = table.CommittedBefore(Timestamp(60));
  ASSERT_EQ(old.size(), 2u);
  EXPECT_EQ(old[0].first, Txn(1));  // by id
  EXPECT_EQ(old[0].second.participants, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(old[1].first, Txn(5));
  EXPECT_EQ(old[1].second.commit_timestamp, Timestamp(40));
  EXPECT_EQ(table.CommittedBefore(Timestamp(71)).size(), 3u);

  // Forgotten ones are gone from it; a restored one is back.
  EXPECT_TRUE(table.Forget(Txn(1)));
  EXPECT_EQ(table.CommittedBefore(Timestamp(60)).size(), 1u);
  TxnRecord restored{TxnStatus::kCommitted, Timestamp(10), {0, 1}};
  table.Restore(Txn(9), restored, kT0);
  old = table.CommittedBefore(Timestamp(60));
  ASSERT_EQ(old.size(), 2u);
  EXPECT_EQ(old[1].first, Txn(9));
  EXPECT_EQ(old[1].second.participants, (std::vector<uint32_t>{0, 1}));
  // Restoring an ABORTED record over nothing lists nothing new.
  table.Restore(Txn(8), TxnRecord{TxnStatus::kAborted, Timestamp(), {}}, kT0);
  EXPECT_EQ(table.CommittedBefore(Timestamp::Max()).size(), 3u);
}

TEST(TxnRecordTableTest, PendingCountStaysExact) {
  TxnRecordTable table(kTimeout);
  for (uint64_t i = 1; i <= 6; ++i) ASSERT_TRUE(table.Create(Txn(i), kParticipants, kT0).ok());
  EXPECT_EQ(table.pending(), 6u);
  table.Commit(Txn(1), Timestamp(100));
  table.Commit(Txn(1), Timestamp(100));
  table.Abort(Txn(2));
  table.Abort(Txn(2));
  table.Push(Txn(3), kT0 + kTimeout);
  table.Push(Txn(4), kT0);                                     // fresh: stays pending
  table.Push(Txn(7), kT0);                                     // missing: a tombstone, not pending
  ASSERT_TRUE(table.Create(Txn(5), kParticipants, kT0).ok());  // retry
  EXPECT_EQ(table.pending(), 3u);
  EXPECT_EQ(table.size(), 7u);
}

}  // namespace txn_record_table_test
}  // namespace strata::cluster
