// KvReplica over RaftHosts: etcd's key space replicated as etcd replicates
// it. Replicas
// number revisions alike, hold the same history, answer as one node would,
// and come back after crashes and snapshots without losing an
// acknowledged write.
#include "service/kv_replica.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "host_cluster.h"
#include "support/recording_watch_sink.h"
#include "support/table_kv_write_codec.h"

namespace strata::replication {
namespace {

using service::DeleteRangeRequest;
using service::KvReplica;
using service::KvWrite;
using service::KvWriteReply;
using service::PutRequest;
using service::RangeRequest;
using service::Reply;
using service::TxnRequest;

// Writes and replies travel as table indexes here (the replicas share
// this process); not linking the server keeps this test's build small.
const service::TableKvWriteCodec& Codec() { return service::TableCodec(); }

// The replicated state a host applies: a KvReplica.
class KvState final : public ReplicatedState {
 public:
  KvState() : replica(&Codec()) {}
  Status Restore(std::string_view snapshot) override { return replica.Restore(snapshot); }
  std::string Apply(raft::Index, std::string_view command) override {
    return replica.Apply(command);
  }
  std::string Save() const override { return replica.Save(); }
  KvReplica replica;
};

const KvReplica& ReplicaOf(const ReplicatedState* state) {
  return static_cast<const KvState*>(state)->replica;
}

// Equal revisions, equal history hashes and the same leases with the same
// keys: the same key space.
std::string KvFingerprint(const ReplicatedState* state) {
  const KvReplica& replica = ReplicaOf(state);
  if (replica.revision() <= 1 && replica.leases().size() == 0) return "";
  auto hash = replica.kv().HashKV(0);
  std::string out = std::to_string(replica.revision()) + "/" +
                    (hash.ok() ? std::to_string(hash.value()) : "error");
  for (const auto& [id, ttl] : replica.leases().Granted()) {
    out += " lease " + std::to_string(id) + ":" + std::to_string(ttl);
    for (const auto& key : replica.leases().Keys(id)) out += "," + key;
  }
  return out;
}

// One key's value at a revision on a replica ("" if none).
std::string ValueAt(const KvReplica& replica, const std::string& key, int64_t revision) {
  RangeRequest range;
  range.span.key = key;
  range.revision = revision;
  auto reply = replica.kv().Range(range);
  if (!reply.ok() || reply.value().kvs.empty()) return "";
  return reply.value().kvs[0].value;
}

// The revision a put's reply names (0: not a put's reply).
int64_t RevisionOf(const std::string& reply_bytes) {
  const Reply<KvWriteReply> reply = Codec().DecodeReply(reply_bytes);
  if (!reply.ok() || !std::holds_alternative<service::PutResponse>(reply.value())) return 0;
  return std::get<service::PutResponse>(reply.value()).header.revision;
}

class KvCluster : public HostCluster {
 public:
  KvCluster(int nodes, uint32_t seed)
      : HostCluster(
            nodes, 1, seed, [](GroupId) { return std::make_unique<KvState>(); }, KvFingerprint,
            [this](HostCluster&, NodeId id, GroupId) { ProposeRandom(id); }) {}

  const KvReplica& replica(NodeId id) { return ReplicaOf(host(id)->state(1)); }

  // Proposes `write` on `id`; the reply lands in *reply once applied.
  void Write(NodeId id, const KvWrite& write, std::optional<Reply<KvWriteReply>>* reply) {
    host(id)->Propose(1, KvReplica::WriteCommand(Codec(), write),
                      [reply](Result<std::string> result) {
                        if (result.ok()) *reply = Codec().DecodeReply(*result);
                      });
    Run(id);
  }

  NodeId Leader() {
    for (const auto& [id, host] : hosts()) {
      if (host && host->raft().group(1)->role() == RaftRole::kLeader) return id;
    }
    return 0;
  }

  // Puts acknowledged: key, value and the revision the reply named.
  struct Acknowledged {
    std::string key, value;
    int64_t revision = 0;
  };
  std::vector<Acknowledged> acknowledged;
  int compactions = 0;
  int leased_puts = 0;  // acknowledged puts that attached a lease

 private:
  void ProposeRandom(NodeId id) {
    const int kind = Pick(0, 19);
    const std::string key = "k" + std::to_string(Pick(0, 9));
    const std::string value = "v" + std::to_string(next_++);
    std::string command;
    if (kind == 0) {
      // A compaction somewhere below the newest revision (refused if not).
      const int64_t revision = ReplicaOf(host(id)->state(1)).revision();
      command = KvReplica::CompactCommand(revision > 3 ? revision - Pick(1, 3) : 1);
      host(id)->Propose(1, command, [this](Result<std::string> result) {
        if (result.ok() && KvReplica::DecodeCompactReply(*result).ok()) ++compactions;
      });
      return;
    }
    if (kind == 1) {  // leases 1..3 granted and revoked
      const int64_t lease = Pick(1, 3);
      command =
          Pick(0, 1) == 0 ? KvReplica::GrantCommand(lease, 10) : KvReplica::RevokeCommand(lease);
      host(id)->Propose(1, command, [](Result<std::string>) {});
      return;
    }
    // Some puts attach a lease, which may not exist (then refused).
    const int64_t lease = Pick(0, 5) <= 2 ? 0 : Pick(1, 3);
    if (kind == 2) {
      DeleteRangeRequest del;
      del.span.key = key;
      command = KvReplica::WriteCommand(Codec(), del);
    } else {
      PutRequest put{key, value};
      put.lease = lease;
      command = KvReplica::WriteCommand(Codec(), put);
    }
    const bool put = kind > 2;
    host(id)->Propose(1, command, [this, key, value, put, lease](Result<std::string> result) {
      if (!result.ok() || !put) return;
      Reply<KvWriteReply> reply = Codec().DecodeReply(*result);
      if (lease != 0 && !reply.ok()) return;  // its lease was not there
      ASSERT_TRUE(reply.ok()) << reply.error().message;
      if (lease != 0) ++leased_puts;
      const auto& response = std::get<service::PutResponse>(reply.value());
      acknowledged.push_back({key, value, response.header.revision});
    });
  }

  uint64_t next_ = 0;
};

TEST(KvReplicaTest, ReplicasAnswerAsOneNodeAndAgree) {
  KvCluster cluster(3, 1);
  cluster.Settle();
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, 0u);
  std::optional<Reply<KvWriteReply>> put_a, put_b, txn, del;
  cluster.Write(leader, PutRequest{"a", "1"}, &put_a);
  cluster.Write(leader, PutRequest{"b", "2"}, &put_b);
  TxnRequest t;
  service::Compare compare;
  compare.target = service::CompareTarget::kValue;
  compare.span.key = "a";
  compare.value = "1";
  t.compare.push_back(compare);
  t.success.push_back({PutRequest{"c", "3"}});
  t.failure.push_back({PutRequest{"c", "never"}});
  cluster.Write(leader, t, &txn);
  DeleteRangeRequest d;
  d.span.key = "b";
  cluster.Write(leader, d, &del);
  cluster.Settle();
  ASSERT_TRUE(put_a && put_b && txn && del);
  ASSERT_TRUE(put_a->ok() && put_b->ok() && txn->ok() && del->ok());
  // Revisions from 2 on, one a write, as etcd's.
  EXPECT_EQ(std::get<service::PutResponse>(put_a->value()).header.revision, 2);
  EXPECT_EQ(std::get<service::PutResponse>(put_b->value()).header.revision, 3);
  const auto& txn_response = std::get<service::TxnResponse>(txn->value());
  EXPECT_TRUE(txn_response.succeeded);
  EXPECT_EQ(txn_response.header.revision, 4);
  EXPECT_EQ(std::get<service::DeleteRangeResponse>(del->value()).deleted, 1);
  for (NodeId id = 1; id <= 3; ++id) {
    const KvReplica& replica = cluster.replica(id);
    EXPECT_EQ(replica.revision(), cluster.replica(leader).revision()) << "node " << id;
    EXPECT_EQ(ValueAt(replica, "c", 0), "3");
    EXPECT_EQ(ValueAt(replica, "b", 0), "");
    EXPECT_EQ(ValueAt(replica, "b", 3), "2");  // the history is there too
  }
}

TEST(KvReplicaTest, ACommandThatDoesNotDecodeGetsTheSameErrorEverywhere) {
  KvReplica replica(&Codec());
  const Reply<KvWriteReply> reply = replica.DecodeWriteReply(replica.Apply("Wnot protobuf"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, service::ErrorCode::kInternal);
  EXPECT_FALSE(KvReplica::DecodeCompactReply(replica.Apply("C")).ok());
  EXPECT_FALSE(replica.DecodeWriteReply(replica.Apply("")).ok());
  EXPECT_EQ(replica.revision(), 1);
}

TEST(KvReplicaTest, ASnapshotRestoresTheWholeHistory) {
  KvReplica one(&Codec());
  for (int i = 0; i < 50; ++i) {
    one.Apply(KvReplica::WriteCommand(Codec(), PutRequest{"k" + std::to_string(i % 7), "v"}));
  }
  ASSERT_TRUE(KvReplica::DecodeCompactReply(one.Apply(KvReplica::CompactCommand(20))).ok());
  KvReplica two(&Codec());
  ASSERT_TRUE(two.Restore(one.Save()).ok());
  EXPECT_EQ(two.revision(), one.revision());
  EXPECT_EQ(two.kv().compact_revision(), 20);
  ASSERT_TRUE(one.kv().HashKV(0).ok());
  EXPECT_EQ(two.kv().HashKV(0).value(), one.kv().HashKV(0).value());
  // Both go on alike.
  const std::string next = KvReplica::WriteCommand(Codec(), PutRequest{"new", "x"});
  EXPECT_EQ(RevisionOf(one.Apply(next)), RevisionOf(two.Apply(next)));
  // The newest revision a delete, compacted away: the revision survives
  // the snapshot even though no version carries it.
  DeleteRangeRequest del;
  del.span.key = "new";
  one.Apply(KvReplica::WriteCommand(Codec(), del));
  ASSERT_TRUE(
      KvReplica::DecodeCompactReply(one.Apply(KvReplica::CompactCommand(one.revision()))).ok());
  KvReplica three(&Codec());
  ASSERT_TRUE(three.Restore(one.Save()).ok());
  EXPECT_EQ(three.revision(), one.revision());
  EXPECT_EQ(RevisionOf(three.Apply(next)), RevisionOf(one.Apply(next)));
  std::string damaged = one.Save();
  damaged[damaged.size() / 2] ^= 1;
  EXPECT_EQ(two.Restore(damaged).code(), StatusCode::kInvalidArgument);
}

// A replica's watchers across a snapshot restore: a watcher that keeps up
// sees every revision once, in order, the ones only the snapshot carried
// included (read from the restored engine); one whose next revision the
// snapshot's compaction removed is cancelled with compact_revision (known
// from the restored engine, before the hub's source says so).
TEST(KvReplicaTest, WatchersSeeEveryRevisionOnceAcrossARestore) {
  service::WatchHubOptions options;
  options.ring_events = 4;  // small, so the restored engine's history is read too
  options.catch_up_batch = 3;
  service::WatchHub hub(
      std::make_shared<const MvccStore>(), [] { return int64_t{0}; }, 1, options);
  KvReplica one(&Codec());
  KvReplica two(&Codec(), 128, &hub);
  service::RecordingWatchSink reader;
  service::RecordingWatchSink stalled(0);  // takes no event: its watcher stays at revision 2
  service::WatchCreateRequest all;
  all.span = {"k", "l"};
  hub.Create(&reader, all);
  hub.Create(&stalled, all);
  int next = 0;
  const auto put = [&](KvReplica& replica) {
    const std::string command = KvReplica::WriteCommand(
        Codec(), PutRequest{"k" + std::to_string(next % 7), "v" + std::to_string(next)});
    replica.Apply(command);
    return command;
  };
  std::vector<service::Event> events;
  const auto read = [&](size_t want) {
    for (int i = 0; i < 400 && events.size() < want; ++i) {
      for (auto& r : reader.Drain()) {
        EXPECT_FALSE(r.canceled);
        events.insert(events.end(), r.events.begin(), r.events.end());
      }
      if (events.size() < want) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  for (int i = 0; i < 10; ++i, ++next) two.Apply(put(one));  // revisions 2..11
  read(10);  // `reader` keeps up: it has read through 11 before the restore
  for (int i = 0; i < 30; ++i, ++next) put(one);  // 12..41 on one only
  // Compacted below what `reader` has read, above what `stalled` needs.
  ASSERT_TRUE(KvReplica::DecodeCompactReply(one.Apply(KvReplica::CompactCommand(10))).ok());
  ASSERT_TRUE(two.Restore(one.Save()).ok());
  ASSERT_EQ(two.revision(), 41);
  for (int i = 0; i < 10; ++i, ++next) two.Apply(put(one));  // 42..51

  read(50);
  ASSERT_EQ(events.size(), 50u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv.mod_revision, static_cast<int64_t>(i) + 2);
    EXPECT_EQ(events[i].kv.value, "v" + std::to_string(i));
  }
  bool stalled_cancelled = false;
  for (int i = 0; i < 400 && !stalled_cancelled; ++i) {
    for (auto& r : stalled.Drain()) {
      if (!r.canceled) continue;
      stalled_cancelled = true;
      EXPECT_EQ(r.compact_revision, 10);
    }
    if (!stalled_cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(stalled_cancelled) << "a watcher behind the snapshot's compaction";
  EXPECT_EQ(hub.watchers(), 1u);
}

// Leases as replicated state: a grant, keys attached by puts, a
// revocation deleting them at one revision; the same on a replica restored
// from a snapshot; etcd's refusals.
TEST(KvReplicaTest, LeasesAreReplicatedStateThatSnapshotsCarry) {
  KvReplica one(&Codec());
  std::vector<std::pair<int64_t, int64_t>> told;
  one.set_lease_observer([&](int64_t id, int64_t ttl) { told.emplace_back(id, ttl); });
  auto granted = KvReplica::DecodeGrantReply(one.Apply(KvReplica::GrantCommand(7, 30)));
  ASSERT_TRUE(granted.ok()) << granted.error().message;
  EXPECT_EQ(granted.value().id, 7);
  EXPECT_EQ(granted.value().ttl, 30);
  EXPECT_EQ(granted.value().revision, 1) << "a grant writes no revision";
  auto again = KvReplica::DecodeGrantReply(one.Apply(KvReplica::GrantCommand(7, 10)));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, "etcdserver: lease already exists");
  PutRequest leased{"a", "1"};
  leased.lease = 7;
  one.Apply(KvReplica::WriteCommand(Codec(), leased));
  leased.key = "b";
  one.Apply(KvReplica::WriteCommand(Codec(), leased));
  PutRequest unknown{"c", "1"};
  unknown.lease = 8;
  const Reply<KvWriteReply> refused =
      Codec().DecodeReply(one.Apply(KvReplica::WriteCommand(Codec(), unknown)));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "etcdserver: requested lease not found");
  EXPECT_EQ(one.leases().Keys(7), (std::vector<std::string>{"a", "b"}));

  // A replica restored from a snapshot has the lease and its keys.
  KvReplica two(&Codec());
  ASSERT_TRUE(two.Restore(one.Save()).ok());
  EXPECT_EQ(two.leases().GrantedTtl(7), std::optional<int64_t>(30));
  EXPECT_EQ(two.leases().Keys(7), (std::vector<std::string>{"a", "b"}));

  // Revoked alike on both: the keys deleted at one revision.
  for (KvReplica* replica : {&one, &two}) {
    auto revoked = KvReplica::DecodeRevokeReply(replica->Apply(KvReplica::RevokeCommand(7)));
    ASSERT_TRUE(revoked.ok()) << revoked.error().message;
    EXPECT_EQ(revoked.value(), 4) << "a and b deleted in one revision";
    EXPECT_EQ(ValueAt(*replica, "a", 4), "");
    EXPECT_EQ(ValueAt(*replica, "b", 3), "1");
    EXPECT_FALSE(replica->leases().Exists(7));
  }
  auto gone = KvReplica::DecodeRevokeReply(one.Apply(KvReplica::RevokeCommand(7)));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().message, "etcdserver: requested lease not found");
  EXPECT_EQ(told, (std::vector<std::pair<int64_t, int64_t>>{{7, 30}, {7, 0}}))
      << "the observer hears of the grant and the end, once each";
  EXPECT_FALSE(KvReplica::DecodeGrantReply(one.Apply(KvReplica::GrantCommand(0, 5))).ok())
      << "id 0 is the proposer's to replace";
}

int KvSeeds() {
  const char* seeds = std::getenv("STRATA_REPLICATION_SEEDS");
  return seeds != nullptr ? std::atoi(seeds) / 5 : 40;
}

// Under loss, crashes (some mid-write) and snapshots: every replica ends at
// the same revision with the same history and the same leases (granted,
// revoked, keys attached by puts), and every acknowledged put is there at
// the revision its reply named.
TEST(KvReplicaTest, NoAcknowledgedWriteIsLostAndReplicasAgree) {
  int acknowledged = 0, compactions = 0, restored = 0, leased = 0;
  for (uint32_t seed = 1; seed <= static_cast<uint32_t>(KvSeeds()); ++seed) {
    KvCluster cluster(3, seed);
    for (int step = 0; step < 3000; ++step) cluster.Step();
    cluster.Heal();
    ASSERT_FALSE(testing::Test::HasFailure()) << "seed " << seed;
    const KvReplica& first = cluster.replica(1);
    for (NodeId id = 2; id <= 3; ++id) {
      ASSERT_EQ(KvFingerprint(cluster.host(id)->state(1)), KvFingerprint(cluster.host(1)->state(1)))
          << "seed " << seed << " node " << id;
    }
    for (const auto& a : cluster.acknowledged) {
      if (a.revision < first.kv().compact_revision()) continue;  // its history compacted away
      ASSERT_EQ(ValueAt(first, a.key, a.revision), a.value)
          << "seed " << seed << ": " << a.key << "=" << a.value << " at " << a.revision;
    }
    acknowledged += static_cast<int>(cluster.acknowledged.size());
    compactions += cluster.compactions;
    leased += cluster.leased_puts;
    for (NodeId id = 1; id <= 3; ++id) {
      restored += static_cast<int>(cluster.host(id)->stats().snapshots_restored);
    }
  }
  EXPECT_GT(acknowledged, KvSeeds() * 20);
  EXPECT_GT(compactions, 0);
  EXPECT_GT(restored, 0);
  EXPECT_GT(leased, 0);
  std::cout << "acknowledged puts " << acknowledged << " (" << leased << " with a lease), "
            << "compactions " << compactions << ", snapshots restored " << restored << "\n";
}

}  // namespace
}  // namespace strata::replication
