// Three cluster members in one process, each on its own loop thread and
// linked by real gRPC streams on loopback (ClusterRuntime, PeerNetwork):
// a transaction that writes every shard commits by two-phase commit over
// the network and is read back from another node; a raw scan fans out and
// merges; a node whose server goes away makes calls to its shard fail in
// time, and once it listens again the links reconnect by themselves. With
// replicated shards (each a Raft group of the three), a transaction over
// every shard commits with nothing in the nodes' own stores, and again
// after one node is gone; a shard's replica moves to another node.
#include "server/cluster_runtime.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/replicated_shard.h"
#include "replication/incarnations.h"
#include "storage_test_support.h"

namespace strata::server {
namespace {

using std::chrono::milliseconds;

class ClusterRuntimeTest : public ::testing::Test {
 protected:
  static constexpr int kNodes = 3;

  void SetUp() override {
    for (int i = 0; i < kNodes; ++i) Start(i, "127.0.0.1:0");
    for (auto& runtime : runtimes_) runtime->ConnectPeers(addresses_);
  }

  // Starts node i's runtime and its peer server on `address`.
  void Start(int i, const std::string& address) {
    std::vector<std::string> names;
    for (int n = 0; n < kNodes; ++n) names.push_back("n" + std::to_string(n));
    ClusterRuntimeOptions options;
    options.self = names[i];
    options.node_ids = names;
    options.member.rpc_timeout = milliseconds(500);
    options.network.max_backoff = milliseconds(100);
    options.max_queued_from_peers = 50;
    options.member.replication_factor = ReplicationFactor();
    options.log = [i](const std::string& line) { fprintf(stderr, "n%d: %s\n", i, line.c_str()); };
    if (ReplicationFactor() > 1) {
      options.raft_dir = dir_.File(names[i]);
      options.raft_tick = milliseconds(5);
      options.balance_interval = milliseconds(50);
      options.member.rpc_timeout = milliseconds(3000);
      options.max_queued_from_peers = 100000;
    }
    Result<std::unique_ptr<ClusterRuntime>> runtime = ClusterRuntime::Start(options, &stores_[i]);
    ASSERT_TRUE(runtime.ok()) << runtime.status().message();
    runtimes_[i] = std::move(*runtime);
    Listen(i, address);
  }

  void TearDown() override {
    // The servers first: nothing may arrive at a runtime being destroyed.
    for (int i = 0; i < kNodes; ++i) StopServer(i);
    for (auto& runtime : runtimes_) runtime.reset();
  }

  // Peers' streams never end by themselves: they are cancelled at once.
  void StopServer(int i) {
    if (!servers_[i]) return;
    servers_[i]->Shutdown(std::chrono::system_clock::now());
    servers_[i].reset();
  }

  void Listen(int i, const std::string& address) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
    runtimes_[i]->ConfigureServer(&builder);
    servers_[i] = builder.BuildAndStart();
    ASSERT_NE(servers_[i], nullptr);
    ASSERT_NE(port, 0);
    addresses_["n" + std::to_string(i)] = "127.0.0.1:" + std::to_string(port);
  }

  // Runs `start` on node i's loop; waits for the result it hands `done`.
  template <typename T>
  T On(int i, std::function<void(cluster::Member&, std::function<void(T)>)> start) {
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> result = promise->get_future();
    runtimes_[i]->Post([start, promise](cluster::Member& member) {
      start(member, [promise](T value) { promise->set_value(std::move(value)); });
    });
    EXPECT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return result.get();
  }

  // A key owned by each shard.
  std::vector<std::string> KeysOnEveryShard() {
    const cluster::ShardMap map = *cluster::ShardMap::OnePerNode({"n0", "n1", "n2"});
    std::vector<std::string> keys(kNodes);
    for (int i = 0, found = 0; found < kNodes; ++i) {
      const std::string key = "key" + std::to_string(i);
      std::string& slot = keys[map.ShardFor(key).id];
      if (slot.empty()) slot = key, ++found;
    }
    return keys;
  }

  Result<std::vector<ReadResult>> ReadAll(int node, const std::vector<std::string>& keys) {
    return On<Result<std::vector<ReadResult>>>(node, [keys](cluster::Member& member, auto done) {
      cluster::Coordinator& coordinator = member.coordinator();
      const Timestamp snapshot = coordinator.HoldSnapshot();
      coordinator.ReadKeys(keys, snapshot,
                           [&coordinator, snapshot, done](Result<std::vector<ReadResult>> reads) {
                             coordinator.ReleaseSnapshot(snapshot);
                             done(std::move(reads));
                           });
    });
  }

  virtual uint32_t ReplicationFactor() const { return 1; }

  storage_testing::TempDir dir_;
  MvccStore stores_[kNodes];
  std::unique_ptr<ClusterRuntime> runtimes_[kNodes];
  std::unique_ptr<grpc::Server> servers_[kNodes];
  std::map<std::string, std::string> addresses_;
};

TEST_F(ClusterRuntimeTest, ATransactionOverEveryShardCommitsAcrossTheNetwork) {
  const std::vector<std::string> keys = KeysOnEveryShard();
  const Result<Timestamp> committed =
      On<Result<Timestamp>>(0, [keys](cluster::Member& member, auto done) {
        cluster::Coordinator& coordinator = member.coordinator();
        Result<cluster::Coordinator::Begun> begun =
            coordinator.Begin(Isolation::kSerializable, false, std::nullopt);
        if (!begun.ok()) return done(begun.status());
        for (const std::string& key : keys) {
          if (Status s = coordinator.Write(begun->id, key, "\"" + key + "\""); !s.ok()) {
            return done(s);
          }
        }
        coordinator.Commit(begun->id, done);
      });
  ASSERT_TRUE(committed.ok()) << committed.status().message();

  const Result<std::vector<ReadResult>> reads = ReadAll(2, keys);
  ASSERT_TRUE(reads.ok()) << reads.status().message();
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_TRUE((*reads)[i].found) << keys[i];
    EXPECT_EQ((*reads)[i].value, "\"" + keys[i] + "\"");
    EXPECT_EQ((*reads)[i].timestamp, *committed) << "one commit timestamp on every shard";
  }
  // Each shard holds its own key only.
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(stores_[i].GetStats().versions, 1u) << i;
  EXPECT_GT(runtimes_[0]->NetworkStats().sent, 0u);
  EXPECT_GT(runtimes_[1]->NetworkStats().received, 0u);
  EXPECT_EQ(runtimes_[0]->NetworkStats().dropped, 0u);

  // A scan from node 1 fans out and merges in key order.
  const Result<ScanResult> scan = On<Result<ScanResult>>(1, [](cluster::Member& member, auto done) {
    member.router().Scan(KeyRange::All(), Timestamp::Max(), 10, done);
  });
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(scan->items.size(), 3u);
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(scan->items[i].key, sorted[i]);
}

TEST_F(ClusterRuntimeTest, ACommitIsAnsweredOnlyOnceEveryClockIsPastIt) {
  // Commit wait through the runtime's loop: each commit follows an idle
  // pause, so a wait measured from the loop's last turn (not from now)
  // would end at once and answer while the clocks still read the commit's
  // millisecond.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    struct Answer {
      Result<Timestamp> committed = Status::IoError("none");
      uint64_t answered_ms = 0;
    };
    const Answer answer = On<Answer>(0, [i](cluster::Member& member, auto done) {
      cluster::Coordinator& coordinator = member.coordinator();
      Result<cluster::Coordinator::Begun> begun =
          coordinator.Begin(Isolation::kSerializable, false, std::nullopt);
      if (!begun.ok()) return done(Answer{begun.status(), 0});
      (void)coordinator.Write(begun->id, "wait" + std::to_string(i), "\"v\"");
      coordinator.Commit(begun->id, [done](Result<Timestamp> c) {
        done(Answer{c, cluster::HybridLogicalClock::SystemMillis()});
      });
    });
    ASSERT_TRUE(answer.committed.ok()) << answer.committed.status().message();
    EXPECT_GT(answer.answered_ms, cluster::HybridLogicalClock::PhysicalMillis(*answer.committed))
        << "commit " << i << " was answered inside its own millisecond";
  }
}

TEST_F(ClusterRuntimeTest, ANodeThatGoesAwayFailsCallsInTimeAndIsReachedAgainWhenBack) {
  const std::vector<std::string> keys = KeysOnEveryShard();
  // Reachable first (a loaded machine may take longer than one RPC timeout
  // of 500 ms to open the link).
  bool up = false;
  for (int attempt = 0; attempt < 10 && !up; ++attempt) up = ReadAll(0, {keys[2]}).ok();
  ASSERT_TRUE(up);
  const std::string address = addresses_["n2"];
  StopServer(2);
  const auto start = std::chrono::steady_clock::now();
  const Result<std::vector<ReadResult>> unreachable = ReadAll(0, {keys[2]});
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3))
      << "given up after the RPC timeout";
  // n0's own shard still serves.
  EXPECT_TRUE(ReadAll(0, {keys[0]}).ok());

  Listen(2, address);
  bool reached = false;
  for (int attempt = 0; attempt < 20 && !reached; ++attempt) {
    reached = ReadAll(0, {keys[2]}).ok();
  }
  EXPECT_TRUE(reached) << "the link to n2 reconnects by itself";
  EXPECT_GT(runtimes_[0]->NetworkStats().reconnects, 0u);
}

TEST_F(ClusterRuntimeTest, AStalledLoopDropsPeerMessagesPastItsBoundAndRecovers) {
  // Hold n0's loop; the others keep sending it their low-water-mark
  // reports (every 100 ms each) until its queue is full.
  auto release = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  runtimes_[0]->Post([released](cluster::Member&) { released.wait(); });
  for (int i = 0; i < 100 && runtimes_[0]->dropped_from_peers() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_GT(runtimes_[0]->dropped_from_peers(), 0u) << "the queue is bounded";
  release->set_value();
  // Once the loop catches up, the cluster serves again.
  const std::vector<std::string> keys = KeysOnEveryShard();
  bool served = false;
  for (int attempt = 0; attempt < 20 && !served; ++attempt) served = ReadAll(0, keys).ok();
  EXPECT_TRUE(served);
}

class ReplicatedClusterRuntimeTest : public ClusterRuntimeTest {
 protected:
  uint32_t ReplicationFactor() const override { return kNodes; }

  // Whether node i knows a leader of every shard's group.
  bool EveryShardLed(int i) {
    ClusterRuntime* runtime = runtimes_[i].get();
    return On<bool>(i, [runtime](cluster::Member&, std::function<void(bool)> done) {
      for (raft::GroupId group = 1; group <= kNodes; ++group) {
        if (runtime->shard_groups()->host().raft().group(group)->leader() == 0) return done(false);
      }
      done(true);
    });
  }

  void WaitUntilEveryShardLed() {
    for (int i = 0; i < kNodes; ++i) {
      bool led = false;
      for (int attempt = 0; attempt < 200 && !led; ++attempt) {
        led = EveryShardLed(i);
        if (!led) std::this_thread::sleep_for(milliseconds(10));
      }
      ASSERT_TRUE(led) << "n" << i << " knows no leader of some shard";
    }
  }

  // What node i knows of `group`: its voters, its learners, and how many
  // versions its replica holds.
  struct Replica {
    std::set<raft::NodeId> voters, learners;
    size_t versions = 0;
  };
  Replica ReplicaOf(int i, raft::GroupId group) {
    ClusterRuntime* runtime = runtimes_[i].get();
    return On<Replica>(i, [runtime, group](cluster::Member&, std::function<void(Replica)> done) {
      replication::RaftHost* host = &runtime->shard_groups()->host();
      auto* registered = static_cast<replication::RegisteredState*>(host->state(group));
      const auto& shard = static_cast<const cluster::ReplicatedShard&>(registered->inner());
      done(Replica{host->raft().group(group)->voters(), host->raft().group(group)->learners(),
                   shard.store().GetStats().versions});
    });
  }

  uint64_t RefusedFromReplaced(int i) {
    ClusterRuntime* runtime = runtimes_[i].get();
    return On<uint64_t>(i, [runtime](cluster::Member&, std::function<void(uint64_t)> done) {
      done(runtime->shard_groups()->refused_from_replaced());
    });
  }

  cluster::ShardGroups::ReplicaChangeStats Repairs(int i) {
    ClusterRuntime* runtime = runtimes_[i].get();
    return On<cluster::ShardGroups::ReplicaChangeStats>(
        i, [runtime](cluster::Member&,
                     std::function<void(cluster::ShardGroups::ReplicaChangeStats)> done) {
          done(runtime->shard_groups()->changes());
        });
  }

  // The shards whose group node i leads (of those it has a replica of).
  std::set<raft::GroupId> GroupsLed(int i) {
    ClusterRuntime* runtime = runtimes_[i].get();
    return On<std::set<raft::GroupId>>(
        i, [runtime](cluster::Member&, std::function<void(std::set<raft::GroupId>)> done) {
          std::set<raft::GroupId> led;
          for (raft::GroupId group = 1; group <= kNodes; ++group) {
            const raft::Raft* raft = runtime->shard_groups()->host().raft().group(group);
            if (raft != nullptr && raft->role() == raft::RaftRole::kLeader) led.insert(group);
          }
          done(led);
        });
  }

  // CommitEverywhere until it commits (a group may be between leaders,
  // an attempt cut short leaves intents the next meets until resolved),
  // 50 attempts 100 ms apart at most.
  Result<Timestamp> CommitEverywhereRetrying(int node, const std::vector<std::string>& keys,
                                             const std::string& value) {
    Result<Timestamp> committed = Status::Unavailable("not tried");
    for (int attempt = 0; attempt < 50 && !committed.ok(); ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(milliseconds(100));
      committed = CommitEverywhere(node, keys, value);
    }
    return committed;
  }

  Result<Timestamp> CommitEverywhere(int node, const std::vector<std::string>& keys,
                                     const std::string& value) {
    return On<Result<Timestamp>>(node, [keys, value](cluster::Member& member, auto done) {
      cluster::Coordinator& coordinator = member.coordinator();
      Result<cluster::Coordinator::Begun> begun =
          coordinator.Begin(Isolation::kSnapshot, false, std::nullopt);
      if (!begun.ok()) return done(begun.status());
      for (const std::string& key : keys) {
        if (Status s = coordinator.Write(begun->id, key, value); !s.ok()) return done(s);
      }
      coordinator.Commit(begun->id, done);
    });
  }
};

TEST_F(ReplicatedClusterRuntimeTest, TransactionsCommitOverShardGroupsAndOutliveANode) {
  WaitUntilEveryShardLed();
  const std::vector<std::string> keys = KeysOnEveryShard();
  const Result<Timestamp> first = CommitEverywhere(0, keys, "\"1\"");
  ASSERT_TRUE(first.ok()) << first.status().message();
  Result<std::vector<ReadResult>> reads = ReadAll(2, keys);
  ASSERT_TRUE(reads.ok()) << reads.status().message();
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ((*reads)[i].value, "\"1\"") << keys[i];
    EXPECT_EQ((*reads)[i].timestamp, *first);
  }
  // The versions live in the shards' replicas, not in the nodes' stores.
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(stores_[i].GetStats().versions, 0u) << i;

  // n1 goes away for good: its shard's group elects another leader, and
  // calls for it reach that one (resent to the other replicas).
  StopServer(1);
  runtimes_[1].reset();
  Result<Timestamp> second = Status::Unavailable("not tried");
  for (int attempt = 0; attempt < 5 && !second.ok(); ++attempt) {
    second = CommitEverywhere(0, keys, "\"2\"");
  }
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_GT(*second, *first);
  reads = ReadAll(2, keys);
  ASSERT_TRUE(reads.ok()) << reads.status().message();
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ((*reads)[i].value, "\"2\"") << keys[i];
}

// Elections leave leaders wherever the first timeout fell; each group is
// handed to its home (shard i's to node i) once the home is up and caught
// up, so every member leads one shard's writes.
TEST_F(ReplicatedClusterRuntimeTest, EachShardIsLedByItsHome) {
  bool balanced = false;
  for (int attempt = 0; attempt < 500 && !balanced; ++attempt) {
    balanced = true;
    for (int i = 0; i < kNodes && balanced; ++i) {
      balanced = GroupsLed(i) == std::set<raft::GroupId>{static_cast<raft::GroupId>(i + 1)};
    }
    if (!balanced) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(balanced) << "n0 leads " << GroupsLed(0).size() << ", n1 " << GroupsLed(1).size()
                        << ", n2 " << GroupsLed(2).size();
  // And writes go on over the groups so led.
  const Result<Timestamp> committed = CommitEverywhere(1, KeysOnEveryShard(), "\"1\"");
  EXPECT_TRUE(committed.ok()) << committed.status().message();
}

}  // namespace
}  // namespace strata::server

namespace strata::server {
namespace {

// A member started again with an empty Raft directory (its disk lost) is
// refused by the others, then taken back by each group's leader, once per
// group: removed, added back as a learner that catches up from the leader,
// promoted. It then holds what was committed while it was away, and
// leads its home group again.
TEST_F(ReplicatedClusterRuntimeTest, AMemberThatLostItsDiskIsTakenBackByEachGroupOnce) {
  WaitUntilEveryShardLed();
  const std::vector<std::string> keys = KeysOnEveryShard();
  ASSERT_TRUE(CommitEverywhere(0, keys, "\"1\"").ok());
  const std::string address = addresses_["n1"];
  StopServer(1);
  runtimes_[1].reset();
  std::filesystem::remove_all(dir_.File("n1"));
  Start(1, address);
  runtimes_[1]->ConnectPeers(addresses_);

  // Writes go on meanwhile.
  const Result<Timestamp> second = CommitEverywhereRetrying(0, keys, "\"2\"");
  ASSERT_TRUE(second.ok()) << second.status().message();

  const std::set<raft::NodeId> all{1, 2, 3};
  bool whole = false;
  for (int attempt = 0; attempt < 1000 && !whole; ++attempt) {
    whole = GroupsLed(1) == std::set<raft::GroupId>{2};
    for (raft::GroupId group = 1; group <= kNodes && whole; ++group) {
      const Replica there = ReplicaOf(0, group), here = ReplicaOf(1, group);
      whole = there.voters == all && there.learners.empty() && here.voters == all &&
              here.versions == there.versions && here.versions == 2;
    }
    if (!whole) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(whole) << "n1 not taken back: it leads " << GroupsLed(1).size() << " groups";
  // Refused first (the others held its old incarnation), then taken back
  // once by each group's leader (n0 or n2), never twice.
  EXPECT_GT(RefusedFromReplaced(0) + RefusedFromReplaced(2), 0u);
  const cluster::ShardGroups::ReplicaChangeStats a = Repairs(0), b = Repairs(2), c = Repairs(1);
  EXPECT_EQ(a.removed + b.removed, 3u);
  EXPECT_EQ(a.learners + b.learners, 3u);
  EXPECT_EQ(a.promoted + b.promoted, 3u);
  EXPECT_EQ(c.removed + c.learners + c.promoted, 0u);
  // And it serves again: a transaction coordinated by it commits.
  Result<Timestamp> third = Status::Unavailable("not tried");
  for (int attempt = 0; attempt < 5 && !third.ok(); ++attempt) {
    third = CommitEverywhere(1, keys, "\"3\"");
  }
  EXPECT_TRUE(third.ok()) << third.status().message();
}

}  // namespace
}  // namespace strata::server

namespace strata::server {
namespace {

// Two replicas of each of three shards: no member holds every shard. A
// follower read on a member reads its own replicas of two shards and the
// third at that shard's leader, at the newest timestamp every shard has
// resolved as the member knows it: for the third, what its leader last
// told the member (unknown at first; each call refreshes it).
class TwoReplicasRuntimeTest : public ReplicatedClusterRuntimeTest {
 protected:
  uint32_t ReplicationFactor() const override { return 2; }

  std::optional<Timestamp> ResolvedHere(int i) {
    return On<std::optional<Timestamp>>(
        i, [](cluster::Member& member, std::function<void(std::optional<Timestamp>)> done) {
          done(member.ResolvedHere());
        });
  }
  std::string DebugFrontiers(int i) {
    return On<std::string>(i, [](cluster::Member& member, std::function<void(std::string)> done) {
      std::string out;
      for (const auto& shard : member.map().shards()) {
        const cluster::ShardServer* server = member.FindShardServer(shard.id);
        out += " shard " + std::to_string(shard.id) + ": ";
        if (server) {
          out += "here " + std::to_string(server->WatchFrontier().value());
        } else {
          auto learned = member.resolved_frontier().LearnedFor(
              shard.id, std::chrono::steady_clock::time_point());
          out += "learned " + (learned ? std::to_string(learned->value()) : std::string("none"));
        }
      }
      out += " rounds " + std::to_string(member.resolved_frontier().stats().rounds) +
             " unreachable " +
             std::to_string(member.resolved_frontier().stats().unreachable_shards);
      done(out);
    });
  }
  uint64_t ReadsHere(int i) {
    return On<uint64_t>(i, [](cluster::Member& member, std::function<void(uint64_t)> done) {
      done(member.peers().reads_here());
    });
  }
};

TEST_F(TwoReplicasRuntimeTest, AFollowerReadReadsTheReplicasHereAndTheRestAtTheirLeaders) {
  EXPECT_EQ(ResolvedHere(0), std::nullopt) << "the shard held elsewhere: not known yet";
  const std::vector<std::string> keys = KeysOnEveryShard();
  const Result<Timestamp> committed = CommitEverywhereRetrying(1, keys, "\"1\"");
  ASSERT_TRUE(committed.ok()) << committed.status().message();

  std::optional<Timestamp> resolved;
  for (int attempt = 0; attempt < 500 && !(resolved && *resolved >= *committed); ++attempt) {
    std::this_thread::sleep_for(milliseconds(5));
    resolved = ResolvedHere(0);
  }
  ASSERT_TRUE(resolved && *resolved >= *committed)
      << "never resolved the commit here: " << (resolved ? resolved->value() : 0) << " < "
      << committed->value() << DebugFrontiers(0);
  const uint64_t here_before = ReadsHere(0);
  const Timestamp at = *resolved;
  const Result<std::vector<ReadResult>> read =
      On<Result<std::vector<ReadResult>>>(0, [keys, at](cluster::Member& member, auto done) {
        member.coordinator().ReadKeys(keys, at, done, /*here_first=*/true);
      });
  ASSERT_TRUE(read.ok()) << read.status().message();
  for (const ReadResult& r : *read) {
    EXPECT_EQ(r.value, "\"1\"");
    EXPECT_EQ(r.timestamp, *committed);
  }
  EXPECT_EQ(ReadsHere(0) - here_before, 2u) << "the two shards held here, read here";
}

// Shard 0's replicas are n0 (its home, which leads it) and n1; placed on
// n1 and n2, its group adds n2 as a learner (n2 starts a replica from the
// report), fills and promotes it, n0 hands its leadership over and is
// removed (and deletes its replica: it serves none of its own shard);
// every node's calls follow the reports.
TEST_F(TwoReplicasRuntimeTest, AShardsReplicaMovesToAnotherNodeAndCallsFollowIt) {
  const std::vector<std::string> keys = KeysOnEveryShard();
  const Result<Timestamp> committed = CommitEverywhereRetrying(1, keys, "\"1\"");
  ASSERT_TRUE(committed.ok()) << committed.status().message();

  auto place = [this](int i, std::vector<std::string> nodes) {
    ClusterRuntime* runtime = runtimes_[i].get();
    return On<Status>(i, [runtime, nodes](cluster::Member&, std::function<void(Status)> done) {
      runtime->shard_groups()->Place(0, nodes, done);
    });
  };
  int leader = -1;
  for (int attempt = 0; attempt < 200 && leader < 0; ++attempt) {
    if (GroupsLed(0).count(1) != 0) leader = 0;
    if (GroupsLed(1).count(1) != 0) leader = 1;
    if (leader < 0) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_GE(leader, 0) << "shard 0's group has no leader";
  // What no placement may be.
  EXPECT_EQ(place(leader, {"n0", "n9"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(place(leader, {"n0", "n0"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(place(leader, {"n0"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(place(2, {"n1", "n2"}).code(), StatusCode::kUnavailable) << "n2 does not lead it";
  ASSERT_TRUE(place(leader, {"n1", "n2"}).ok());

  auto serves = [this](int i) {
    return On<bool>(i, [](cluster::Member& member, std::function<void(bool)> done) {
      done(member.FindShardServer(0) != nullptr);
    });
  };
  auto holds = [this](int i) {
    ClusterRuntime* runtime = runtimes_[i].get();
    return On<bool>(i, [runtime](cluster::Member&, std::function<void(bool)> done) {
      done(runtime->shard_groups()->host().raft().group(1) != nullptr);
    });
  };
  const std::set<raft::NodeId> moved{2, 3};
  bool done = false;
  for (int attempt = 0; attempt < 1000 && !done; ++attempt) {
    done = !holds(0) && !serves(0) && holds(2) && serves(2);
    if (done) {
      const Replica there = ReplicaOf(1, 1), here = ReplicaOf(2, 1);
      done = there.voters == moved && there.learners.empty() && here.voters == moved &&
             here.versions == there.versions && here.versions == 1;
    }
    if (!done) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(done) << "shard 0 did not move from n0 to n2";
  cluster::ShardGroups::ReplicaChangeStats sum;
  for (int i = 0; i < kNodes; ++i) {
    const cluster::ShardGroups::ReplicaChangeStats c = Repairs(i);
    sum.learners += c.learners, sum.promoted += c.promoted, sum.removed += c.removed;
    sum.started += c.started, sum.deleted += c.deleted;
  }
  EXPECT_EQ(sum.learners, 1u);
  EXPECT_EQ(sum.promoted, 1u);
  EXPECT_EQ(sum.removed, 1u);
  EXPECT_EQ(Repairs(2).started, 1u);
  EXPECT_EQ(Repairs(0).deleted, 1u);
  // n0 hands its leadership over if it still led the group then.
  EXPECT_LE(Repairs(0).handed_over, 1u);
  EXPECT_TRUE(GroupsLed(1).count(1) != 0 || GroupsLed(2).count(1) != 0);

  // n0, which holds no replica of its own shard any more, commits over
  // every shard; n2 reads it back, shard 0 from its new replica's group.
  const Result<Timestamp> second = CommitEverywhereRetrying(0, keys, "\"2\"");
  ASSERT_TRUE(second.ok()) << second.status().message();
  const Result<std::vector<ReadResult>> read = ReadAll(2, keys);
  ASSERT_TRUE(read.ok()) << read.status().message();
  for (const ReadResult& r : *read) EXPECT_EQ(r.value, "\"2\"");

  // Restarted, n0 does not make its first replica of shard 0 again, and
  // n2 reopens the one that moved there from its log.
  for (int i : {0, 2}) {
    const std::string address = addresses_["n" + std::to_string(i)];
    StopServer(i);
    runtimes_[i].reset();
    Start(i, address);
    runtimes_[i]->ConnectPeers(addresses_);
  }
  EXPECT_FALSE(holds(0));
  EXPECT_TRUE(holds(2));
  EXPECT_TRUE(serves(2));
  EXPECT_EQ(ReplicaOf(2, 1).voters, moved);
}

}  // namespace
}  // namespace strata::server
