// Participant: one shard's side of distributed transactions, over a real
// MvccStore and a hybrid clock with a fake wall clock, so every timestamp is
// exact.
#include "cluster/participant.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

namespace strata::cluster {
namespace participant_test {

using HLC = HybridLogicalClock;
using std::chrono::milliseconds;
using Clock = Participant::Clock;

constexpr uint64_t kWallMs = 1'000'000;
const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

struct FakeClock {
  std::atomic<uint64_t> ms{kWallMs};
  HLC::PhysicalClock Fn() {
    return [this] { return ms.load(); };
  }
};

// A transaction id stamped `ms` wall milliseconds (and `n` logical).
TxnId Txn(uint64_t n, uint64_t ms = kWallMs, uint32_t coordinator = 0) {
  return TxnId{HLC::Make(ms, n).value(), coordinator};
}

BatchWrite Put(std::string key, std::string value) { return {std::move(key), std::move(value)}; }
BatchWrite Del(std::string key) { return {std::move(key), std::nullopt}; }

KeyRange Range(std::string start, std::string end) {
  return KeyRange{std::move(start), std::move(end)};
}

class ParticipantTest : public ::testing::Test {
 protected:
  // Conflict texts quote keys as the node does ('k'), so tests can name them.
  ParticipantTest()
      : clock_(wall_.Fn()),
        participant_(&store_, &clock_,
                     ParticipantOptions{.outcome_retention = std::chrono::milliseconds(10000),
                                        .describe_key = [](std::string_view key) {
                                          std::string quoted(1,
                                                             '\'');  // append: GCC 12's -Wrestrict
                                          quoted.append(key).push_back('\'');
                                          return quoted;
                                        }}) {}

  // A request starting at the clock's current time (a fresh snapshot).
  PrepareRequest Request(TxnId txn, std::vector<BatchWrite> writes,
                         std::vector<std::string> read_keys = {},
                         std::vector<KeyRange> read_ranges = {},
                         Isolation isolation = Isolation::kSerializable) {
    PrepareRequest request;
    request.txn = txn;
    request.start = Now();
    request.isolation = isolation;
    request.primary = 3;
    request.writes = std::move(writes);
    request.read_keys = std::move(read_keys);
    request.read_ranges = std::move(read_ranges);
    return request;
  }

  Timestamp Now() {
    Result<Timestamp> next = clock_.Next();
    EXPECT_TRUE(next.ok());
    return next.ok() ? *next : Timestamp();
  }

  Result<Timestamp> Prepare(const PrepareRequest& request, Clock::time_point now = kT0) {
    return participant_.Prepare(request, wall_.ms.load(), now);
  }

  Timestamp PrepareOk(const PrepareRequest& request, Clock::time_point now = kT0) {
    Result<Timestamp> prepared = Prepare(request, now);
    EXPECT_TRUE(prepared.ok()) << prepared.status().message();
    return prepared.ok() ? *prepared : Timestamp();
  }

  // A committed version of `key`, written outside any transaction here.
  Timestamp Commit(const std::string& key, const std::string& value) {
    const Timestamp at = Now();
    EXPECT_TRUE(store_.Put(key, value, at).ok());
    return at;
  }

  static void ExpectConflictNaming(const Status& status, const std::string& key) {
    EXPECT_EQ(status.code(), StatusCode::kConflict) << status.message();
    EXPECT_NE(status.message().find("'" + key + "'"), std::string::npos) << status.message();
  }

  FakeClock wall_;
  HLC clock_;
  MvccStore store_;
  Participant participant_;
};

// --- Prepare ---------------------------------------------------------------

TEST_F(ParticipantTest, PrepareRetryReturnsTheSameTimestamp) {
  const PrepareRequest request = Request(Txn(1), {Put("k", "v")});
  const Timestamp prepared = PrepareOk(request);
  EXPECT_GT(prepared, request.start);
  EXPECT_EQ(participant_.PrimaryOf(Txn(1)), 3u);
  Now();  // the clock moves on
  EXPECT_EQ(PrepareOk(request, kT0 + milliseconds(50)), prepared);
  EXPECT_EQ(participant_.GetIntentStats(kT0).intents, 1u);
  EXPECT_EQ(participant_.GetIntentStats(kT0).prepared_txns, 1u);
}

TEST_F(ParticipantTest, WriteConflictsWithAVersionCommittedAfterStart) {
  PrepareRequest request = Request(Txn(1), {Put("k", "v")});
  const Timestamp committed = Commit("k", "other");
  ExpectConflictNaming(Prepare(request).status(), "k");
  EXPECT_FALSE(participant_.PrimaryOf(Txn(1)).has_value());
  EXPECT_EQ(participant_.GetIntentStats(kT0).intents, 0u);
  // The refusal is final: a resent copy gets it too.
  EXPECT_EQ(Prepare(request).status().code(), StatusCode::kConflict);
  EXPECT_EQ(participant_.Outcome(Txn(1)), TxnStatus::kAborted);
  // A start at the commit sees it: no conflict.
  request.txn = Txn(2);
  request.start = committed;
  EXPECT_TRUE(Prepare(request).ok());
}

TEST_F(ParticipantTest, WriteConflictsWithAnotherTransactionsIntent) {
  PrepareOk(Request(Txn(1), {Put("k", "a")}));
  Status refused = Prepare(Request(Txn(2), {Put("x", "b"), Del("k")})).status();
  ExpectConflictNaming(refused, "k");
  EXPECT_NE(refused.message().find(Txn(1).ToString()), std::string::npos) << refused.message();
  // Nothing of the refused transaction stayed behind.
  EXPECT_FALSE(participant_.PrimaryOf(Txn(2)).has_value());
  EXPECT_TRUE(participant_.BlockingIntents("x", Timestamp::Max()).empty());
}

TEST_F(ParticipantTest, WriteConflictsWithAPointReadLock) {
  PrepareOk(Request(Txn(1), {}, {"r"}));
  ExpectConflictNaming(Prepare(Request(Txn(2), {Put("r", "v")})).status(), "r");
  // The same read under snapshot isolation takes no lock.
  PrepareOk(Request(Txn(3), {}, {"s"}, {}, Isolation::kSnapshot));
  EXPECT_TRUE(Prepare(Request(Txn(4), {Put("s", "v")})).ok());
}

TEST_F(ParticipantTest, WriteConflictsWithARangeReadLock) {
  PrepareOk(Request(Txn(1), {}, {}, {Range("a", "c")}));
  ExpectConflictNaming(Prepare(Request(Txn(2), {Put("b", "v")})).status(), "b");
  ExpectConflictNaming(Prepare(Request(Txn(3), {Put("a", "v")})).status(), "a");
  // The end is exclusive.
  EXPECT_TRUE(Prepare(Request(Txn(4), {Put("c", "v")})).ok());
  // One-phase commits meet the same locks.
  ExpectConflictNaming(
      participant_.CommitOnePhase(Request(Txn(5), {Put("bb", "v")}), wall_.ms).status(), "bb");
}

TEST_F(ParticipantTest, SerializableReadKeyValidation) {
  PrepareRequest stale = Request(Txn(1), {Put("w", "v")}, {"r"});
  Commit("r", "newer");
  ExpectConflictNaming(Prepare(stale).status(), "r");
  // Snapshot isolation does not validate reads.
  stale.txn = Txn(2);
  stale.isolation = Isolation::kSnapshot;
  EXPECT_TRUE(Prepare(stale).ok());

  // Another transaction's intent on a read key.
  PrepareOk(Request(Txn(3), {Put("q", "v")}));
  Status refused = Prepare(Request(Txn(4), {}, {"q"})).status();
  ExpectConflictNaming(refused, "q");
  EXPECT_NE(refused.message().find(Txn(3).ToString()), std::string::npos) << refused.message();
}

TEST_F(ParticipantTest, SerializableReadRangeValidation) {
  PrepareRequest stale = Request(Txn(1), {}, {}, {Range("m", "n")});
  Commit("mm", "newer");
  Commit("n", "outside");  // the end is exclusive
  ExpectConflictNaming(Prepare(stale).status(), "mm");

  PrepareRequest fresh = Request(Txn(2), {}, {}, {Range("m", "n")});
  PrepareOk(Request(Txn(3), {Put("n", "at the end")}));
  EXPECT_TRUE(Prepare(fresh).ok());  // an intent at the end is outside
  ASSERT_TRUE(participant_.Resolve(Txn(2), TxnStatus::kAborted, Timestamp()).ok());

  PrepareOk(Request(Txn(4), {Put("mz", "inside")}));
  ExpectConflictNaming(Prepare(Request(Txn(5), {}, {}, {Range("m", "n")})).status(), "mz");
  // An open-ended range sees it too.
  ExpectConflictNaming(Prepare(Request(Txn(6), {}, {}, {KeyRange{"ma", std::nullopt}})).status(),
                       "mz");
}

TEST_F(ParticipantTest, ATransactionsOwnWritesAndReadsDoNotConflict) {
  // It reads what it writes (point and range), and its retry meets its own
  // intents and read locks.
  const PrepareRequest request =
      Request(Txn(1), {Put("k", "v"), Put("r2", "v")}, {"k"}, {Range("r", "s")});
  const Timestamp prepared = PrepareOk(request);
  EXPECT_EQ(PrepareOk(request), prepared);
  EXPECT_TRUE(participant_.BlockingIntents("k", Timestamp::Max(), Txn(1)).empty());
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kCommitted, prepared).ok());
}

TEST_F(ParticipantTest, PrepareAfterTheTransactionFinishedIsRefused) {
  const PrepareRequest request = Request(Txn(1), {Put("k", "v")});
  const Timestamp prepared = PrepareOk(request);
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).ok());
  Status refused = Prepare(request).status();
  EXPECT_EQ(refused.code(), StatusCode::kConflict);
  EXPECT_NE(refused.message().find("already finished"), std::string::npos) << refused.message();
  EXPECT_TRUE(participant_.BlockingIntents("k", Timestamp::Max()).empty());
  (void)prepared;
}

TEST_F(ParticipantTest, APrepareSentLongerAgoThanTheRetentionIsRefused) {
  wall_.ms = kWallMs + 20'000;
  PrepareRequest request = Request(Txn(1), {Put("k", "v")});  // moves the clock
  Status refused = participant_.Prepare(request, kWallMs + 20'000 - 10'001, kT0).status();
  EXPECT_EQ(refused.code(), StatusCode::kConflict);
  EXPECT_NE(refused.message().find("retention"), std::string::npos) << refused.message();
  EXPECT_FALSE(participant_.PrimaryOf(Txn(1)).has_value());
  EXPECT_EQ(participant_.CommitOnePhase(request, kWallMs + 20'000 - 10'001).status().code(),
            StatusCode::kConflict);
  // At the retention exactly it is still accepted.
  request.txn = Txn(2);
  EXPECT_TRUE(participant_.Prepare(request, kWallMs + 20'000 - 10'000, kT0).ok());
}

TEST_F(ParticipantTest, APrepareOlderThanForgottenOutcomesIsRefused) {
  // The shard's clock has not moved, but outcomes were forgotten at a later
  // wall time: a prepare that old may be about one of them.
  participant_.ForgetOldOutcomes(kWallMs + 30'000);
  EXPECT_EQ(participant_.Prepare(Request(Txn(1), {Put("k", "v")}), kWallMs, kT0).status().code(),
            StatusCode::kConflict);
  EXPECT_TRUE(participant_.Prepare(Request(Txn(2), {Put("k", "v")}), kWallMs + 20'000, kT0).ok());
}

TEST_F(ParticipantTest, AStartBelowTheCompactionHorizonIsRefused) {
  PrepareRequest request = Request(Txn(1), {Put("k", "v")});
  Commit("other", "v");
  const Timestamp horizon = Now();
  store_.Compact(horizon);
  EXPECT_EQ(Prepare(request).status().code(), StatusCode::kCompacted);
  request.txn = Txn(3);
  EXPECT_EQ(participant_.CommitOnePhase(request, wall_.ms).status().code(), StatusCode::kCompacted);
  request.txn = Txn(2);
  request.start = horizon;  // at the horizon is readable
  EXPECT_TRUE(Prepare(request).ok());
}

TEST_F(ParticipantTest, AWriteTheStoreRefusesIsAnInvalidArgument) {
  MvccStore small({.max_key_bytes = 4, .max_value_bytes = 4});
  Participant participant(&small, &clock_);
  EXPECT_EQ(
      participant.Prepare(Request(Txn(1), {Put("toolong", "v")}), wall_.ms, kT0).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      participant.Prepare(Request(Txn(2), {Put("k", "toolong")}), wall_.ms, kT0).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_TRUE(participant.Prepare(Request(Txn(3), {Del("k")}), wall_.ms, kT0).ok());
}

TEST(ParticipantKeyTextTest, WithoutADescriptionKeysAreShownInHexAndCut) {
  // Engine keys are bytes (an integer key starts with 0x00): a conflict text
  // must stay valid UTF-8, and short.
  FakeClock wall;
  HLC clock(wall.Fn());
  MvccStore store;
  Participant participant(&store, &clock);
  const std::string key = std::string(1, '\0') + std::string(100, '\x80');
  PrepareRequest first;
  first.txn = TxnId{1, 0};
  first.start = Timestamp(1);
  first.writes = {BatchWrite{key, "1"}};
  ASSERT_TRUE(participant.Prepare(first, wall.ms, Participant::Clock::now()).ok());
  PrepareRequest second = first;
  second.txn = TxnId{2, 0};
  Status refused = participant.Prepare(second, wall.ms, Participant::Clock::now()).status();
  ASSERT_EQ(refused.code(), StatusCode::kConflict);
  EXPECT_NE(refused.message().find("0x0080808080"), std::string::npos) << refused.message();
  EXPECT_EQ(refused.message().find('\x80'), std::string::npos);
  EXPECT_LT(refused.message().size(), 200u) << refused.message();
}

// --- Resolve ---------------------------------------------------------------

TEST_F(ParticipantTest, ResolveCommittedAppliesAtTheCommitTimestamp) {
  Commit("d", "old");
  const Timestamp prepared = PrepareOk(Request(Txn(1), {Put("k", "v1"), Del("d")}, {"r"}));
  const Timestamp commit = HLC::Make(HLC::PhysicalMillis(prepared) + 5, 0);  // another shard's
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kCommitted, commit).ok());

  Result<ReadResult> at = store_.Get("k", commit);
  ASSERT_TRUE(at.ok());
  EXPECT_TRUE(at->found);
  EXPECT_EQ(at->value, "v1");
  EXPECT_EQ(at->timestamp, commit);
  Result<ReadResult> before = store_.Get("k", Timestamp(commit.value() - 1));
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->found);
  Result<ReadResult> deleted = store_.Get("d", commit);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->deleted);
  Result<ReadResult> deleted_before = store_.Get("d", Timestamp(commit.value() - 1));
  ASSERT_TRUE(deleted_before.ok());
  EXPECT_EQ(deleted_before->value, "old");

  // Released: no intents, no read locks, nothing pending; the clock saw the commit.
  EXPECT_TRUE(participant_.BlockingIntents("k", Timestamp::Max()).empty());
  EXPECT_EQ(participant_.GetIntentStats(kT0).intents, 0u);
  EXPECT_EQ(participant_.GetIntentStats(kT0).prepared_txns, 0u);
  EXPECT_FALSE(participant_.PrimaryOf(Txn(1)).has_value());
  EXPECT_EQ(participant_.Outcome(Txn(1)), TxnStatus::kCommitted);
  EXPECT_GE(clock_.Last(), commit);
  EXPECT_EQ(participant_.SafeTime(), clock_.Last());
  EXPECT_TRUE(Prepare(Request(Txn(2), {Put("r", "v")})).ok());

  // Idempotent: a second resolve adds nothing.
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kCommitted, commit).ok());
  Result<HistoryResult> history = store_.History("k", std::nullopt, std::nullopt, 10);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->versions.size(), 1u);
  // A contradictory outcome is a caller bug.
  EXPECT_EQ(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ParticipantTest, ResolveAbortedDropsTheIntents) {
  const Timestamp prepared = PrepareOk(Request(Txn(1), {Put("k", "v1")}, {"r"}, {Range("a", "b")}));
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).ok());
  Result<ReadResult> read = store_.Get("k");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->found);
  EXPECT_EQ(participant_.Outcome(Txn(1)), TxnStatus::kAborted);
  EXPECT_TRUE(participant_.BlockingIntents("k", prepared).empty());
  // Locks released: other transactions may write every key it held.
  EXPECT_TRUE(Prepare(Request(Txn(2), {Put("k", "v"), Put("r", "v"), Put("aa", "v")})).ok());
  EXPECT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).ok());  // retry
}

TEST_F(ParticipantTest, ResolveOfATransactionNeverPreparedHereRefusesItsLatePrepare) {
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).ok());
  EXPECT_EQ(participant_.Outcome(Txn(1)), TxnStatus::kAborted);
  EXPECT_EQ(Prepare(Request(Txn(1), {Put("k", "v")})).status().code(), StatusCode::kConflict);
  EXPECT_TRUE(participant_.BlockingIntents("k", Timestamp::Max()).empty());
  Result<ReadResult> read = store_.Get("k");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->found);
}

TEST_F(ParticipantTest, ACommitTimestampBelowThePrepareTimestampIsRefused) {
  const Timestamp prepared = PrepareOk(Request(Txn(1), {Put("k", "v")}));
  EXPECT_EQ(
      participant_.Resolve(Txn(1), TxnStatus::kCommitted, Timestamp(prepared.value() - 1)).code(),
      StatusCode::kInvalidArgument);
  // Nothing changed.
  EXPECT_EQ(participant_.PrimaryOf(Txn(1)), 3u);
  EXPECT_FALSE(participant_.Outcome(Txn(1)).has_value());
  EXPECT_EQ(participant_.BlockingIntents("k", prepared), std::vector<TxnId>{Txn(1)});
  Result<ReadResult> read = store_.Get("k");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->found);
  // At the prepare timestamp itself is fine.
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kCommitted, prepared).ok());
  read = store_.Get("k", prepared);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->value, "v");
}

TEST_F(ParticipantTest, ResolveAsPendingIsRefused) {
  PrepareOk(Request(Txn(1), {Put("k", "v")}));
  EXPECT_EQ(participant_.Resolve(Txn(1), TxnStatus::kPending, Timestamp()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(participant_.PrimaryOf(Txn(1)), 3u);
}

// --- Reads -----------------------------------------------------------------

TEST_F(ParticipantTest, BlockingIntents) {
  const Timestamp a = PrepareOk(Request(Txn(1), {Put("k1", "v"), Put("k3", "v")}));
  const Timestamp b = PrepareOk(Request(Txn(2), {Put("k2", "v")}));
  ASSERT_LT(a, b);

  EXPECT_EQ(participant_.BlockingIntents("k1", a), std::vector<TxnId>{Txn(1)});
  EXPECT_TRUE(participant_.BlockingIntents("k1", Timestamp(a.value() - 1)).empty());
  EXPECT_TRUE(participant_.BlockingIntents("k1", b, Txn(1)).empty());  // the reader's own
  EXPECT_TRUE(participant_.BlockingIntents("k0", b).empty());

  const KeyRange all_k = KeyRange::WithPrefix("k");
  EXPECT_EQ(participant_.BlockingIntents(all_k, b), (std::vector<TxnId>{Txn(1), Txn(2)}));
  EXPECT_EQ(participant_.BlockingIntents(all_k, a), std::vector<TxnId>{Txn(1)});  // once
  EXPECT_EQ(participant_.BlockingIntents(all_k, b, Txn(1)), std::vector<TxnId>{Txn(2)});
  EXPECT_EQ(participant_.BlockingIntents(Range("k2", "k3"), b), std::vector<TxnId>{Txn(2)});
  EXPECT_TRUE(participant_.BlockingIntents(Range("k2", "k3"), a).empty());
  EXPECT_TRUE(participant_.BlockingIntents(Range("a", "k1"), b).empty());
}

TEST_F(ParticipantTest, SafeTime) {
  Now();
  EXPECT_EQ(participant_.SafeTime(), clock_.Last());
  const Timestamp a = PrepareOk(Request(Txn(1), {Put("k1", "v")}));
  const Timestamp b = PrepareOk(Request(Txn(2), {Put("k2", "v")}));
  PrepareOk(Request(Txn(3), {}, {"r"}));  // only read here: it cannot commit a version here
  Now();
  EXPECT_EQ(participant_.SafeTime(), Timestamp(a.value() - 1));
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).ok());
  EXPECT_EQ(participant_.SafeTime(), Timestamp(b.value() - 1));
  ASSERT_TRUE(participant_.Resolve(Txn(2), TxnStatus::kCommitted, b).ok());
  EXPECT_EQ(participant_.SafeTime(), clock_.Last());
  EXPECT_EQ(participant_.PrimaryOf(Txn(3)), 3u);
}

// --- Housekeeping ----------------------------------------------------------

TEST_F(ParticipantTest, StaleTransactions) {
  PrepareOk(Request(Txn(1), {Put("a", "v")}), kT0);
  PrepareRequest second = Request(Txn(2), {}, {"b"});
  second.primary = 7;
  PrepareOk(second, kT0 + milliseconds(500));

  EXPECT_TRUE(participant_.StaleTransactions(kT0 + milliseconds(999), milliseconds(1000)).empty());
  std::vector<StaleIntent> stale =
      participant_.StaleTransactions(kT0 + milliseconds(1000), milliseconds(1000));
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].txn, Txn(1));
  EXPECT_EQ(stale[0].primary, 3u);
  stale = participant_.StaleTransactions(kT0 + milliseconds(1500), milliseconds(1000));
  ASSERT_EQ(stale.size(), 2u);
  EXPECT_EQ(stale[1].txn, Txn(2));
  EXPECT_EQ(stale[1].primary, 7u);
  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).ok());
  EXPECT_EQ(participant_.StaleTransactions(kT0 + milliseconds(1500), milliseconds(1000)).size(),
            1u);
}

TEST_F(ParticipantTest, IntentStatsHistogram) {
  const Clock::time_point now = kT0 + std::chrono::hours(1);
  IntentStats empty = participant_.GetIntentStats(now);
  EXPECT_EQ(empty.intents, 0u);
  EXPECT_FALSE(empty.oldest_prepare.has_value());

  // Ages 20000 ms (2 intents), 1000, 500, 10, 5 (and a read-only transaction).
  const Timestamp oldest =
      PrepareOk(Request(Txn(1), {Put("a1", "v"), Put("a2", "v")}), now - milliseconds(20000));
  PrepareOk(Request(Txn(2), {Put("b", "v")}), now - milliseconds(1000));
  PrepareOk(Request(Txn(3), {Put("c", "v")}), now - milliseconds(500));
  PrepareOk(Request(Txn(4), {Put("d", "v")}), now - milliseconds(10));
  PrepareOk(Request(Txn(5), {Put("e", "v")}), now - milliseconds(5));
  PrepareOk(Request(Txn(6), {}, {"f"}), now - milliseconds(30000));

  IntentStats stats = participant_.GetIntentStats(now);
  EXPECT_EQ(stats.intents, 6u);
  EXPECT_EQ(stats.prepared_txns, 6u);
  EXPECT_EQ(stats.age_histogram, (std::array<uint64_t, 5>{1, 1, 1, 1, 2}));
  EXPECT_EQ(stats.oldest_prepare, oldest);

  ASSERT_TRUE(participant_.Resolve(Txn(1), TxnStatus::kAborted, Timestamp()).ok());
  stats = participant_.GetIntentStats(now);
  EXPECT_EQ(stats.intents, 4u);
  EXPECT_EQ(stats.prepared_txns, 5u);
  EXPECT_EQ(stats.age_histogram, (std::array<uint64_t, 5>{1, 1, 1, 1, 0}));
  EXPECT_GT(stats.oldest_prepare, oldest);
}

TEST_F(ParticipantTest, ForgetOldOutcomes) {
  ASSERT_TRUE(participant_.Resolve(Txn(1, kWallMs), TxnStatus::kAborted, Timestamp()).ok());
  ASSERT_TRUE(participant_.Resolve(Txn(1, kWallMs + 5), TxnStatus::kAborted, Timestamp()).ok());
  participant_.ForgetOldOutcomes(kWallMs + 10'000);  // exactly the retention: kept
  EXPECT_TRUE(participant_.Outcome(Txn(1, kWallMs)).has_value());
  participant_.ForgetOldOutcomes(kWallMs + 10'001);
  EXPECT_FALSE(participant_.Outcome(Txn(1, kWallMs)).has_value());
  EXPECT_EQ(participant_.Outcome(Txn(1, kWallMs + 5)), TxnStatus::kAborted);
  participant_.ForgetOldOutcomes(kWallMs + 10'006);
  EXPECT_FALSE(participant_.Outcome(Txn(1, kWallMs + 5)).has_value());
}

// --- One-phase commit ------------------------------------------------------

TEST_F(ParticipantTest, OnePhaseCommitAppliesAtOnceAndARetryGetsTheSameTimestamp) {
  Commit("d", "old");
  const PrepareRequest request = Request(Txn(1), {Put("k", "v"), Del("d")}, {"d"});
  Result<Timestamp> committed = participant_.CommitOnePhase(request, wall_.ms);
  ASSERT_TRUE(committed.ok()) << committed.status().message();
  EXPECT_GT(*committed, request.start);
  Result<ReadResult> read = store_.Get("k", *committed);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->value, "v");
  EXPECT_EQ(read->timestamp, *committed);
  read = store_.Get("k", Timestamp(committed->value() - 1));
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->found);
  EXPECT_TRUE(store_.Get("d", *committed)->deleted);
  EXPECT_EQ(participant_.GetIntentStats(kT0).intents, 0u);
  EXPECT_EQ(participant_.Outcome(Txn(1)), TxnStatus::kCommitted);

  Now();
  Result<Timestamp> retry = participant_.CommitOnePhase(request, wall_.ms);
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(*retry, *committed);
  EXPECT_EQ(store_.History("k", std::nullopt, std::nullopt, 10)->versions.size(), 1u);
  // A prepare of it is refused.
  EXPECT_EQ(Prepare(request).status().code(), StatusCode::kConflict);
}

TEST_F(ParticipantTest, OnePhaseCommitChecksConflicts) {
  PrepareOk(Request(Txn(1), {Put("k", "v")}));
  ExpectConflictNaming(
      participant_.CommitOnePhase(Request(Txn(2), {Put("k", "w")}), wall_.ms).status(), "k");
  PrepareRequest stale = Request(Txn(3), {Put("x", "w")});
  Commit("x", "newer");
  ExpectConflictNaming(participant_.CommitOnePhase(stale, wall_.ms).status(), "x");
  // A conflict is final: a resent copy arriving after the conflict is gone
  // must not commit what the coordinator reported as failed.
  EXPECT_EQ(participant_.Outcome(Txn(3)), TxnStatus::kAborted);
  // Nothing to write: just a timestamp.
  Result<Timestamp> read_only = participant_.CommitOnePhase(Request(Txn(4), {}, {"y"}), wall_.ms);
  ASSERT_TRUE(read_only.ok());
  EXPECT_EQ(participant_.Outcome(Txn(4)), TxnStatus::kCommitted);
  // An aborted transaction cannot commit; a prepared one must be resolved.
  ASSERT_TRUE(participant_.Resolve(Txn(5), TxnStatus::kAborted, Timestamp()).ok());
  EXPECT_EQ(participant_.CommitOnePhase(Request(Txn(5), {Put("z", "v")}), wall_.ms).status().code(),
            StatusCode::kConflict);
  EXPECT_EQ(participant_.CommitOnePhase(Request(Txn(1), {Put("k", "v")}), wall_.ms).status().code(),
            StatusCode::kInvalidArgument);
}

// A blind write (nothing read) is checked against the shard's present, not
// its start: what committed since is no conflict, locks and versions ahead
// of the clock are.
TEST_F(ParticipantTest, ABlindOnePhaseCommitConflictsOnlyWithThePresent) {
  PrepareRequest blind = Request(Txn(1), {Put("k", "mine")}, {}, {}, Isolation::kSnapshot);
  blind.blind = true;
  Commit("k", "newer than the start");
  Result<Timestamp> committed = participant_.CommitOnePhase(blind, wall_.ms);
  ASSERT_TRUE(committed.ok()) << committed.status().message();
  EXPECT_EQ(store_.Get("k", Timestamp::Max())->value, "mine");
  // The same request without `blind` is the ordinary first-committer-wins.
  PrepareRequest seeing = Request(Txn(2), {Put("k", "x")}, {}, {}, Isolation::kSnapshot);
  Commit("k", "newer still");
  ExpectConflictNaming(participant_.CommitOnePhase(seeing, wall_.ms).status(), "k");
  // An intent is a lock, blind or not.
  PrepareOk(Request(Txn(3), {Put("j", "held")}));
  PrepareRequest blocked = Request(Txn(4), {Put("j", "w")}, {}, {}, Isolation::kSnapshot);
  blocked.blind = true;
  ExpectConflictNaming(participant_.CommitOnePhase(blocked, wall_.ms).status(), "j");
  // So is a version ahead of the shard's clock (a raw write into the future):
  // a commit below it would not be the newest.
  ASSERT_TRUE(store_.Put("f", "future", Timestamp(HLC::Make(kWallMs + 60'000, 0))).ok());
  PrepareRequest behind = Request(Txn(5), {Put("f", "w")}, {}, {}, Isolation::kSnapshot);
  behind.blind = true;
  ExpectConflictNaming(participant_.CommitOnePhase(behind, wall_.ms).status(), "f");
}

}  // namespace participant_test
}  // namespace strata::cluster
