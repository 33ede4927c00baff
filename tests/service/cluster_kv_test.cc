// ClusterKv: etcd's key-value API over three in-process cluster members.
// The rules are the same code as one node's (service/kv_rules.h); what is
// checked here is what the cluster adds: revisions are commit timestamps,
// a Txn over several shards is atomic and serializable, the past is
// readable, and a sequence of requests answers exactly as one node's
// KvService does once revisions are numbered in order (a property test).
#include "service/cluster_kv.h"
#include "service/cluster_txns.h"
#include "service/stored_value.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/peer_proto.h"
#include "support/table_kv_write_codec.h"
#include "tests/cluster/local_cluster.h"
#include "tests/service/service_test_support.h"

namespace strata::service {
namespace cluster_kv_test {

using testing::Cmp;
using testing::DeleteOp;
using testing::GetOp;
using testing::PutOp;

// Three members, a ClusterKv on each, and synchronous helpers that pump
// the in-memory network until the answer arrives. Writes to keys another
// member owns are forwarded to it unless `forward` is false.
// One message as strata-server's peer links carry it (server/peer_proto,
// serialized and parsed): a request or reply the codec cannot carry fails
// the test, which goes on with the message as sent.
cluster::LocalCluster::Wire PeerLinkWire() {
  return {[](const cluster::PeerRequest& request, std::optional<cluster::ShardId> shard) {
            server::peerpb::Message sent, received;
            server::RequestToProto(request, &sent);
            if (shard) sent.set_shard_plus_one(*shard + 1);
            cluster::PeerRequest out;
            const bool parsed = received.ParseFromString(sent.SerializeAsString());
            const Status read = parsed ? server::RequestFromProto(received, &out)
                                       : Status::InvalidArgument("does not parse");
            if (!read.ok()) {
              ADD_FAILURE() << "a request the roles sent ("
                            << sent.ShortDebugString().substr(0, 200)
                            << ") does not survive the peer links' codec: " << read.message();
              return request;
            }
            return out;
          },
          [](const cluster::PeerReply& reply) {
            server::peerpb::Message sent, received;
            server::ReplyToProto(reply, &sent);
            if (!received.ParseFromString(sent.SerializeAsString())) {
              ADD_FAILURE() << "a reply that does not parse";
              return reply;
            }
            cluster::PeerReply out = server::ReplyFromProto(received);
            if (std::holds_alternative<cluster::PeerError>(out) &&
                !std::holds_alternative<cluster::PeerError>(reply)) {
              ADD_FAILURE() << "a reply (" << sent.ShortDebugString().substr(0, 200)
                            << ") does not survive the peer links' codec: "
                            << std::get<cluster::PeerError>(out).status.message();
              return reply;
            }
            return out;
          }};
}

class ThreeNodes {
 public:
  struct Options {
    bool forward = true;
    // A write that lost a conflict waits on its member's timers before the
    // next attempt, as on strata-server.
    bool backoff = false;
    // Writes read at their shards' clocks (ClusterKvOptions::writes_at_shard_clocks).
    bool at_shard_clocks = false;
    // Every message between the members travels as strata-server's peer
    // links carry it (PeerLinkWire).
    bool peer_links = false;
    // The members' clocks are real: a call a busy member answers late
    // (150 forwarded writes of one key, run in turn under ASan beside other
    // suites, took over half a second in CI) must not time out, so only a
    // test of an unreachable member shortens this.
    std::chrono::milliseconds rpc_timeout{5000};
  };
  ThreeNodes() : ThreeNodes(Options{}) {}
  explicit ThreeNodes(const Options& o) : cluster_(3, MemberOptionsFor(o)) {
    if (o.peer_links) cluster_.SetWire(PeerLinkWire());
    ClusterKvOptions options;
    if (o.forward) options.forward_codec = &codec_;
    options.writes_at_shard_clocks = o.at_shard_clocks;
    for (int i = 0; i < 3; ++i) {
      options.timers = o.backoff ? &cluster_.member(i).timers() : nullptr;
      options.frontier = &cluster_.member(i).resolved_frontier();
      kv_.push_back(std::make_unique<ClusterKv>(&cluster_.member(i).coordinator(),
                                                &cluster_.member(i).router(), options));
      serve_[i] = [this, i](const std::string& request, cluster::ShardServer::Respond respond) {
        if (request.starts_with(ShardLocks::kTag)) {
          return kv_[i]->ServeLanes(request, std::move(respond));
        }
        kv_[i]->ServeForward(request, std::move(respond));
      };
    }
    cluster_.SetForwardHandlers(serve_);
  }

  template <typename T>
  Reply<T> Run(const std::function<void(std::function<void(Reply<T>)>)>& call) {
    std::optional<Reply<T>> out;
    cluster_.SetNow();
    call([&](Reply<T> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(cluster_.RunUntil([&] { return out.has_value(); })) << "no answer in time";
    return out ? std::move(*out) : Reply<T>(ServiceError{ErrorCode::kInternal, "no answer"});
  }

  Reply<PutResponse> Put(int node, const std::string& key, const std::string& value) {
    PutRequest r;
    r.key = key;
    r.value = value;
    r.prev_kv = true;
    return Run<PutResponse>([&](auto done) { kv_[node]->Put(r, done); });
  }
  Reply<RangeResponse> Get(int node, const std::string& key, const std::string& end = "",
                           int64_t revision = 0) {
    RangeRequest r;
    r.span = {key, end};
    r.revision = revision;
    return Run<RangeResponse>([&](auto done) { kv_[node]->Range(r, done); });
  }
  Reply<DeleteRangeResponse> Delete(int node, const std::string& key, const std::string& end) {
    DeleteRangeRequest r;
    r.span = {key, end};
    r.prev_kv = true;
    return Run<DeleteRangeResponse>([&](auto done) { kv_[node]->DeleteRange(r, done); });
  }
  Reply<TxnResponse> Txn(int node, const TxnRequest& r) {
    return Run<TxnResponse>([&](auto done) { kv_[node]->Txn(r, done); });
  }
  // Every request started at once, the i-th on node i % 3; their answers,
  // in order, once all have come.
  std::vector<Reply<TxnResponse>> TxnsAtOnce(const std::vector<TxnRequest>& requests) {
    std::vector<std::optional<Reply<TxnResponse>>> out(requests.size());
    cluster_.SetNow();
    for (size_t i = 0; i < requests.size(); ++i) {
      kv_[i % 3]->Txn(requests[i],
                      [&out, i](Reply<TxnResponse> r) { out[i].emplace(std::move(r)); });
    }
    EXPECT_TRUE(cluster_.RunUntil([&] {
      return std::all_of(out.begin(), out.end(), [](const auto& o) { return o.has_value(); });
    })) << "not every Txn was answered in time";
    std::vector<Reply<TxnResponse>> answers;
    for (auto& o : out) {
      answers.push_back(o ? std::move(*o)
                          : Reply<TxnResponse>(ServiceError{ErrorCode::kInternal, "no answer"}));
    }
    return answers;
  }
  Reply<CompactionResponse> Compact(int node, int64_t revision) {
    return Run<CompactionResponse>([&](auto done) { kv_[node]->Compact({revision, true}, done); });
  }

  ClusterKv& kv(int node) { return *kv_[node]; }
  cluster::LocalCluster& cluster() { return cluster_; }
  const TableKvWriteCodec& codec() const { return codec_; }

 private:
  static cluster::MemberOptions MemberOptionsFor(const Options& o) {
    cluster::MemberOptions options;
    options.rpc_timeout = o.rpc_timeout;
    return options;
  }

  TableKvWriteCodec codec_;
  cluster::Member::ForwardHandler serve_[3];
  cluster::LocalCluster cluster_;
  std::vector<std::unique_ptr<ClusterKv>> kv_;
};

std::vector<std::string> EtcdKeysOnEveryShard(const cluster::ShardMap& map) {
  return cluster::KeysOnEveryShard(map, ClusterKv::EngineKey);
}

TEST(ClusterKvTest, RevisionsAreCommitTimestampsAndPerKeyFieldsFollowEtcd) {
  ThreeNodes c;
  auto first = c.Put(0, "k", "v1");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first.value().prev_kv);
  auto second = c.Put(1, "k", "v2");
  ASSERT_TRUE(second.ok()) << second.error().message;
  const int64_t r1 = first.value().header.revision, r2 = second.value().header.revision;
  EXPECT_GT(r2, r1) << "a later commit has a later revision";
  ASSERT_TRUE(second.value().prev_kv);
  EXPECT_EQ(second.value().prev_kv->value, "v1");
  EXPECT_EQ(second.value().prev_kv->mod_revision, r1);

  auto got = c.Get(2, "k");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got.value().kvs.size(), 1u);
  const KeyValue& kv = got.value().kvs[0];
  EXPECT_EQ(kv.value, "v2");
  EXPECT_EQ(kv.create_revision, r1);
  EXPECT_EQ(kv.mod_revision, r2);
  EXPECT_EQ(kv.version, 2);
  EXPECT_GE(got.value().header.revision, r2) << "a read's snapshot is past every answered write";

  // The past, by revision; the future is refused.
  auto old = c.Get(2, "k", "", r1);
  ASSERT_TRUE(old.ok()) << old.error().message;
  ASSERT_EQ(old.value().kvs.size(), 1u);
  EXPECT_EQ(old.value().kvs[0].value, "v1");
  auto before = c.Get(0, "k", "", r1 - 1);
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before.value().kvs.empty());
  auto future = c.Get(0, "k", "", got.value().header.revision + (int64_t{1} << 40));
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.error().message, etcd_errors::FutureRev().message);
}

TEST(ClusterKvTest, ATxnOverEveryShardIsAtomicAtOneRevision) {
  ThreeNodes c;
  const auto keys = EtcdKeysOnEveryShard(c.cluster().member(0).map());
  ASSERT_EQ(keys.size(), 3u);
  TxnRequest t;
  t.compare.push_back(Cmp(keys[0], CompareTarget::kVersion, CompareResult::kEqual, 0));
  for (const auto& k : keys) t.success.push_back(PutOp(k, "x"));
  t.failure.push_back(GetOp(keys[0]));
  auto r = c.Txn(1, t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().succeeded);
  const int64_t rev = r.value().header.revision;
  for (const auto& op : r.value().responses) {
    EXPECT_EQ(std::get<PutResponse>(op.response).header.revision, rev);
  }
  auto all = c.Get(2, "k", std::string(1, '\0'));
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all.value().kvs.size(), 3u);
  for (const auto& kv : all.value().kvs) {
    EXPECT_EQ(kv.mod_revision, rev);
    EXPECT_EQ(kv.create_revision, rev);
  }
  // The compare no longer holds: the failure branch reads at the snapshot.
  auto again = c.Txn(0, t);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again.value().succeeded);
  const auto& read = std::get<RangeResponse>(again.value().responses[0].response);
  ASSERT_EQ(read.kvs.size(), 1u);
  EXPECT_EQ(read.kvs[0].mod_revision, rev);
  // A delete over every shard, with what it removed.
  auto gone = c.Delete(0, "k", "l");
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_EQ(gone.value().deleted, 3);
  EXPECT_EQ(gone.value().prev_kvs.size(), 3u);
  EXPECT_GT(gone.value().header.revision, rev);
  EXPECT_EQ(c.Get(1, "k", "l").value().count, 0);
}

TEST(ClusterKvTest, ARangeCountsEveryKeyButKeepsWhatItAnswers) {
  ThreeNodes c;
  for (int i = 0; i < 30; ++i) {
    char key[8];
    std::snprintf(key, sizeof key, "r%02d", i);
    ASSERT_TRUE(c.Put(i % 3, key, "value").ok());
  }
  auto range = [&](auto shape) {
    RangeRequest r;
    r.span = {"r", "s"};
    shape(r);
    return c.Run<RangeResponse>([&](auto done) { c.kv(1).Range(r, done); });
  };
  auto limited = range([](RangeRequest& r) { r.limit = 5; });
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited.value().count, 30);
  EXPECT_TRUE(limited.value().more);
  ASSERT_EQ(limited.value().kvs.size(), 5u);
  EXPECT_EQ(limited.value().kvs[4].key, "r04");
  auto counted = range([](RangeRequest& r) { r.count_only = true; });
  EXPECT_EQ(counted.value().count, 30);
  EXPECT_TRUE(counted.value().kvs.empty());
  auto keys = range([](RangeRequest& r) { r.keys_only = true; });
  ASSERT_EQ(keys.value().kvs.size(), 30u);
  EXPECT_EQ(keys.value().kvs[0].value, "");
  auto sorted = range([](RangeRequest& r) {
    r.limit = 2;
    r.sort_order = SortOrder::kDescend;
  });
  ASSERT_EQ(sorted.value().kvs.size(), 2u);
  EXPECT_EQ(sorted.value().kvs[0].key, "r29") << "a sort sees every key before the limit";
}

TEST(ClusterKvTest, ConcurrentCompareAndSetsSerialize) {
  // Ten Txns "if x has version 0, create it with my name", started at once
  // on every node: exactly one creates it, the others see it (a lost
  // conflict is retried from a new snapshot, where the compare fails).
  ThreeNodes c;
  std::vector<TxnRequest> requests(10);
  for (int i = 0; i < 10; ++i) {
    requests[i].compare.push_back(Cmp("x", CompareTarget::kVersion, CompareResult::kEqual, 0));
    requests[i].success.push_back(PutOp("x", "writer" + std::to_string(i)));
  }
  const std::vector<Reply<TxnResponse>> out = c.TxnsAtOnce(requests);
  int succeeded = 0;
  std::string winner;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(out[i].ok()) << out[i].error().message;
    if (out[i].value().succeeded) {
      ++succeeded;
      winner = "writer" + std::to_string(i);
    }
  }
  EXPECT_EQ(succeeded, 1);
  auto x = c.Get(0, "x");
  ASSERT_EQ(x.value().kvs.size(), 1u);
  EXPECT_EQ(x.value().kvs[0].value, winner);
  EXPECT_EQ(x.value().kvs[0].version, 1);
}

TEST(ClusterKvTest, BlindWritersOfTheSameKeysBackOffAndAllCommit) {
  // Twenty Txns putting the same two keys, started at once on every node:
  // each lost conflict waits a random, growing time before its next
  // attempt, so every one commits, each at its own revision.
  ThreeNodes c({.forward = true, .backoff = true});
  std::vector<TxnRequest> requests(20);
  for (int i = 0; i < 20; ++i) {
    requests[i].success.push_back(PutOp("a", "writer" + std::to_string(i)));
    requests[i].success.push_back(PutOp("b", "writer" + std::to_string(i)));
  }
  std::set<int64_t> revisions;
  for (const auto& o : c.TxnsAtOnce(requests)) {
    ASSERT_TRUE(o.ok()) << o.error().message;
    revisions.insert(o.value().header.revision);
  }
  EXPECT_EQ(revisions.size(), 20u);
  uint64_t conflicts = 0;
  for (int i = 0; i < 3; ++i) conflicts += c.cluster().member(i).coordinator().Stats().conflicts;
  EXPECT_GT(conflicts, 0u) << "no writer lost a conflict, so none backed off";
  auto a = c.Get(0, "a"), b = c.Get(1, "b");
  ASSERT_EQ(a.value().kvs.size(), 1u);
  ASSERT_EQ(b.value().kvs.size(), 1u);
  EXPECT_EQ(a.value().kvs[0].version, 20);
  EXPECT_EQ(a.value().kvs[0].value, b.value().kvs[0].value) << "the last writer wrote both";
  EXPECT_EQ(a.value().kvs[0].mod_revision, *revisions.rbegin());
}

TEST(ClusterKvTest, ARangeAnswersOnlyOnceEveryShardHasResolvedItsRevision) {
  // A two-phase commit prepared on member 2's shard, its outcome not known
  // yet, and a Range of a key on member 1's shard, which it does not touch:
  // the transaction may still commit below the Range's revision, so the
  // Range may not answer (a watch from its revision + 1 would miss it).
  ThreeNodes c;
  cluster::Member& m2 = c.cluster().member(2);
  c.cluster().SetNow();
  const auto keys = EtcdKeysOnEveryShard(m2.map());
  const cluster::TxnId txn{m2.coordinator().FreshTimestamp().value(), 2};
  cluster::PrepareRequest prepare;
  prepare.txn = txn;
  prepare.start = m2.LastTimestamp();
  prepare.isolation = Isolation::kSnapshot;
  prepare.primary = 2;
  prepare.writes.push_back({ClusterKv::EngineKey(keys[2]), EncodeStoredValue({0, 1, 0, "late"})});
  std::optional<cluster::PeerReply> prepared;
  m2.OnRequest("n0", m2.LastTimestamp(), std::nullopt, cluster::ShardPrepare{prepare, {2}},
               [&](cluster::PeerReply r) { prepared = std::move(r); });
  ASSERT_TRUE(prepared && std::holds_alternative<cluster::PrepareReply>(*prepared));
  const Timestamp at = std::get<cluster::PrepareReply>(*prepared).prepare_timestamp;
  std::this_thread::sleep_for(std::chrono::milliseconds(3));  // the Range's snapshot is past it

  std::optional<Reply<RangeResponse>> range;
  RangeRequest request;
  request.span.key = keys[1];
  c.cluster().SetNow();
  c.kv(0).Range(request, [&](Reply<RangeResponse> r) { range.emplace(std::move(r)); });
  EXPECT_FALSE(
      c.cluster().RunUntil([&] { return range.has_value(); }, std::chrono::milliseconds(100)))
      << "answered while a commit at or below its revision was still possible";
  // The transaction commits below the Range's revision: then it answers.
  std::optional<cluster::PeerReply> resolved;
  m2.OnRequest("n0", m2.LastTimestamp(), std::nullopt,
               cluster::ShardResolve{txn, cluster::TxnStatus::kCommitted, at},
               [&](cluster::PeerReply r) { resolved = std::move(r); });
  ASSERT_TRUE(c.cluster().RunUntil([&] { return range.has_value(); }));
  ASSERT_TRUE(range->ok()) << range->error().message;
  EXPECT_GT(range->value().header.revision, static_cast<int64_t>(at.value()));
  // The commit it waited for is below its revision, and final.
  auto seen = c.Get(2, keys[2], "", range->value().header.revision);
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  ASSERT_EQ(seen.value().kvs.size(), 1u);
  EXPECT_EQ(seen.value().kvs[0].value, "late");
  EXPECT_GT(c.cluster().member(0).resolved_frontier().stats().rounds, 1u);
}

TEST(ClusterKvTest, ManyPutsOfOneKeyAtOnceCommitInTurnWithoutAConflict) {
  // Each runs on the key's owner (forwarded there), which runs the writes
  // of one key one after another: none conflicts, none backs off, none
  // runs out of attempts.
  ThreeNodes c({.forward = true, .backoff = true});
  std::vector<TxnRequest> requests(150);
  for (int i = 0; i < 150; ++i) requests[i].success.push_back(PutOp("hot", std::to_string(i)));
  std::set<int64_t> revisions;
  for (const auto& o : c.TxnsAtOnce(requests)) {
    ASSERT_TRUE(o.ok()) << o.error().message;
    revisions.insert(o.value().header.revision);
  }
  EXPECT_EQ(revisions.size(), 150u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.cluster().member(i).coordinator().Stats().conflicts, 0u) << "member " << i;
  }
  auto hot = c.Get(2, "hot");
  ASSERT_EQ(hot.value().kvs.size(), 1u);
  EXPECT_EQ(hot.value().kvs[0].version, 150);
  EXPECT_EQ(hot.value().kvs[0].mod_revision, *revisions.rbegin());
}

TEST(ClusterKvTest, WritesReadAtTheirShardsClocksAndOnesThatChangeNothingReadAfresh) {
  // Not forwarded, as over replicated shards: each member runs its writes.
  ThreeNodes c({.forward = false, .backoff = true, .at_shard_clocks = true});
  auto reads_at_closed = [&c] {
    uint64_t n = 0;
    for (int i = 0; i < 3; ++i) n += c.cluster().member(i).shard_server()->Stats().reads_at_closed;
    return n;
  };
  const std::vector<std::string> keys = EtcdKeysOnEveryShard(c.cluster().member(0).map());
  int64_t newest = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto put = c.Put(static_cast<int>(i % 3), keys[i], "v" + std::to_string(i));
    ASSERT_TRUE(put.ok()) << put.error().message;
    EXPECT_GT(put.value().header.revision, newest);
    newest = put.value().header.revision;
  }
  EXPECT_EQ(reads_at_closed(), keys.size()) << "one read of a shard's clock a put";
  // A Txn whose compare fails changes nothing: answered at a fresh
  // revision, not below the puts it follows.
  TxnRequest t;
  t.compare.push_back(Cmp(keys[0], CompareTarget::kValue, CompareResult::kEqual, 0, "other"));
  t.success.push_back(PutOp(keys[0], "no"));
  t.failure.push_back(GetOp(keys[0]));
  auto failed = c.Txn(1, t);
  ASSERT_TRUE(failed.ok()) << failed.error().message;
  EXPECT_FALSE(failed.value().succeeded);
  EXPECT_GE(failed.value().header.revision, newest);
  EXPECT_EQ(c.kv(1).writes_read_afresh(), 1u);
  // One that writes: its read's revision is the one before its commit.
  t.compare[0] = Cmp(keys[0], CompareTarget::kValue, CompareResult::kEqual, 0, "v0");
  t.success = {GetOp(keys[0]), PutOp(keys[0], "yes")};
  auto written = c.Txn(2, t);
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_TRUE(written.value().succeeded);
  const auto& read = std::get<RangeResponse>(written.value().responses[0].response);
  EXPECT_EQ(read.header.revision, written.value().header.revision - 1);
  EXPECT_EQ(read.kvs.at(0).value, "v0");
  // Ten writers of one key on every member at once: conflicts, and all
  // commit in the end, each at its own revision.
  std::vector<TxnRequest> hot(10);
  for (int i = 0; i < 10; ++i) hot[i].success.push_back(PutOp("hot", std::to_string(i)));
  std::set<int64_t> revisions;
  for (const auto& o : c.TxnsAtOnce(hot)) {
    ASSERT_TRUE(o.ok()) << o.error().message;
    revisions.insert(o.value().header.revision);
  }
  EXPECT_EQ(revisions.size(), 10u);
  EXPECT_EQ(c.Get(0, "hot").value().kvs.at(0).version, 10);
}

TEST(ClusterKvTest, AWriteToAnotherMembersKeysRunsThereOnceThoughEveryMessageIsDuplicated) {
  for (const bool forward : {true, false}) {
    SCOPED_TRACE(forward ? "forwarded" : "run where called");
    ThreeNodes c({.forward = forward});
    c.cluster().DuplicateRequests(true);
    const auto keys = EtcdKeysOnEveryShard(c.cluster().member(0).map());
    for (const std::string& key : keys) {
      ASSERT_TRUE(c.Put(0, key, "v1").ok());
      auto second = c.Put(0, key, "v2");
      ASSERT_TRUE(second.ok()) << second.error().message;
      ASSERT_TRUE(second.value().prev_kv);
      EXPECT_EQ(second.value().prev_kv->version, 1) << "the first put ran once";
      // A compare-and-set answers what it did, not what a second run saw.
      TxnRequest cas;
      cas.compare.push_back(Cmp(key, CompareTarget::kVersion, CompareResult::kEqual, 2));
      cas.success.push_back(PutOp(key, "v3"));
      auto swapped = c.Txn(0, cas);
      ASSERT_TRUE(swapped.ok()) << swapped.error().message;
      EXPECT_TRUE(swapped.value().succeeded);
      auto deleted = c.Delete(0, key, "");
      ASSERT_TRUE(deleted.ok());
      EXPECT_EQ(deleted.value().deleted, 1);
      ASSERT_EQ(deleted.value().prev_kvs.size(), 1u);
      EXPECT_EQ(deleted.value().prev_kvs[0].version, 3);
      EXPECT_EQ(deleted.value().prev_kvs[0].value, "v3");
    }
    // Member 0 owns one of the three shards: the writes to the other two
    // were forwarded (4 each), or none was.
    EXPECT_EQ(c.codec().writes(), forward ? 8u : 0u);
  }
}

TEST(ClusterKvTest, CompactionRefusesThePastAndAPutNamingAMissingLeaseIsRefused) {
  ThreeNodes c;
  const int64_t r1 = c.Put(0, "a", "1").value().header.revision;
  const int64_t r2 = c.Put(0, "a", "2").value().header.revision;
  auto compacted = c.Compact(1, r2);
  ASSERT_TRUE(compacted.ok()) << compacted.error().message;
  auto old = c.Get(1, "a", "", r1);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().message, etcd_errors::Compacted().message);
  EXPECT_EQ(c.Compact(1, r1).error().message, etcd_errors::Compacted().message);
  EXPECT_EQ(c.Get(2, "a").value().kvs.at(0).value, "2");

  PutRequest leased;
  leased.key = "b";
  leased.lease = 7;
  auto r = c.Run<PutResponse>([&](auto done) { c.kv(0).Put(leased, done); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, etcd_errors::LeaseNotFound().message);
}

TEST(ClusterKvTest, AnUnreachableShardTimesOutAsEtcdDoes) {
  ThreeNodes c({.rpc_timeout = std::chrono::milliseconds(500)});
  const auto keys = EtcdKeysOnEveryShard(c.cluster().member(0).map());
  c.cluster().Isolate(2, true);
  std::optional<Reply<PutResponse>> out;
  PutRequest p;
  p.key = keys[2];
  p.value = "v";
  c.kv(0).Put(p, [&](Reply<PutResponse> r) { out.emplace(std::move(r)); });
  ASSERT_TRUE(c.cluster().RunUntil([&] { return out.has_value(); }, std::chrono::seconds(5)));
  ASSERT_FALSE(out->ok());
  EXPECT_EQ(out->error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(out->error().message, "etcdserver: request timed out");
}

// --- strata.v1's interactive transactions over the cluster (ClusterTxns) ---

// ClusterTxns on member 0 of three, with synchronous helpers.
class InteractiveOnThree {
 public:
  InteractiveOnThree() : txns_(&c.cluster().member(0).coordinator(), &c.kv(0)) {}

  uint64_t Begin(TxnIsolation isolation = TxnIsolation::kSerializable, int64_t revision = 0) {
    auto begun = txns_.Begin(isolation, revision, "");
    EXPECT_TRUE(begun.ok()) << begun.error().message;
    return begun.ok() ? begun.value().id : 0;
  }
  Reply<TxnRead> Get(uint64_t id, const std::string& key) {
    return c.Run<TxnRead>([&](auto done) { txns_.Get(id, key, done); });
  }
  Reply<RangeResponse> Range(uint64_t id, const std::string& key, const std::string& end,
                             int64_t limit) {
    return c.Run<RangeResponse>([&](auto done) { txns_.Range(id, {key, end}, limit, done); });
  }
  Reply<int64_t> Commit(uint64_t id) {
    return c.Run<int64_t>([&](auto done) { txns_.Commit(id, done); });
  }

  ThreeNodes c;
  ClusterTxns txns_;
};

TEST(ClusterTxnsTest, ReadsItsOwnWritesOverTheSnapshotAndCommitsThemAtOneRevision) {
  InteractiveOnThree t;
  const auto keys = EtcdKeysOnEveryShard(t.c.cluster().member(0).map());
  ASSERT_TRUE(t.c.Put(1, keys[0], "old").ok());
  ASSERT_TRUE(t.c.Put(1, keys[1], "gone").ok());
  const uint64_t id = t.Begin();
  EXPECT_EQ(t.Get(id, keys[0]).value().kv->value, "old");
  ASSERT_TRUE(t.txns_.Put(id, keys[0], "new").ok());
  ASSERT_TRUE(t.txns_.Delete(id, keys[1]).ok());
  ASSERT_TRUE(t.txns_.Put(id, keys[2], "fresh").ok());
  auto own = t.Get(id, keys[0]);
  EXPECT_TRUE(own.value().own_write);
  EXPECT_EQ(own.value().kv->value, "new");
  // Every shard's keys, own writes laid over them, cut at the limit.
  auto range = t.Range(id, "k", "l", 0);
  ASSERT_TRUE(range.ok()) << range.error().message;
  std::vector<std::string> seen;
  for (const auto& kv : range.value().kvs) seen.push_back(kv.key + "=" + kv.value);
  std::vector<std::string> want = {keys[0] + "=new", keys[2] + "=fresh"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(seen, want);
  EXPECT_EQ(t.Range(id, "k", "l", 1).value().kvs.size(), 1u);
  EXPECT_TRUE(t.Range(id, "k", "l", 1).value().more);

  auto committed = t.Commit(id);
  ASSERT_TRUE(committed.ok()) << committed.error().message;
  for (const std::string& key : {keys[0], keys[2]}) {
    const KeyValue kv = t.c.Get(2, key).value().kvs.at(0);
    EXPECT_EQ(kv.mod_revision, committed.value()) << key;
  }
  EXPECT_EQ(t.c.Get(2, keys[0]).value().kvs.at(0).version, 2);
  EXPECT_TRUE(t.c.Get(2, keys[1]).value().kvs.empty());
  EXPECT_EQ(t.txns_.Stats().commits, 1u);
  EXPECT_EQ(t.Commit(id).error().code, ErrorCode::kNotFound) << "it ended";
}

TEST(ClusterTxnsTest, SerializableRefusesWriteSkewWhichSnapshotIsolationAllows) {
  for (const TxnIsolation isolation : {TxnIsolation::kSerializable, TxnIsolation::kSnapshot}) {
    InteractiveOnThree t;
    const auto keys = EtcdKeysOnEveryShard(t.c.cluster().member(0).map());
    const std::string x = keys[1], y = keys[2];  // both on other members' shards
    ASSERT_TRUE(t.c.Put(0, x, "1").ok());
    ASSERT_TRUE(t.c.Put(0, y, "1").ok());
    // Each reads both and clears the other: together they break x + y >= 1.
    const uint64_t a = t.Begin(isolation), b = t.Begin(isolation);
    for (uint64_t id : {a, b}) {
      ASSERT_TRUE(t.Get(id, x).ok());
      ASSERT_TRUE(t.Get(id, y).ok());
    }
    ASSERT_TRUE(t.txns_.Put(a, x, "0").ok());
    ASSERT_TRUE(t.txns_.Put(b, y, "0").ok());
    ASSERT_TRUE(t.Commit(a).ok());
    auto second = t.Commit(b);
    if (isolation == TxnIsolation::kSerializable) {
      ASSERT_FALSE(second.ok());
      EXPECT_EQ(second.error().code, ErrorCode::kAborted);
      EXPECT_NE(second.error().message.find("transaction conflict"), std::string::npos);
      EXPECT_EQ(t.txns_.Stats().conflicts, 1u);
    } else {
      EXPECT_TRUE(second.ok()) << "snapshot isolation allows write skew";
    }
  }
}

TEST(ClusterTxnsTest, APastRevisionIsReadOnlyAndUnknownIdsAreRefused) {
  InteractiveOnThree t;
  const int64_t r1 = t.c.Put(0, "p", "1").value().header.revision;
  ASSERT_TRUE(t.c.Put(0, "p", "2").ok());
  const uint64_t id = t.Begin(TxnIsolation::kSerializable, r1);
  EXPECT_EQ(t.Get(id, "p").value().kv->value, "1");
  EXPECT_EQ(t.txns_.Put(id, "p", "3").error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(t.Commit(id).value(), r1);
  EXPECT_EQ(t.Get(12345, "p").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(t.txns_.Abort(12345).error().code, ErrorCode::kNotFound);
  auto stats = t.txns_.Stats();
  EXPECT_EQ(stats.active, 0u);
  const uint64_t open = t.Begin();
  stats = t.txns_.Stats();
  EXPECT_EQ(stats.active, 1u);
  EXPECT_EQ(stats.oldest_txn_id, open);
}

// Without replicas of every shard here (this cluster has none), a follower
// read reads the newest snapshot, like any read, read-only; it sees a
// write acknowledged before it began.
TEST(ClusterTxnsTest, AFollowerReadWithoutReplicasHereReadsTheNewestSnapshot) {
  InteractiveOnThree t;
  const int64_t written = t.c.Put(1, "f", "1").value().header.revision;
  auto begun = t.txns_.Begin(TxnIsolation::kSerializable, 0, "", FollowerRead{true, written});
  ASSERT_TRUE(begun.ok()) << begun.error().message;
  EXPECT_GE(begun.value().read_revision, written);
  EXPECT_EQ(t.Get(begun.value().id, "f").value().kv->value, "1");
  EXPECT_EQ(t.txns_.Put(begun.value().id, "f", "2").error().code, ErrorCode::kFailedPrecondition);
  auto ahead = t.txns_.Begin(TxnIsolation::kSerializable, 0, "",
                             FollowerRead{true, t.c.kv(0).current_revision() + 1000000000});
  ASSERT_FALSE(ahead.ok());
  EXPECT_EQ(ahead.error().code, ErrorCode::kOutOfRange);
}

// --- the property: a cluster answers as one node does ----------------------

// Renders a reply with each revision as its position among the writes so
// far (how many writes had a revision at or below it): one node's dense
// revisions and the cluster's timestamps then read the same.
class Renderer {
 public:
  explicit Renderer(const std::vector<int64_t>& writes) : writes_(writes) {}
  std::string operator()(const RangeResponse& r) const {
    std::ostringstream o;
    o << "range@" << Pos(r.header.revision) << " count=" << r.count << " more=" << r.more;
    for (const auto& kv : r.kvs) o << " " << Kv(kv);
    return o.str();
  }
  std::string operator()(const PutResponse& r) const {
    return "put@" + std::to_string(Pos(r.header.revision)) +
           (r.prev_kv ? " prev=" + Kv(*r.prev_kv) : std::string());
  }
  std::string operator()(const DeleteRangeResponse& r) const {
    std::string s =
        "delete@" + std::to_string(Pos(r.header.revision)) + " n=" + std::to_string(r.deleted);
    for (const auto& kv : r.prev_kvs) s += " " + Kv(kv);
    return s;
  }
  std::string operator()(const TxnResponse& r) const {
    std::string s =
        "txn@" + std::to_string(Pos(r.header.revision)) + (r.succeeded ? " then[" : " else[");
    for (const auto& op : r.responses) {
      s += std::visit(
               [&](const auto& v) -> std::string {
                 if constexpr (std::is_same_v<std::decay_t<decltype(v)>,
                                              std::shared_ptr<TxnResponse>>) {
                   return (*this)(*v);
                 } else {
                   return (*this)(v);
                 }
               },
               op.response) +
           ";";
    }
    return s + "]";
  }

 private:
  int64_t Pos(int64_t revision) const {
    if (revision == 0) return 0;
    return std::upper_bound(writes_.begin(), writes_.end(), revision) - writes_.begin();
  }
  std::string Kv(const KeyValue& kv) const {
    return kv.key + "=" + kv.value + "/c" + std::to_string(Pos(kv.create_revision)) + "/m" +
           std::to_string(Pos(kv.mod_revision)) + "/v" + std::to_string(kv.version);
  }
  const std::vector<int64_t>& writes_;
};

std::string AnyKey() { return *rc::gen::element<std::string>("a", "b", "c", "d", "e"); }

RequestOp AnyOp(int depth) {
  switch (*rc::gen::inRange(0, depth > 0 ? 4 : 3)) {
    case 0:
      return PutOp(AnyKey(), *rc::gen::element<std::string>("1", "2", "3"));
    case 1:
      return *rc::gen::arbitrary<bool>() ? DeleteOp(AnyKey()) : DeleteOp("b", "d");
    case 2:
      return *rc::gen::arbitrary<bool>() ? GetOp(AnyKey()) : GetOp("a", std::string(1, '\0'));
    default: {
      auto nested = std::make_shared<TxnRequest>();
      nested->compare.push_back(
          Cmp(AnyKey(), CompareTarget::kValue, CompareResult::kEqual, 0, "1"));
      nested->success.push_back(AnyOp(depth - 1));
      nested->failure.push_back(AnyOp(depth - 1));
      return {nested};
    }
  }
}

// Random Txns on random members of `cluster` answer as one node's do.
void CheckAnswersAsOneNode(ThreeNodes& cluster) {
  testing::MemoryKv one;
  std::vector<int64_t> one_writes, cluster_writes;
  const int steps = *rc::gen::inRange(1, 12);
  for (int step = 0; step < steps; ++step) {
    const int node = *rc::gen::inRange(0, 3);
    TxnRequest t;
    if (*rc::gen::arbitrary<bool>()) {
      t.compare.push_back(Cmp(AnyKey(), CompareTarget::kVersion, CompareResult::kGreater, 0));
    }
    const int ops = *rc::gen::inRange(1, 4);
    for (int i = 0; i < ops; ++i) t.success.push_back(AnyOp(1));
    t.failure.push_back(AnyOp(1));
    // etcd refuses a key written twice in one branch: such a Txn is
    // refused alike, by the same check.
    auto a = one.Txn(t);
    auto b = cluster.Txn(node, t);
    RC_LOG() << "step " << step << " errors: one node '" << (a.ok() ? "" : a.error().message)
             << "', cluster '" << (b.ok() ? "" : b.error().message) << "'\n";
    RC_ASSERT(a.ok() == b.ok());
    if (!a.ok()) {
      RC_ASSERT(a.error().message == b.error().message);
      continue;
    }
    const int64_t one_before = one_writes.empty() ? 1 : one_writes.back();
    if (a.value().header.revision > one_before) {
      one_writes.push_back(a.value().header.revision);
      cluster_writes.push_back(b.value().header.revision);
      // (Computed first: RC_ASSERT's operands are all evaluated.)
      const bool rising = cluster_writes.size() < 2 ||
                          cluster_writes.back() > cluster_writes[cluster_writes.size() - 2];
      RC_ASSERT(rising);
    }
    const std::string want = Renderer(one_writes)(a.value());
    const std::string got = Renderer(cluster_writes)(b.value());
    RC_LOG() << "step " << step << ": one node " << want << "\n  cluster  " << got << "\n";
    RC_ASSERT(want == got);
    auto all_one = one.Get("a", std::string(1, '\0'));
    auto all_cluster = cluster.Get((node + 1) % 3, "a", std::string(1, '\0'));
    RC_ASSERT(all_cluster.ok());
    const std::string want_all = Renderer(one_writes)(all_one.value());
    const std::string got_all = Renderer(cluster_writes)(all_cluster.value());
    RC_LOG() << "  then one node " << want_all << "\n  cluster  " << got_all << "\n";
    RC_ASSERT(want_all == got_all);
  }
}

RC_GTEST_PROP(ClusterKvProperty, AnswersAsOneNodeDoes, ()) {
  ThreeNodes cluster;
  CheckAnswersAsOneNode(cluster);
}

// Writes that read at their shards' clocks, checked by their commits, and
// that answer from a fresh snapshot when they change nothing, answer the
// same (their reads' revisions too: the one before the commit's).
RC_GTEST_PROP(ClusterKvProperty, AnswersAsOneNodeDoesReadingWritesAtShardClocks, ()) {
  ThreeNodes cluster({.forward = false, .at_shard_clocks = true});
  CheckAnswersAsOneNode(cluster);
}

// The same over messages that travel as strata-server's peer links carry
// them: every request and reply the roles construct (the resolved
// frontier's probes, reads at a shard's clock, forwards, ...) survives the
// codec a real network uses, which the typed messages above skip (a probe
// of limit 0 once passed here and was refused by both codecs).
RC_GTEST_PROP(ClusterKvProperty, AnswersAsOneNodeDoesOverThePeerLinksCodec, ()) {
  ThreeNodes forwarded({.forward = true, .peer_links = true});
  CheckAnswersAsOneNode(forwarded);
  ThreeNodes at_shard_clocks({.forward = false, .at_shard_clocks = true, .peer_links = true});
  CheckAnswersAsOneNode(at_shard_clocks);
}

}  // namespace cluster_kv_test
}  // namespace strata::service
