// Client transactions across a 3-node cluster: one- and two-phase commit,
// conflicts, serializable validation, intents in the way of readers, and a
// coordinator that dies in the middle of a commit.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "cluster_test_support.h"

namespace strata::testing {
namespace {

std::string Id(const JsonValue& begin) { return std::to_string(begin["txn_id"].Int().value_or(0)); }

class ClusterTxnTest : public ::testing::Test {
 protected:
  // Begins a transaction on node `i`; returns its id as text.
  std::string Begin(size_t i, std::string_view extra = "") {
    std::string body = R"({"type":"txn_begin")";
    if (!extra.empty()) body.append(",").append(extra);
    return Id(c_.Expect(i, body + "}", "txn_begin_ok"));
  }
  void PutIn(size_t i, const std::string& txn, std::string_view key, std::string_view value) {
    c_.Expect(i,
              R"({"type":"txn_put","txn_id":)" + txn + R"(,"key":)" + std::string(key) +
                  R"(,"value":)" + std::string(value) + "}",
              "txn_put_ok");
  }
  JsonValue GetIn(size_t i, const std::string& txn, std::string_view key) {
    return c_.Expect(i,
                     R"({"type":"txn_get","txn_id":)" + txn + R"(,"key":)" + std::string(key) + "}",
                     "txn_get_ok");
  }
  int64_t SendCommit(size_t i, const std::string& txn) {
    return c_.Send(i, R"({"type":"txn_commit","txn_id":)" + txn + "}");
  }
  JsonValue Commit(size_t i, const std::string& txn) { return c_.Await(SendCommit(i, txn)); }
  // Reads `key` in a fresh transaction on node `i`.
  JsonValue ReadFresh(size_t i, std::string_view key) {
    const std::string txn = Begin(i);
    JsonValue got = GetIn(i, txn, key);
    c_.Expect(i, R"({"type":"txn_abort","txn_id":)" + txn + "}", "txn_abort_ok");
    return got;
  }
  // Commits `key` = `value` in a transaction of its own on node `i`.
  void Write(size_t i, std::string_view key, std::string_view value) {
    const std::string txn = Begin(i);
    PutIn(i, txn, key, value);
    EXPECT_EQ(Commit(i, txn)["type"].String(), "txn_commit_ok");
  }

  TestCluster c_{3};
};

TEST_F(ClusterTxnTest, MultiShardCommitRunsTwoPhaseCommit) {
  const std::string a = c_.StringKeyOn(0, "a"), b = c_.StringKeyOn(1, "b"),
                    k3 = c_.StringKeyOn(2, "c");
  const std::string txn = Begin(0);
  PutIn(0, txn, a, R"("A")");
  PutIn(0, txn, b, R"("B")");
  PutIn(0, txn, k3, R"({"c":3})");
  c_.ClearSent();
  JsonValue commit = Commit(0, txn);
  ASSERT_EQ(commit["type"].String(), "txn_commit_ok") << commit.Canonical();
  EXPECT_GT(commit["commit_timestamp"].Int().value_or(0), 0);
  // n1's own prepare and record calls stay inside n1; the other two shards
  // each get exactly one prepare, and nobody a one-phase commit.
  EXPECT_EQ(c_.CountSent("shard_prepare", "n1", "n2"), 1u);
  EXPECT_EQ(c_.CountSent("shard_prepare", "n1", "n3"), 1u);
  EXPECT_EQ(c_.CountSent("shard_commit"), 0u);
  EXPECT_EQ(c_.Stats(0)["commits_two_phase"].Int(), 1);
  EXPECT_EQ(c_.Stats(0)["commits_one_phase"].Int(), 0);

  // Every node sees every write.
  for (size_t reader : {1, 2}) {
    EXPECT_TRUE(SameJson(ReadFresh(reader, a)["value"], R"("A")"));
    EXPECT_TRUE(SameJson(ReadFresh(reader, b)["value"], R"("B")"));
    EXPECT_TRUE(SameJson(ReadFresh(reader, k3)["value"], R"({"c":3})"));
  }
  // Resolution leaves no intent and (after record_forget) no record behind.
  ASSERT_TRUE(c_.Until([&] {
    for (size_t i = 0; i < 3; ++i) {
      JsonValue s = c_.Stats(i);
      if (s["intents"].Int() != 0 || s["txn_records"].Int() != 0) return false;
    }
    return true;
  }));
  // The raw API reads the resolved versions too, at the commit timestamp.
  JsonValue raw = c_.Expect(2, R"({"type":"mvcc_get","key":)" + b + "}", "mvcc_get_ok");
  EXPECT_TRUE(SameJson(raw["value"], R"("B")"));
  EXPECT_EQ(raw["as_of_timestamp"].Int(), commit["commit_timestamp"].Int());
}

TEST_F(ClusterTxnTest, RemoteTwoShardCommitSendsRecordCommitOnceToThePrimary) {
  const std::string b = c_.StringKeyOn(1, "b"), k3 = c_.StringKeyOn(2, "c");
  const std::string txn = Begin(0);
  PutIn(0, txn, b, "1");
  PutIn(0, txn, k3, "2");
  c_.ClearSent();
  ASSERT_EQ(Commit(0, txn)["type"].String(), "txn_commit_ok");
  EXPECT_EQ(c_.CountSent("shard_prepare", "n1", "n2"), 1u);
  EXPECT_EQ(c_.CountSent("shard_prepare", "n1", "n3"), 1u);
  // The primary is the first written shard: n2.
  EXPECT_EQ(c_.CountSent("record_commit"), 1u);
  EXPECT_EQ(c_.CountSent("record_commit", "n1", "n2"), 1u);
  ASSERT_TRUE(c_.Until([&] {
    return c_.CountSent("shard_resolve", "n1", "n2") == 1 &&
           c_.CountSent("shard_resolve", "n1", "n3") == 1;
  }));
  EXPECT_TRUE(SameJson(ReadFresh(2, b)["value"], "1"));
  EXPECT_TRUE(SameJson(ReadFresh(1, k3)["value"], "2"));
}

TEST_F(ClusterTxnTest, SingleShardCommitIsOnePhase) {
  const std::string b = c_.StringKeyOn(1, "b"), b2 = c_.StringKeyOn(1, "b", 1);
  const std::string txn = Begin(0);
  PutIn(0, txn, b, R"("x")");
  PutIn(0, txn, b2, R"("y")");
  c_.ClearSent();
  ASSERT_EQ(Commit(0, txn)["type"].String(), "txn_commit_ok");
  EXPECT_EQ(c_.CountSent("shard_commit"), 1u);
  EXPECT_EQ(c_.CountSent("shard_commit", "n1", "n2"), 1u);
  EXPECT_EQ(c_.CountSent("shard_prepare"), 0u);
  EXPECT_EQ(c_.CountSent("record_commit"), 0u);
  EXPECT_EQ(c_.Stats(0)["commits_one_phase"].Int(), 1);
  EXPECT_TRUE(SameJson(ReadFresh(2, b2)["value"], R"("y")"));
  EXPECT_EQ(c_.Stats(1)["intents"].Int(), 0);
}

TEST_F(ClusterTxnTest, WriteWriteConflictAbortsTheSecondCommitter) {
  const std::string b = c_.StringKeyOn(1, "b"), k3 = c_.StringKeyOn(2, "c");
  for (bool two_phase : {false, true}) {
    SCOPED_TRACE(two_phase ? "two-phase" : "one-phase");
    // Both begin on n1, so t2's snapshot is below t1's commit whatever the
    // other nodes' clocks say (begun on another node, t2 could start after
    // t1's commit timestamp, and then rightly commit).
    const std::string t1 = Begin(0), t2 = Begin(0);
    PutIn(0, t1, b, "1");
    PutIn(0, t2, b, "2");
    if (two_phase) {
      PutIn(0, t1, k3, "1");
      PutIn(0, t2, k3, "2");
    }
    EXPECT_EQ(Commit(0, t1)["type"].String(), "txn_commit_ok");
    JsonValue second = Commit(0, t2);
    EXPECT_EQ(second["type"].String(), "error") << second.Canonical();
    EXPECT_EQ(second["code"].Int(), 30) << second.Canonical();
    EXPECT_TRUE(SameJson(ReadFresh(1, b)["value"], "1"));
    if (two_phase) {
      EXPECT_TRUE(SameJson(ReadFresh(1, k3)["value"], "1"));
    }
  }
  // The aborted prepares left nothing behind.
  EXPECT_TRUE(c_.Until([&] { return c_.Stats(1)["intents"].Int() == 0; }));
  EXPECT_TRUE(c_.Until([&] { return c_.Stats(2)["intents"].Int() == 0; }));
}

TEST_F(ClusterTxnTest, SerializableRefusesWriteSkewSnapshotAllowsIt) {
  const std::string x = c_.StringKeyOn(1, "x"), y = c_.StringKeyOn(2, "y");
  for (std::string isolation : {"serializable", "snapshot"}) {
    SCOPED_TRACE(isolation);
    const std::string iso = R"("isolation":")" + isolation + "\"";
    {
      const std::string init = Begin(1);
      PutIn(1, init, x, "0");
      PutIn(1, init, y, "0");
      ASSERT_EQ(Commit(1, init)["type"].String(), "txn_commit_ok");
    }
    // Each reads both and writes one: on-call doctors.
    const std::string t1 = Begin(0, iso), t2 = Begin(2, iso);
    for (const auto& [node, txn] : {std::pair<size_t, std::string>{0, t1}, {2, t2}}) {
      EXPECT_TRUE(SameJson(GetIn(node, txn, x)["value"], "0"));
      EXPECT_TRUE(SameJson(GetIn(node, txn, y)["value"], "0"));
    }
    PutIn(0, t1, x, "1");
    PutIn(2, t2, y, "1");
    EXPECT_EQ(Commit(0, t1)["type"].String(), "txn_commit_ok");
    JsonValue second = Commit(2, t2);
    if (isolation == "serializable") {
      EXPECT_EQ(second["type"].String(), "error") << second.Canonical();
      EXPECT_EQ(second["code"].Int(), 30) << second.Canonical();
      EXPECT_TRUE(SameJson(ReadFresh(1, y)["value"], "0"));
    } else {
      EXPECT_EQ(second["type"].String(), "txn_commit_ok") << second.Canonical();
      EXPECT_TRUE(SameJson(ReadFresh(1, y)["value"], "1"));
    }
    EXPECT_TRUE(SameJson(ReadFresh(1, x)["value"], "1"));
  }
}

TEST_F(ClusterTxnTest, ReaderWaitsForAHeldRecordCommitThenSeesTheValue) {
  const std::string b = c_.StringKeyOn(1, "b"), k3 = c_.StringKeyOn(2, "c");
  Write(1, k3, R"("before")");
  c_.filter = [](const Message& m) {
    return m.type == "record_commit" ? Fate::kHold : Fate::kDeliver;
  };
  const std::string txn = Begin(0);
  PutIn(0, txn, b, R"("B")");
  PutIn(0, txn, k3, R"("after")");
  const int64_t commit = SendCommit(0, txn);
  ASSERT_TRUE(c_.Until([&] { return c_.held() == 1; })) << "record_commit was never sent";
  EXPECT_FALSE(c_.ReplyTo(commit)) << "committed before its record did";
  EXPECT_EQ(c_.Stats(2)["intents"].Int(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));  // a later snapshot
  // A reader at a later snapshot on n3 must wait for the intent's fate.
  const std::string reader = Begin(2);
  const int64_t read =
      c_.Send(2, R"({"type":"txn_get","txn_id":)" + reader + R"(,"key":)" + k3 + "}");
  c_.RunFor(std::chrono::milliseconds(250));  // > heartbeat_timeout: heartbeats keep it alive
  EXPECT_FALSE(c_.ReplyTo(read)) << c_.ReplyTo(read)->Canonical();
  EXPECT_GT(c_.CountSent("record_push", "n3", "n2"), 0u) << "the waiting read should push";
  EXPECT_GE(c_.Stats(2)["reads_waiting"].Int(), 1);

  c_.filter = nullptr;
  c_.ReleaseHeld();
  JsonValue committed = c_.Await(commit);
  ASSERT_EQ(committed["type"].String(), "txn_commit_ok") << committed.Canonical();
  JsonValue got = c_.Await(read);
  EXPECT_EQ(got["type"].String(), "txn_get_ok") << got.Canonical();
  EXPECT_TRUE(SameJson(got["value"], R"("after")")) << got.Canonical();
  EXPECT_TRUE(SameJson(GetIn(2, reader, b)["value"], R"("B")"));
}

TEST_F(ClusterTxnTest, ReadersResolveIntentsThroughTheRecordWhenResolveIsLost) {
  const std::string b = c_.StringKeyOn(1, "b"), k3 = c_.StringKeyOn(2, "c");
  Write(0, b, R"("b0")");
  Write(0, k3, R"("c0")");
  c_.filter = [](const Message& m) {
    return m.type == "shard_resolve" ? Fate::kDrop : Fate::kDeliver;
  };
  const std::string txn = Begin(0);
  PutIn(0, txn, b, R"("b1")");
  PutIn(0, txn, k3, R"("c1")");
  ASSERT_EQ(Commit(0, txn)["type"].String(), "txn_commit_ok");
  c_.Step();
  EXPECT_EQ(c_.Stats(2)["intents"].Int(), 1) << "the resolve was dropped";
  // Readers on both shards (n2 holds the record, n3 asks it).
  EXPECT_TRUE(SameJson(ReadFresh(2, k3)["value"], R"("c1")"));
  EXPECT_TRUE(SameJson(ReadFresh(1, b)["value"], R"("b1")"));
  EXPECT_TRUE(SameJson(ReadFresh(0, k3)["value"], R"("c1")"));
  EXPECT_GT(c_.CountSent("record_push", "n3", "n2"), 0u);
  EXPECT_EQ(c_.Stats(2)["intents"].Int(), 0);
  EXPECT_EQ(c_.Stats(1)["intents"].Int(), 0);
  // Writers get through too.
  Write(2, k3, R"("c2")");
  EXPECT_TRUE(SameJson(ReadFresh(1, k3)["value"], R"("c2")"));
}

TEST_F(ClusterTxnTest, IntentsOfADeadCoordinatorAreAbortedAfterTheHeartbeatTimeout) {
  const std::string b = c_.StringKeyOn(1, "b"), k3 = c_.StringKeyOn(2, "c");
  Write(1, b, R"("b0")");
  Write(2, k3, R"("c0")");
  const std::string txn = Begin(0);
  PutIn(0, txn, b, R"("b1")");
  PutIn(0, txn, k3, R"("c1")");
  // n1 sends its prepares and dies: they are on the wire, nothing else of
  // n1's will be (no timers, nothing delivered to it).
  c_.ClearSent();
  SendCommit(0, txn);
  ASSERT_EQ(c_.CountSent("shard_prepare"), 2u);
  c_.Kill(0);
  const auto died = std::chrono::steady_clock::now();
  c_.Step();
  EXPECT_EQ(c_.Stats(1)["intents"].Int(), 1);
  EXPECT_EQ(c_.Stats(2)["intents"].Int(), 1);
  EXPECT_EQ(c_.Stats(1)["pending_txn_records"].Int(), 1);

  ASSERT_TRUE(c_.Until(
      [&] { return c_.Stats(1)["intents"].Int() == 0 && c_.Stats(2)["intents"].Int() == 0; },
      std::chrono::milliseconds(200 + 1500)))
      << c_.Stats(1).Canonical() << "\n"
      << c_.Stats(2).Canonical();
  EXPECT_GE(std::chrono::steady_clock::now() - died, std::chrono::milliseconds(150))
      << "aborted before the heartbeat timeout";
  EXPECT_EQ(c_.Stats(1)["pending_txn_records"].Int(), 0);
  EXPECT_EQ(c_.Stats(2)["reads_waiting"].Int(), 0);
  // Readers see the old values, on both shards, from both live nodes.
  for (size_t reader : {1, 2}) {
    EXPECT_TRUE(SameJson(ReadFresh(reader, b)["value"], R"("b0")"));
    EXPECT_TRUE(SameJson(ReadFresh(reader, k3)["value"], R"("c0")"));
  }
  // And the keys are writable again.
  Write(2, b, R"("b2")");
  EXPECT_TRUE(SameJson(ReadFresh(1, b)["value"], R"("b2")"));
}

// The coordinator dies right after sending record_commit: the record is
// COMMITTED but nobody will send shard_resolve or record_forget. The
// participants apply the intents through the record (their stale intents are
// pushed), and the primary, finding the committed record still there long
// after every coordinator call would have given up, resolves the shards the
// record lists and forgets it: no record is kept forever.
TEST(ClusterAbandonedCommitTest, ThePrimaryFinishesACommitWhoseCoordinatorDied) {
  node::ClusterOptions options = FastClusterOptions();
  options.rpc_timeout = std::chrono::milliseconds(300);  // the primary waits 2 x (300 + 200) ms
  TestCluster c(3, options);
  const std::string b = c.StringKeyOn(1, "b"), k3 = c.StringKeyOn(2, "c");
  const std::string txn = Id(c.Expect(0, R"({"type":"txn_begin"})", "txn_begin_ok"));
  for (const std::string& key : {b, k3}) {
    c.Expect(0, R"({"type":"txn_put","txn_id":)" + txn + R"(,"key":)" + key + R"(,"value":"new"})",
             "txn_put_ok");
  }
  c.filter = [&c](const Message& m) {
    if (m.type == "record_commit") c.Kill(0);  // it is on the wire; n1 hears nothing more
    return Fate::kDeliver;
  };
  c.Send(0, R"({"type":"txn_commit","txn_id":)" + txn + "}");
  // n2 (the first written shard) holds the record, COMMITTED.
  ASSERT_TRUE(c.Until([&] {
    JsonValue s = c.Stats(1);
    return s["txn_records"].Int() == 1 && s["pending_txn_records"].Int() == 0;
  })) << c.Stats(1).Canonical();
  EXPECT_EQ(c.CountSent("shard_resolve", "n1"), 0u);
  EXPECT_EQ(c.CountSent("record_forget"), 0u);
  const auto committed = std::chrono::steady_clock::now();

  // Both shards apply the commit and the primary forgets the record.
  ASSERT_TRUE(c.Until(
      [&] {
        return c.Stats(1)["intents"].Int() == 0 && c.Stats(2)["intents"].Int() == 0 &&
               c.Stats(1)["txn_records"].Int() == 0;
      },
      std::chrono::milliseconds(5000)))
      << c.Stats(1).Canonical() << "\n"
      << c.Stats(2).Canonical();
  EXPECT_GE(std::chrono::steady_clock::now() - committed, std::chrono::milliseconds(500))
      << "forgotten before the coordinator's calls could have given up";
  EXPECT_EQ(c.Stats(1)["commits_finished_by_primary"].Int(), 1);
  EXPECT_GE(c.CountSent("shard_resolve", "n2", "n3"), 1u);
  for (size_t reader : {1, 2}) {
    for (const std::string& key : {b, k3}) {
      const std::string t = Id(c.Expect(reader, R"({"type":"txn_begin"})", "txn_begin_ok"));
      JsonValue got = c.Expect(
          reader, R"({"type":"txn_get","txn_id":)" + t + R"(,"key":)" + key + "}", "txn_get_ok");
      EXPECT_TRUE(SameJson(got["value"], R"("new")")) << got.Canonical();
    }
  }
}

// A read-only transaction may read the past, not the future: a
// read_timestamp ahead of the clocks would drag every shard's clock (and
// every later commit's wait) forward with it.
TEST_F(ClusterTxnTest, AReadTimestampAheadOfTheClockIsRefused) {
  const std::string b = c_.StringKeyOn(1, "b");
  Write(0, b, R"("now")");
  const int64_t now = c_.Stats(1)["max_timestamp"].Int().value_or(0);
  c_.ExpectError(0, R"({"type":"txn_begin","read_only":true,"read_timestamp":4611686018427387904})",
                 12);
  // It moved no clock: the next commit is still in the present.
  const std::string later = Begin(0);
  PutIn(0, later, b, R"("later")");
  EXPECT_LT(Commit(0, later)["commit_timestamp"].Int().value_or(INT64_MAX),
            int64_t{4611686018427387904});
  // The past is fine.
  const std::string past = Begin(2, R"("read_only":true,"read_timestamp":)" + std::to_string(now));
  EXPECT_TRUE(SameJson(GetIn(2, past, b)["value"], R"("now")"));
}

// Every node-to-node message carries the sender's clock ("hlc"), replies
// included: error replies too (a conflict's refusal names timestamps the
// coordinator has not seen).
TEST_F(ClusterTxnTest, ErrorRepliesBetweenNodesCarryTheHlc) {
  const std::string b = c_.StringKeyOn(1, "b");
  const std::string t1 = Begin(0), t2 = Begin(0);  // t2's snapshot below t1's commit
  PutIn(0, t1, b, "1");
  PutIn(0, t2, b, "2");
  EXPECT_EQ(Commit(0, t1)["type"].String(), "txn_commit_ok");
  EXPECT_EQ(Commit(0, t2)["code"].Int(), 30);
  // A forwarded request the owner refuses, and a malformed peer request.
  c_.ExpectError(0, R"({"type":"mvcc_put","key":)" + b + R"(,"value":1})", 12);
  EXPECT_TRUE(c_.unstamped().empty())
      << c_.unstamped().size() << " unstamped, first: " << c_.unstamped().front();
}

}  // namespace
}  // namespace strata::testing
