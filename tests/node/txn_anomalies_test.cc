// The classic concurrency anomalies, each as a named scenario through the
// binary (PROTOCOL.md section 4). Two transactions are "concurrent" when
// their messages interleave in one session: the node is single-threaded, so
// that is what concurrency looks like at the protocol level.
#include <gtest/gtest.h>

#include <string>

#include "node_test_fixture.h"
#include "txn_client.h"

namespace strata::testing {
namespace {

// Runs each scenario under the isolation level named by the parameter,
// passed explicitly in txn_begin.
class IsolationTest : public NodeTest, public ::testing::WithParamInterface<std::string> {
 protected:
  Txn Begin(std::string_view extra_options = "") {
    std::string options = R"("isolation":")" + GetParam() + '"';
    if (!extra_options.empty()) options.append(",").append(extra_options);
    return Txn::Begin(node(), options);
  }

  std::string RawValue(std::string_view key, std::string_view read_timestamp_member = "") {
    std::string body = R"({"type":"mvcc_get","key":)" + std::string(key);
    if (!read_timestamp_member.empty()) body.append(",").append(read_timestamp_member);
    return ValueOf(node().CallOk(body + "}", "mvcc_get_ok"));
  }
};

INSTANTIATE_TEST_SUITE_P(BothLevels, IsolationTest, ::testing::Values("snapshot", "serializable"),
                         [](const auto& info) { return info.param; });

// Two read-modify-write increments of one counter: the second committer
// read a stale value, so letting it commit would lose the first increment.
TEST_P(IsolationTest, LostUpdateIsPrevented) {
  node().Put(R"("counter")", "0", 10);
  Txn first = Begin();
  Txn second = Begin();
  EXPECT_EQ(ValueOf(first.Get(R"("counter")")), "0");
  EXPECT_EQ(ValueOf(second.Get(R"("counter")")), "0");
  first.Put(R"("counter")", "1");
  second.Put(R"("counter")", "1");
  first.Commit();
  std::string text = second.CommitExpectingConflict();
  EXPECT_NE(text.find("counter"), std::string::npos) << text;

  // The retry reads the first increment and builds on it.
  Txn retry = Begin();
  EXPECT_EQ(ValueOf(retry.Get(R"("counter")")), "1");
  retry.Put(R"("counter")", "2");
  retry.Commit();
  EXPECT_EQ(RawValue(R"("counter")"), "2");
}

// Both doctors are on call; each transaction checks that the other one is
// still on call and takes itself off. Their write sets are disjoint, so
// snapshot isolation lets both commit and nobody is on call (write skew);
// serializable must refuse the second.
class WriteSkewTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put(R"("oncall/alice")", "true", 10);
    node().Put(R"("oncall/bob")", "true", 10);
  }

  // Interleaves the two doctors' transactions, begun with `options`, up to
  // (not including) the second commit, which the tests judge.
  Txn RunUpToSecondCommit(std::string_view options) {
    Txn alice = Txn::Begin(node(), options);
    Txn bob = Txn::Begin(node(), options);
    for (Txn* txn : {&alice, &bob}) {
      EXPECT_EQ(ValueOf(txn->Get(R"("oncall/alice")")), "true");
      EXPECT_EQ(ValueOf(txn->Get(R"("oncall/bob")")), "true");
    }
    alice.Put(R"("oncall/alice")", "false");
    bob.Put(R"("oncall/bob")", "false");
    alice.Commit();
    return bob;
  }

  std::string OnCall() {
    return ScanKeys(node().CallOk(R"({"type":"mvcc_scan","prefix":"oncall/"})", "mvcc_scan_ok")) +
           " alice=" +
           ValueOf(node().CallOk(R"({"type":"mvcc_get","key":"oncall/alice"})", "mvcc_get_ok")) +
           " bob=" +
           ValueOf(node().CallOk(R"({"type":"mvcc_get","key":"oncall/bob"})", "mvcc_get_ok"));
  }
};

TEST_F(WriteSkewTest, WriteSkewIsAllowedUnderSnapshotIsolation) {
  Txn bob = RunUpToSecondCommit(R"("isolation":"snapshot")");
  bob.Commit();
  EXPECT_EQ(OnCall(), R"(["oncall/alice","oncall/bob"] alice=false bob=false)");
}

TEST_F(WriteSkewTest, WriteSkewIsPreventedUnderSerializable) {
  Txn bob = RunUpToSecondCommit(R"("isolation":"serializable")");
  // Bob's read of alice's row is what changed under him.
  std::string text = bob.CommitExpectingConflict();
  EXPECT_NE(text.find("oncall/alice"), std::string::npos) << text;
  EXPECT_EQ(OnCall(), R"(["oncall/alice","oncall/bob"] alice=false bob=true)");
}

TEST_F(WriteSkewTest, DefaultIsolationIsSerializable) {
  // No isolation named: the node's default (--isolation, serializable
  // unless set) must refuse the skew.
  Txn bob = RunUpToSecondCommit("");
  bob.CommitExpectingConflict();
}

// A transaction counts the rows in a range and records the count; another
// inserts a row into that range and commits first. Under serializable the
// counter is stale (a phantom), so its commit must fail; under snapshot
// isolation the write sets are disjoint and it commits.
class PhantomTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put(R"("task/1")", R"("a")", 10);
    node().Put(R"("task/2")", R"("b")", 10);
  }

  Txn CountThenInsertConcurrently(std::string_view isolation, std::string_view range) {
    Txn counter = Txn::Begin(node(), R"("isolation":")" + std::string(isolation) + '"');
    EXPECT_EQ(ScanKeys(counter.Scan(range)), R"(["task/1","task/2"])");
    counter.Put(R"("task_count")", "2");
    Txn inserter = Txn::Begin(node(), R"("isolation":")" + std::string(isolation) + '"');
    inserter.Put(R"("task/3")", R"("c")");
    inserter.Commit();
    return counter;
  }
};

TEST_F(PhantomTest, PhantomInPrefixScanIsPreventedUnderSerializable) {
  Txn counter = CountThenInsertConcurrently("serializable", R"("prefix":"task/")");
  std::string text = counter.CommitExpectingConflict();
  EXPECT_NE(text.find("task/3"), std::string::npos) << text;
  EXPECT_EQ(ValueOf(node().CallOk(R"({"type":"mvcc_get","key":"task_count"})", "mvcc_get_ok")),
            "null");
}

TEST_F(PhantomTest, PhantomInRangeScanIsPreventedUnderSerializable) {
  Txn counter = CountThenInsertConcurrently("serializable", R"("start":"task/","end":"task0")");
  counter.CommitExpectingConflict();
}

TEST_F(PhantomTest, PhantomIsAllowedUnderSnapshotIsolation) {
  Txn counter = CountThenInsertConcurrently("snapshot", R"("prefix":"task/")");
  counter.Commit();
}

TEST_F(PhantomTest, DeletionInScannedRangeIsAConflictUnderSerializable) {
  Txn counter = Txn::Begin(node(), R"("isolation":"serializable")");
  EXPECT_EQ(ScanKeys(counter.Scan(R"("prefix":"task/")")), R"(["task/1","task/2"])");
  counter.Put(R"("task_count")", "2");
  Txn remover = Txn::Begin(node(), R"("isolation":"serializable")");
  remover.Delete(R"("task/1")");
  remover.Commit();
  counter.CommitExpectingConflict();
}

TEST_F(PhantomTest, InsertInsideALimitedScanIsAConflictUnderSerializable) {
  Txn counter = Txn::Begin(node(), R"("isolation":"serializable")");
  JsonValue first_page = counter.Scan(R"("prefix":"task/","limit":1)");
  EXPECT_EQ(ScanKeys(first_page), R"(["task/1"])");
  EXPECT_EQ(first_page["more"].Bool(), true);
  counter.Put(R"("first_task")", R"("task/1")");
  // "task/0" sorts before "task/1": the page the transaction saw changed.
  Txn inserter = Txn::Begin(node(), R"("isolation":"serializable")");
  inserter.Put(R"("task/0")", R"("z")");
  inserter.Commit();
  counter.CommitExpectingConflict();
}

// The point-read form of a phantom: a key read as missing appears.
TEST_F(PhantomTest, ReadOfMissingKeyThenConcurrentInsertIsAConflictUnderSerializable) {
  Txn checker = Txn::Begin(node(), R"("isolation":"serializable")");
  EXPECT_EQ(ValueOf(checker.Get(R"("task/9")")), "null");
  checker.Put(R"("task/9-absent")", "true");
  Txn inserter = Txn::Begin(node(), R"("isolation":"serializable")");
  inserter.Put(R"("task/9")", R"("here")");
  inserter.Commit();
  std::string text = checker.CommitExpectingConflict();
  EXPECT_NE(text.find("task/9"), std::string::npos) << text;
}

// A read-only transaction keeps seeing its snapshot, values and versions,
// while writers commit over it, and it still commits.
TEST_P(IsolationTest, ReadOnlySnapshotIsStableWhileWritersCommit) {
  node().Put(R"("x")", "0", 10);
  node().Put(R"("y")", "0", 10);
  Txn reader = Begin(R"("read_only":true)");
  const std::string items_before = reader.Scan()["items"].Canonical();

  for (int round = 1; round <= 3; ++round) {
    Txn writer = Begin();
    writer.Put(R"("x")", std::to_string(round));
    writer.Delete(R"("y")");
    writer.Put(R"("z")", std::to_string(round));
    writer.Commit();
    JsonValue x_now = reader.Get(R"("x")");
    EXPECT_EQ(ValueOf(x_now), "0") << "round " << round;
    EXPECT_EQ(x_now["version"].Int(), 1) << "round " << round;
    EXPECT_EQ(x_now["as_of_timestamp"].Int(), 10) << "round " << round;
    EXPECT_EQ(ValueOf(reader.Get(R"("y")")), "0") << "round " << round;
    EXPECT_EQ(reader.Scan()["items"].Canonical(), items_before) << "round " << round;
  }
  EXPECT_EQ(RawValue(R"("x")"), "3");
  // What it read changed three times; read-only transactions never fail.
  reader.Commit();
}

// Writes of an aborted transaction (explicitly, or by losing a conflict)
// never reach any reader, and never conflict with anyone.
TEST_P(IsolationTest, AbortedWritesAreNeverVisible) {
  Txn aborted = Begin();
  Txn bystander = Begin();
  aborted.Put(R"("a")", "1");
  aborted.Put(R"("b")", "1");
  aborted.Abort();

  Txn winner = Begin();
  Txn loser = Begin();
  winner.Put(R"("c")", R"("winner")");
  loser.Put(R"("c")", R"("loser")");
  loser.Put(R"("d")", R"("loser")");
  const int64_t winner_ts = winner.Commit();
  loser.CommitExpectingConflict();

  for (std::string_view key : {R"("a")", R"("b")", R"("d")"}) {
    EXPECT_EQ(RawValue(key), "null") << key;
    EXPECT_EQ(ValueOf(Begin().Get(key)), "null") << key;
  }
  EXPECT_EQ(RawValue(R"("c")"), R"("winner")");
  node().ExpectReply(R"({"type":"mvcc_changes","since_timestamp":0})",
                     R"({"type":"mvcc_changes_ok","more":false,"changes":[{"key":"c",
                         "value":"winner","version":1,"timestamp":)" +
                         std::to_string(winner_ts) + "}]}");
  // The aborted transaction's write to "a" does not conflict with a
  // concurrent transaction that writes "a" after it.
  bystander.Put(R"("a")", R"("bystander")");
  bystander.Commit();
  EXPECT_EQ(RawValue(R"("a")"), R"("bystander")");
}

// A multi-key commit is seen whole or not at all: snapshots started before
// it see none of it, snapshots after it all of it, and every version it made
// carries the one commit timestamp.
TEST_P(IsolationTest, NoPartialCommits) {
  for (std::string_view key : {R"("a")", R"("b")", R"("c")", R"("d")"}) node().Put(key, "0", 10);
  Txn before = Begin(R"("read_only":true)");
  Txn writer = Begin();
  writer.Put(R"("a")", "1");
  writer.Put(R"("b")", "1");
  writer.Put(R"("c")", "1");
  writer.Delete(R"("d")");
  EXPECT_EQ(ScanKeys(before.Scan()), R"(["a","b","c","d"])");
  const int64_t commit_ts = writer.Commit();
  Txn after = Begin();

  // Key by key, through both snapshots and raw reads on either side of
  // the commit timestamp.
  for (std::string_view key : {R"("a")", R"("b")", R"("c")", R"("d")"}) {
    EXPECT_EQ(ValueOf(before.Get(key)), "0") << key;
    EXPECT_EQ(ValueOf(after.Get(key)), key == R"("d")" ? "null" : "1") << key;
    const std::string ts_member = "\"read_timestamp\":";
    EXPECT_EQ(RawValue(key, ts_member + std::to_string(commit_ts - 1)), "0") << key;
    EXPECT_EQ(RawValue(key, ts_member + std::to_string(commit_ts)), key == R"("d")" ? "null" : "1")
        << key;
  }
  EXPECT_EQ(ScanKeys(before.Scan()), R"(["a","b","c","d"])");
  EXPECT_EQ(ScanKeys(after.Scan()), R"(["a","b","c"])");

  // The commit is one point in time in the change feed, too.
  JsonValue changes = node().CallOk(
      R"({"type":"mvcc_changes","since_timestamp":)" + std::to_string(commit_ts - 1) + "}",
      "mvcc_changes_ok");
  ASSERT_EQ(changes["changes"].size(), 4u) << changes.Canonical();
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(changes["changes"][i]["timestamp"].Int(), commit_ts) << changes.Canonical();
  }
}

}  // namespace
}  // namespace strata::testing
