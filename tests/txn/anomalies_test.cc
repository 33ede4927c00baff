// The isolation anomalies, one named test each, and the rules of a single
// transaction's life (own writes, read timestamps, what happens after it
// ends). Each anomaly runs under the isolation levels it concerns: snapshot
// isolation must prevent lost updates but allows write skew and phantoms;
// serializable prevents all three. All single-threaded: the interleavings
// are spelled out step by step, so each test names one schedule.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/txn_store.h"
#include "txn_test_support.h"

namespace strata::txn_testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

// ---------------------------------------------------------------------------
// Lost update: two read-modify-writes of one counter.

void ExpectLostUpdatePrevented(Isolation isolation) {
  TestDb t;
  CommitWrites(t.db, {{"counter", "10"}});
  Transaction earlier = BeginOrDie(t.db, ReadWrite(isolation));
  Transaction later = BeginOrDie(t.db, ReadWrite(isolation));
  // Both read 10 and write 11: committing both would lose one increment.
  for (Transaction* txn : {&earlier, &later}) {
    EXPECT_EQ(ReadValue(*txn, "counter"), "10");
    ASSERT_THAT(txn->Put("counter", "11"), IsOk());
  }

  // First committer wins, not first starter: the later-started one commits
  // first and the earlier one loses.
  EXPECT_THAT(later.Commit(), IsOk());
  EXPECT_THAT(earlier.Commit(), HasCode(StatusCode::kConflict));
  EXPECT_EQ(earlier.conflict_key(), "counter");
  EXPECT_FALSE(earlier.active());

  // The loser's retry sees the winner's increment and adds its own.
  Transaction retry = BeginOrDie(t.db, ReadWrite(isolation));
  EXPECT_EQ(ReadValue(retry, "counter"), "11");
  ASSERT_THAT(retry.Put("counter", "12"), IsOk());
  MustCommit(retry);
  EXPECT_EQ(RawValue(t.store, "counter"), "12");
  EXPECT_EQ(t.db.GetStats().conflicts, 1u);
}

TEST(AnomalyTest, LostUpdatePreventedUnderSnapshot) {
  ExpectLostUpdatePrevented(Isolation::kSnapshot);
}

TEST(AnomalyTest, LostUpdatePreventedUnderSerializable) {
  ExpectLostUpdatePrevented(Isolation::kSerializable);
}

// A delete is a write like any other: it conflicts with a concurrent put.
TEST(AnomalyTest, DeleteConflictsWithConcurrentPut) {
  for (Isolation isolation : kBothIsolations) {
    SCOPED_TRACE(IsolationName(isolation));
    TestDb t;
    CommitWrites(t.db, {{"k", "v0"}});
    Transaction deleter = BeginOrDie(t.db, ReadWrite(isolation));
    Transaction writer = BeginOrDie(t.db, ReadWrite(isolation));
    ASSERT_THAT(deleter.Delete("k"), IsOk());
    ASSERT_THAT(writer.Put("k", "v1"), IsOk());
    MustCommit(deleter);
    EXPECT_THAT(writer.Commit(), HasCode(StatusCode::kConflict));
    EXPECT_EQ(writer.conflict_key(), "k");
    EXPECT_EQ(RawValue(t.store, "k"), std::nullopt);
  }
}

// ---------------------------------------------------------------------------
// Write skew: the two on-call doctors. Each checks that the other is still
// on call and takes itself off; run serially, the second would see the
// first gone and stay. The invariant is "at least one doctor on call".

struct OnCallOutcome {
  Status alice_commit;
  Status bob_commit;
  std::optional<std::string> alice_conflict_key;
  std::optional<std::string> bob_conflict_key;
  int doctors_on_call_after = 0;
};

int DoctorsOnCall(TxnStore& db) {
  Transaction reader = BeginOrDie(db, ReadOnly());
  int on_call = 0;
  for (const char* key : {"oncall/alice", "oncall/bob"}) {
    if (ReadValue(reader, key) == "yes") ++on_call;
  }
  return on_call;
}

// `check_by_scan`: each doctor counts the doctors on call with a range scan
// instead of a point read of the other, so only range validation can see
// the skew.
OnCallOutcome RunOnCallSchedule(Isolation isolation, bool check_by_scan) {
  TestDb t;
  CommitWrites(t.db, {{"oncall/alice", "yes"}, {"oncall/bob", "yes"}});
  Transaction alice = BeginOrDie(t.db, ReadWrite(isolation));
  Transaction bob = BeginOrDie(t.db, ReadWrite(isolation));
  auto go_off_call_if_covered = [&](Transaction& me, const std::string& my_key,
                                    const std::string& other_key) {
    bool covered = false;
    if (check_by_scan) {
      int on_call = 0;
      for (const auto& [key, value] : ScanValues(me, KeyRange::WithPrefix("oncall/"))) {
        if (value == "yes") ++on_call;
      }
      covered = on_call >= 2;
    } else {
      covered = ReadValue(me, other_key) == "yes";
    }
    EXPECT_TRUE(covered) << "both doctors start on call";
    if (covered) {
      EXPECT_THAT(me.Put(my_key, "no"), IsOk());
    }
  };
  go_off_call_if_covered(alice, "oncall/alice", "oncall/bob");
  go_off_call_if_covered(bob, "oncall/bob", "oncall/alice");

  OnCallOutcome outcome;
  outcome.alice_commit = alice.Commit().status();
  outcome.bob_commit = bob.Commit().status();
  outcome.alice_conflict_key = alice.conflict_key();
  outcome.bob_conflict_key = bob.conflict_key();
  outcome.doctors_on_call_after = DoctorsOnCall(t.db);
  return outcome;
}

TEST(AnomalyTest, WriteSkewAllowedUnderSnapshot) {
  for (bool check_by_scan : {false, true}) {
    SCOPED_TRACE(check_by_scan ? "checked by scan" : "checked by point read");
    OnCallOutcome outcome = RunOnCallSchedule(Isolation::kSnapshot, check_by_scan);
    // The writes are disjoint, so snapshot isolation lets both commit and
    // the invariant breaks: that is the anomaly snapshot isolation allows.
    EXPECT_THAT(outcome.alice_commit, IsOk());
    EXPECT_THAT(outcome.bob_commit, IsOk());
    EXPECT_EQ(outcome.doctors_on_call_after, 0);
  }
}

TEST(AnomalyTest, WriteSkewPreventedUnderSerializable) {
  for (bool check_by_scan : {false, true}) {
    SCOPED_TRACE(check_by_scan ? "checked by scan" : "checked by point read");
    OnCallOutcome outcome = RunOnCallSchedule(Isolation::kSerializable, check_by_scan);
    EXPECT_THAT(outcome.alice_commit, IsOk());
    EXPECT_THAT(outcome.bob_commit, HasCode(StatusCode::kConflict));
    // Bob read Alice's row (directly or through the scan) and Alice changed it.
    EXPECT_EQ(outcome.bob_conflict_key, "oncall/alice");
    EXPECT_EQ(outcome.doctors_on_call_after, 1);
  }
}

// A scan cut short by its limit read more than the items it returned: its
// `more` flag says another key follows, and a transaction can act on that
// alone ("someone besides the first doctor listed is on call"). The key
// behind `more` must be validated like the items.
TEST(AnomalyTest, WriteSkewThroughScanLimitPreventedUnderSerializable) {
  TestDb t;
  CommitWrites(t.db, {{"oncall/alice", "yes"}, {"oncall/bob", "yes"}});
  Transaction alice = BeginOrDie(t.db, ReadWrite(Isolation::kSerializable));
  Transaction bob = BeginOrDie(t.db, ReadWrite(Isolation::kSerializable));
  auto go_off_call_if_another_is_on = [](Transaction& me, const std::string& my_key) {
    Result<ScanResult> first_on_call = me.Scan(KeyRange::WithPrefix("oncall/"), 1);
    ASSERT_THAT(first_on_call, IsOk());
    EXPECT_EQ(KeyValuesOf(*first_on_call), (KeyValues{{"oncall/alice", "yes"}}));
    ASSERT_TRUE(first_on_call->more);
    EXPECT_THAT(me.Delete(my_key), IsOk());
  };
  go_off_call_if_another_is_on(alice, "oncall/alice");
  go_off_call_if_another_is_on(bob, "oncall/bob");

  // Bob's row is past the item Alice's scan returned, but it is what made
  // her `more` true.
  EXPECT_THAT(bob.Commit(), IsOk());
  EXPECT_THAT(alice.Commit(), HasCode(StatusCode::kConflict));
  EXPECT_EQ(alice.conflict_key(), "oncall/bob");
  EXPECT_EQ(DoctorsOnCall(t.db), 1);
}

// ---------------------------------------------------------------------------
// Phantoms: A counts the rows of a range and records the count; B changes
// the set of rows in the range and commits first.

struct PhantomOutcome {
  Status counter_commit;
  std::optional<std::string> conflict_key;
};

// `change_range` is B's change; it commits between A's scan and A's commit.
PhantomOutcome RunPhantomSchedule(Isolation isolation,
                                  const std::function<void(Transaction&)>& change_range) {
  TestDb t;
  CommitWrites(t.db, {{"room/1", "alice"}, {"room/2", "bob"}, {"roon", "outside the range"}});
  Transaction counter = BeginOrDie(t.db, ReadWrite(isolation));
  KeyValues rooms = ScanValues(counter, KeyRange::WithPrefix("room/"));
  EXPECT_EQ(rooms.size(), 2u);
  EXPECT_THAT(counter.Put("room_count", std::to_string(rooms.size())), IsOk());

  Transaction changer = BeginOrDie(t.db, ReadWrite(isolation));
  change_range(changer);
  MustCommit(changer);

  PhantomOutcome outcome;
  outcome.counter_commit = counter.Commit().status();
  outcome.conflict_key = counter.conflict_key();
  return outcome;
}

void InsertRoom3(Transaction& txn) { EXPECT_THAT(txn.Put("room/3", "carol"), IsOk()); }
void DeleteRoom1(Transaction& txn) { EXPECT_THAT(txn.Delete("room/1"), IsOk()); }

TEST(AnomalyTest, PhantomPreventedUnderSerializable) {
  PhantomOutcome inserted = RunPhantomSchedule(Isolation::kSerializable, InsertRoom3);
  EXPECT_THAT(inserted.counter_commit, HasCode(StatusCode::kConflict));
  EXPECT_EQ(inserted.conflict_key, "room/3");

  // A row leaving the range is a phantom too.
  PhantomOutcome deleted = RunPhantomSchedule(Isolation::kSerializable, DeleteRoom1);
  EXPECT_THAT(deleted.counter_commit, HasCode(StatusCode::kConflict));
  EXPECT_EQ(deleted.conflict_key, "room/1");
}

TEST(AnomalyTest, PhantomAllowedUnderSnapshot) {
  for (auto change : {InsertRoom3, DeleteRoom1}) {
    EXPECT_THAT(RunPhantomSchedule(Isolation::kSnapshot, change).counter_commit, IsOk());
  }
}

// Writes outside every range the transaction read do not conflict, or
// serializable transactions over disjoint data could not run side by side.
TEST(AnomalyTest, WritesOutsideTheScannedRangeDoNotConflict) {
  auto write_outside = [](Transaction& txn) { EXPECT_THAT(txn.Put("roon", "next door"), IsOk()); };
  EXPECT_THAT(RunPhantomSchedule(Isolation::kSerializable, write_outside).counter_commit, IsOk());
}

// Reading a key that does not exist is a read too: creating it later is a
// phantom of a point read.
TEST(AnomalyTest, CreatingAKeyReadAsMissingConflictsUnderSerializable) {
  TestDb t;
  Transaction reader = BeginOrDie(t.db, ReadWrite(Isolation::kSerializable));
  EXPECT_EQ(ReadValue(reader, "username/carol"), std::nullopt);
  ASSERT_THAT(reader.Put("audit", "carol is free"), IsOk());
  CommitWrites(t.db, {{"username/carol", "taken"}});
  EXPECT_THAT(reader.Commit(), HasCode(StatusCode::kConflict));
  EXPECT_EQ(reader.conflict_key(), "username/carol");
}

// ---------------------------------------------------------------------------
// Snapshots of readers.

TEST(AnomalyTest, ReadOnlySnapshotStableWhileWritersCommit) {
  for (Isolation isolation : kBothIsolations) {
    SCOPED_TRACE(IsolationName(isolation));
    TestDb t;
    std::vector<Write> initial;
    for (int i = 0; i < 10; ++i) initial.push_back({NumberedKey("k", i), "v0"});
    CommitWrites(t.db, initial);

    Transaction reader = BeginOrDie(t.db, ReadOnly(isolation));
    auto read_everything = [&] {
      std::vector<std::optional<std::string>> values;
      for (int i = 0; i < 12; ++i) values.push_back(ReadValue(reader, NumberedKey("k", i)));
      return std::make_pair(values, ScanValues(reader, KeyRange::All()));
    };
    const auto before = read_everything();

    // Every key it read changes: updates, deletes, new keys inside the
    // scanned range, and raw writes above its snapshot.
    for (int round = 1; round <= 50; ++round) {
      const std::string key = NumberedKey("k", round % 12);
      if (round % 5 == 0) {
        CommitWrites(t.db, {{key, std::nullopt}});
      } else {
        CommitWrites(t.db, {{key, NumberedKey("v", round)}, {NumberedKey("k", round % 3), "x"}});
      }
    }
    const Timestamp raw_ts(t.db.oracle().Last().value() + 10);
    ASSERT_THAT(t.db.RawPut("k0", "raw", raw_ts), IsOk());

    EXPECT_EQ(read_everything(), before);
    // Nothing a read-only transaction read can make its commit fail.
    Result<Timestamp> committed = reader.Commit();
    EXPECT_THAT(committed, IsOk());
    if (committed.ok()) {
      EXPECT_EQ(*committed, reader.start_timestamp());
    }
  }
}

// ---------------------------------------------------------------------------
// Atomicity.

TEST(AnomalyTest, AbortedWritesNeverVisible) {
  for (Isolation isolation : kBothIsolations) {
    SCOPED_TRACE(IsolationName(isolation));
    TestDb t;
    CommitWrites(t.db, {{"shared", "v0"}});
    const StoreStats stats_before = t.store.GetStats();

    Transaction aborted = BeginOrDie(t.db, ReadWrite(isolation));
    ASSERT_THAT(aborted.Put("aborted/put", "x"), IsOk());
    ASSERT_THAT(aborted.Delete("shared"), IsOk());
    aborted.Abort();
    EXPECT_FALSE(aborted.active());

    {
      // Forgotten: never committed nor aborted, destroyed at scope exit.
      Transaction forgotten = BeginOrDie(t.db, ReadWrite(isolation));
      ASSERT_THAT(forgotten.Put("forgotten/put", "x"), IsOk());
      ASSERT_THAT(forgotten.Put("shared", "forgotten"), IsOk());
    }

    Transaction winner = BeginOrDie(t.db, ReadWrite(isolation));
    Transaction loser = BeginOrDie(t.db, ReadWrite(isolation));
    ASSERT_THAT(loser.Put("loser/put", "x"), IsOk());
    ASSERT_THAT(loser.Put("shared", "loser"), IsOk());
    ASSERT_THAT(winner.Put("shared", "winner"), IsOk());
    MustCommit(winner);
    EXPECT_THAT(loser.Commit(), HasCode(StatusCode::kConflict));

    Transaction later = BeginOrDie(t.db);
    for (const char* key : {"aborted/put", "forgotten/put", "loser/put"}) {
      EXPECT_EQ(ReadValue(later, key), std::nullopt) << key;
      EXPECT_EQ(RawValue(t.store, key), std::nullopt) << key;
      Result<HistoryResult> history = t.store.History(key, std::nullopt, std::nullopt, 10);
      ASSERT_THAT(history, IsOk());
      EXPECT_THAT(history->versions, IsEmpty()) << key;
    }
    EXPECT_EQ(ReadValue(later, "shared"), "winner");
    EXPECT_THAT(ScanValues(later, KeyRange::All()), ElementsAre(Pair("shared", "winner")));
    // Only the winner's one version was added to the store.
    EXPECT_EQ(t.store.GetStats().versions, stats_before.versions + 1);
    later.Abort();
    EXPECT_EQ(t.db.GetStats().active_txns, 0u);
  }
}

TEST(AnomalyTest, NoPartialCommits) {
  TestDb t;
  CommitWrites(t.db, {{"a", "a0"}, {"b", "b0"}, {"c", "c0"}});
  Transaction before = BeginOrDie(t.db, ReadOnly());

  Transaction writer = BeginOrDie(t.db);
  ASSERT_THAT(writer.Put("a", "a1"), IsOk());
  ASSERT_THAT(writer.Delete("b"), IsOk());
  ASSERT_THAT(writer.Put("d", "d1"), IsOk());
  ASSERT_THAT(writer.Put("e", "e1"), IsOk());
  const Timestamp commit_ts = MustCommit(writer);
  Transaction after = BeginOrDie(t.db, ReadOnly());

  const KeyValues old_state = {{"a", "a0"}, {"b", "b0"}, {"c", "c0"}};
  const KeyValues new_state = {{"a", "a1"}, {"c", "c0"}, {"d", "d1"}, {"e", "e1"}};
  EXPECT_EQ(ScanValues(before, KeyRange::All()), old_state);
  EXPECT_EQ(ScanValues(after, KeyRange::All()), new_state);
  // Every write carries the one commit timestamp, so no read timestamp can
  // split them.
  for (const char* key : {"a", "b", "d", "e"}) {
    EXPECT_EQ(t.store.LatestTimestamp(key), commit_ts) << key;
  }
  Result<ScanResult> just_before =
      t.store.Scan(KeyRange::All(), Timestamp(commit_ts.value() - 1), 10);
  ASSERT_THAT(just_before, IsOk());
  EXPECT_EQ(KeyValuesOf(*just_before), old_state);
}

TEST(AnomalyTest, NoPartialCommitsWhenOneKeyConflicts) {
  for (Isolation isolation : kBothIsolations) {
    SCOPED_TRACE(IsolationName(isolation));
    TestDb t;
    Transaction multi = BeginOrDie(t.db, ReadWrite(isolation));
    for (const char* key : {"a", "m", "z"}) ASSERT_THAT(multi.Put(key, "multi"), IsOk());
    CommitWrites(t.db, {{"m", "other"}});
    EXPECT_THAT(multi.Commit(), HasCode(StatusCode::kConflict));
    EXPECT_EQ(multi.conflict_key(), "m");
    EXPECT_EQ(RawValue(t.store, "a"), std::nullopt);
    EXPECT_EQ(RawValue(t.store, "m"), "other");
    EXPECT_EQ(RawValue(t.store, "z"), std::nullopt);
  }
}

// A write the store refuses (a key over its size limit) may be refused at
// Put or at Commit, but never after the transaction's other writes landed.
TEST(AnomalyTest, NoPartialCommitsWhenTheStoreRefusesAWrite) {
  StoreOptions small_keys;
  small_keys.max_key_bytes = 8;
  TestDb t(small_keys);
  Transaction txn = BeginOrDie(t.db);
  ASSERT_THAT(txn.Put("fine", "1"), IsOk());
  const std::string oversized(9, 'k');
  Status put = txn.Put(oversized, "2");
  if (put.ok()) {
    // Refused at commit: then none of the transaction's writes lands.
    EXPECT_THAT(txn.Commit(), HasCode(StatusCode::kInvalidArgument));
    EXPECT_EQ(RawValue(t.store, "fine"), std::nullopt);
  } else {
    // Refused at Put: the transaction goes on without that one write.
    EXPECT_THAT(put, HasCode(StatusCode::kInvalidArgument));
    MustCommit(txn);
    EXPECT_EQ(RawValue(t.store, "fine"), "1");
  }
}

// ---------------------------------------------------------------------------
// Reading one's own writes.

TEST(AnomalyTest, ReadYourOwnWrites) {
  for (Isolation isolation : kBothIsolations) {
    SCOPED_TRACE(IsolationName(isolation));
    TestDb t;
    CommitWrites(t.db, {{"a", "a0"}, {"b", "b0"}, {"c", "c0"}, {"d", "d0"}});
    Transaction txn = BeginOrDie(t.db, ReadWrite(isolation));
    ASSERT_THAT(txn.Put("b", "b1"), IsOk());    // overwrites a stored key
    ASSERT_THAT(txn.Put("bb", "bb1"), IsOk());  // a new key between stored ones
    ASSERT_THAT(txn.Delete("c"), IsOk());       // hides a stored key
    ASSERT_THAT(txn.Put("e", "e1"), IsOk());    // a new key after the last stored one
    ASSERT_THAT(txn.Put("e", "e2"), IsOk());    // the latest own write wins

    Result<ReadResult> put_read = txn.Get("b");
    ASSERT_THAT(put_read, IsOk());
    EXPECT_TRUE(put_read->found);
    EXPECT_FALSE(put_read->deleted);
    EXPECT_TRUE(put_read->own_write);
    EXPECT_EQ(put_read->value, "b1");
    EXPECT_EQ(put_read->version, 0u);
    EXPECT_EQ(put_read->timestamp, Timestamp());

    Result<ReadResult> delete_read = txn.Get("c");
    ASSERT_THAT(delete_read, IsOk());
    EXPECT_TRUE(delete_read->found);
    EXPECT_TRUE(delete_read->deleted);
    EXPECT_TRUE(delete_read->own_write);

    Result<ReadResult> stored_read = txn.Get("a");
    ASSERT_THAT(stored_read, IsOk());
    EXPECT_FALSE(stored_read->own_write);
    EXPECT_EQ(stored_read->value, "a0");
    EXPECT_EQ(ReadValue(txn, "e"), "e2");

    // Every limit around the merge points: own keys and stored keys come
    // out in key order, deleted ones never, and `more` says whether the
    // limit cut anything.
    const KeyValues merged = {{"a", "a0"}, {"b", "b1"}, {"bb", "bb1"}, {"d", "d0"}, {"e", "e2"}};
    for (size_t limit = 0; limit <= merged.size() + 1; ++limit) {
      SCOPED_TRACE(::testing::Message() << "limit " << limit);
      Result<ScanResult> scan = txn.Scan(KeyRange::All(), limit);
      ASSERT_THAT(scan, IsOk());
      const size_t expected_size = std::min(limit, merged.size());
      EXPECT_EQ(KeyValuesOf(*scan), KeyValues(merged.begin(), merged.begin() + expected_size));
      EXPECT_EQ(scan->more, limit < merged.size());
    }
    EXPECT_EQ(ScanValues(txn, KeyRange{"b", "d"}), (KeyValues{{"b", "b1"}, {"bb", "bb1"}}));
    EXPECT_EQ(ScanValues(txn, KeyRange{"bb", std::nullopt}),
              (KeyValues{{"bb", "bb1"}, {"d", "d0"}, {"e", "e2"}}));

    // Deleting what it wrote itself, and re-creating what it deleted.
    ASSERT_THAT(txn.Delete("bb"), IsOk());
    ASSERT_THAT(txn.Put("c", "c1"), IsOk());
    EXPECT_EQ(ScanValues(txn, KeyRange::All()),
              (KeyValues{{"a", "a0"}, {"b", "b1"}, {"c", "c1"}, {"d", "d0"}, {"e", "e2"}}));

    // Nothing leaks out before the commit; everything lands after it.
    EXPECT_EQ(RawValue(t.store, "e"), std::nullopt);
    MustCommit(txn);
    Transaction later = BeginOrDie(t.db, ReadOnly());
    EXPECT_EQ(ScanValues(later, KeyRange::All()),
              (KeyValues{{"a", "a0"}, {"b", "b1"}, {"c", "c1"}, {"d", "d0"}, {"e", "e2"}}));
  }
}

// "No limit" spelled as the largest size_t must not wrap around inside the
// merge (the stored part is fetched with limit + number of own writes).
TEST(AnomalyTest, ScanWithLargestLimitReturnsEverything) {
  TestDb t;
  CommitWrites(t.db, {{"a", "a0"}, {"c", "c0"}, {"e", "e0"}});
  Transaction txn = BeginOrDie(t.db);
  ASSERT_THAT(txn.Put("b", "b1"), IsOk());
  ASSERT_THAT(txn.Put("d", "d1"), IsOk());
  Result<ScanResult> scan = txn.Scan(KeyRange::All(), std::numeric_limits<size_t>::max());
  ASSERT_THAT(scan, IsOk());
  EXPECT_EQ(KeyValuesOf(*scan),
            (KeyValues{{"a", "a0"}, {"b", "b1"}, {"c", "c0"}, {"d", "d1"}, {"e", "e0"}}));
  EXPECT_FALSE(scan->more);
}

// An empty range ([x, x)) or an inverted one (start after end) holds no
// keys, as MvccStore::Scan answers, even when the transaction has own
// writes on both sides of it.
TEST(AnomalyTest, ScanOfEmptyOrInvertedRangeIsEmpty) {
  TestDb t;
  CommitWrites(t.db, {{"a", "a0"}, {"m", "m0"}, {"z", "z0"}});
  Transaction txn = BeginOrDie(t.db);
  for (const char* key : {"b", "n", "y"}) ASSERT_THAT(txn.Put(key, "own"), IsOk());
  for (const KeyRange& range : {KeyRange{"m", "m"}, KeyRange{"n", "b"}, KeyRange{"z", "a"}}) {
    SCOPED_TRACE(::testing::Message() << "[" << range.start << ", " << *range.end << ")");
    Result<ScanResult> stored = t.store.Scan(range, Timestamp::Max(), 10);
    ASSERT_THAT(stored, IsOk());
    ASSERT_THAT(stored->items, IsEmpty());
    Result<ScanResult> scan = txn.Scan(range, 10);
    ASSERT_THAT(scan, IsOk());
    EXPECT_THAT(scan->items, IsEmpty());
    EXPECT_FALSE(scan->more);
  }
}

// ---------------------------------------------------------------------------
// Read timestamps (reading the past).

TEST(AnomalyTest, ReadTimestampRequiresReadOnly) {
  TestDb t;
  const Timestamp committed = CommitWrites(t.db, {{"k", "v"}});
  for (Isolation isolation : kBothIsolations) {
    TxnOptions options = ReadWrite(isolation);
    options.read_timestamp = committed;
    EXPECT_THAT(t.db.Begin(options), HasCode(StatusCode::kInvalidArgument));
  }
  EXPECT_EQ(t.db.GetStats().active_txns, 0u);
}

TEST(AnomalyTest, ReadTimestampBelowCompactionHorizonIsCompacted) {
  TestDb t;
  CommitWrites(t.db, {{"k", "v1"}});
  const Timestamp second = CommitWrites(t.db, {{"k", "v2"}});
  const Timestamp horizon = t.db.Compact(second).horizon;
  ASSERT_EQ(horizon, second);

  EXPECT_THAT(t.db.Begin(ReadOnlyAt(Timestamp(horizon.value() - 1))),
              HasCode(StatusCode::kCompacted));
  // The horizon itself is still readable.
  Transaction at_horizon = BeginOrDie(t.db, ReadOnlyAt(horizon));
  EXPECT_EQ(ReadValue(at_horizon, "k"), "v2");
}

TEST(AnomalyTest, ReadTimestampReadsThePast) {
  for (Isolation isolation : kBothIsolations) {
    SCOPED_TRACE(IsolationName(isolation));
    TestDb t;
    const Timestamp first = CommitWrites(t.db, {{"a", "a1"}, {"b", "b1"}});
    const Timestamp second = CommitWrites(t.db, {{"a", "a2"}, {"b", std::nullopt}, {"c", "c2"}});
    CommitWrites(t.db, {{"a", "a3"}});

    Transaction past = BeginOrDie(t.db, ReadOnlyAt(first, isolation));
    EXPECT_EQ(past.start_timestamp(), first);
    EXPECT_EQ(ReadValue(past, "a"), "a1");
    EXPECT_EQ(ReadValue(past, "c"), std::nullopt);
    EXPECT_EQ(ScanValues(past, KeyRange::All()), (KeyValues{{"a", "a1"}, {"b", "b1"}}));
    EXPECT_THAT(past.Put("a", "nope"), HasCode(StatusCode::kInvalidArgument));
    Result<Timestamp> committed = past.Commit();
    ASSERT_THAT(committed, IsOk());
    EXPECT_EQ(*committed, first);

    Transaction between = BeginOrDie(t.db, ReadOnlyAt(second, isolation));
    EXPECT_EQ(ScanValues(between, KeyRange::All()), (KeyValues{{"a", "a2"}, {"c", "c2"}}));
  }
}

// ---------------------------------------------------------------------------
// Commit without writes; the end of a transaction's life.

TEST(AnomalyTest, TxnWithoutWritesCommitsAtItsStartTimestamp) {
  for (Isolation isolation : kBothIsolations) {
    for (bool read_only : {false, true}) {
      SCOPED_TRACE(std::string(IsolationName(isolation)) + (read_only ? " read-only" : ""));
      TestDb t;
      CommitWrites(t.db, {{"k", "v"}});
      Transaction txn = BeginOrDie(t.db, read_only ? ReadOnly(isolation) : ReadWrite(isolation));
      EXPECT_EQ(ReadValue(txn, "k"), "v");
      ScanValues(txn, KeyRange::All());
      CommitWrites(t.db, {{"k", "changed"}});  // even if what it read changed
      Result<Timestamp> committed = txn.Commit();
      ASSERT_THAT(committed, IsOk());
      EXPECT_EQ(*committed, txn.start_timestamp());
      EXPECT_FALSE(txn.active());
    }
  }
}

TEST(AnomalyTest, ReadOnlyTxnRefusesWrites) {
  TestDb t;
  Transaction txn = BeginOrDie(t.db, ReadOnly());
  EXPECT_TRUE(txn.read_only());
  EXPECT_THAT(txn.Put("k", "v"), HasCode(StatusCode::kInvalidArgument));
  EXPECT_THAT(txn.Delete("k"), HasCode(StatusCode::kInvalidArgument));
  EXPECT_TRUE(txn.active());
  EXPECT_THAT(txn.Commit(), IsOk());
  EXPECT_EQ(RawValue(t.store, "k"), std::nullopt);
}

// After a transaction ended, each operation is an error status (not a
// crash, not a silent success) and Abort is harmless.
void ExpectEnded(Transaction& txn) {
  EXPECT_FALSE(txn.active());
  EXPECT_FALSE(txn.Get("k").ok());
  EXPECT_FALSE(txn.Put("k", "late").ok());
  EXPECT_FALSE(txn.Delete("k").ok());
  EXPECT_FALSE(txn.Scan(KeyRange::All(), 10).ok());
  EXPECT_FALSE(txn.Commit().ok());
  txn.Abort();
  EXPECT_FALSE(txn.active());
}

TEST(AnomalyTest, OperationsAfterTheEndAreErrors) {
  for (Isolation isolation : kBothIsolations) {
    SCOPED_TRACE(IsolationName(isolation));
    TestDb t;
    CommitWrites(t.db, {{"k", "v0"}});

    Transaction committed = BeginOrDie(t.db, ReadWrite(isolation));
    ASSERT_THAT(committed.Put("k", "v1"), IsOk());
    MustCommit(committed);
    {
      SCOPED_TRACE("after a commit");
      ExpectEnded(committed);
    }

    Transaction write_free = BeginOrDie(t.db, ReadOnly(isolation));
    MustCommit(write_free);
    {
      SCOPED_TRACE("after a write-free commit");
      ExpectEnded(write_free);
    }

    Transaction aborted = BeginOrDie(t.db, ReadWrite(isolation));
    ASSERT_THAT(aborted.Put("k", "v2"), IsOk());
    aborted.Abort();
    {
      SCOPED_TRACE("after an abort");
      ExpectEnded(aborted);
    }

    Transaction loser = BeginOrDie(t.db, ReadWrite(isolation));
    ASSERT_THAT(loser.Put("k", "v3"), IsOk());
    CommitWrites(t.db, {{"k", "v4"}});
    EXPECT_THAT(loser.Commit(), HasCode(StatusCode::kConflict));
    {
      SCOPED_TRACE("after a conflict");
      ExpectEnded(loser);
    }

    // None of the late writes landed, and nothing is left registered.
    EXPECT_EQ(RawValue(t.store, "k"), "v4");
    EXPECT_EQ(t.db.GetStats().active_txns, 0u);
  }
}

// A moved-to transaction is the same transaction; assigning over an active
// one ends (aborts) the one overwritten.
TEST(AnomalyTest, MovedTransactionsKeepTheirIdentity) {
  TestDb t;
  Transaction first = BeginOrDie(t.db);
  ASSERT_THAT(first.Put("first", "1"), IsOk());
  const uint64_t first_id = first.id();
  Transaction moved = std::move(first);
  EXPECT_EQ(moved.id(), first_id);
  EXPECT_EQ(ReadValue(moved, "first"), "1");

  Transaction second = BeginOrDie(t.db);
  EXPECT_GT(second.id(), first_id);
  ASSERT_THAT(second.Put("second", "2"), IsOk());
  EXPECT_EQ(t.db.GetStats().active_txns, 2u);
  second = std::move(moved);  // the old `second` is aborted
  EXPECT_EQ(t.db.GetStats().active_txns, 1u);
  EXPECT_EQ(second.id(), first_id);
  MustCommit(second);
  EXPECT_EQ(RawValue(t.store, "first"), "1");
  EXPECT_EQ(RawValue(t.store, "second"), std::nullopt);
}

}  // namespace
}  // namespace strata::txn_testing
