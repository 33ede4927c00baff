// The sharded cluster with every shard a Raft group, in one process: three
// members, three shards, each shard's group on all three nodes
// (replication factor 3), every member serving its replicas through
// ReplicatedShardCores over its node's RaftHost. Member messages and Raft
// batches share one in-memory network the test pumps. Transactions over
// every shard commit and read back from another node; with the node that
// leads some shards cut off, the others elect new leaders, calls find
// them (resends to other replicas, leader hints), transactions still
// commit, and once the node is back every replica holds the same state.
// A member's own replicas serve reads at what they resolved, even cut
// off (follower reads). Leases (service::ClusterLeases) are homed by the leader of their
// record's shard: one outlives its home's node cut off, and the old home
// forgets it once back. A fresh revision is complete once each shard's
// leader closed to it, without waiting for a close for idle time.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "cluster/member.h"
#include "cluster/replicated_shard_core.h"
#include "replication/raft_host.h"
#include "service/cluster_leases.h"
#include "storage_test_support.h"
#include "tests/cluster/local_cluster.h"

namespace strata::replication {
namespace replicated_cluster_test {

using cluster::Member;
using cluster::PeerReply;
using cluster::PeerRequest;
using cluster::ReplicatedShard;
using cluster::ShardId;
using std::chrono::milliseconds;

constexpr int kNodes = 3;

cluster::ReplicatedShardOptions ShardOptions(ShardId shard) {
  cluster::ReplicatedShardOptions options;
  options.shard = shard;
  options.residue = 16 + shard;  // apart from the nodes' clocks (0..2)
  return options;
}

std::string Name(raft::NodeId id) { return "n" + std::to_string(id - 1); }
raft::GroupId GroupOf(ShardId shard) { return shard + 1; }

class ReplicatedCluster {
 public:
  // `close_interval`: how often an idle shard's leader closes it
  // (ShardServerOptions); long, nothing waits for it.
  explicit ReplicatedCluster(milliseconds close_interval = milliseconds(50)) {
    std::vector<std::string> ids;
    std::vector<raft::NodeId> voters;
    for (int i = 0; i < kNodes; ++i) {
      ids.push_back("n" + std::to_string(i));
      voters.push_back(static_cast<raft::NodeId>(i + 1));
    }
    for (int i = 0; i < kNodes; ++i) {
      auto node = std::make_unique<Node>();
      node->cluster = this;
      node->name = ids[i];
      RaftHostOptions options;
      options.raft.election_ticks = 10;
      options.raft.random_seed = static_cast<uint32_t>(i + 1);
      options.log.sync = false;
      Node* raw = node.get();
      auto host = RaftHost::Open(
          voters[i], dir_.File(ids[i]), options,
          [](raft::GroupId group) {
            return std::make_unique<ReplicatedShard>(ShardOptions(group - 1));
          },
          [this, raw](raft::NodeBatch batch) {
            queue_.push_back(Message{raw->name, Name(batch.to), std::move(batch)});
          });
      if (!host.ok()) std::abort();
      node->host = std::move(*host);
      for (ShardId shard = 0; shard < kNodes; ++shard) {
        if (!node->host->CreateGroup(GroupOf(shard), voters).ok()) std::abort();
      }
      cluster::MemberOptions member_options;
      member_options.replication_factor = kNodes;
      member_options.rpc_timeout = milliseconds(3000);
      member_options.shard_server.close_interval = close_interval;
      RaftHost* h = node->host.get();
      member_options.shard_cores =
          [h](ShardId shard, cluster::HybridLogicalClock* clock,
              cluster::Timers* timers) -> Result<std::unique_ptr<cluster::ShardCore>> {
        auto* state = static_cast<ReplicatedShard*>(h->state(GroupOf(shard)));
        return std::unique_ptr<cluster::ShardCore>(std::make_unique<cluster::ReplicatedShardCore>(
            h, GroupOf(shard), state, clock, timers, milliseconds(1000),
            [](raft::NodeId id) -> std::optional<std::string> { return Name(id); }));
      };
      node->transport.node = raw;
      auto member = Member::Create(
          ids[i], ids, member_options, &node->unused_store, false, Timestamp(), &node->transport,
          [raw](const std::string& request, cluster::ShardServer::Respond respond) {
            if (!raw->serve_forward) {
              return respond(cluster::PeerError{Status::InvalidArgument("no forwards")});
            }
            raw->serve_forward(request, std::move(respond));
          },
          [](Timestamp horizon) {
            return CompactResult{horizon, 0, 0, 0};
          },
          Member::Clock::now());
      if (!member.ok()) std::abort();
      node->member = std::move(*member);
      nodes_.push_back(std::move(node));
    }
  }

  Member& member(int i) { return *nodes_[i]->member; }
  void SetForwardHandler(int i, Member::ForwardHandler handler) {
    nodes_[i]->serve_forward = std::move(handler);
  }
  RaftHost& host(int i) { return *nodes_[i]->host; }
  void Isolate(int i, bool cut) { nodes_[i]->cut = cut; }

  // The node leading `shard`'s group, -1 if none (a cut-off node's own
  // view does not count).
  int Leader(ShardId shard) {
    for (int i = 0; i < kNodes; ++i) {
      if (nodes_[i]->cut) continue;
      if (host(i).raft().group(GroupOf(shard))->role() == raft::RaftRole::kLeader) return i;
    }
    return -1;
  }

  // Runs until every shard has a leader, none of them node `not_on`.
  bool RunUntilEveryShardIsLed(int not_on = -1) {
    return RunUntil([&] {
      for (ShardId shard = 0; shard < kNodes; ++shard) {
        const int leader = Leader(shard);
        if (leader < 0 || leader == not_on) return false;
      }
      return true;
    });
  }

  // Delivers, ticks and runs timers until `done()`; false after `limit`.
  bool RunUntil(const std::function<bool()>& done, milliseconds limit = milliseconds(15000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto next_tick = std::chrono::steady_clock::now();
    while (!done()) {
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline) return false;
      if (now >= next_tick) {
        next_tick = now + milliseconds(2);
        for (auto& node : nodes_) node->host->Tick();
      }
      for (auto& node : nodes_) node->member->RunTimers(Member::Clock::now());
      for (auto& node : nodes_) {
        if (!node->host->Run().ok()) std::abort();
      }
      if (queue_.empty()) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      std::deque<Message> batch = std::move(queue_);
      queue_.clear();
      for (Message& m : batch) Deliver(std::move(m));
    }
    return true;
  }

  // Commits `value` at every key in one transaction started on `on`.
  bool Commit(int on, const std::vector<std::string>& keys, const std::string& value,
              Timestamp* at) {
    Member& m = member(on);
    m.SetNow(Member::Clock::now());
    auto begun = m.coordinator().Begin(Isolation::kSnapshot, false, std::nullopt);
    if (!begun.ok()) return false;
    for (const std::string& key : keys) {
      if (!m.coordinator().Write(begun->id, key, value).ok()) return false;
    }
    std::optional<Result<Timestamp>> committed;
    m.coordinator().Commit(begun->id, [&](Result<Timestamp> r) { committed.emplace(r); });
    if (!RunUntil([&] { return committed.has_value(); })) return false;
    if (!committed->ok()) {
      ADD_FAILURE() << "commit failed: " << committed->status().message();
      return false;
    }
    *at = **committed;
    return true;
  }

  std::vector<ReadResult> Read(int on, const std::vector<std::string>& keys) {
    member(on).SetNow(Member::Clock::now());
    Result<std::vector<ReadResult>> read =
        ReadAt(on, keys, member(on).coordinator().FreshTimestamp(), /*here_first=*/false);
    if (!read.ok()) {
      ADD_FAILURE() << "read failed: " << read.status().message();
      return {};
    }
    return *read;
  }
  // Reads `keys` at `at` from member `on` (Coordinator::ReadKeys).
  Result<std::vector<ReadResult>> ReadAt(int on, const std::vector<std::string>& keys, Timestamp at,
                                         bool here_first) {
    Member& m = member(on);
    m.SetNow(Member::Clock::now());
    std::optional<Result<std::vector<ReadResult>>> read;
    m.coordinator().ReadKeys(
        keys, at, [&](Result<std::vector<ReadResult>> r) { read.emplace(r); }, here_first);
    if (!RunUntil([&] { return read.has_value(); })) return Status::Unavailable("no answer");
    return *read;
  }

  // Every replica of every shard, as bytes: equal on every node.
  bool ReplicasAgree() {
    for (ShardId shard = 0; shard < kNodes; ++shard) {
      std::set<std::string> seen;
      for (int i = 0; i < kNodes; ++i) seen.insert(host(i).state(GroupOf(shard))->Save());
      if (seen.size() != 1) return false;
    }
    return true;
  }

 private:
  struct Node;
  struct MemberMessage {
    uint64_t id;  // a request's message id, or the id a reply answers
    Timestamp hlc;
    std::optional<ShardId> shard;
    std::variant<PeerRequest, PeerReply> body;
  };
  struct Message {
    std::string from, to;
    std::variant<MemberMessage, raft::NodeBatch> body;
  };
  struct Transport final : cluster::PeerTransport {
    Node* node = nullptr;
    uint64_t next_id = 1;
    uint64_t Send(std::string_view dest, std::optional<ShardId> shard, const PeerRequest& request,
                  Timestamp hlc) override {
      const uint64_t id = next_id++;
      node->cluster->queue_.push_back(
          Message{node->name, std::string(dest), MemberMessage{id, hlc, shard, request}});
      return id;
    }
  };
  struct Node {
    ReplicatedCluster* cluster = nullptr;
    std::string name;
    MvccStore unused_store;  // the member's own store: no shard lives in it here
    std::unique_ptr<RaftHost> host;
    Transport transport;
    std::unique_ptr<Member> member;
    Member::ForwardHandler serve_forward;
    bool cut = false;
  };
  int Index(const std::string& name) const { return std::stoi(name.substr(1)); }

  void Deliver(Message m) {
    Node& to = *nodes_[Index(m.to)];
    // A node's calls to itself cross no network: a cut-off node still
    // reaches its own replicas.
    if (m.from != m.to && (to.cut || nodes_[Index(m.from)]->cut)) return;
    if (auto* batch = std::get_if<raft::NodeBatch>(&m.body)) {
      to.host->Receive(*batch);
      return;
    }
    auto& message = std::get<MemberMessage>(m.body);
    to.member->SetNow(Member::Clock::now());
    if (auto* request = std::get_if<PeerRequest>(&message.body)) {
      const std::string from = m.from, self = m.to;
      const uint64_t id = message.id;
      to.member->OnRequest(
          from, message.hlc, message.shard, std::move(*request),
          [this, from, self, id](PeerReply reply) {
            queue_.push_back(Message{self, from,
                                     MemberMessage{id, member(Index(self)).LastTimestamp(),
                                                   std::nullopt, std::move(reply)}});
          });
    } else {
      to.member->OnReply(message.hlc, message.id, std::get<PeerReply>(message.body));
    }
  }

  storage_testing::TempDir dir_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::deque<Message> queue_;
};

TEST(ReplicatedClusterTest, TransactionsOverReplicatedShardsCommitAndSurviveALeadersNode) {
  ReplicatedCluster c;
  ASSERT_TRUE(c.RunUntilEveryShardIsLed()) << "no leader for every shard";
  const std::vector<std::string> keys = cluster::KeysOnEveryShard(c.member(0).map());

  Timestamp first;
  ASSERT_TRUE(c.Commit(0, keys, "v1", &first));
  std::vector<ReadResult> read = c.Read(2, keys);
  ASSERT_EQ(read.size(), keys.size());
  for (const ReadResult& r : read) {
    EXPECT_TRUE(r.found);
    EXPECT_EQ(r.value, "v1");
    EXPECT_EQ(r.timestamp, first);
  }

  // Cut off the node leading shard 0's group: the others elect a leader
  // of their own, and a transaction over every shard commits all the same.
  const int gone = c.Leader(0);
  ASSERT_GE(gone, 0);
  c.Isolate(gone, true);
  const int survivor = (gone + 1) % kNodes;
  ASSERT_TRUE(c.RunUntilEveryShardIsLed(gone)) << "no new leaders";
  const uint64_t resends_before = c.member(survivor).rpc().resends();
  Timestamp second;
  ASSERT_TRUE(c.Commit(survivor, keys, "v2", &second));
  EXPECT_GT(second, first);
  // Its calls for the cut-off node's own shard went on to other replicas.
  EXPECT_GT(c.member(survivor).rpc().resends(), resends_before);
  read = c.Read((survivor + 1) % kNodes == gone ? survivor : (survivor + 1) % kNodes, keys);
  ASSERT_EQ(read.size(), keys.size());
  for (const ReadResult& r : read) EXPECT_EQ(r.value, "v2");

  // Back: it catches up, and every replica of every shard is the same.
  c.Isolate(gone, false);
  EXPECT_TRUE(c.RunUntil([&] { return c.ReplicasAgree(); })) << "replicas differ";
  read = c.Read(gone, keys);
  ASSERT_EQ(read.size(), keys.size());
  for (const ReadResult& r : read) EXPECT_EQ(r.value, "v2");

  // A compaction of each shard (at most the low-water mark) is a command
  // of its group: every replica collects below the same horizon. The
  // member that takes it (the shard's leader, any of them) caps it at the
  // mark it knows, so every member's must have passed the commit (a member
  // hears the others' reports in turn: under ASan in a fresh make test one
  // was 150 ms behind member 0's).
  ASSERT_TRUE(c.RunUntil([&] {
    for (int i = 0; i < kNodes; ++i) {
      auto mark = c.member(i).LowWaterMark();
      if (!mark.has_value() || *mark < second) return false;
    }
    return true;
  })) << "the low-water mark did not pass the last commit on every member";
  for (ShardId shard = 0; shard < kNodes; ++shard) {
    std::optional<PeerReply> compacted;
    c.member(0).OnRequest("n0", std::nullopt, shard, cluster::RawCompact{second},
                          [&](PeerReply reply) { compacted = std::move(reply); });
    ASSERT_TRUE(c.RunUntil([&] { return compacted.has_value(); }));
    // Sent to a replica that does not lead: the answer names the leader.
    if (auto* error = std::get_if<cluster::PeerError>(&*compacted)) {
      ASSERT_TRUE(error->leader.has_value()) << error->status.message();
      const int leader = std::stoi(error->leader->substr(1));
      compacted.reset();
      c.member(leader).OnRequest("n0", std::nullopt, shard, cluster::RawCompact{second},
                                 [&](PeerReply reply) { compacted = std::move(reply); });
      ASSERT_TRUE(c.RunUntil([&] { return compacted.has_value(); }));
    }
    ASSERT_TRUE(std::holds_alternative<cluster::RawCompactReply>(*compacted));
    EXPECT_EQ(std::get<cluster::RawCompactReply>(*compacted).compacted.horizon, second);
  }
  EXPECT_TRUE(c.RunUntil([&] { return c.ReplicasAgree(); }));
  for (int i = 0; i < kNodes; ++i) {
    for (ShardId shard = 0; shard < kNodes; ++shard) {
      const auto* state = static_cast<const ReplicatedShard*>(c.host(i).state(GroupOf(shard)));
      EXPECT_EQ(state->store().compaction_horizon(), second) << i << "/" << shard;
    }
  }
}

// Follower reads (Coordinator::ReadHereFirst, Member::ResolvedHere): a
// read at what a member's replicas of every shard have resolved is served
// by them, with no leader asked, even while the member is cut off; one
// above it goes on to the leaders.
TEST(ReplicatedClusterTest, AReadAtWhatTheReplicasHereResolvedIsServedThereEvenCutOff) {
  ReplicatedCluster c;
  ASSERT_TRUE(c.RunUntilEveryShardIsLed()) << "no leader for every shard";
  const std::vector<std::string> keys = cluster::KeysOnEveryShard(c.member(0).map());
  Timestamp first;
  ASSERT_TRUE(c.Commit(0, keys, "v1", &first));
  const int reader = 1;
  Member& m = c.member(reader);
  const cluster::Peers& peers = m.peers();

  // Fresher than its replicas: each shard's read passed to the leader
  // (unless this member leads the shard), which closes and serves it.
  const uint64_t passed_before = peers.reads_passed_on();
  m.SetNow(Member::Clock::now());
  Result<std::vector<ReadResult>> read =
      c.ReadAt(reader, keys, m.coordinator().FreshTimestamp(), /*here_first=*/true);
  ASSERT_TRUE(read.ok()) << read.status().message();
  for (const ReadResult& r : *read) EXPECT_EQ(r.value, "v1");
  int led_elsewhere = 0;
  for (ShardId shard = 0; shard < kNodes; ++shard) led_elsewhere += c.Leader(shard) != reader;
  EXPECT_EQ(peers.reads_passed_on() - passed_before, static_cast<uint64_t>(led_elsewhere));

  // Cut off once its replicas resolved the first commit; the others elect
  // leaders among themselves and commit v2, which it cannot learn of.
  ASSERT_TRUE(c.RunUntil([&] {
    const std::optional<Timestamp> resolved = m.ResolvedHere();
    return resolved && *resolved >= first;
  })) << "the replicas here never resolved the commit";
  c.Isolate(reader, true);
  ASSERT_TRUE(c.RunUntilEveryShardIsLed(reader)) << "no new leaders";
  Timestamp second;
  ASSERT_TRUE(c.Commit(0, keys, "v2", &second));
  const std::optional<Timestamp> resolved = m.ResolvedHere();
  ASSERT_TRUE(resolved.has_value());
  EXPECT_GE(*resolved, first);
  EXPECT_LT(*resolved, second);
  const uint64_t here_before = peers.reads_here();
  const uint64_t passed = peers.reads_passed_on();
  read = c.ReadAt(reader, keys, *resolved, /*here_first=*/true);
  ASSERT_TRUE(read.ok()) << read.status().message();
  for (const ReadResult& r : *read) {
    EXPECT_EQ(r.value, "v1");
    EXPECT_EQ(r.timestamp, first);
  }
  EXPECT_EQ(peers.reads_here() - here_before, static_cast<uint64_t>(kNodes)) << "one a shard";
  EXPECT_EQ(peers.reads_passed_on(), passed);
  c.Isolate(reader, false);
}

// A fresh revision is complete for the whole key space once each shard's
// leader closed its shard to it: the frontier's probe asks for the close,
// so an idle cluster answers in a round or two instead of waiting, a round
// every millisecond, for each shard's next close for idle time (50 ms by
// default; here a minute, so nothing is answered by one).
TEST(ReplicatedClusterTest, AFreshRevisionIsCompleteOnceEachLeaderClosesToIt) {
  ReplicatedCluster c(milliseconds(60000));
  ASSERT_TRUE(c.RunUntilEveryShardIsLed()) << "no leader for every shard";
  const std::vector<std::string> keys = cluster::KeysOnEveryShard(c.member(0).map());
  Timestamp first;
  ASSERT_TRUE(c.Commit(0, keys, "v1", &first));
  for (int i = 0; i < 5; ++i) {
    Member& m = c.member(1);
    m.SetNow(Member::Clock::now());
    const Timestamp fresh = m.coordinator().FreshTimestamp();
    const uint64_t rounds_before = m.resolved_frontier().stats().rounds;
    std::optional<Status> complete;
    m.resolved_frontier().WaitFor(fresh, [&](Status s) { complete = s; });
    ASSERT_TRUE(c.RunUntil([&] { return complete.has_value(); }));
    ASSERT_TRUE(complete->ok()) << complete->message();
    EXPECT_GE(m.resolved_frontier().known(), fresh);
    EXPECT_LE(m.resolved_frontier().stats().rounds - rounds_before, 2u) << "wait " << i;
  }
}

TEST(ReplicatedClusterTest, ALeaseOutlivesItsHomesNodeAndTheOldHomeForgetsIt) {
  ReplicatedCluster c;
  ASSERT_TRUE(c.RunUntilEveryShardIsLed()) << "no leader for every shard";
  service::ClusterLeasesOptions options;
  options.expiry_check = milliseconds(20);
  options.discover_interval = milliseconds(50);
  std::vector<std::unique_ptr<service::ClusterLeases>> leases;
  for (int i = 0; i < kNodes; ++i) {
    leases.push_back(std::make_unique<service::ClusterLeases>(&c.member(i), options));
    service::ClusterLeases* mine = leases.back().get();
    c.SetForwardHandler(i, [mine](const std::string& request, cluster::ShardServer::Respond r) {
      mine->ServeForward(request, std::move(r));
    });
  }
  auto keep_alive = [&](int on, int64_t id) {
    std::optional<service::Reply<int64_t>> ttl;
    leases[on]->KeepAlive(id, [&](service::Reply<int64_t> r) { ttl.emplace(std::move(r)); });
    if (!c.RunUntil([&] { return ttl.has_value(); })) return int64_t{-2};
    return ttl->ok() ? ttl->value() : int64_t{-1};
  };

  constexpr int64_t kLease = 7;
  std::optional<service::Reply<service::LeaseGrantResult>> granted;
  leases[0]->Grant(kLease, 30, [&](auto r) { granted.emplace(std::move(r)); });
  ASSERT_TRUE(c.RunUntil([&] { return granted.has_value(); }));
  ASSERT_TRUE(granted->ok()) << granted->error().message;
  const ShardId shard = c.member(0).map().ShardFor(service::ClusterLeases::RecordKey(kLease)).id;
  const int home = c.Leader(shard);
  ASSERT_GE(home, 0);
  // Homed by its shard's leader alone, whichever member granted it.
  ASSERT_TRUE(c.RunUntil([&] { return leases[home]->homed() == 1; }));
  for (int i = 0; i < kNodes; ++i) {
    if (i != home) {
      EXPECT_EQ(leases[i]->homed(), 0u) << i;
    }
  }

  // The home's node cut off: the shard's new leader homes the lease, and
  // a keep-alive through a survivor renews it.
  c.Isolate(home, true);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader(shard) >= 0 && c.Leader(shard) != home; }));
  const int next_home = c.Leader(shard);
  const int survivor = (home + 1) % kNodes == next_home ? (home + 2) % kNodes : (home + 1) % kNodes;
  EXPECT_EQ(keep_alive(survivor, kLease), 30);
  EXPECT_EQ(leases[next_home]->homed(), 1u);

  // Back, the old home is led elsewhere: it forgets the lease (the new
  // home keeps its countdown), which lives on.
  c.Isolate(home, false);
  EXPECT_TRUE(c.RunUntil([&] { return leases[home]->homed() == 0; }))
      << "the old home still counts down a lease it no longer homes";
  EXPECT_EQ(keep_alive(home, kLease), 30);
  EXPECT_EQ(leases[c.Leader(shard)]->homed(), 1u);
}

}  // namespace replicated_cluster_test
}  // namespace strata::replication
