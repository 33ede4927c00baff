// A ShardServer over a ReplicatedShardCore: the shard's server as it runs
// on a member of the shard's Raft group. Changes are answered once the
// group applied them; reads close the shard at their snapshot only when
// its clock is behind; a follower serves reads at what its replica has
// closed and sends the rest to the leader, named (a write's read at the
// closed time too, which the leader serves without a close); and a transaction prepared under one
// leader is neither lost nor left stranded when that leader dies: the next leader's push aborts it
// once its coordinator stays silent for a heartbeat timeout, and the read it held is served.
#include "cluster/replicated_shard_core.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/peers.h"
#include "cluster/shard_server.h"
#include "host_cluster.h"

namespace strata::replication {
namespace replicated_shard_core_test {

using cluster::PeerError;
using cluster::PeerReply;
using cluster::PeerRequest;
using cluster::PrepareReply;
using cluster::PrepareRequest;
using cluster::RecordCall;
using cluster::RecordOp;
using cluster::RecordReply;
using cluster::ReplicatedShard;
using cluster::ReplicatedShardCore;
using cluster::ShardPrepare;
using cluster::ShardRead;
using cluster::ShardReadReply;
using cluster::ShardResolve;
using cluster::ShardServer;
using cluster::TxnId;
using cluster::TxnStatus;
using HLC = cluster::HybridLogicalClock;
using std::chrono::milliseconds;

cluster::ReplicatedShardOptions ShardOptions() {
  cluster::ReplicatedShardOptions options;
  options.residue = 1;
  return options;
}

std::string Fingerprint(const ReplicatedState* state) {
  const auto& shard = *static_cast<const ReplicatedShard*>(state);
  return shard.closed() == Timestamp() ? "" : shard.Save();
}

// Calls a server makes to shard 0 go to the server of the node given, in
// the test's own time (Pump): pushes reach the shard's leader.
class LoopbackTransport final : public cluster::PeerTransport {
 public:
  uint64_t Send(std::string_view, std::optional<cluster::ShardId>, const PeerRequest& request,
                Timestamp) override {
    queued.emplace_back(next_id, request);
    return next_id++;
  }
  std::deque<std::pair<uint64_t, PeerRequest>> queued;
  uint64_t next_id = 1;
};

// One member's side: its server over its replica, its clock, timers and
// peers (one shard, served by "n").
struct MemberSide {
  MemberSide(RaftHost* host, ReplicatedShard* shard)
      : map(*cluster::ShardMap::OnePerNode({"n"})),
        peers("n", {"n"}, &map, &clock, &transport, &timers, milliseconds(5000)) {
    timers.SetNow(std::chrono::steady_clock::time_point() + std::chrono::hours(1));
    auto owned = std::make_unique<ReplicatedShardCore>(
        host, 1, shard, &clock, &timers, milliseconds(1000),
        [](raft::NodeId id) -> std::optional<std::string> { return "m" + std::to_string(id); });
    core = owned.get();
    cluster::ShardServerOptions options;
    options.heartbeat_timeout = milliseconds(1000);
    options.push_after = milliseconds(20);
    options.read_wait = milliseconds(5000);
    server = std::make_unique<ShardServer>(0, 1, std::move(owned), &peers, &timers, options);
    server->Start();
  }

  HLC clock;
  cluster::Timers timers;
  LoopbackTransport transport;
  cluster::ShardMap map;
  cluster::Peers peers;
  ReplicatedShardCore* core = nullptr;
  std::unique_ptr<ShardServer> server;
};

struct Answer {
  std::optional<PeerReply> reply;
  ShardServer::Respond Respond() {
    return [this](PeerReply r) { reply = std::move(r); };
  }
};

class ReplicatedShardCoreTest : public ::testing::Test {
 protected:
  void StartCluster(int nodes) {
    cluster_ = std::make_unique<HostCluster>(
        nodes, 1, 7, [](GroupId) { return std::make_unique<ReplicatedShard>(ShardOptions()); },
        Fingerprint, [](HostCluster&, NodeId, GroupId) {});
    cluster_->Settle(100);
    for (NodeId id = 1; id <= static_cast<NodeId>(nodes); ++id) {
      auto* shard = static_cast<ReplicatedShard*>(cluster_->host(id)->state(1));
      sides_[id] = std::make_unique<MemberSide>(cluster_->host(id), shard);
    }
  }

  NodeId Leader() {
    for (const auto& [id, host] : cluster_->hosts()) {
      if (host && host->raft().group(1)->role() == RaftRole::kLeader) return id;
    }
    return 0;
  }

  // The hosts' rounds and the network, then the calls servers made to
  // shard 0, answered by `to`'s server.
  void Pump(NodeId to) {
    cluster_->Settle(3, restart_);
    MemberSide& side = *sides_.at(to);
    while (!side.transport.queued.empty()) {
      auto [id, request] = std::move(side.transport.queued.front());
      side.transport.queued.pop_front();
      const auto* call = std::get_if<RecordCall>(&request);
      ASSERT_NE(call, nullptr) << "a server called something other than a record";
      side.server->Record(*call,
                          [&side, id = id](PeerReply reply) { side.peers.OnReply(id, reply); });
      cluster_->Settle(3, restart_);
    }
  }

  PrepareRequest Request(TxnId txn, std::string key, std::string value) {
    PrepareRequest request;
    request.txn = txn;
    request.start = Timestamp();
    request.isolation = Isolation::kSnapshot;
    request.primary = 0;
    request.writes = {{std::move(key), std::move(value)}};
    return request;
  }

  static Timestamp Now() { return HLC::Make(HLC::SystemMillis(), 0); }

  std::unique_ptr<HostCluster> cluster_;
  std::map<NodeId, std::unique_ptr<MemberSide>> sides_;
  bool restart_ = true;  // Pump restarts crashed nodes
};

TEST_F(ReplicatedShardCoreTest, ChangesAreAnsweredOnceAppliedAndReadsCloseOnlyWhenBehind) {
  StartCluster(1);
  ASSERT_EQ(Leader(), 1u);
  MemberSide& side = *sides_[1];
  const TxnId txn{Now().value(), 5};
  Answer prepared;
  side.server->Prepare(ShardPrepare{Request(txn, "k", "v"), {0}}, Now(), prepared.Respond());
  EXPECT_FALSE(prepared.reply) << "answered before the group applied it";
  Pump(1);
  ASSERT_TRUE(prepared.reply && std::holds_alternative<PrepareReply>(*prepared.reply));
  const Timestamp at = std::get<PrepareReply>(*prepared.reply).prepare_timestamp;
  EXPECT_EQ(at.value() % HLC::kMaxNodes, 1u);  // the shard clock's residue

  // At the prepare's own timestamp the shard is closed already; the
  // intent holds the read until the resolution applies.
  Answer read;
  side.server->Read(ShardRead{at, {"k"}, std::nullopt, 0}, read.Respond());
  EXPECT_FALSE(read.reply);
  EXPECT_EQ(side.core->stats().closes_proposed, 0u);
  Answer resolved;
  side.server->Resolve(ShardResolve{txn, TxnStatus::kCommitted, at}, resolved.Respond());
  Pump(1);
  ASSERT_TRUE(resolved.reply && std::holds_alternative<cluster::ResolveReply>(*resolved.reply));
  ASSERT_TRUE(read.reply && std::holds_alternative<ShardReadReply>(*read.reply));
  EXPECT_EQ(std::get<ShardReadReply>(*read.reply).reads[0].value, "v");

  // Above the shard's clock, reads wait for one close; a lower one rides
  // along, and one at or below what is closed is served at once.
  const Timestamp later = HLC::Make(HLC::SystemMillis() + 20, 0);
  ASSERT_LT(side.core->LastTimestamp(), Timestamp(later.value() - 1));
  Answer high, low;
  side.server->Read(ShardRead{later, {"k"}, std::nullopt, 0}, high.Respond());
  side.server->Read(ShardRead{Timestamp(later.value() - 1), {"k"}, std::nullopt, 0}, low.Respond());
  EXPECT_FALSE(high.reply || low.reply);
  Pump(1);
  ASSERT_TRUE(high.reply && low.reply);
  EXPECT_EQ(side.core->stats().closes_proposed, 1u);
  EXPECT_GE(side.core->LastTimestamp(), later);
  Answer again;
  side.server->Read(ShardRead{later, {"k"}, std::nullopt, 0}, again.Respond());
  ASSERT_TRUE(again.reply && std::holds_alternative<ShardReadReply>(*again.reply));
  EXPECT_EQ(side.core->stats().closes_proposed, 1u);

  // Twenty reads at rising snapshots, all before the group answers: the
  // first's close goes out at once, the nineteen that came while it was in
  // flight share the next (at this node's clock, past them all).
  std::vector<Answer> rising(20);
  const uint64_t base_ms = HLC::SystemMillis() + 40;
  for (size_t i = 0; i < rising.size(); ++i) {
    side.server->Read(ShardRead{HLC::Make(base_ms, i), {"k"}, std::nullopt, 0},
                      rising[i].Respond());
  }
  Pump(1);
  for (const Answer& answer : rising) {
    ASSERT_TRUE(answer.reply && std::holds_alternative<ShardReadReply>(*answer.reply));
  }
  EXPECT_EQ(side.core->stats().closes_proposed, 1u + 2u);

  // A snapshot far ahead of this node's clock is refused, not closed at.
  Answer future;
  side.server->Read(ShardRead{HLC::Make(HLC::SystemMillis() + 60'000, 0), {"k"}, std::nullopt, 0},
                    future.Respond());
  ASSERT_TRUE(future.reply && std::holds_alternative<PeerError>(*future.reply));
  EXPECT_EQ(std::get<PeerError>(*future.reply).status.code(), StatusCode::kUnavailable);
}

TEST_F(ReplicatedShardCoreTest, AFollowerServesWhatItsReplicaClosedAndSendsTheRestToItsLeader) {
  StartCluster(3);
  const NodeId leader = Leader();
  ASSERT_NE(leader, 0u);
  const NodeId follower = leader % 3 + 1;
  const TxnId txn{Now().value(), 5};
  Answer prepared;
  sides_[leader]->server->Prepare(ShardPrepare{Request(txn, "k", "v"), {0}}, Now(),
                                  prepared.Respond());
  Pump(leader);
  ASSERT_TRUE(prepared.reply && std::holds_alternative<PrepareReply>(*prepared.reply));
  const Timestamp at = std::get<PrepareReply>(*prepared.reply).prepare_timestamp;
  Answer resolved;
  sides_[leader]->server->Resolve(ShardResolve{txn, TxnStatus::kCommitted, at}, resolved.Respond());
  Pump(leader);
  ASSERT_TRUE(resolved.reply);
  cluster_->Settle(20);

  MemberSide& side = *sides_[follower];
  Answer read;
  side.server->Read(ShardRead{at, {"k"}, std::nullopt, 0}, read.Respond());
  ASSERT_TRUE(read.reply && std::holds_alternative<ShardReadReply>(*read.reply));
  EXPECT_EQ(std::get<ShardReadReply>(*read.reply).reads[0].value, "v");
  Answer above, change;
  side.server->Read(ShardRead{*side.clock.Next(), {"k"}, std::nullopt, 0}, above.Respond());
  side.server->Prepare(ShardPrepare{Request(TxnId{Now().value(), 6}, "j", "w"), {0}}, Now(),
                       change.Respond());
  Pump(follower);
  // Both are sent to the leader, named (Peers resends there).
  const std::string leader_name = "m" + std::to_string(leader);
  for (const Answer* refused : {&above, &change}) {
    ASSERT_TRUE(refused->reply && std::holds_alternative<PeerError>(*refused->reply));
    const PeerError& error = std::get<PeerError>(*refused->reply);
    EXPECT_EQ(error.status.code(), StatusCode::kUnavailable);
    EXPECT_EQ(error.leader, leader_name);
  }
  EXPECT_EQ(side.core->LeaderElsewhere(), leader_name);
  EXPECT_EQ(sides_[leader]->core->LeaderElsewhere(), std::nullopt);

  // A write's read at the shard's closed time (ShardRead::at_closed): the
  // follower serves it at its own if that is at least the floor asked, and
  // else sends it to the leader, which serves it at once at the time it
  // closed, with no close through the log.
  ShardRead newest{Timestamp(), {"k"}, std::nullopt, 0};
  newest.at_closed = true;
  Answer here;
  side.server->Read(newest, here.Respond());
  ASSERT_TRUE(here.reply && std::holds_alternative<ShardReadReply>(*here.reply));
  EXPECT_EQ(std::get<ShardReadReply>(*here.reply).snapshot, side.core->LastTimestamp());
  EXPECT_EQ(std::get<ShardReadReply>(*here.reply).reads[0].value, "v");
  newest.snapshot = Timestamp(side.core->LastTimestamp().value() + 1);
  Answer passed_on, served;
  side.server->Read(newest, passed_on.Respond());
  ASSERT_TRUE(passed_on.reply && std::holds_alternative<PeerError>(*passed_on.reply));
  EXPECT_EQ(std::get<PeerError>(*passed_on.reply).leader, leader_name);
  MemberSide& lead = *sides_[leader];
  const uint64_t closes = lead.core->stats().closes_proposed;
  newest.snapshot = Timestamp::Max();
  lead.server->Read(newest, served.Respond());
  ASSERT_TRUE(served.reply && std::holds_alternative<ShardReadReply>(*served.reply));
  const auto& reply = std::get<ShardReadReply>(*served.reply);
  EXPECT_EQ(reply.snapshot, lead.core->LastTimestamp());
  EXPECT_GE(reply.snapshot, at);
  EXPECT_EQ(reply.reads[0].value, "v");
  EXPECT_EQ(lead.core->stats().closes_proposed, closes);
}

// An idle shard's time moves by the leader's closes, on every replica;
// its watch frontier never runs ahead of what it closed (a command may
// still take a time its proposer read earlier than the wall clock now).
TEST_F(ReplicatedShardCoreTest, AnIdleShardsTimeMovesByTheLeadersClosesOnEveryReplica) {
  StartCluster(3);
  const NodeId leader = Leader();
  ASSERT_NE(leader, 0u);
  const NodeId follower = leader % 3 + 1;
  const Timestamp before = sides_[follower]->core->LastTimestamp();
  std::this_thread::sleep_for(milliseconds(30));
  const Timestamp wall = HLC::Make(HLC::SystemMillis(), 0);
  for (auto& [id, side] : sides_) side->timers.RunDue(side->timers.now() + milliseconds(60));
  cluster_->Settle(20);
  EXPECT_GE(sides_[leader]->core->stats().idle_closes, 1u);
  EXPECT_EQ(sides_[follower]->core->stats().idle_closes, 0u);
  EXPECT_GE(sides_[follower]->core->LastTimestamp(), wall);
  EXPECT_GT(sides_[follower]->core->LastTimestamp(), before);
  for (auto& [id, side] : sides_) {
    EXPECT_LE(side->server->WatchFrontier(), side->core->LastTimestamp()) << "node " << id;
    EXPECT_EQ(side->server->WatchFrontier(), side->server->SafeTime()) << "node " << id;
  }
}

TEST_F(ReplicatedShardCoreTest, APreparedTransactionOutlivesItsLeaderAndIsSettledByTheNext) {
  StartCluster(3);
  const NodeId first = Leader();
  ASSERT_NE(first, 0u);
  const TxnId txn{Now().value(), 5};
  Answer prepared;
  sides_[first]->server->Prepare(ShardPrepare{Request(txn, "k", "v"), {0}}, Now(),
                                 prepared.Respond());
  Pump(first);
  ASSERT_TRUE(prepared.reply && std::holds_alternative<PrepareReply>(*prepared.reply));
  const Timestamp at = std::get<PrepareReply>(*prepared.reply).prepare_timestamp;
  cluster_->Settle(20);

  // The leader dies (its process with it); the coordinator is silent.
  sides_.erase(first);
  cluster_->Crash(first);
  restart_ = false;
  NodeId next = 0;
  for (int round = 0; round < 50 && next == 0; ++round) {
    cluster_->Settle(10, /*restart=*/false);
    next = Leader();
  }
  ASSERT_NE(next, 0u);
  ASSERT_NE(next, first);
  MemberSide& side = *sides_[next];
  EXPECT_EQ(side.core->participant().PrimaryOf(txn), 0u) << "the prepare was lost";
  EXPECT_EQ(side.core->records().Find(txn)->status, TxnStatus::kPending);

  // A read at the prepare waits; pushes find the record PENDING until the
  // coordinator has been silent here for a heartbeat timeout.
  Answer read;
  side.server->Read(ShardRead{at, {"k"}, std::nullopt, 0}, read.Respond());
  Pump(next);
  EXPECT_FALSE(read.reply);
  for (int i = 0; i < 10; ++i) {
    side.timers.RunDue(side.timers.now() + milliseconds(50));
    Pump(next);
  }
  EXPECT_FALSE(read.reply) << "pushed aside within the new leader's grace";
  for (int i = 0; i < 30 && !read.reply; ++i) {
    side.timers.RunDue(side.timers.now() + milliseconds(50));
    Pump(next);
  }
  ASSERT_TRUE(read.reply && std::holds_alternative<ShardReadReply>(*read.reply));
  EXPECT_FALSE(std::get<ShardReadReply>(*read.reply).reads[0].found);
  EXPECT_EQ(side.core->stats().pushes_aborted, 1u);

  // Every replica (the old leader's, restarted, too) agrees: aborted, no
  // intent left.
  sides_.clear();  // the cores point into hosts Heal may restart
  cluster_->Heal();
  for (const auto& [id, host] : cluster_->hosts()) {
    const auto& shard = *static_cast<const ReplicatedShard*>(host->state(1));
    EXPECT_EQ(shard.records().Find(txn)->status, TxnStatus::kAborted) << "node " << id;
    EXPECT_FALSE(shard.participant().PrimaryOf(txn).has_value()) << "node " << id;
  }
}

}  // namespace replicated_shard_core_test
}  // namespace strata::replication
