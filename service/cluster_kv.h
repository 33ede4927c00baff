// ClusterKv: etcd's key-value API over the cluster's shards.
//
// The same rules as one node (service/kv_rules.h), over a cluster
// transaction (cluster::Coordinator):
//  - A write request (Put, DeleteRange, Txn) begins a serializable
//    transaction at a fresh snapshot S, reads everything it may look at
//    from the shards at S (TxnFootprint: one gather, in parallel), runs the
//    rules over those reads, and commits what they wrote: one shard in one
//    round, several by two-phase commit. Its revision is the commit
//    timestamp C. Serializable validation makes the request atomic at C:
//    nothing it read changed between S and C. A lost conflict is retried
//    from a new snapshot after a random backoff, up to max_attempts times.
//  - A Range without a revision reads at S = Coordinator::ReadTimestamp(),
//    the newest snapshot every acknowledged commit is at or below and every
//    clock is past (so no commit wait), and answers header.revision = S.
//    The shards it reads wait for intents at or below S on the keys read,
//    so no commit at or below S in its range can appear after the answer;
//    and before it answers, every shard has resolved S
//    (cluster/resolved_frontier.h, asked while the shards are read), so no
//    commit at or below S can appear anywhere: a watch from S + 1 misses
//    nothing. With a revision, it reads the past at that timestamp and
//    answers header.revision = S, made complete the same way.
//  - A serializable Range (etcd's: it may be stale) on a member holding a
//    replica of every shard reads them at R, the newest timestamp they
//    have all resolved (ClusterKvOptions::resolved_here), without asking a
//    leader: a little behind (a follower learns of the leader's writes as
//    its group applies them, and of idle time from the leader's closes)
//    and complete at R by itself. With strata-min-revision M (a revision a
//    client saw: the header of its write), at max(R, M): a replica behind
//    M passes the read to the shard's leader, so a client that passes the
//    newest revision it saw reads its own writes from any member.
// So revisions are hybrid-clock timestamps: unique and rising, not dense.
//
// Keys: an etcd key k is the engine key "\x01" + k (the cluster's string
// keys, protocol/key_codec.h); the cluster's own records use 0x00 (leases)
// and 0x02 (transaction state), so no etcd range ever meets them.
//
// Forwarding: a write whose keys (and lease) all live on one other
// member's shard is sent to that member (service/forwarded_write.h) and
// run there, where its reads and its one-phase commit are local: one
// round trip instead of two. The owner runs each forward once however
// often it is resent (cluster/forwarded_calls.h). So every write of a key
// that names no range runs on its owner, which runs the writes of one key
// one after another (service/key_lanes.h) instead of letting them conflict;
// a write of keys several members own waits its turn on each of them
// (service/shard_locks.h).
//
// Leases: a Put naming one reads the lease's record and writes the key's
// attachment in the same commit (service/cluster_leases.h). Watches are
// service/cluster_watches.h. Compaction: a Compact is remembered by the
// member that ran it; every shard refuses reads below its own horizon.
//
// Not thread-safe: runs on the loop thread that owns the coordinator.
#ifndef STRATA_SERVICE_CLUSTER_KV_H_
#define STRATA_SERVICE_CLUSTER_KV_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "cluster/coordinator.h"
#include "cluster/resolved_frontier.h"
#include "cluster/router.h"
#include "cluster/timers.h"
#include "service/forwarded_write.h"
#include "service/key_lanes.h"
#include "service/kv_rules.h"
#include "service/kv_types.h"
#include "service/service_error.h"
#include "service/shard_locks.h"
#include "service/snapshot.h"

namespace strata::service {

struct ClusterKvOptions {
  // etcd's --max-txn-ops.
  size_t max_txn_ops = 128;
  // A request that loses a conflict this many times gets "too many
  // requests" (etcd's ResourceExhausted, which clients retry); a write
  // holding the lanes of its keys (KeyLanes, ShardLocks) may lose four
  // times as many more while it holds them (see RunWrite).
  int max_attempts = 8;
  // Between attempts it waits a random time up to this, doubled each
  // attempt (so writers of the same keys spread out instead of meeting
  // again at once), on `timers` (null: no wait). Must outlive the ClusterKv.
  std::chrono::milliseconds first_backoff{2};
  std::chrono::milliseconds max_backoff{100};
  cluster::Timers* timers = nullptr;
  // The most keys, and bytes of keys and values, one Range (or one span a
  // Txn reads) keeps from the shards: memory for an answer is bounded. (A
  // Range's keys past its limit, or all of a count_only one, are only
  // counted, not kept.)
  size_t max_range_keys = 200000;
  size_t max_range_bytes = size_t{256} << 20;
  // How writes travel to the member owning their keys (null: every write
  // runs on the member called). Must outlive the ClusterKv.
  const KvWriteCodec* forward_codec = nullptr;
  // Where a Range's revision is made complete for the whole key space
  // (null: for the range read only). Must outlive the ClusterKv.
  cluster::ResolvedFrontier* frontier = nullptr;
  // The newest timestamp this member's own replicas of every shard have
  // resolved (cluster::Member::ResolvedHere), for serializable Ranges;
  // null, or nullopt from it: they read from the shards' leaders.
  std::function<std::optional<Timestamp>()> resolved_here;
  // A write of named keys reads them at a replica's closed time (this
  // member's own if it holds the member's last commit of the key, else the
  // leader's: cluster::Coordinator::StartAtShardClocks) rather than at a
  // fresh snapshot, which a replicated shard must first close through its
  // log: a round of the log less a write. One that then changes nothing,
  // fails, or meets a compaction runs again at a fresh snapshot.
  bool writes_at_shard_clocks = false;
};

class ClusterKv final {
 public:
  template <typename T>
  using Done = std::function<void(Reply<T>)>;

  // `coordinator` and `router` must outlive it.
  ClusterKv(cluster::Coordinator* coordinator, cluster::Router* router, ClusterKvOptions options);
  ~ClusterKv();

  void Range(const RangeRequest& request, Done<RangeResponse> done);
  void Put(const PutRequest& request, Done<PutResponse> done);
  void DeleteRange(const DeleteRangeRequest& request, Done<DeleteRangeResponse> done);
  void Txn(const TxnRequest& request, Done<TxnResponse> done);
  void Compact(const CompactionRequest& request, Done<CompactionResponse> done);

  // Forward requests that begin with this tag are writes for ServeForward.
  static constexpr std::string_view kForwardTag = "kv\n";
  // Runs a write another member forwarded (kForwardTag and the codec's
  // bytes) here, and answers it in the codec's encoding.
  void ServeForward(std::string_view request, std::function<void(cluster::PeerReply)> respond);
  // Another member's request for the lanes of keys this member owns
  // (ShardLocks::kTag onwards).
  void ServeLanes(std::string_view request, std::function<void(cluster::PeerReply)> respond);
  ShardLocksStats lanes_stats() const { return locks_.Stats(); }
  // Writes that read at their shards' clocks and then ran again at a fresh
  // snapshot (ClusterKvOptions::writes_at_shard_clocks).
  uint64_t writes_read_afresh() const { return writes_read_afresh_; }

  // A fresh timestamp: what header.revision says outside a request.
  int64_t current_revision();
  // Where a follower read (a serializable Range, strata.v1's follower
  // read) reads, at least at `min_revision` (the client's token, at most
  // the current revision): where this member holds a replica of every
  // shard (ClusterKvOptions::resolved_here) not behind what it has
  // collected, from them (`resolved`: what they have all resolved), at
  // that (no later than the newest snapshot that needs no commit wait);
  // else from the leaders (`resolved` none), at that newest snapshot.
  struct FollowerReadPoint {
    Timestamp at;
    std::optional<Timestamp> resolved;
    bool here() const { return resolved.has_value(); }
  };
  FollowerReadPoint FollowerReadAt(int64_t min_revision);
  int64_t compact_revision() const { return compact_revision_; }

  // --- for strata.v1's interactive transactions (service/cluster_txns.h),
  // each in an open coordinator transaction ---
  // Reads `key` in the transaction `txn` from its shard: no key or one.
  void ReadKey(uint64_t txn, const std::string& key, Done<std::vector<KeyValue>> done);
  // The keys of `span` in the transaction `txn` (paging, ascending): every
  // one counted, the first `keep` kept (with their values if `values`).
  struct Scanned {
    std::vector<KeyValue> kvs;
    int64_t count = 0;
  };
  void ScanAll(uint64_t txn, KeySpan span, size_t keep, bool values, Done<Scanned> done);
  // Commits the transaction `txn` (begun at `snapshot`, its reads recorded
  // by the coordinator) with `writes` (nullopt: a delete): reads the keys
  // written at the snapshot, versions them by etcd's rules, commits, and
  // answers the commit's revision; a lost conflict is kAborted.
  void CommitWrites(uint64_t txn, int64_t snapshot,
                    const std::map<std::string, std::optional<std::string>>& writes,
                    Done<int64_t> done);

  // The engine key of an etcd key, the etcd key an engine key holds
  // (nullopt: one of the cluster's own), and the engine range of a span.
  static std::string EngineKey(std::string_view key);
  static std::optional<std::string> EtcdKeyOf(std::string_view engine_key);
  static std::optional<KeyRange> EngineRange(const KeySpan& span);
  // Sets `options` to restore member `name` of a cluster of `members` (in
  // any order: shards go to members in name order, as ClusterFront assigns
  // them): the keys its shard owns, and a node's snapshot laid out as the
  // cluster keeps the same (etcd's keys, leases, users). kInvalidArgument
  // if `members` is unusable or does not name `name`.
  static Status RestoreAsMember(std::vector<std::string> members, const std::string& name,
                                RestoreOptions* options);
  // The same for shard `shard` of a cluster whose first members are
  // `members` (a shard a first member, its replicas anywhere).
  static Status RestoreAsShard(std::vector<std::string> members, cluster::ShardId shard,
                               RestoreOptions* options);
  // Sets `options` to restore one node: a cluster's snapshot laid out as
  // one node keeps the same (its etcd keys, leases and users).
  static void RestoreAsNode(RestoreOptions* options);

 private:
  class GatheredView;
  struct Gather;
  // The write requests, run here (`here`) or forwarded to their owner.
  void Write(const PutRequest& request, Done<PutResponse> done, bool here);
  void Write(const DeleteRangeRequest& request, Done<DeleteRangeResponse> done, bool here);
  void Write(const TxnRequest& request, Done<TxnResponse> done, bool here);
  // Sends `write` to the member that owns all of `footprint`, if that is
  // one member and not this one; false if it runs here.
  template <typename T>
  bool ForwardToOwner(const TxnFootprint& footprint, const KvWrite& write, const Done<T>& done);
  // Runs a write request here (RunWrite): when it names keys only, after
  // the earlier writes of the same keys, on this member (KeyLanes) or, for
  // keys several members own, on each owner (ShardLocks) if they are hot
  // or once it has lost a conflict.
  template <typename T>
  void StartWrite(TxnFootprint footprint, std::function<Reply<T>(TxnOverlay&)> body, Done<T> done);
  // Runs a write request: gather `footprint` at a fresh snapshot, run
  // `body` over it, commit, stamp (RunIn); a lost conflict starts again.
  using LanesByOwner = std::map<cluster::ShardId, ShardLocks::OwnedKeys>;
  struct WriteLanes {
    bool held = false;  // the write holds the lanes of its keys
    // Its keys by owner, if several members own them (null: one does).
    std::shared_ptr<const LanesByOwner> several_owners;
    int losses_in_lanes = 0;  // conflicts lost holding those
  };
  // `at_start`: at a fresh snapshot even if writes_at_shard_clocks.
  template <typename T>
  void RunWrite(TxnFootprint footprint, std::function<Reply<T>(TxnOverlay&)> body, Done<T> done,
                int attempt, WriteLanes lanes, bool at_start = false);
  // Takes the lanes of `lanes` on their owners (ShardLocks), then RunWrite.
  template <typename T>
  void TakeLanesAndRun(std::shared_ptr<const LanesByOwner> lanes, TxnFootprint footprint,
                       std::function<Reply<T>(TxnOverlay&)> body, Done<T> done, int attempt);
  // The same in the open coordinator transaction `id`, begun at `base`; a
  // lost conflict goes to `on_conflict`. `again_at_start` (set when `id`
  // reads at its shards' clocks): what runs instead of an answer that
  // changes nothing, an error, or a compaction met at commit.
  template <typename T>
  void RunIn(uint64_t id, int64_t base, TxnFootprint footprint,
             std::function<Reply<T>(TxnOverlay&)> body, Done<T> done,
             std::function<void(const Status&)> on_conflict,
             std::function<void()> again_at_start = nullptr);

  cluster::Coordinator* coordinator_;
  cluster::Router* router_;
  const ClusterKvOptions options_;
  uint64_t writes_read_afresh_ = 0;
  std::minstd_rand backoff_random_{std::random_device{}()};
  KeyLanes lanes_;
  ShardLocks locks_;  // uses lanes_
  int64_t compact_revision_ = -1;
  // Set to false when destroyed: callbacks still in flight see it and stop.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// A timestamp as the revision a client sees, and back.
inline int64_t RevisionOf(Timestamp t) { return static_cast<int64_t>(t.value()); }
inline Timestamp AtRevision(int64_t revision) { return Timestamp(static_cast<uint64_t>(revision)); }

// A cluster status as etcd's error for the same situation.
ServiceError ClusterError(const Status& s);

}  // namespace strata::service

#endif  // STRATA_SERVICE_CLUSTER_KV_H_
