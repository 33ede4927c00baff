// The timestamp oracle and what transactions do to the rest of the store:
// timestamps stay above everything the store has seen, raw writes cannot
// change a live snapshot, live snapshots hold garbage collection back (and
// GetStats says which one), and the active-transaction limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp_oracle.h"
#include "strata/txn_store.h"
#include "txn_test_support.h"

namespace strata::txn_testing {
namespace {

using ::testing::AllOf;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::Optional;

// ---------------------------------------------------------------------------
// LocalOracle.

// Next(), which only fails once the timestamps ran out.
Timestamp NextOrFail(TimestampOracle& oracle) {
  Result<Timestamp> next = oracle.Next();
  EXPECT_TRUE(next.ok()) << "the oracle ran out of timestamps at " << oracle.Last().value();
  return next.ok() ? *next : Timestamp();
}

TEST(OracleTest, NextIsStrictlyIncreasing) {
  LocalOracle oracle;
  Timestamp previous = NextOrFail(oracle);
  EXPECT_GT(previous, Timestamp::Min());
  for (int i = 0; i < 1000; ++i) {
    const Timestamp next = NextOrFail(oracle);
    ASSERT_GT(next, previous);
    EXPECT_EQ(oracle.Last(), next);
    previous = next;
  }
}

TEST(OracleTest, NextIsAboveEveryObservedTimestamp) {
  LocalOracle oracle;
  oracle.Observe(Timestamp(500));
  EXPECT_EQ(oracle.Last(), Timestamp(500));
  EXPECT_GT(NextOrFail(oracle), Timestamp(500));

  // Observing the past changes nothing: the clock never goes back.
  const Timestamp before = oracle.Last();
  oracle.Observe(Timestamp(3));
  EXPECT_EQ(oracle.Last(), before);
  EXPECT_GT(NextOrFail(oracle), before);

  // Observing exactly the last timestamp handed out still moves Next past it.
  const Timestamp handed_out = NextOrFail(oracle);
  oracle.Observe(handed_out);
  EXPECT_GT(NextOrFail(oracle), handed_out);
}

TEST(OracleTest, NextRunsOutAfterTheMaximum) {
  LocalOracle handed_out_max;
  handed_out_max.Observe(Timestamp(Timestamp::kMaxValue - 1));
  Result<Timestamp> last = handed_out_max.Next();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, Timestamp::Max());
  Result<Timestamp> none = handed_out_max.Next();
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("no timestamps are left"));
  EXPECT_EQ(handed_out_max.Last(), Timestamp::Max());  // and stays within range

  LocalOracle observed_max;
  observed_max.Observe(Timestamp::Max());
  EXPECT_EQ(observed_max.Next().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(observed_max.Last(), Timestamp::Max());
}

// ---------------------------------------------------------------------------
// TxnStore timestamps.

TEST(TxnTimestampTest, StartAndCommitAreAboveEveryRawWrite) {
  TestDb t;
  ASSERT_THAT(t.db.RawPut("k", "raw", Timestamp(1000)), IsOk());
  Transaction txn = BeginOrDie(t.db);
  EXPECT_GT(txn.start_timestamp(), Timestamp(1000));
  EXPECT_EQ(ReadValue(txn, "k"), "raw");
  ASSERT_THAT(txn.Put("k", "txn"), IsOk());
  const Timestamp committed = MustCommit(txn);
  EXPECT_GT(committed, txn.start_timestamp());

  ASSERT_THAT(t.db.RawDelete("k", Timestamp(5000)), IsOk());
  Transaction after_delete = BeginOrDie(t.db);
  EXPECT_GT(after_delete.start_timestamp(), Timestamp(5000));
  EXPECT_EQ(ReadValue(after_delete, "k"), std::nullopt);
  ASSERT_THAT(after_delete.Put("other", "v"), IsOk());
  EXPECT_GT(MustCommit(after_delete), Timestamp(5000));
}

TEST(TxnTimestampTest, StartIsAboveEveryCompactionRequest) {
  TestDb t;
  CommitWrites(t.db, {{"k", "v"}});
  EXPECT_EQ(t.db.Compact(Timestamp(7000)).horizon, Timestamp(7000));
  Transaction after_compact = BeginOrDie(t.db);
  EXPECT_GT(after_compact.start_timestamp(), Timestamp(7000));
  EXPECT_EQ(ReadValue(after_compact, "k"), "v");
  after_compact.Abort();

  EXPECT_EQ(t.db.RaiseHorizon(Timestamp(9000)), Timestamp(9000));
  Transaction after_raise = BeginOrDie(t.db);
  EXPECT_GT(after_raise.start_timestamp(), Timestamp(9000));
  ASSERT_THAT(after_raise.Put("k", "v2"), IsOk());
  EXPECT_GT(MustCommit(after_raise), Timestamp(9000));
}

// A TxnStore over a store that already holds data (say, one recovered from
// elsewhere) starts its clock above that data and that horizon.
TEST(TxnTimestampTest, ClockStartsAboveAnExistingStore) {
  MvccStore store;
  ASSERT_THAT(store.Put("k", "old", Timestamp(300)), IsOk());
  store.Compact(Timestamp(200));
  TxnStore db(&store);
  Transaction txn = BeginOrDie(db);
  EXPECT_GT(txn.start_timestamp(), Timestamp(300));
  EXPECT_EQ(ReadValue(txn, "k"), "old");

  MvccStore compacted_only;
  compacted_only.Compact(Timestamp(400));
  TxnStore db2(&compacted_only);
  EXPECT_GT(BeginOrDie(db2).start_timestamp(), Timestamp(400));
}

// Once a raw write used the last timestamp, nothing can begin or commit
// above it; the error says so instead of handing out an invalid timestamp.
TEST(TxnTimestampTest, BeginAndCommitAreUnavailableOnceTimestampsRunOut) {
  TestDb t;
  Transaction writer = BeginOrDie(t.db);
  ASSERT_THAT(writer.Put("mine", "v"), IsOk());
  Transaction reader = BeginOrDie(t.db);
  EXPECT_EQ(ReadValue(reader, "k"), std::nullopt);
  ASSERT_THAT(t.db.RawPut("k", "last", Timestamp::Max()), IsOk());

  Result<Transaction> refused = t.db.Begin();
  EXPECT_THAT(refused, HasCode(StatusCode::kUnavailable));
  EXPECT_THAT(refused.status().message(), HasSubstr("timestamp"));

  EXPECT_THAT(writer.Commit(), HasCode(StatusCode::kUnavailable));
  EXPECT_FALSE(writer.active());
  EXPECT_EQ(RawValue(t.store, "mine"), std::nullopt);
  // A transaction without writes needs no new timestamp.
  Result<Timestamp> read_commit = reader.Commit();
  EXPECT_THAT(read_commit, IsOk());
  EXPECT_EQ(t.db.GetStats().active_txns, 0u);
  // The past is still readable.
  Transaction past = BeginOrDie(t.db, ReadOnlyAt(Timestamp::Max()));
  EXPECT_EQ(ReadValue(past, "k"), "last");
}

TEST(TxnTimestampTest, TimestampsComeFromTheGivenOracle) {
  MvccStore store;
  LocalOracle oracle;
  oracle.Observe(Timestamp(10'000));
  TxnStore db(&store, &oracle);
  EXPECT_EQ(&db.oracle(), &oracle);
  Transaction txn = BeginOrDie(db);
  EXPECT_EQ(txn.start_timestamp(), Timestamp(10'001));
  ASSERT_THAT(txn.Put("k", "v"), IsOk());
  const Timestamp committed = MustCommit(txn);
  EXPECT_EQ(oracle.Last(), committed);
  // Raw writes feed the shared oracle too.
  ASSERT_THAT(db.RawPut("k", "raw", Timestamp(20'000)), IsOk());
  EXPECT_EQ(oracle.Last(), Timestamp(20'000));
}

// ---------------------------------------------------------------------------
// Raw writes against live snapshots.

TEST(RawWriteTest, AtOrBelowAnActiveSnapshotIsRefused) {
  TestDb t;
  // Start the clock high so that the start timestamp cannot be mistaken for
  // any other number in the message.
  ASSERT_THAT(t.db.RawPut("seed", "v", Timestamp(1000)), IsOk());
  Transaction txn = BeginOrDie(t.db);
  const Timestamp start = txn.start_timestamp();
  ASSERT_EQ(start, Timestamp(1001));
  EXPECT_EQ(ReadValue(txn, "k"), std::nullopt);

  const std::string start_text = std::to_string(start.value());
  for (Timestamp at : {Timestamp(500), start}) {
    SCOPED_TRACE(::testing::Message() << "at " << at.value());
    Result<WriteResult> put = t.db.RawPut("k", "raw", at);
    EXPECT_THAT(put, HasCode(StatusCode::kPreconditionFailed));
    EXPECT_THAT(put.status().message(), HasSubstr(start_text));
    Result<WriteResult> del = t.db.RawDelete("k", at);
    EXPECT_THAT(del, HasCode(StatusCode::kPreconditionFailed));
    EXPECT_THAT(del.status().message(), HasSubstr(start_text));
  }
  // Nothing was written, so the snapshot is intact.
  EXPECT_EQ(ReadValue(txn, "k"), std::nullopt);
  EXPECT_EQ(RawValue(t.store, "k"), std::nullopt);

  // Above the snapshot is fine: the transaction cannot see it.
  const Timestamp above(start.value() + 1);
  EXPECT_THAT(t.db.RawPut("k", "above", above), IsOk());
  EXPECT_EQ(ReadValue(txn, "k"), std::nullopt);
  txn.Abort();

  // Once the transaction ended, its old snapshot is free again.
  EXPECT_THAT(t.db.RawPut("k", "below", Timestamp(500)), IsOk());
  EXPECT_THAT(t.db.RawDelete("other", start), IsOk());
  EXPECT_EQ(RawValue(t.store, "k", Timestamp(500)), "below");
}

// A read-only transaction reading the past protects that past snapshot,
// and only it: a raw write between it and the present is allowed.
TEST(RawWriteTest, ReadTimestampSnapshotsAreProtectedToo) {
  TestDb t;
  ASSERT_THAT(t.db.RawPut("k", "v100", Timestamp(100)), IsOk());
  ASSERT_THAT(t.db.RawPut("k", "v300", Timestamp(300)), IsOk());
  Transaction past = BeginOrDie(t.db, ReadOnlyAt(Timestamp(200)));
  EXPECT_EQ(ReadValue(past, "k"), "v100");

  Result<WriteResult> refused = t.db.RawPut("k", "v150", Timestamp(150));
  EXPECT_THAT(refused, HasCode(StatusCode::kPreconditionFailed));
  EXPECT_THAT(refused.status().message(), HasSubstr("200"));
  EXPECT_THAT(t.db.RawPut("k", "v250", Timestamp(250)), IsOk());
  EXPECT_EQ(ReadValue(past, "k"), "v100");
}

// ---------------------------------------------------------------------------
// Garbage collection.

// Three versions of "k"; `holder` starts after the first and must keep
// seeing it through any compaction while it lives.
struct GcFixture {
  TestDb t;
  Timestamp v1_ts, v2_ts, v3_ts;
  std::optional<Transaction> holder;

  GcFixture() {
    v1_ts = CommitWrites(t.db, {{"k", "v1"}, {"gone", "soon"}});
    holder.emplace(BeginOrDie(t.db));
    v2_ts = CommitWrites(t.db, {{"k", "v2"}, {"gone", std::nullopt}});
    v3_ts = CommitWrites(t.db, {{"k", "v3"}});
  }

  size_t VersionsOf(std::string_view key) {
    Result<HistoryResult> history = t.store.History(key, std::nullopt, std::nullopt, 100);
    EXPECT_THAT(history, IsOk());
    return history.ok() ? history->versions.size() : 0;
  }

  void ExpectHolderStillSeesItsSnapshot() {
    EXPECT_EQ(ReadValue(*holder, "k"), "v1");
    EXPECT_EQ(ReadValue(*holder, "gone"), "soon");
    EXPECT_EQ(ScanValues(*holder, KeyRange::All()), (KeyValues{{"gone", "soon"}, {"k", "v1"}}));
  }
};

TEST(GcTest, LiveTransactionHoldsCompactionAtItsStart) {
  GcFixture f;
  const Timestamp start = f.holder->start_timestamp();
  CompactResult held = f.t.db.Compact(f.v3_ts);
  EXPECT_EQ(held.horizon, start);
  EXPECT_EQ(f.t.store.compaction_horizon(), start);
  f.ExpectHolderStillSeesItsSnapshot();
  EXPECT_EQ(f.VersionsOf("k"), 3u);

  // Once it ends, the same request goes through and the old versions go.
  f.holder->Abort();
  CompactResult released = f.t.db.Compact(f.v3_ts);
  EXPECT_EQ(released.horizon, f.v3_ts);
  // k@v1 and k@v2 under k@v3; "gone"'s value and then its tombstone, the
  // newest version at or below the horizon.
  EXPECT_EQ(released.versions_removed, 4u);
  EXPECT_EQ(f.VersionsOf("k"), 1u);
  EXPECT_EQ(f.VersionsOf("gone"), 0u);
  EXPECT_THAT(f.t.store.Get("k", start), HasCode(StatusCode::kCompacted));
  Transaction later = BeginOrDie(f.t.db);
  EXPECT_EQ(ReadValue(later, "k"), "v3");
}

TEST(GcTest, CommittingTheHolderReleasesItToo) {
  GcFixture f;
  ASSERT_THAT(f.holder->Put("unrelated", "x"), IsOk());
  MustCommit(*f.holder);
  EXPECT_EQ(f.t.db.Compact(f.v3_ts).horizon, f.v3_ts);
  EXPECT_EQ(f.VersionsOf("k"), 1u);
}

TEST(GcTest, RaiseHorizonIsClampedLikewise) {
  GcFixture f;
  const Timestamp start = f.holder->start_timestamp();
  EXPECT_EQ(f.t.db.RaiseHorizon(f.v3_ts), start);
  EXPECT_EQ(f.t.store.compaction_horizon(), start);
  // The background sweep after it must not take the holder's versions either.
  while (!f.t.store.CompactStep(1).sweep_finished) {
  }
  f.ExpectHolderStillSeesItsSnapshot();

  f.holder->Abort();
  EXPECT_EQ(f.t.db.RaiseHorizon(f.v3_ts), f.v3_ts);
  // The horizon never moves down.
  EXPECT_EQ(f.t.db.RaiseHorizon(f.v1_ts), f.v3_ts);
}

// With several live transactions, the oldest one holds the horizon, and
// letting it go moves the hold to the next oldest.
TEST(GcTest, OldestLiveTransactionHoldsTheHorizon) {
  GcFixture f;
  Transaction younger = BeginOrDie(f.t.db);
  const Timestamp younger_start = younger.start_timestamp();
  CommitWrites(f.t.db, {{"k", "v4"}});
  EXPECT_EQ(f.t.db.Compact(Timestamp::Max()).horizon, f.holder->start_timestamp());
  f.holder->Abort();
  EXPECT_EQ(f.t.db.Compact(Timestamp::Max()).horizon, younger_start);
  EXPECT_EQ(ReadValue(younger, "k"), "v3");
}

// A read-only transaction in the past holds the horizon at its read
// timestamp (below its begin-time clock).
TEST(GcTest, ReadTimestampTransactionHoldsTheHorizonAtItsReadTimestamp) {
  GcFixture f;
  f.holder->Abort();
  Transaction past = BeginOrDie(f.t.db, ReadOnlyAt(f.v1_ts));
  EXPECT_EQ(f.t.db.Compact(f.v3_ts).horizon, f.v1_ts);
  EXPECT_EQ(ReadValue(past, "k"), "v1");
}

TEST(GcTest, StatsNameWhatHoldsTheHorizon) {
  TestDb t;
  TxnStats idle = t.db.GetStats();
  EXPECT_EQ(idle.active_txns, 0u);
  EXPECT_EQ(idle.min_active_snapshot, std::nullopt);
  EXPECT_EQ(idle.oldest_txn_id, std::nullopt);
  EXPECT_EQ(idle.oldest_txn_age, std::nullopt);

  Transaction oldest = BeginOrDie(t.db);
  constexpr auto kPause = std::chrono::milliseconds(20);
  std::this_thread::sleep_for(kPause);
  Transaction second = BeginOrDie(t.db);
  Transaction third = BeginOrDie(t.db, ReadOnly());
  TxnStats three = t.db.GetStats();
  EXPECT_EQ(three.active_txns, 3u);
  EXPECT_EQ(three.min_active_snapshot, oldest.start_timestamp());
  EXPECT_EQ(three.oldest_txn_id, oldest.id());
  EXPECT_THAT(three.oldest_txn_age, Optional(Ge(kPause)));

  // The commit and conflict counters.
  ASSERT_THAT(second.Put("k", "second"), IsOk());
  ASSERT_THAT(oldest.Put("k", "oldest"), IsOk());
  MustCommit(second);
  EXPECT_THAT(oldest.Commit(), HasCode(StatusCode::kConflict));
  TxnStats after = t.db.GetStats();
  EXPECT_EQ(after.commits, 1u);
  EXPECT_EQ(after.conflicts, 1u);
  EXPECT_EQ(after.active_txns, 1u);
  // The hold passed to the one left.
  EXPECT_EQ(after.min_active_snapshot, third.start_timestamp());
  EXPECT_EQ(after.oldest_txn_id, third.id());

  MustCommit(third);  // read-only commits count as commits
  TxnStats done = t.db.GetStats();
  EXPECT_EQ(done.commits, 2u);
  EXPECT_EQ(done.active_txns, 0u);
  EXPECT_EQ(done.min_active_snapshot, std::nullopt);
  EXPECT_EQ(done.oldest_txn_id, std::nullopt);
}

// ---------------------------------------------------------------------------
// The active-transaction limit.

TEST(TxnLimitTest, BeginPastTheLimitIsUnavailableUntilOneEnds) {
  TxnStoreOptions options;
  options.max_active_txns = 7;
  TestDb t({}, options);
  const Timestamp committed = CommitWrites(t.db, {{"k", "v"}});
  std::vector<Transaction> open;
  for (int i = 0; i < 7; ++i) {
    open.push_back(BeginOrDie(t.db, i % 2 == 0 ? ReadWrite(Isolation::kSnapshot) : ReadOnly()));
  }
  for (const TxnOptions& options : {TxnOptions(), ReadOnly(), ReadOnlyAt(committed)}) {
    Result<Transaction> refused = t.db.Begin(options);
    EXPECT_THAT(refused, HasCode(StatusCode::kUnavailable));
    // The message says what limit was hit and what to do about it.
    EXPECT_THAT(refused.status().message(), AllOf(HasSubstr("7"), HasSubstr("active")));
  }
  EXPECT_EQ(t.db.GetStats().active_txns, 7u);

  open.front().Abort();
  Result<Transaction> after_abort = t.db.Begin();
  EXPECT_THAT(after_abort, IsOk());
  EXPECT_THAT(t.db.Begin(), HasCode(StatusCode::kUnavailable));

  MustCommit(open.back());
  EXPECT_THAT(t.db.Begin(), IsOk());  // destroyed at once, freeing its slot
  open.clear();
  EXPECT_EQ(t.db.GetStats().active_txns, 1u);  // only `after_abort` is left
}

TEST(TxnLimitTest, WritesPastThePerTransactionLimitAreRefused) {
  TxnStoreOptions options;
  options.max_writes_per_txn = 3;
  TestDb t({}, options);
  Transaction txn = BeginOrDie(t.db, ReadWrite(Isolation::kSnapshot));
  for (const char* key : {"a", "b", "c"}) EXPECT_THAT(txn.Put(key, "v"), IsOk());
  // A fourth distinct key is refused, naming the limit ...
  Status refused = txn.Put("d", "v");
  EXPECT_THAT(refused, HasCode(StatusCode::kInvalidArgument));
  EXPECT_THAT(refused.message(), HasSubstr("3"));
  EXPECT_THAT(txn.Delete("e"), HasCode(StatusCode::kInvalidArgument));
  // ... while rewriting a key already written takes no new room.
  EXPECT_THAT(txn.Put("a", "w"), IsOk());
  EXPECT_THAT(txn.Delete("b"), IsOk());
  MustCommit(txn);
  EXPECT_EQ(RawValue(t.store, "a"), "w");
  EXPECT_EQ(RawValue(t.store, "d"), std::nullopt);
}

TEST(TxnLimitTest, SerializableReadsPastTheLimitAreRefused) {
  TxnStoreOptions options;
  options.max_reads_per_txn = 2;
  TestDb t({}, options);
  Transaction txn = BeginOrDie(t.db, ReadWrite(Isolation::kSerializable));
  EXPECT_THAT(txn.Get("a"), IsOk());
  EXPECT_THAT(txn.Scan(KeyRange::All(), 10), IsOk());
  EXPECT_THAT(txn.Get("b"), HasCode(StatusCode::kInvalidArgument));
  EXPECT_THAT(txn.Scan(KeyRange::WithPrefix("x"), 10), HasCode(StatusCode::kInvalidArgument));
  // Snapshot isolation records no reads, so it has no such limit.
  Transaction snapshot = BeginOrDie(t.db, ReadWrite(Isolation::kSnapshot));
  for (const char* key : {"a", "b", "c", "d"}) EXPECT_THAT(snapshot.Get(key), IsOk());
}

}  // namespace
}  // namespace strata::txn_testing
