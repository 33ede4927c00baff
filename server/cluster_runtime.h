// ClusterRuntime: a cluster::Member on a thread of its own, linked to the
// other servers by gRPC (PeerNetwork, strata.peer.v1).
//
// The member is single-threaded by design (its roles never lock): one loop
// thread owns it and runs, in order, the tasks posted to it (what arrives
// from peers, and what the server's own callers ask of it) and its timers.
// Messages to this node itself are posted to the loop directly, never
// through the network. Replies and callbacks run on the loop thread too; a
// caller on another thread hands results back however it likes (a promise,
// a completion queue).
//
// Durability: with a durable store, nothing this node says leaves before
// the log is durable past what it had appended when it said it: messages
// to other nodes, and the answers the server's callers hand to
// WhenDurable, wait in order until the store's sync covers them (so a
// crash can never take back what a peer or a client was told). Many
// messages share one sync. Once the log fails (it then refuses every
// write, Store::health), what is held can never be covered: messages to
// peers are dropped (to them the node is gone) and each answer gets its
// `failed` alternative instead.
//
// Replicated shards: with a replication factor above one, the node also
// runs a RaftHost on the loop (ticked every raft_tick, run after each turn)
// holding its replicas of the shards' groups, and the member serves each
// through a ReplicatedShardCore. The groups' own log makes their changes
// durable before anything about them is sent; the node's store then holds
// no shard. A failed Raft log stops the host (RaftHealth): the node's
// replicas then answer nothing, which their groups survive as a node down.
//
// Bounds: what peers send waits in the loop's queue; past
// max_queued_from_peers tasks, further messages from peers are dropped (and
// counted) until the loop catches up, which the cluster tolerates as lost
// messages. A peer message larger than kMaxPeerMessageBytes is refused by
// gRPC (ConfigureServer). Peers are authenticated only with peer TLS (the
// caller's server and link credentials); without it the peer port must be
// reachable only by the cluster's own servers.
#ifndef STRATA_SERVER_CLUSTER_RUNTIME_H_
#define STRATA_SERVER_CLUSTER_RUNTIME_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "cluster/member.h"
#include "cluster/peer_transport.h"
#include "replication/raft_host.h"
#include "server/peer_network.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"

namespace strata::server {

struct ClusterRuntimeOptions {
  std::string self;                   // this node's name
  std::vector<std::string> node_ids;  // every node's, this one's included
  cluster::MemberOptions member;
  PeerNetworkOptions network;
  // Past this many tasks waiting for the loop, messages from peers are
  // dropped (and counted) until it catches up.
  size_t max_queued_from_peers = 100000;
  // Replicated shards (member.replication_factor > 1): each shard a Raft
  // group of that many nodes (cluster/replicated_shard.h), this node's
  // replicas driven by a RaftHost on the loop, whose log lives in
  // `raft_dir`; its batches travel on the peer links. Shard timestamps
  // take the residues 16 and up, so such a cluster has at most 16 nodes.
  // Each group keeps the incarnation (replication/incarnations.h) it first
  // heard from each member: a member started again with an empty Raft
  // directory has another, and its batches are refused (it forgot its
  // votes and what it acknowledged) until each group's leader has replaced
  // it (server/replica_repair.h: removed, added back as a learner,
  // promoted once caught up).
  std::string raft_dir;
  std::chrono::milliseconds raft_tick{10};
  int election_ticks = 10;
  // Lines for the operator (a member refused as replaced); null: none.
  std::function<void(const std::string&)> log;
  // How often a leader looks whether to hand a group back to its home
  // (BalanceLeaders).
  std::chrono::milliseconds balance_interval{2000};
};

class ClusterRuntime final : private cluster::PeerTransport {
 public:
  using Task = std::function<void(cluster::Member& member)>;

  // kInvalidArgument as cluster::Member::Create. `store` must outlive it;
  // `durable`, if given, is the Store that holds it (its log decides when
  // what this node says may leave, and the member keeps its transaction
  // records in it). Its on_durable callback must call NotifyDurable.
  static Result<std::unique_ptr<ClusterRuntime>> Start(ClusterRuntimeOptions options,
                                                       MvccStore* store,
                                                       const Store* durable = nullptr);
  // Stops the loop (posted tasks not yet run are dropped), then the links.
  ~ClusterRuntime() override;

  // Registers the peer service on the peer port's server, with its bounds.
  // That server must be shut down before this runtime is destroyed.
  void ConfigureServer(grpc::ServerBuilder* builder);
  // Peer messages dropped because the loop's queue was full.
  uint64_t dropped_from_peers() const;
  // Where each other node listens (host:port); links start at once.
  void ConnectPeers(const std::map<std::string, std::string>& addresses);
  // Runs `task` on the loop thread, after what was posted before it; false
  // (and it never runs) once the runtime is stopping.
  bool Post(Task task);
  PeerNetworkStats NetworkStats() const { return network_.Stats(); }
  // On the loop thread: runs `fn` once the log is durable past everything
  // appended so far (at once without a durable store, or if it already is);
  // if the log fails first, runs `failed` instead (if given).
  void WhenDurable(std::function<void()> fn, std::function<void()> failed = nullptr);
  // From any thread: the store's log became durable further.
  void NotifyDurable();
  // On the loop thread: Ok, or why the store's log failed (it then refuses
  // every write, and nothing this member says can be made durable). Read
  // from Store::health once the log reports (NotifyDurable), not per call.
  const Status& LogHealth() const { return log_health_; }
  // The member's clock as of its last loop turn (any thread): what a
  // header says outside a request.
  Timestamp LastTimestamp() const { return Timestamp(last_timestamp_.load()); }
  // On the loop thread: who answers the Forward requests other members
  // send this one (until set, they are refused).
  void SetForwardHandler(cluster::Member::ForwardHandler handler) {
    forward_handler_ = std::move(handler);
  }
  // Messages and answers waiting for the log (any thread).
  size_t HeldForDurability() const { return held_count_.load(); }
  // On the loop thread: the replicated shards' Raft host (null: none) and
  // Ok, or why its log failed.
  replication::RaftHost* raft_host() { return host_.get(); }
  const Status& RaftHealth() const { return raft_health_; }
  // On the loop thread: Raft batches refused from members whose disk was
  // replaced, and why the others refuse this one's ("": they do not, or
  // have not said so for kRefusalHeldFor: they took it back).
  uint64_t refused_from_replaced() const { return refused_replaced_; }
  std::string refused_by_others() const;
  static constexpr std::chrono::seconds kRefusalHeldFor{5};
  // On the loop thread: groups this member led and handed to their home.
  uint64_t leaders_handed_home() const { return leaders_handed_home_; }
  // On the loop thread: the membership changes this member made, as the
  // leader of shards' groups, to take back members whose disk was
  // replaced (ReplicaRepair), once applied.
  struct RepairStats {
    uint64_t removed = 0;   // a member with a replaced disk, from a group
    uint64_t learners = 0;  // added back as a learner
    uint64_t promoted = 0;  // a learner that caught up, made a voter
  };
  const RepairStats& repairs() const { return repairs_; }

 private:
  explicit ClusterRuntime(ClusterRuntimeOptions options);
  // PeerTransport, on the loop thread. A message to this node itself stays
  // typed and is posted to the loop (Send and Reply).
  uint64_t Send(std::string_view dest, std::optional<cluster::ShardId> shard,
                const cluster::PeerRequest& request, Timestamp hlc) override;
  // From a peer (any thread): decoded and posted to the loop.
  void Receive(const std::string& from, peerpb::Message message);
  // Runs a decoded message on the loop.
  void Handle(cluster::Member& member, const std::string& from, const peerpb::Message& message);
  void Reply(const std::string& to, uint64_t in_reply_to, const cluster::PeerReply& reply);
  // To another node: queued on its link once the log covers what it shows.
  void Route(const std::string& to, peerpb::Message message);
  // Runs what the log now covers, in order.
  void ReleaseDurable();
  // Opens the Raft host of the replicated shards and creates this node's
  // replicas of them on a first start; sets the member's core factory.
  Status StartReplicatedShards(cluster::MemberOptions* member);
  // The host's rounds, unless its log failed.
  void RunRaft();
  // Whether a batch from `from` carrying `incarnation` is taken: not if a
  // group here holds another incarnation of it (its disk was replaced; it
  // is told why, once a second).
  bool Admit(raft::NodeId from, uint64_t incarnation);
  // Each tick, off the path of every batch: the groups led here that hold
  // no incarnation yet of this node or of a member heard from register it.
  void RegisterIncarnations();
  void RegisterWhereLeading(raft::NodeId node, uint64_t incarnation);
  // Each tick: in the groups led here, the next membership change that
  // takes back a member whose disk was replaced (NextReplicaRepair), one
  // change a group at a time.
  void RepairReplicas();
  // Leaders spread over the members: each shard's group is led by its
  // home (its first replica in the map: shard i's is node i) when that
  // member is up and caught up. Elections pick any member (the first to
  // time out), which can leave one member leading most groups, its CPU
  // doing most of the writes; so a leader hands a group it leads to the
  // group's home (Raft's leadership transfer) when the home answered
  // within an election timeout and holds every committed entry. Looked at
  // every balance_interval.
  void BalanceLeaders(std::chrono::steady_clock::time_point now);
  void Loop();

  const ClusterRuntimeOptions options_;
  PeerNetwork network_;
  // Replicated shards only; the member's cores point into it, so it goes
  // after the member.
  std::unique_ptr<replication::RaftHost> host_;
  Status raft_health_;                                             // the loop thread's
  uint64_t incarnation_ = 0;                                       // this node's Raft directory's
  std::vector<raft::GroupId> groups_;                              // the replicas held here
  std::map<raft::GroupId, raft::NodeId> homes_;                    // each group's home member
  std::map<raft::GroupId, std::vector<raft::NodeId>> placements_;  // the members it belongs on
  std::chrono::steady_clock::time_point next_balance_{};           // the loop thread's
  uint64_t leaders_handed_home_ = 0;                               // the loop thread's
  std::set<std::pair<raft::GroupId, raft::NodeId>> registering_;   // the loop thread's
  std::map<raft::NodeId, uint64_t> heard_incarnations_;            // admitted, the loop thread's
  std::map<raft::NodeId, uint64_t> carried_incarnations_;          // by each member's newest batch
  std::set<raft::GroupId> repairing_;  // a change proposed, not yet done
  RepairStats repairs_;                // the loop thread's
  std::map<raft::NodeId, std::chrono::steady_clock::time_point> told_replaced_;
  uint64_t refused_replaced_ = 0;                       // the loop thread's
  std::string refused_by_others_;                       // the loop thread's
  std::chrono::steady_clock::time_point refused_at_{};  // the others' last refusal
  std::unique_ptr<cluster::Member> member_;             // the loop thread's, once started
  uint64_t next_msg_id_ = 1;                            // the loop thread's
  cluster::Member::ForwardHandler forward_handler_;     // the loop thread's
  const Store* durable_ = nullptr;
  struct Held {
    uint64_t lsn;
    std::function<void()> fn;
    std::function<void()> failed;  // may be empty: dropped
  };
  std::deque<Held> held_;  // the loop thread's, by rising lsn
  std::atomic<size_t> held_count_{0};
  std::atomic<uint64_t> last_timestamp_{0};

  mutable Mutex mu_;
  CondVar wake_;
  std::deque<Task> tasks_ STRATA_GUARDED_BY(mu_);
  uint64_t dropped_from_peers_ STRATA_GUARDED_BY(mu_) = 0;
  bool stopping_ STRATA_GUARDED_BY(mu_) = false;
  bool durable_moved_ STRATA_GUARDED_BY(mu_) = false;
  Status log_health_;  // the loop thread's: LogHealth
  std::thread loop_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_CLUSTER_RUNTIME_H_
