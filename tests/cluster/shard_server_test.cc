// ShardServer driven by typed peer messages, as a node's transport hands
// them over: reads that wait for intents and are released by a resolution,
// a push or their deadline; prepares that create records on the primary;
// record calls; refusals of requests that name no shard or predate the
// server; scans cut to fit one message; and a primary finishing a commit
// its coordinator abandoned. Time is the test's (Timers); what the server
// sends to other shards is captured by a fake transport and answered by
// hand.
#include "cluster/shard_server.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/capturing_transport.h"

namespace strata::cluster {
namespace shard_server_test {

using HLC = HybridLogicalClock;
using std::chrono::milliseconds;
using Clock = ShardServer::Clock;

const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

// Two shards on nodes n0 and n1; the server under test is shard 0 (n0).
class ShardServerTest : public ::testing::Test {
 protected:
  ShardServerTest()
      : map_(*ShardMap::OnePerNode({"n0", "n1"})),
        peers_("n0", {"n0", "n1"}, &map_, &clock_, &transport_, &timers_, milliseconds(5000)) {
    timers_.SetNow(kT0);
  }

  void Open(ShardServerOptions options = Options(), bool persist = false) {
    Result<std::unique_ptr<ShardServer>> created =
        ShardServer::Create(0, 2, &store_, &clock_, &peers_, &timers_, persist, options);
    ASSERT_TRUE(created.ok()) << created.status().message();
    server_ = std::move(*created);
    server_->Start();
  }

  static ShardServerOptions Options() {
    ShardServerOptions options;
    options.heartbeat_timeout = milliseconds(1000);
    options.push_after = milliseconds(20);
    options.read_wait = milliseconds(500);
    return options;
  }

  // A sender clock reading of now: after the server started.
  static Timestamp Now() { return HLC::Make(HLC::SystemMillis(), 0); }
  TxnId NewTxn() { return TxnId{clock_.Next()->value(), 1}; }

  // The reply a request got (nullopt while it waits).
  struct Answer {
    std::optional<PeerReply> reply;
    ShardServer::Respond Respond() {
      return [this](PeerReply r) { reply = std::move(r); };
    }
  };

  PrepareRequest Request(TxnId txn, std::vector<BatchWrite> writes, uint32_t primary = 0) {
    PrepareRequest request;
    request.txn = txn;
    request.start = clock_.Last();
    request.isolation = Isolation::kSnapshot;
    request.primary = primary;
    request.writes = std::move(writes);
    return request;
  }

  Timestamp Prepare(TxnId txn, std::vector<BatchWrite> writes) {
    Answer answer;
    server_->Prepare(ShardPrepare{Request(txn, std::move(writes)), {0}}, Now(), answer.Respond());
    EXPECT_TRUE(answer.reply && std::holds_alternative<PrepareReply>(*answer.reply));
    return std::get<PrepareReply>(*answer.reply).prepare_timestamp;
  }

  void Advance(milliseconds by) { timers_.RunDue(timers_.now() + by); }

  MvccStore store_;
  HLC clock_;
  Timers timers_;
  CapturingTransport transport_;
  ShardMap map_;
  Peers peers_;
  std::unique_ptr<ShardServer> server_;
};

TEST_F(ShardServerTest, ReadWaitsForAnIntentUntilItsResolution) {
  Open();
  const TxnId txn = NewTxn();
  const Timestamp prepared = Prepare(txn, {{"k", "\"v\""}});
  Answer read;
  server_->Read(ShardRead{prepared, {"k"}, std::nullopt, 0}, read.Respond());
  EXPECT_FALSE(read.reply) << "an intent at or below the snapshot may still commit below it";
  EXPECT_EQ(server_->Stats().reads_waiting, 1u);
  EXPECT_LE(server_->SafeTime(), Timestamp(prepared.value() - 1));

  Answer resolved;
  server_->Resolve(ShardResolve{txn, TxnStatus::kCommitted, prepared}, resolved.Respond());
  ASSERT_TRUE(resolved.reply && std::holds_alternative<ResolveReply>(*resolved.reply));
  ASSERT_TRUE(read.reply);
  const auto& reads = std::get<ShardReadReply>(*read.reply).reads;
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_TRUE(reads[0].found);
  EXPECT_EQ(reads[0].value, "\"v\"");
  EXPECT_EQ(reads[0].timestamp, prepared);
  EXPECT_EQ(server_->Stats().reads_waited, 1u);
  EXPECT_EQ(server_->Stats().reads_waiting, 0u);
}

TEST_F(ShardServerTest, ReadBelowAnIntentIsServedAtOnce) {
  Open();
  const Timestamp before = *clock_.Next();
  Prepare(NewTxn(), {{"k", "1"}});
  Answer read;
  server_->Read(ShardRead{before, {"k", "other"}, std::nullopt, 0}, read.Respond());
  ASSERT_TRUE(read.reply);
  const auto& reads = std::get<ShardReadReply>(*read.reply).reads;
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_FALSE(reads[0].found);
  EXPECT_FALSE(reads[1].found);
}

TEST_F(ShardServerTest, WaitingReadPushesTheRecordAndAnAbortReleasesIt) {
  Open();
  const TxnId txn = NewTxn();
  // The intent's record lives on shard 1 (node n1).
  Answer prepared_answer;
  server_->Prepare(ShardPrepare{Request(txn, {{"k", "1"}}, /*primary=*/1), {}}, Now(),
                   prepared_answer.Respond());
  const Timestamp prepared = std::get<PrepareReply>(*prepared_answer.reply).prepare_timestamp;
  Answer read;
  server_->Read(ShardRead{prepared, {"k"}, std::nullopt, 0}, read.Respond());
  ASSERT_FALSE(read.reply);
  Advance(milliseconds(19));
  EXPECT_TRUE(transport_.sent.empty()) << "pushed before push_after";
  Advance(milliseconds(1));
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].dest, "n1");
  const auto& push = std::get<RecordCall>(transport_.sent[0].request);
  EXPECT_EQ(push.op, RecordOp::kPush);
  EXPECT_EQ(push.txn, txn);
  // One push in flight at a time.
  Advance(milliseconds(20));
  EXPECT_EQ(transport_.sent.size(), 1u);
  EXPECT_TRUE(peers_.OnReply(transport_.sent[0].msg_id,
                             RecordReply{RecordOp::kPush, TxnStatus::kAborted, Timestamp()}));
  ASSERT_TRUE(read.reply);
  EXPECT_FALSE(std::get<ShardReadReply>(*read.reply).reads[0].found);
  EXPECT_EQ(server_->Stats().pushes, 1u);
  EXPECT_EQ(server_->Stats().pushed_aborts, 1u);
  EXPECT_EQ(server_->Stats().intents.intents, 0u);
}

TEST_F(ShardServerTest, WaitingReadGivesUpAfterReadWait) {
  Open();
  const Timestamp prepared = Prepare(NewTxn(), {{"k", "1"}});
  Answer read;
  server_->Read(ShardRead{prepared, {"k"}, std::nullopt, 0}, read.Respond());
  Advance(milliseconds(499));
  EXPECT_FALSE(read.reply);
  Advance(milliseconds(20));
  ASSERT_TRUE(read.reply);
  const auto& error = std::get<PeerError>(*read.reply);
  EXPECT_EQ(error.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(error.status.message().find("still pending"), std::string::npos);
  EXPECT_EQ(server_->Stats().read_wait_timeouts, 1u);
}

TEST_F(ShardServerTest, PrimaryKeepsTheRecordThroughItsCalls) {
  Open();
  const TxnId txn = NewTxn();
  const Timestamp prepared = Prepare(txn, {{"k", "1"}});
  EXPECT_EQ(server_->Stats().txn_records, 1u);
  EXPECT_EQ(server_->Stats().pending_txn_records, 1u);
  auto call = [&](RecordOp op, Timestamp commit_ts = Timestamp()) {
    Answer answer;
    server_->Record(RecordCall{op, txn, commit_ts}, answer.Respond());
    return std::get<RecordReply>(*answer.reply);
  };
  EXPECT_EQ(call(RecordOp::kHeartbeat).status, TxnStatus::kPending);
  EXPECT_EQ(call(RecordOp::kPush).status, TxnStatus::kPending) << "heartbeated: not stalled";
  const RecordReply committed = call(RecordOp::kCommit, prepared);
  EXPECT_EQ(committed.op, RecordOp::kCommit);
  EXPECT_EQ(committed.status, TxnStatus::kCommitted);
  EXPECT_EQ(committed.commit_timestamp, prepared);
  // Final: an abort changes nothing.
  EXPECT_EQ(call(RecordOp::kAbort).status, TxnStatus::kCommitted);
  EXPECT_FALSE(call(RecordOp::kForget).status);
  EXPECT_EQ(server_->Stats().txn_records, 0u);
  // A record never heard of, pushed, is ABORTED (a late prepare then fails).
  const TxnId unknown = NewTxn();
  Answer pushed;
  server_->Record(RecordCall{RecordOp::kPush, unknown, {}}, pushed.Respond());
  EXPECT_EQ(std::get<RecordReply>(*pushed.reply).status, TxnStatus::kAborted);
  Answer late;
  server_->Prepare(ShardPrepare{Request(unknown, {{"x", "1"}}), {0}}, Now(), late.Respond());
  EXPECT_EQ(std::get<PeerError>(*late.reply).status.code(), StatusCode::kConflict);
  EXPECT_EQ(server_->Stats().intents.intents, 1u) << "only the first transaction's intent";
}

TEST_F(ShardServerTest, RefusesShardsThatDoNotExistAndCopiesOlderThanTheServer) {
  Open();
  auto refused = [&](ShardPrepare prepare, Timestamp sent) {
    Answer answer;
    server_->Prepare(std::move(prepare), sent, answer.Respond());
    return std::get<PeerError>(*answer.reply).status;
  };
  EXPECT_EQ(refused(ShardPrepare{Request(NewTxn(), {{"k", "1"}}, 2), {}}, Now()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(refused(ShardPrepare{Request(NewTxn(), {{"k", "1"}}, 1), {0, 5}}, Now()).code(),
            StatusCode::kInvalidArgument);
  // The primary's prepare must list the primary itself.
  EXPECT_EQ(refused(ShardPrepare{Request(NewTxn(), {{"k", "1"}}, 0), {1}}, Now()).code(),
            StatusCode::kInvalidArgument);
  // Sent (by its sender's clock) before this server started.
  const Status old = refused(ShardPrepare{Request(NewTxn(), {{"k", "1"}}, 0), {0}},
                             HLC::Make(HLC::SystemMillis() - 60'000, 0));
  EXPECT_EQ(old.code(), StatusCode::kConflict);
  EXPECT_NE(old.message().find("before it restarted"), std::string::npos);
  // A one-phase commit so old is refused unjudged, not as a conflict: a
  // copy of it may have committed before the restart.
  Answer old_commit;
  server_->Commit(ShardCommit{Request(NewTxn(), {{"k", "1"}}, 0)},
                  HLC::Make(HLC::SystemMillis() - 60'000, 0), old_commit.Respond());
  EXPECT_EQ(std::get<PeerError>(*old_commit.reply).status.code(), StatusCode::kUnavailable);
  Answer commit;
  server_->Commit(ShardCommit{Request(NewTxn(), {{"k", "1"}}, 7)}, Now(), commit.Respond());
  EXPECT_EQ(std::get<PeerError>(*commit.reply).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->Stats().intents.intents, 0u) << "a refused prepare leaves nothing";
  EXPECT_EQ(server_->Stats().txn_records, 0u);
}

TEST_F(ShardServerTest, OnePhaseCommitAppliesAtOnceAndARetryGetsTheSameTimestamp) {
  Open();
  const ShardCommit commit{Request(NewTxn(), {{"k", "\"one\""}})};
  Answer first, retry;
  server_->Commit(commit, Now(), first.Respond());
  server_->Commit(commit, Now(), retry.Respond());
  const Timestamp at = std::get<CommitReply>(*first.reply).commit_timestamp;
  EXPECT_EQ(std::get<CommitReply>(*retry.reply).commit_timestamp, at);
  Answer read;
  server_->Read(ShardRead{at, {"k"}, std::nullopt, 0}, read.Respond());
  EXPECT_EQ(std::get<ShardReadReply>(*read.reply).reads[0].value, "\"one\"");
}

TEST_F(ShardServerTest, AHeldWatchReadIsAnsweredOnceAChangeIsResolvedOrAtItsDeadline) {
  Open();
  const Timestamp from = *clock_.Next();
  std::this_thread::sleep_for(milliseconds(2));  // the shard has resolved `from`
  const ShardWatch idle{KeyRange::All(), from, 0, 100, false, /*park_ms=*/50};
  // Nothing to hand on: held, then answered at its deadline with the
  // resolved timestamp alone.
  Answer quiet;
  server_->Watch(idle, quiet.Respond());
  EXPECT_FALSE(quiet.reply);
  EXPECT_EQ(server_->parked_watches(), 1u);
  Advance(milliseconds(49));
  EXPECT_FALSE(quiet.reply);
  Advance(milliseconds(1));
  ASSERT_TRUE(quiet.reply);
  const auto& empty = std::get<ShardWatchReply>(*quiet.reply);
  EXPECT_TRUE(empty.changes.empty());
  EXPECT_GT(empty.resolved, from);
  EXPECT_EQ(server_->parked_watches(), 0u);

  // A change in its range wakes it once the change is resolved (the next
  // millisecond boundary), long before the deadline.
  Answer woken;
  server_->Watch(ShardWatch{KeyRange::All(), empty.resolved, empty.cursor, 100, false, 50},
                 woken.Respond());
  EXPECT_FALSE(woken.reply);
  Answer committed;
  server_->Commit(ShardCommit{Request(NewTxn(), {{"k", "\"v\""}})}, Now(), committed.Respond());
  const Timestamp at = std::get<CommitReply>(*committed.reply).commit_timestamp;
  std::this_thread::sleep_for(milliseconds(2));  // the wall clock is past its millisecond
  Advance(milliseconds(2));
  ASSERT_TRUE(woken.reply) << "still held after its change was resolved";
  const auto& page = std::get<ShardWatchReply>(*woken.reply);
  ASSERT_EQ(page.changes.size(), 1u);
  EXPECT_EQ(page.changes[0].timestamp, at);
  EXPECT_GE(page.resolved, at);

  // A change outside a held read's range does not answer it.
  Answer elsewhere;
  server_->Watch(ShardWatch{KeyRange{"x", "y"}, page.resolved, page.cursor, 100, false, 50},
                 elsewhere.Respond());
  Answer other;
  server_->Commit(ShardCommit{Request(NewTxn(), {{"k", "\"w\""}})}, Now(), other.Respond());
  std::this_thread::sleep_for(milliseconds(2));
  Advance(milliseconds(2));
  EXPECT_FALSE(elsewhere.reply);
  Advance(milliseconds(50));
  ASSERT_TRUE(elsewhere.reply);
  const auto& none = std::get<ShardWatchReply>(*elsewhere.reply);
  EXPECT_TRUE(none.changes.empty());

  // A read held right after a change it has not seen, in the change's own
  // millisecond (nothing was held to be woken when it was appended), is
  // woken at the boundary too.
  Answer third, fresh;
  server_->Commit(ShardCommit{Request(NewTxn(), {{"x1", "\"x\""}})}, Now(), third.Respond());
  server_->Watch(ShardWatch{KeyRange{"x", "y"}, none.resolved, none.cursor, 100, false, 50},
                 fresh.Respond());
  std::this_thread::sleep_for(milliseconds(2));
  Advance(milliseconds(2));
  ASSERT_TRUE(fresh.reply) << "held until its deadline";
  ASSERT_EQ(std::get<ShardWatchReply>(*fresh.reply).changes.size(), 1u);
}

TEST_F(ShardServerTest, ScanIsCutToFitOneMessageAndSaysMore) {
  Open();
  const std::string value = "\"" + std::string(600 * 1024, 'x') + "\"";
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store_.Put("k" + std::to_string(i), value, *clock_.Next()).ok());
  }
  Answer read;
  server_->Read(ShardRead{*clock_.Next(), {}, KeyRange::All(), 100}, read.Respond());
  const ScanResult& scan = *std::get<ShardReadReply>(*read.reply).scan;
  EXPECT_TRUE(scan.more);
  EXPECT_EQ(scan.items.size(), kMaxPeerMessageBytes / value.size());
  EXPECT_EQ(scan.items.back().key, "k" + std::to_string(scan.items.size() - 1));
}

TEST_F(ShardServerTest, PrimaryFinishesACommitItsCoordinatorAbandoned) {
  ShardServerOptions options = Options();
  options.heartbeat_timeout = milliseconds(2);
  options.rpc_timeout = milliseconds(2);
  Open(options);
  const TxnId txn = NewTxn();
  Answer prepared_answer;
  server_->Prepare(ShardPrepare{Request(txn, {{"k", "1"}}), {0, 1}}, Now(),
                   prepared_answer.Respond());
  const Timestamp prepared = std::get<PrepareReply>(*prepared_answer.reply).prepare_timestamp;
  Answer committed;
  server_->Record(RecordCall{RecordOp::kCommit, txn, prepared}, committed.Respond());
  // The coordinator says nothing more. Once the record is old enough
  // (by the wall clock), the primary resolves both participants itself.
  std::this_thread::sleep_for(milliseconds(20));
  Advance(milliseconds(1));
  std::vector<CapturingTransport::Sent> resolves;
  for (const auto& sent : transport_.sent) {
    if (std::holds_alternative<ShardResolve>(sent.request)) resolves.push_back(sent);
  }
  ASSERT_EQ(resolves.size(), 2u);
  EXPECT_EQ(resolves[0].dest, "n0");
  EXPECT_EQ(resolves[1].dest, "n1");
  EXPECT_EQ(std::get<ShardResolve>(resolves[0].request).outcome, TxnStatus::kCommitted);
  EXPECT_EQ(std::get<ShardResolve>(resolves[0].request).commit_timestamp, prepared);
  // Deliver the resolution to this shard, as the node would, and answer n1.
  Answer own;
  server_->Resolve(std::get<ShardResolve>(resolves[0].request), own.Respond());
  EXPECT_EQ(server_->Stats().intents.intents, 0u);
  peers_.OnReply(resolves[0].msg_id, *own.reply);
  EXPECT_EQ(server_->Stats().txn_records, 1u) << "forgotten only once every participant resolved";
  peers_.OnReply(resolves[1].msg_id, ResolveReply{});
  EXPECT_EQ(server_->Stats().txn_records, 0u);
  EXPECT_EQ(server_->Stats().commits_finished_by_primary, 1u);
}

}  // namespace shard_server_test
}  // namespace strata::cluster
