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
// holds its replicas of the shards' groups (cluster::ShardGroups, ticked
// every raft_tick, run after each turn), and the member serves each
// through them. The groups' own log makes their changes durable before
// anything about them is sent; the node's store then holds no shard. A
// failed Raft log stops the groups (ShardGroups::health): the node's
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
#include "cluster/shard_groups.h"
#include "server/peer_network.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"

namespace strata::server {

struct ClusterRuntimeOptions {
  std::string self;  // this node's name
  // Every node's by number (cluster/node_list.h; "" for a number not named
  // yet), this one's included; member.shard_count: how many have a shard.
  std::vector<std::string> node_ids;
  cluster::MemberOptions member;
  PeerNetworkOptions network;
  // Past this many tasks waiting for the loop, messages from peers are
  // dropped (and counted) until it catches up.
  size_t max_queued_from_peers = 100000;
  // Replicated shards (member.replication_factor > 1): each shard a Raft
  // group of that many nodes, this node's replicas (cluster/shard_groups.h)
  // driven on the loop, their log in `raft_dir`, their batches and
  // refusals on the peer links. At most 16 nodes.
  std::string raft_dir;
  // The first replicas' states (ShardGroupsOptions::initial_states).
  std::map<cluster::ShardId, std::string> shard_initial_states;
  std::chrono::milliseconds raft_tick{10};
  int election_ticks = 10;
  uint64_t snapshot_count = 100'000;  // ShardGroupsOptions::snapshot_count
  // Lines for the operator (a member refused as replaced); null: none.
  std::function<void(const std::string&)> log;
  // How often a leader looks whether to hand a group back to its home
  // (cluster::ShardGroups).
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

  // Before ConfigureServer: who answers members that join (PeerNetwork).
  void SetJoinHandler(PeerNetwork::OnJoin on_join) { network_.set_on_join(std::move(on_join)); }
  // Before the first links: who hears, on the loop, that a peer refused
  // this member as removed from the cluster (PeerNetwork), with its name.
  void SetRemovedHandler(std::function<void(const std::string& by)> on_removed);
  // Registers the peer service on the peer port's server, with its bounds.
  // That server must be shut down before this runtime is destroyed.
  void ConfigureServer(grpc::ServerBuilder* builder);
  // Peer messages dropped because the loop's queue was full.
  uint64_t dropped_from_peers() const;
  // Where each other node listens (host:port); links start at once.
  void ConnectPeers(const std::map<std::string, std::string>& addresses);
  // On the loop thread: the cluster's members changed (cluster/node_list.h):
  // links to the ones that came (at `addresses`, host:port by name), none
  // to the ones gone after kGoneLinkGrace (meanwhile what they send is
  // still heard, so that one still running can learn it was removed); the
  // member and its replicas' groups told.
  static constexpr std::chrono::seconds kGoneLinkGrace{10};
  void UpdateNodes(const std::vector<std::string>& by_number, const std::vector<std::string>& gone,
                   const std::map<std::string, std::string>& addresses);
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
  // On the loop thread: this node's replicas of the shards' Raft groups
  // (null: the shards are not replicated).
  cluster::ShardGroups* shard_groups() { return shard_groups_.get(); }
  const cluster::ShardGroups* shard_groups() const { return shard_groups_.get(); }

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
  // Opens this node's replicas of the shards' groups and sets the
  // member's core factory.
  Status StartReplicatedShards(cluster::MemberOptions* member,
                               std::map<cluster::ShardId, std::string> initial_states);
  void Loop();

  const ClusterRuntimeOptions options_;
  PeerNetwork network_;
  // Replicated shards only; the member's cores point into it, so it goes
  // after the member.
  std::unique_ptr<cluster::ShardGroups> shard_groups_;
  std::unique_ptr<cluster::Member> member_;          // the loop thread's, once started
  uint64_t next_msg_id_ = 1;                         // the loop thread's
  std::set<std::string> departing_;                  // the loop thread's: removed, in their grace
  cluster::Member::ForwardHandler forward_handler_;  // the loop thread's
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
