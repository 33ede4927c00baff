// ClusterFront: what a strata-server started as one member of a cluster
// adds to the etcd front end. It runs this node's cluster member
// (ClusterRuntime, on its own loop thread, linked to the other members by
// the peer port), and over it etcd's key-value API (service::ClusterKv),
// watches, leases and strata.v1's interactive transactions
// (service::ClusterTxns).
//
// Calls come from gRPC's threads: each is posted to the loop, runs there,
// and its answer is handed back once the store's log covers everything
// the answer may show (ClusterRuntime::WhenDurable). `done` runs on the
// loop thread; it must not block.
#ifndef STRATA_SERVER_CLUSTER_FRONT_H_
#define STRATA_SERVER_CLUSTER_FRONT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "server/cluster_nodes.h"
#include "server/cluster_runtime.h"
#include "server/etcd_server.h"
#include "server/kv_front.h"
#include "server/kv_write_codec.h"
#include "server/lease_front.h"
#include "server/member_change.h"
#include "server/shared_auth_record.h"
#include "service/auth_store.h"
#include "service/cluster_kv.h"
#include "service/cluster_leases.h"
#include "service/cluster_record.h"
#include "service/cluster_txns.h"
#include "service/cluster_watches.h"
#include "service/kv_types.h"
#include "service/service_error.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"

namespace strata::server {

struct ClusterFrontOptions {
  std::string self;  // this member's name
  // The cluster's first members (its flags), this one included; with
  // replicated shards members join and leave later (server/cluster_nodes.h).
  std::vector<ClusterMemberAddress> members;
  std::string listen_peer;               // host:port of this member's peer port
  std::vector<std::string> client_urls;  // this member's advertised client URLs
  service::ClusterKvOptions kv;
  service::ClusterWatchesOptions watches;
  cluster::MemberOptions member;
  // Replicated shards (member.replication_factor > 1): where this member's
  // Raft log lives, and Raft's timing (ClusterRuntimeOptions).
  std::string raft_dir;
  // A restore's first replica states (ShardGroupsOptions::initial_states).
  std::map<cluster::ShardId, std::string> shard_initial_states;
  std::chrono::milliseconds raft_tick{10};
  int election_ticks = 10;
  uint64_t snapshot_count = 100'000;  // ShardGroupsOptions::snapshot_count
  // Lines for the operator (ClusterRuntimeOptions::log); null: none.
  std::function<void(const std::string&)> log;
  // Peer TLS (both null: plain text): what the peer port serves and what
  // the links to the other members present.
  std::shared_ptr<grpc::ServerCredentials> peer_server_credentials;
  std::shared_ptr<grpc::ChannelCredentials> peer_channel_credentials;
  std::shared_ptr<PeerFaults> peer_faults;  // tests only (STRATA_PEER_FAULTS)
  // etcd's users and roles, shared by every member (server/cluster_auth.h):
  // what other members tell of them, and the cluster's record read now and
  // then, go to `auth`; `auth_adopted` gets each newer state taken (on the
  // loop thread: it must not block). Null: no auth over the cluster.
  service::AuthStore* auth = nullptr;
  std::function<void(const std::string& encoded)> auth_adopted;
  std::chrono::milliseconds auth_refresh{1000};
  // Replicated shards: a member added later (etcdctl member add) starting
  // for the first time (--initial-cluster-state existing) asks a member in
  // `members` for the cluster's member list rather than making one from
  // them; and where each member keeps its copy ("": none).
  bool join_existing = false;
  std::string node_list_copy;
  std::chrono::milliseconds join_patience{30000};
  std::chrono::milliseconds nodes_refresh{1000};
  std::string cluster_token;  // etcd's --initial-cluster-token (member ids)
  // This member must stop (ClusterNodes::Options::stop); may be null.
  std::function<void(const std::string& why)> stop;
};

// What a member reports about itself and its shard (for /metrics).
struct ClusterFrontStats {
  size_t members = 0;
  // Each shard served here (without replicas: the member's own; with
  // them: each replica held here, its own shard's only if it holds one):
  // its store, resolved timestamp and intents. The key space's figures on
  // /metrics and the dashboard are theirs (the member's own store holds
  // none of a replicated shard's keys).
  struct Served {
    cluster::ShardId shard = 0;
    std::shared_ptr<const MvccStore> engine;  // read off the loop (the histogram)
    StoreStats store;
    Timestamp resolved;
    cluster::IntentStats intents;
  };
  std::vector<Served> served;
  int64_t compact_revision = 0;  // the last compaction this member ran
  PeerNetworkStats network;
  uint64_t dropped_from_peers = 0;
  size_t held_for_durability = 0;
  cluster::CoordinatorStats coordinator;
  std::optional<Timestamp> low_water_mark;
  size_t watchers = 0;
  size_t watchers_paused = 0;   // their stream full, waiting for it to drain
  uint64_t watcher_pauses = 0;  // every pause so far
  // Watchers by how far behind the wall clock what they were handed is
  // (ms, buckets of kWatchLagBoundsMs), and the leases this member keeps
  // (their home: service/cluster_leases.h).
  static inline const std::vector<int64_t> kWatchLagBoundsMs = {10,    100,    1000,
                                                                10000, 100000, 1000000};
  service::WatchHub::LagHistogram watch_lags_ms;
  size_t leases_homed = 0;
  service::ShardLocksStats lanes;  // writes of keys several members own
  // Replicated shards: each replica held here, and whether this member
  // leads its group; calls passed to the next replica (no leader yet) and
  // sent on to a leader a replica named.
  struct Replica {
    cluster::ShardId shard = 0;
    bool leads = false;
  };
  std::vector<Replica> replicas;
  uint64_t refused_from_replaced = 0;  // Raft batches of members whose disk was replaced
  uint64_t leaders_handed_home = 0;    // groups this member led and handed to their home
  // The replicas' Raft host here: its rounds, snapshots and log.
  replication::RaftHostStats raft;
  // Membership changes made as a shard group's leader; replicas started
  // and deleted here.
  cluster::ShardGroups::ReplicaChangeStats replica_changes;
  // Where each shard's replicas are, as this member knows them (empty
  // without replicated shards).
  std::vector<cluster::ShardGroupView> groups;
  uint64_t shard_call_retries = 0;
  uint64_t shard_call_redirects = 0;
  uint64_t reads_here = 0;          // served by this member's own replicas
  uint64_t reads_passed_on = 0;     // of those sent to them, passed to a leader
  uint64_t writes_read_afresh = 0;  // service::ClusterKv::writes_read_afresh
};

class ClusterFront final : public KvFront, public LeaseFront, public SharedAuthRecord {
 public:
  template <typename T>
  using Done = KvFront::Done<T>;

  // Binds the peer port and starts the member; kUnavailable if the port is
  // taken, kInvalidArgument for a member list that does not name `self`.
  // `store` (and `durable`, the Store that holds it, if any) must outlive
  // it; `durable`'s on_durable callback must call NotifyDurable.
  static Result<std::unique_ptr<ClusterFront>> Start(ClusterFrontOptions options, MvccStore* store,
                                                     const Store* durable);
  // Stops the peer port, then the member: calls in flight are not answered.
  ~ClusterFront() override;

  void Range(service::RangeRequest request, Done<service::RangeResponse> done) override;
  void Put(service::PutRequest request, Done<service::PutResponse> done) override;
  void DeleteRange(service::DeleteRangeRequest request,
                   Done<service::DeleteRangeResponse> done) override;
  void Txn(service::TxnRequest request, Done<service::TxnResponse> done) override;
  void Compact(service::CompactionRequest request, Done<service::CompactionResponse> done) override;
  // etcd's leases over the cluster (service/cluster_leases.h).
  void LeaseGrant(int64_t id, int64_t ttl, Done<service::LeaseGrantResult> done) override;
  void LeaseRevoke(int64_t id, Done<int64_t> done) override;
  void LeaseKeepAlive(int64_t id, Done<int64_t> done) override;
  void LeaseTimeToLive(int64_t id, bool keys, Done<service::LeaseTimeToLiveResult> done) override;
  void LeaseLeases(Done<std::vector<int64_t>> done) override;
  // strata.v1's interactive transactions over the cluster
  // (service/cluster_txns.h); a transaction lives on this member.
  void TxnBegin(service::TxnIsolation isolation, int64_t read_revision,
                service::FollowerRead follower, Done<service::TxnBegun> done);
  void TxnGet(uint64_t id, std::string key, Done<service::TxnRead> done);
  void TxnRange(uint64_t id, service::KeySpan span, int64_t limit,
                Done<service::RangeResponse> done);
  // A put (value) or a delete (nullopt).
  void TxnWrite(uint64_t id, std::string key, std::optional<std::string> value,
                Done<service::ClusterTxns::Empty> done);
  void TxnCommit(uint64_t id, Done<int64_t> done);
  void TxnAbort(uint64_t id, Done<service::ClusterTxns::Empty> done);
  // strata.v1's History of one key, read on the member whose shard owns it,
  // up to that shard's resolved timestamp (no version at or below it can
  // still appear): `request` and the answer are strata.v1's
  // HistoryRequest and HistoryResponse, encoded.
  void History(std::string request, Done<std::string> done);
  // strata.v1's Changes over the cluster: the changes above `since` in
  // `span` (etcd's keys; an empty key: every key) that every shard has
  // settled, so a later page never holds one below this one's last
  // (Router::SettledChanges). Keys come back as etcd's.
  void Changes(int64_t since, service::KeySpan span, size_t limit, Done<ChangesResult> done);
  // etcd's HashKV over the cluster: each shard hashes its history of etcd
  // keys up to `revision` (0: the newest snapshot, Range's), once it has
  // resolved that far, and the member combines the hashes in shard order,
  // so every member answers the same for the same history.
  struct HashResult {
    uint32_t hash = 0;
    int64_t revision = 0;
    int64_t compact_revision = 0;  // the highest of the shards'
  };
  void HashKV(int64_t revision, Done<HashResult> done);
  // --- a snapshot of the whole cluster (Maintenance.Snapshot) -----------
  // A fresh cluster snapshot, held (the low-water mark stays at or below
  // it) until ReleaseSnapshot.
  void HoldSnapshot(Done<int64_t> done);
  void ReleaseSnapshot(int64_t revision);
  // Up to `limit` of the engine's keys above `after` (etcd's and the
  // cluster's own, tags 0x00 and 0x01; none of the members' bookkeeping)
  // as of a held snapshot, in key order, each with its version then;
  // `more` if the page was cut short.
  void SnapshotPage(int64_t revision, std::string after, size_t limit, Done<ScanResult> done);
  // What strata.v1's Stats adds over a cluster: the transactions open on
  // this member, its compaction and its watchers.
  struct TxnFigures {
    service::TxnStats txns;
    int64_t compact_revision = 0;
    size_t watchers = 0;
  };
  void Figures(Done<TxnFigures> done);
  // strata.v1's Shards: where each shard's replicas are, as this member
  // knows them (its groups' reports; without replicas, the map).
  void Shards(Done<std::vector<cluster::ShardGroupView>> done);
  // strata.v1's PlaceShard: asks the shard's leader to place its group on
  // `members` (cluster::ShardGroups::Place); kFailedPrecondition without
  // replicated shards.
  void PlaceShard(cluster::ShardId shard, std::vector<std::string> members,
                  Done<service::ClusterTxns::Empty> done);

  // --- etcd's auth state over the cluster (server/cluster_auth.h). From a
  // worker thread, never the loop: each waits for the loop's answer. ------
  // Saves `encoded` in place of revision `replaces` in the cluster's record
  // (service/cluster_record.h), durable when Ok; kConflict with the
  // record's state in *newer; kUnavailable after `wait` (the save may
  // then still be made).
  Status SaveAuth(const std::string& encoded, uint64_t replaces, std::string* newer,
                  std::chrono::milliseconds wait) override;
  // Tells every other member of a new state or a token, waiting at most
  // `wait` for them all to have taken it (not for one that did not answer
  // the last time, for 10 s); how many did. One that did not reads the
  // state at its next look at the record; a token it did not get makes a
  // client authenticate again there.
  size_t TellAuthState(const std::string& encoded, std::chrono::milliseconds wait) override;
  size_t TellAuthToken(const std::string& token, const std::string& user,
                       std::chrono::milliseconds wait) override;

  // The member's clock as of its last loop turn: a header's revision
  // outside the key-value calls.
  int64_t current_revision() const override;
  // etcd's watches over the cluster.
  service::Watches& watches() { return *watches_; }
  // Reads one key on every shard: empty if each answered, else why not.
  // Waits at most `wait` (a member's /health).
  std::string Probe(std::chrono::milliseconds wait);
  // nullopt if the member's loop did not answer within `wait`.
  std::optional<ClusterFrontStats> Stats(std::chrono::milliseconds wait);
  void NotifyDurable() { runtime_->NotifyDurable(); }
  int peer_port() const { return peer_port_; }
  // etcd's Cluster service (any thread): the members present, this one
  // first; ids as etcd derives them from peer URLs and the cluster token,
  // an added member that has not started yet with no name (as etcd).
  std::vector<MemberInfo> Members() const;
  // MemberAdd and MemberRemove, with replicated shards only (the others'
  // shards cannot move; kUnimplemented): a member added holds nothing
  // until replicas move onto it (strata-ctl shard balance); a member is
  // removed only once it holds no replica (strata-ctl shard drain first).
  using MembersDone = std::function<void(service::Reply<std::vector<MemberInfo>>)>;
  // etcd's cluster id: its first members' ids' (EtcdClusterId).
  uint64_t ClusterId() const;
  void AddMember(std::string peer_url, bool learner, MembersDone done);
  void RemoveMember(uint64_t id, MembersDone done);

 private:
  explicit ClusterFront(ClusterFrontOptions options) : options_(std::move(options)) {}
  // Another member's History of a key this shard owns (on the loop).
  cluster::PeerReply ServeHistory(std::string_view request);
  // On the shard's leader: a PlaceShard forwarded here.
  void ServePlaceShard(std::string_view request, cluster::ShardServer::Respond respond);
  // Another member's ask for this shard's hash (on the loop), answered
  // once hashed, a batch of keys per loop turn (ContinueHash).
  struct HashJob;
  void ServeHashKV(std::string_view request, cluster::ShardServer::Respond respond);
  void ContinueHash(std::shared_ptr<HashJob> job);
  // Asks shard `index` of `gather` for its hash, again while it has not
  // resolved the revision yet (on the loop).
  struct HashGather;
  void AskShardHash(std::shared_ptr<HashGather> gather, size_t index, int tries);
  // Asks the members whose client URLs are not known yet (every one when
  // `all`) for them (on the loop).
  void AskClientUrls(bool all);
  // Another member's news of the auth state or a token (on the loop).
  cluster::PeerReply ServeAuthNews(std::string_view request);
  // Takes a state from the cluster or a member, if newer (on the loop);
  // false if it does not decode.
  bool AdoptAuth(std::string_view encoded);
  // Sends `news` to every other member; the count that answered (waits).
  size_t TellOthers(std::string news, std::chrono::milliseconds wait);
  // The cluster's members changed (on the loop): links, the member's
  // peers and groups, the others told of auth.
  void NodesChanged(const cluster::NodeList& list);
  // A member joining asks for the list, naming itself (gRPC's thread).
  grpc::Status ServeJoin(const peerpb::JoinRequest& request, peerpb::JoinReply* reply);
  // Members() of `list`.
  std::vector<MemberInfo> MembersOf(const cluster::NodeList& list) const;
  // The client URLs member `name` advertises, as last heard from it (empty
  // until then): what `member list` shows of the other members.
  std::vector<std::string> ClientUrlsOf(const std::string& name) const;
  // Runs `call` on the loop; its answer goes to `done` once durable.
  template <typename T>
  void Run(std::function<void(Done<T>)> call, Done<T> done);

  const ClusterFrontOptions options_;
  std::unique_ptr<ClusterRuntime> runtime_;
  std::unique_ptr<grpc::Server> peer_server_;
  int peer_port_ = 0;
  ProtoKvWriteCodec codec_;                 // how writes travel to their owner
  std::unique_ptr<service::ClusterKv> kv_;  // used on the loop thread only
  std::unique_ptr<service::ClusterWatches> watches_;
  std::unique_ptr<service::ClusterLeases> leases_;       // used on the loop thread only
  std::unique_ptr<service::ClusterTxns> txns_;           // used on the loop thread only
  std::unique_ptr<service::ClusterRecord> auth_record_;  // used on the loop thread only
  cluster::Member* member_ = nullptr;                    // used on the loop thread only
  std::vector<std::string> probe_keys_;                  // one engine key per shard
  std::vector<std::string> others_;                      // the other members' names (the loop's)
  std::unique_ptr<ClusterNodes> nodes_;
  // Members that did not answer news of auth lately (TellOthers): told,
  // not waited for, until then.
  Mutex deaf_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> deaf_until_
      STRATA_GUARDED_BY(deaf_mu_);
  mutable Mutex urls_mu_;
  std::map<std::string, std::vector<std::string>> client_urls_ STRATA_GUARDED_BY(urls_mu_);
  int url_rounds_ = 0;  // the loop's
};

// Answers every call of a service that is not served over a cluster with
// Unimplemented and a sentence that says so, instead of gRPC's
// bare "unknown service".
std::unique_ptr<grpc::CallbackGenericService> MakeNotServedOverClusterService();

}  // namespace strata::server

#endif  // STRATA_SERVER_CLUSTER_FRONT_H_
