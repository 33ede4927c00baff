// Garbage collection and transactions (PROTOCOL.md sections 3, 4 and 5): an
// active transaction holds the compaction horizon back at its start
// timestamp, whether compaction is asked for (mvcc_compact) or automatic
// (--gc-retention); once it ends, or expires after --txn-timeout-ms idle,
// compaction proceeds.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "node_test_fixture.h"
#include "txn_client.h"

namespace strata::testing {
namespace {

using std::chrono::milliseconds;

// Polls mvcc_stats until `done` holds for them or `timeout` passes; returns
// the last stats either way, for the caller to check and print.
JsonValue PollStats(NodeSession& node, const std::function<bool(const JsonValue&)>& done,
                    milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  JsonValue stats = node.Stats();
  while (!done(stats) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
    stats = node.Stats();
  }
  return stats;
}

JsonValue Compact(NodeSession& node, int64_t timestamp) {
  return node.CallOk(R"({"type":"mvcc_compact","timestamp":)" + std::to_string(timestamp) + "}",
                     "mvcc_compact_ok");
}

// Expects mvcc_stats to name `txn` as the one holding garbage collection.
void ExpectHolder(NodeSession& node, const Txn& txn, int64_t active_txns) {
  JsonValue stats = node.Stats();
  EXPECT_EQ(stats["active_txns"].Int(), active_txns) << stats.Canonical();
  EXPECT_EQ(stats["min_active_snapshot"].Int(), txn.start()) << stats.Canonical();
  EXPECT_EQ(stats["oldest_txn_id"].Int(), txn.id()) << stats.Canonical();
  EXPECT_GE(stats["oldest_txn_age_ms"].Int().value_or(-1), 0) << stats.Canonical();
}

void ExpectNoHolder(NodeSession& node) {
  JsonValue stats = node.Stats();
  EXPECT_EQ(stats["active_txns"].Int(), 0) << stats.Canonical();
  EXPECT_TRUE(stats["min_active_snapshot"].IsNull()) << stats.Canonical();
  EXPECT_TRUE(stats["oldest_txn_id"].IsNull()) << stats.Canonical();
  EXPECT_TRUE(stats["oldest_txn_age_ms"].IsNull()) << stats.Canonical();
}

// Versions of "x" at 100 and 200, then a transaction, then versions at
// start + 100 and start + 200 (raw writes above a live snapshot are fine).
class TxnHoldsCompactionTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    node().Put(R"("x")", R"("v1")", 100);
    node().Put(R"("x")", R"("v2")", 200);
    txn_ = std::make_unique<Txn>(Txn::Begin(node()));
    node().Put(R"("x")", R"("v3")", txn().start() + 100);
    node().Put(R"("x")", R"("v4")", txn().start() + 200);
  }

  Txn& txn() { return *txn_; }

 private:
  std::unique_ptr<Txn> txn_;
};

TEST_F(TxnHoldsCompactionTest, LiveTxnClampsTheHorizonAndKeepsItsReads) {
  ExpectHolder(node(), txn(), 1);
  const int64_t start = txn().start();

  // Asked for far above the snapshot, compaction stops at it: only v1, which
  // no read at or above the start can see, goes.
  JsonValue compacted = Compact(node(), start + 1000);
  EXPECT_EQ(compacted["horizon"].Int(), start) << compacted.Canonical();
  EXPECT_EQ(compacted["versions_removed"].Int(), 1) << compacted.Canonical();
  EXPECT_EQ(node().Stats()["compaction_horizon"].Int(), start);

  node().ExpectReply(txn().Body("txn_get", R"("key":"x")"),
                     R"({"type":"txn_get_ok","value":"v2","version":2,"as_of_timestamp":200})");
  EXPECT_EQ(ScanKeys(txn().Scan()), R"(["x"])");
  node().ExpectError(
      R"({"type":"mvcc_get","key":"x","read_timestamp":)" + std::to_string(start - 1) + "}", 1000);
}

TEST_F(TxnHoldsCompactionTest, CompactionProceedsAfterCommitAndAbort) {
  Txn younger = Txn::Begin(node());
  ExpectHolder(node(), txn(), 2);  // the older one holds
  EXPECT_EQ(Compact(node(), younger.start() + 1000)["horizon"].Int(), txn().start());

  txn().Put(R"("y")", "1");
  txn().Commit();
  // Now only the younger one holds, at its own start.
  ExpectHolder(node(), younger, 1);
  EXPECT_EQ(Compact(node(), younger.start() + 1000)["horizon"].Int(), younger.start());

  younger.Abort();
  ExpectNoHolder(node());
  const int64_t target = younger.start() + 1000;
  JsonValue compacted = Compact(node(), target);
  EXPECT_EQ(compacted["horizon"].Int(), target) << compacted.Canonical();
  // Of x, only v4 (newest at or below the horizon) is left; y has one version.
  EXPECT_EQ(node().Stats()["versions"].Int(), 2);
}

TEST_F(NodeTest, PastSnapshotHoldsCompactionAtItsReadTimestamp) {
  node().Put(R"("x")", R"("v1")", 100);
  node().Put(R"("x")", R"("v2")", 200);
  Txn past = Txn::Begin(node(), R"("read_only":true,"read_timestamp":150)");
  ExpectHolder(node(), past, 1);
  EXPECT_EQ(Compact(node(), 1000)["horizon"].Int(), 150);
  EXPECT_EQ(ValueOf(past.Get(R"("x")")), R"("v1")");
  past.Commit();
  EXPECT_EQ(Compact(node(), 1000)["horizon"].Int(), 1000);
}

// --- --txn-timeout-ms -------------------------------------------------------

constexpr milliseconds kShortTimeout{200};

class TxnTimeoutTest : public NodeTest {
 protected:
  std::vector<std::string> NodeArgs() const override {
    return {"--txn-timeout-ms", std::to_string(kShortTimeout.count())};
  }
};

TEST_F(TxnTimeoutTest, IdleTxnExpiresAndStopsHoldingCompaction) {
  node().Put(R"("x")", "1", 100);
  Txn idle = Txn::Begin(node());
  // Taken before the last request naming the transaction is sent, so the
  // node's idle clock cannot have started earlier than this one.
  const auto last_used = std::chrono::steady_clock::now();
  idle.Put(R"("y")", "1");
  EXPECT_EQ(Compact(node(), idle.start() + 1000)["horizon"].Int(), idle.start());

  // mvcc_stats does not name the transaction, so polling does not keep it
  // alive; the node must expire it on its own, without further input.
  JsonValue stats = PollStats(
      node(), [](const JsonValue& s) { return s["active_txns"].Int() == 0; }, milliseconds(3000));
  const auto waited = std::chrono::steady_clock::now() - last_used;
  EXPECT_EQ(stats["active_txns"].Int(), 0) << "not expired after 3 s: " << stats.Canonical();
  EXPECT_GE(waited, kShortTimeout) << "expired before it was idle long enough";
  EXPECT_EQ(stats["expired_txns"].Int(), 1) << stats.Canonical();
  EXPECT_TRUE(stats["min_active_snapshot"].IsNull()) << stats.Canonical();

  ExpectTxnGone(node(), idle);
  EXPECT_EQ(ValueOf(node().CallOk(R"({"type":"mvcc_get","key":"y"})", "mvcc_get_ok")), "null")
      << "an expired transaction's writes must never be visible";
  const int64_t target = idle.start() + 1000;
  EXPECT_EQ(Compact(node(), target)["horizon"].Int(), target);
}

TEST_F(TxnTimeoutTest, TxnInUseDoesNotExpire) {
  Txn busy = Txn::Begin(node());
  // Used every 50 ms for twice the timeout: it is never idle long enough.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    busy.Get(R"("x")");
  }
  busy.Put(R"("x")", "1");
  busy.Commit();
  EXPECT_EQ(node().Stats()["expired_txns"].Int(), 0);
}

// --- --gc-retention ---------------------------------------------------------

class GcRetentionTxnTest : public NodeTest {
 protected:
  std::vector<std::string> NodeArgs() const override { return {"--gc-retention", "100"}; }
};

TEST_F(GcRetentionTxnTest, AutomaticGcStopsAtALiveSnapshot) {
  for (int64_t ts = 100; ts <= 1000; ts += 100) node().Put(R"("x")", std::to_string(ts), ts);
  Txn reader = Txn::Begin(node());
  const int64_t start = reader.start();
  for (int64_t ts = start + 100; ts <= start + 1000; ts += 100) {
    node().Put(R"("x")", std::to_string(ts), ts);
  }

  // The collector wants max - 100 = start + 900 but must stop at the start.
  JsonValue stats = PollStats(
      node(),
      [&](const JsonValue& s) { return s["compaction_horizon"].Int().value_or(0) >= start; },
      milliseconds(3000));
  EXPECT_EQ(stats["compaction_horizon"].Int(), start) << stats.Canonical();
  // Give the collector a few more rounds (its interval is 10 ms): it stays.
  std::this_thread::sleep_for(milliseconds(100));
  stats = node().Stats();
  EXPECT_EQ(stats["compaction_horizon"].Int(), start) << stats.Canonical();
  EXPECT_EQ(stats["min_active_snapshot"].Int(), start) << stats.Canonical();
  node().ExpectReply(reader.Body("txn_get", R"("key":"x")"),
                     R"({"type":"txn_get_ok","value":1000,"version":10,"as_of_timestamp":1000})");

  reader.Abort();
  stats = PollStats(
      node(), [&](const JsonValue& s) { return s["compaction_horizon"].Int() == start + 900; },
      milliseconds(3000));
  EXPECT_EQ(stats["compaction_horizon"].Int(), start + 900) << stats.Canonical();
  stats = PollStats(
      node(), [](const JsonValue& s) { return s["versions"].Int() == 2; }, milliseconds(3000));
  EXPECT_EQ(stats["versions"].Int(), 2)
      << "only the versions at start+900 and start+1000 remain: " << stats.Canonical();
}

}  // namespace
}  // namespace strata::testing
