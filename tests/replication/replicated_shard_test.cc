// ReplicatedShard: a shard's transactional state as a Raft group's state.
// Replicas applying the same commands agree byte for byte whatever their
// own clocks say; timestamps rise in log order; snapshots carry intents,
// records and outcomes; and over RaftHosts with loss, crashes and
// snapshots no acknowledged commit and no acknowledged prepare is lost.
#include "cluster/replicated_shard.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "host_cluster.h"

namespace strata::replication {
namespace replicated_shard_test {

using cluster::CommitReply;
using cluster::PeerError;
using cluster::PeerReply;
using cluster::PrepareReply;
using cluster::PrepareRequest;
using cluster::RecordCall;
using cluster::RecordOp;
using cluster::RecordReply;
using cluster::ReplicatedShard;
using cluster::ReplicatedShardOptions;
using cluster::ShardCommit;
using cluster::ShardPrepare;
using cluster::ShardResolve;
using cluster::TxnId;
using cluster::TxnStatus;
using HLC = cluster::HybridLogicalClock;

constexpr uint64_t kWallMs = 1'000'000;

ReplicatedShardOptions Options(std::chrono::hours steady_offset = std::chrono::hours(0)) {
  ReplicatedShardOptions options;
  options.shard = 0;
  options.residue = 3;
  // Each replica's own time differs; nothing replicated may depend on it.
  options.steady_now = [steady_offset] { return std::chrono::steady_clock::now() + steady_offset; };
  return options;
}

TxnId Txn(uint64_t n, uint64_t ms = kWallMs) { return TxnId{HLC::Make(ms, n).value(), 1}; }

PrepareRequest Request(TxnId txn, std::vector<BatchWrite> writes, Timestamp start,
                       std::vector<std::string> read_keys = {}) {
  PrepareRequest request;
  request.txn = txn;
  request.start = start;
  request.primary = 0;
  request.writes = std::move(writes);
  request.read_keys = std::move(read_keys);
  return request;
}

std::string PrepareCmd(const PrepareRequest& request, uint64_t ms = kWallMs) {
  return ReplicatedShard::PrepareCommand(ShardPrepare{request, {0}}, ms, ms);
}
std::string CommitCmd(PrepareRequest request, uint64_t ms = kWallMs) {
  return ReplicatedShard::CommitCommand(ShardCommit{std::move(request)}, ms, ms);
}
std::string ResolveCmd(TxnId txn, TxnStatus outcome, Timestamp at, uint64_t ms = kWallMs) {
  return ReplicatedShard::ResolveCommand(ShardResolve{txn, outcome, at}, ms);
}
std::string RecordCmd(RecordOp op, TxnId txn, Timestamp at = Timestamp(), uint64_t ms = kWallMs) {
  return ReplicatedShard::RecordCommand(RecordCall{op, txn, at}, ms);
}

Timestamp Prepared(const std::string& reply) {
  PeerReply decoded = ReplicatedShard::DecodeReply(reply);
  const auto* prepared = std::get_if<PrepareReply>(&decoded);
  EXPECT_NE(prepared, nullptr) << "not a prepare's reply";
  return prepared ? prepared->prepare_timestamp : Timestamp();
}
Timestamp Committed(const std::string& reply) {
  PeerReply decoded = ReplicatedShard::DecodeReply(reply);
  const auto* committed = std::get_if<CommitReply>(&decoded);
  EXPECT_NE(committed, nullptr) << "not a commit's reply";
  return committed ? committed->commit_timestamp : Timestamp();
}
Status ErrorOf(const std::string& reply) {
  PeerReply decoded = ReplicatedShard::DecodeReply(reply);
  const auto* error = std::get_if<PeerError>(&decoded);
  return error ? error->status : Status::Ok();
}

std::string ValueAt(const ReplicatedShard& shard, const std::string& key, Timestamp at) {
  Result<ReadResult> read = shard.store().Get(key, at);
  if (!read.ok() || !read->found) return "";
  return read->value;
}

// A mix of every command, applied to two replicas whose own clocks differ
// by an hour: the same replies and the same snapshot bytes.
TEST(ReplicatedShardTest, ReplicasApplyingTheSameCommandsAgree) {
  ReplicatedShard one(Options()), two(Options(std::chrono::hours(1)));
  std::vector<std::string> log;
  log.push_back(CommitCmd(Request(Txn(1), {{"a", "1"}}, Timestamp())));
  log.push_back(PrepareCmd(Request(Txn(2), {{"b", "2"}}, HLC::Make(kWallMs, 100), {"a"})));
  log.push_back(PrepareCmd(Request(Txn(3), {{"b", "3"}}, HLC::Make(kWallMs, 100))));  // conflicts
  log.push_back(RecordCmd(RecordOp::kCommit, Txn(2), HLC::Make(kWallMs + 5, 0)));
  log.push_back(ResolveCmd(Txn(2), TxnStatus::kCommitted, HLC::Make(kWallMs + 5, 0)));
  log.push_back(RecordCmd(RecordOp::kForget, Txn(2)));
  log.push_back(ReplicatedShard::CloseCommand(HLC::Make(kWallMs + 50, 0), kWallMs));
  log.push_back(ReplicatedShard::CompactCommand(HLC::Make(kWallMs + 1, 0), kWallMs));
  log.push_back("\x07garbage");
  log.push_back("");
  for (const std::string& command : log) {
    EXPECT_EQ(one.Apply(0, command), two.Apply(0, command));
  }
  EXPECT_EQ(one.Save(), two.Save());
  EXPECT_EQ(ErrorOf(one.Apply(0, log[2])).code(), StatusCode::kConflict);
  EXPECT_EQ(one.commands_refused(), 2u);
  EXPECT_EQ(ValueAt(one, "b", Timestamp::Max()), "2");
  EXPECT_EQ(one.participant().GetIntentStats(std::chrono::steady_clock::now()).intents, 0u);
  EXPECT_FALSE(one.records().Find(Txn(2)).has_value());  // forgotten
  EXPECT_TRUE(one.records().Find(Txn(3)).has_value());   // left ABORTED by its failed prepare
  EXPECT_EQ(one.records().Find(Txn(3))->status, TxnStatus::kAborted);
}

// Timestamps come from the replicated clock: never below one applied
// earlier, whatever the proposer's wall clock, and above a close.
TEST(ReplicatedShardTest, TimestampsRiseInLogOrderWhateverTheProposersClock) {
  ReplicatedShard shard(Options());
  const Timestamp first =
      Committed(shard.Apply(0, CommitCmd(Request(Txn(1), {{"k", "1"}}, {}), kWallMs + 100)));
  EXPECT_EQ(HLC::PhysicalMillis(first), kWallMs + 100);
  EXPECT_EQ(first.value() % HLC::kMaxNodes, 3u);  // the residue
  // An old leader's proposal, applied after: a later timestamp all the same.
  const Timestamp second =
      Committed(shard.Apply(0, CommitCmd(Request(Txn(2), {{"k", "2"}}, first), kWallMs)));
  EXPECT_GT(second, first);
  EXPECT_EQ(shard.closed(), second);
  const Timestamp closed = HLC::Make(kWallMs + 500, 0);
  shard.Apply(0, ReplicatedShard::CloseCommand(closed, kWallMs));
  EXPECT_EQ(shard.closed(), closed);
  const Timestamp prepared =
      Prepared(shard.Apply(0, PrepareCmd(Request(Txn(3), {{"j", "x"}}, second), kWallMs)));
  EXPECT_GT(prepared, closed);
  // A read at `closed` is complete here: the prepare above it does not
  // block it, and the safe time stops just below that prepare.
  EXPECT_TRUE(shard.participant().BlockingIntents("j", closed).empty());
  EXPECT_EQ(shard.SafeTime(), Timestamp(prepared.value() - 1));
}

// A snapshot carries the store, the intents, the records and the
// outcomes: the restored replica goes on exactly as the one saved.
TEST(ReplicatedShardTest, ASnapshotCarriesIntentsRecordsAndOutcomes) {
  ReplicatedShard one(Options());
  one.Apply(0, CommitCmd(Request(Txn(1), {{"a", "1"}, {"gone", "x"}}, {})));
  one.Apply(0, CommitCmd(Request(Txn(2), {{"gone", std::nullopt}}, {}, {}), kWallMs + 1));
  const Timestamp prepared =
      Prepared(one.Apply(0, PrepareCmd(Request(Txn(3), {{"b", "2"}}, one.closed(), {"a"}))));
  one.Apply(0, RecordCmd(RecordOp::kAbort, Txn(4)));  // a record left ABORTED
  ReplicatedShard two(Options(std::chrono::hours(2)));
  ASSERT_TRUE(two.Restore(one.Save()).ok());
  EXPECT_EQ(two.Save(), one.Save());
  EXPECT_EQ(two.closed(), one.closed());
  EXPECT_EQ(two.participant().PrimaryOf(Txn(3)), 0u);
  EXPECT_EQ(two.records().Find(Txn(3))->status, TxnStatus::kPending);
  EXPECT_EQ(two.records().Find(Txn(4))->status, TxnStatus::kAborted);
  // A write to a read-locked key conflicts on both; a repeated one-phase
  // commit gets its timestamp back on both (the outcome came along).
  const std::string write_a = CommitCmd(Request(Txn(5), {{"a", "new"}}, two.closed()));
  EXPECT_EQ(ErrorOf(two.Apply(0, write_a)).code(), StatusCode::kConflict);
  EXPECT_EQ(ErrorOf(one.Apply(0, write_a)).code(), StatusCode::kConflict);
  const std::string again = CommitCmd(Request(Txn(1), {{"a", "1"}, {"gone", "x"}}, {}));
  EXPECT_EQ(one.Apply(0, again), two.Apply(0, again));
  const std::string resolve = ResolveCmd(Txn(3), TxnStatus::kCommitted, prepared);
  EXPECT_EQ(one.Apply(0, resolve), two.Apply(0, resolve));
  EXPECT_EQ(ValueAt(two, "b", prepared), "2");
  EXPECT_EQ(two.Save(), one.Save());

  std::string damaged = one.Save();
  EXPECT_EQ(two.Restore(damaged.substr(0, damaged.size() - 1)).code(),
            StatusCode::kInvalidArgument);
  damaged[2] ^= 1;
  EXPECT_EQ(two.Restore(damaged).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueAt(two, "b", prepared), "2");  // a refused snapshot changes nothing
  ASSERT_TRUE(two.Restore("").ok());
  EXPECT_EQ(ValueAt(two, "b", Timestamp::Max()), "");
}

// A shard restored from a backup starts from a store: its versions, its
// clock at their newest, nothing under way; every replica alike.
TEST(ReplicatedShardTest, AnInitialSnapshotStartsAShardFromAStore) {
  MvccStore store;
  ASSERT_TRUE(store.Put("a", "1", Timestamp(5)).ok());
  ASSERT_TRUE(store.Put("b", "x", Timestamp(7)).ok());
  ASSERT_TRUE(store.Put("a", "2", Timestamp(9)).ok());
  const std::string initial = ReplicatedShard::InitialSnapshot(store);
  ReplicatedShard one(Options());
  ReplicatedShard two(Options(std::chrono::hours(3)));
  ASSERT_TRUE(one.Restore(initial).ok());
  ASSERT_TRUE(two.Restore(initial).ok());
  EXPECT_EQ(one.Save(), two.Save());
  EXPECT_EQ(one.closed(), Timestamp(9));
  EXPECT_EQ(ValueAt(one, "a", Timestamp(5)), "1");
  EXPECT_EQ(ValueAt(one, "a", Timestamp(9)), "2");
  EXPECT_EQ(ValueAt(one, "b", Timestamp(9)), "x");
  EXPECT_TRUE(one.participant().PreparedTransactions().empty());
  // What commits next is above the restored history.
  const std::string write = CommitCmd(Request(Txn(1, 1), {{"a", "3"}}, one.closed()), 1);
  PeerReply committed = ReplicatedShard::DecodeReply(one.Apply(0, write));
  ASSERT_NE(std::get_if<CommitReply>(&committed), nullptr);
  EXPECT_GT(std::get<CommitReply>(committed).commit_timestamp, Timestamp(9));
  PeerReply on_two = ReplicatedShard::DecodeReply(two.Apply(0, write));
  ASSERT_NE(std::get_if<CommitReply>(&on_two), nullptr);
  EXPECT_EQ(std::get<CommitReply>(on_two).commit_timestamp,
            std::get<CommitReply>(committed).commit_timestamp);
  EXPECT_EQ(one.Save(), two.Save());
}

// A push and a heartbeat are the leader's (ReplicatedShardCore): proposed
// as commands, they are refused on every replica alike; the leader's push
// is an abort command.
TEST(ReplicatedShardTest, APushIsTheLeadersAbortNotACommand) {
  ReplicatedShard shard(Options());
  EXPECT_EQ(ErrorOf(shard.Apply(0, RecordCmd(RecordOp::kPush, Txn(1)))).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf(shard.Apply(0, RecordCmd(RecordOp::kHeartbeat, Txn(1)))).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(shard.commands_refused(), 0u);  // they decoded
  EXPECT_FALSE(shard.records().Find(Txn(1)).has_value());
  Prepared(shard.Apply(0, PrepareCmd(Request(Txn(2), {{"k", "v"}}, {}))));
  PeerReply reply =
      ReplicatedShard::DecodeReply(shard.Apply(0, RecordCmd(RecordOp::kAbort, Txn(2))));
  ASSERT_TRUE(std::holds_alternative<RecordReply>(reply));
  EXPECT_EQ(std::get<RecordReply>(reply).status, TxnStatus::kAborted);
  // The record is aborted, the intent stays until its resolution.
  EXPECT_EQ(shard.participant().PrimaryOf(Txn(2)), 0u);
}

// Commits go to the change log in apply order; a restore empties it and
// counts the restored store as evicted, so a watcher reads the store.
TEST(ReplicatedShardTest, TheChangeLogFollowsAppliesAndRestores) {
  ReplicatedShard one(Options());
  const Timestamp at = Committed(one.Apply(0, CommitCmd(Request(Txn(1), {{"a", "1"}}, {}))));
  auto page = one.change_log().Read(KeyRange::All(), Timestamp(), at, 0, 10);
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->changes.size(), 1u);
  EXPECT_EQ(page->changes[0].key, "a");
  ReplicatedShard two(Options());
  ASSERT_TRUE(two.Restore(one.Save()).ok());
  EXPECT_FALSE(two.change_log().Read(KeyRange::All(), Timestamp(), at, 0, 10).has_value());
  EXPECT_TRUE(two.change_log().Read(KeyRange::All(), at, at, 0, 10).has_value());
}

TEST(ReplicatedShardTest, RepliesThatDoNotDecodeAreErrors) {
  for (std::string bytes : {std::string(), std::string("\x09"), std::string("\x01\x80"),
                            std::string("\x00\x00\x01x", 4), std::string("\x03x")}) {
    PeerReply reply = ReplicatedShard::DecodeReply(bytes);
    ASSERT_TRUE(std::holds_alternative<PeerError>(reply)) << bytes.size();
  }
}

// --- over RaftHosts ---------------------------------------------------------------

// The hosts apply ReplicatedShards themselves (they are ReplicatedStates).
const ReplicatedShard& ShardOf(const ReplicatedState* state) {
  return *static_cast<const ReplicatedShard*>(state);
}

std::string ShardFingerprint(const ReplicatedState* state) {
  const ReplicatedShard& shard = ShardOf(state);
  return shard.closed() == Timestamp() ? "" : shard.Save();
}

// Random transactions proposed to whichever node the simulation picks
// (refused unless it leads): one-phase commits, prepares, and commits of
// acknowledged prepares through their record, then their resolution.
class ShardCluster : public HostCluster {
 public:
  explicit ShardCluster(uint32_t seed)
      : HostCluster(
            3, 1, seed, [](GroupId) { return std::make_unique<ReplicatedShard>(Options()); },
            ShardFingerprint, [this](HostCluster&, NodeId id, GroupId) { ProposeRandom(id); }) {}

  const ReplicatedShard& shard(NodeId id) { return ShardOf(host(id)->state(1)); }

  struct Write {
    std::string key, value;
    Timestamp at;
  };
  std::vector<Write> acknowledged;       // commits acknowledged
  std::map<TxnId, Timestamp> prepared;   // prepares acknowledged, not yet committed
  std::set<TxnId> committing;            // their commit proposed
  std::map<TxnId, std::string> own_key;  // each prepare writes a key of its own
  int conflicts = 0;

 private:
  uint64_t Ms() const { return kWallMs + next_ / 4; }

  void ProposeRandom(NodeId id) {
    const int kind = Pick(0, 9);
    const uint64_t n = ++next_;
    const TxnId txn = Txn(n % 60000, Ms());
    const std::string key = "k" + std::to_string(Pick(0, 7));
    const std::string value = "v" + std::to_string(n);
    if (kind < 4) {  // a one-phase blind write
      PrepareRequest request = Request(txn, {{key, value}}, Timestamp());
      request.blind = true;
      host(id)->Propose(1, CommitCmd(request, Ms()),
                        [this, key, value](Result<std::string> result) {
                          if (!result.ok()) return;
                          PeerReply reply = ReplicatedShard::DecodeReply(*result);
                          if (const auto* c = std::get_if<CommitReply>(&reply)) {
                            acknowledged.push_back({key, value, c->commit_timestamp});
                          } else {
                            ++conflicts;
                          }
                        });
    } else if (kind < 7) {  // a prepare of a key of its own
      const std::string own = "p" + std::to_string(n);
      own_key[txn] = own;
      host(id)->Propose(1, PrepareCmd(Request(txn, {{own, value}}, shard(id).closed()), Ms()),
                        [this, txn](Result<std::string> result) {
                          if (!result.ok()) return;
                          PeerReply reply = ReplicatedShard::DecodeReply(*result);
                          if (const auto* p = std::get_if<PrepareReply>(&reply)) {
                            prepared[txn] = p->prepare_timestamp;
                          }
                        });
    } else if (!prepared.empty()) {  // commit one through its record
      auto it = prepared.begin();
      std::advance(it, Pick(0, static_cast<int>(prepared.size()) - 1));
      const TxnId chosen = it->first;
      if (committing.count(chosen) != 0) return;
      const Timestamp at(it->second.value() + 1);
      host(id)->Propose(1, RecordCmd(RecordOp::kCommit, chosen, at, Ms()),
                        [](Result<std::string>) {});
      host(id)->Propose(1, ResolveCmd(chosen, TxnStatus::kCommitted, at, Ms()),
                        [this, chosen, at](Result<std::string> result) {
                          if (!result.ok()) return;
                          if (!ErrorOf(*result).ok()) return;
                          prepared.erase(chosen);
                          acknowledged.push_back({own_key[chosen], "", at});
                        });
      committing.insert(chosen);
    }
  }

  uint64_t next_ = 0;
};

int ShardSeeds() {
  const char* seeds = std::getenv("STRATA_REPLICATION_SEEDS");
  return seeds != nullptr ? std::atoi(seeds) / 5 : 40;
}

// Under loss, duplication, partitions, crashes (some mid-write) and
// snapshots: replicas agree byte for byte; every acknowledged commit is in
// every replica at its timestamp; every acknowledged prepare not committed
// is still prepared on every replica, its intent in place and its record
// PENDING or committed: a leader change loses no prepared transaction.
TEST(ReplicatedShardTest, NoAcknowledgedCommitOrPrepareIsLost) {
  int commits = 0, prepares_kept = 0, restored = 0;
  for (uint32_t seed = 1; seed <= static_cast<uint32_t>(ShardSeeds()); ++seed) {
    ShardCluster cluster(seed);
    for (int step = 0; step < 3000; ++step) cluster.Step();
    cluster.Heal();
    ASSERT_FALSE(testing::Test::HasFailure()) << "seed " << seed;
    for (NodeId id = 1; id <= 3; ++id) {
      const ReplicatedShard& shard = cluster.shard(id);
      ASSERT_EQ(shard.Save(), cluster.shard(1).Save()) << "seed " << seed << " node " << id;
      for (const auto& w : cluster.acknowledged) {
        if (w.value.empty()) {  // a resolved prepare: its intent is a version now
          Result<ReadResult> read = shard.store().Get(w.key, w.at);
          ASSERT_TRUE(read.ok() && read->found && read->timestamp == w.at)
              << "seed " << seed << " node " << id << ": " << w.key;
          continue;
        }
        Result<ReadResult> read = shard.store().Get(w.key, w.at);
        ASSERT_TRUE(read.ok() && read->found) << "seed " << seed << ": " << w.key;
        ASSERT_EQ(read->timestamp, w.at) << "seed " << seed << ": " << w.key;
        ASSERT_EQ(read->value, w.value) << "seed " << seed << ": " << w.key;
      }
      for (const auto& [txn, at] : cluster.prepared) {
        if (cluster.committing.count(txn) != 0) continue;  // its commit may have applied
        ASSERT_EQ(shard.participant().PrimaryOf(txn), 0u)
            << "seed " << seed << " node " << id << ": prepared " << txn.ToString() << " lost";
        ASSERT_EQ(shard.records().Find(txn)->status, TxnStatus::kPending);
        ASSERT_FALSE(shard.participant().BlockingIntents(cluster.own_key[txn], at).empty());
      }
      restored += static_cast<int>(cluster.host(id)->stats().snapshots_restored);
    }
    commits += static_cast<int>(cluster.acknowledged.size());
    for (const auto& [txn, at] : cluster.prepared)
      prepares_kept += cluster.committing.count(txn) == 0;
  }
  EXPECT_GT(commits, ShardSeeds() * 10);
  EXPECT_GT(prepares_kept, ShardSeeds());
  EXPECT_GT(restored, 0);
  std::cout << "commits acknowledged " << commits << ", prepares kept " << prepares_kept
            << ", snapshots restored " << restored << "\n";
}

}  // namespace replicated_shard_test
}  // namespace strata::replication
