// ClusterNode: what a node does when `init` names several nodes.
//
// Each node serves one shard (cluster/shard_map.h) and accepts every
// request. It plays three roles, each in its own file:
//  - router (cluster_router.cc): raw-API requests go to the key's owner
//    (`forward`), scans, changes and compaction fan out to every shard and
//    merge; stats, time (the hybrid clock on every node message), the
//    cluster-wide low-water mark and timers.
//  - coordinator (cluster/coordinator.h): the client's transactions. It
//    picks the snapshot S from its clock, reads each shard at S, buffers
//    writes, and commits: one round (`shard_commit`) when one shard holds
//    everything, otherwise two-phase commit over write intents with the
//    transaction record on a primary shard. cluster_requests.cc turns the
//    Maelstrom requests into its calls.
//  - shard server (cluster/shard_server.h): its shard's side: reads at S
//    that wait for (or resolve) intents, prepares, resolutions, the records
//    it keeps as a primary, and pushing stalled transactions.
// Nodes talk in typed peer messages (cluster/peer_messages.h) through
// cluster::Peers; MaelstromPeerTransport puts them on the wire, as listed
// in docs/CLUSTER.md.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_NODE_CLUSTER_NODE_H_
#define STRATA_NODE_CLUSTER_NODE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cluster/coordinator.h"
#include "cluster/hybrid_clock.h"
#include "cluster/peer_messages.h"
#include "cluster/peers.h"
#include "cluster/shard_map.h"
#include "cluster/shard_server.h"
#include "cluster/timers.h"
#include "node/maelstrom_peer_transport.h"
#include "node/transport.h"
#include "protocol/envelope.h"
#include "protocol/json_writer.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"
#include "strata/txn_store.h"

namespace strata::node {

struct ClusterOptions {
  Isolation isolation = Isolation::kSerializable;
  std::chrono::milliseconds txn_timeout{10000};  // idle client transactions
  size_t max_active_txns = 10000;
  // A coordinator refreshes the record of a transaction it is committing
  // this often; a record not refreshed for heartbeat_timeout may be aborted
  // by a participant that finds its intents in the way.
  std::chrono::milliseconds heartbeat_interval{100};
  std::chrono::milliseconds heartbeat_timeout{1000};
  // A read waiting for an intent asks the record after push_after, and gives
  // up (error 11) after read_wait.
  std::chrono::milliseconds push_after{20};
  std::chrono::milliseconds read_wait{5000};
  // Node-to-node calls are resent while unanswered and given up after this.
  std::chrono::milliseconds rpc_timeout{5000};
  // How often each node tells the others its oldest active snapshot.
  std::chrono::milliseconds low_water_mark_interval{100};
  // Commit wait: a commit is acknowledged only once every node's wall clock
  // is past its timestamp, assuming clocks differ by at most this.
  std::chrono::milliseconds max_clock_offset{0};
};

// Runs a raw-API request on this node's own shard, as a single node would
// (the router forwards requests here): fills `*reply_type` and the reply's
// fields, or returns the error.
using LocalHandler =
    std::function<protocol::MaybeError(std::string_view type, const protocol::Body& body,
                                       protocol::JsonWriter* fields, std::string_view* reply_type)>;

class ClusterNode final {
 public:
  using Clock = std::chrono::steady_clock;

  // kInvalidArgument if the node list is unusable (repeated or empty ids).
  static Result<std::unique_ptr<ClusterNode>> Create(std::string node_id,
                                                     const std::vector<std::string>& node_ids,
                                                     ClusterOptions options, MvccStore* store,
                                                     TxnStore* db, const Store* durable,
                                                     Transport* transport,
                                                     LocalHandler local_handler);
  ~ClusterNode();

  // Handles any message after init: a client request, or a node's request
  // or reply. Replies go out through the transport, now or later.
  void HandleMessage(const protocol::Envelope& message, Clock::time_point now);
  // Runs what is due; returns when to call again.
  Clock::time_point RunTimers(Clock::time_point now);

  // The highest garbage-collection horizon the cluster allows (nullopt:
  // not known yet, so collect nothing).
  std::optional<Timestamp> LowWaterMark() const;

 private:
  struct FanOut;

  ClusterNode(std::string node_id, std::vector<std::string> node_ids, cluster::ShardMap map,
              ClusterOptions options, MvccStore* store, TxnStore* db, const Store* durable,
              Transport* transport, LocalHandler local_handler);
  Clock::time_point now() const { return timers_.now(); }

  // --- router (cluster_router.cc) ---
  bool IsPeer(std::string_view id) const { return peers_.IsPeer(id); }
  cluster::ShardId ShardOfKey(std::string_view engine_key) const;
  void Call(cluster::ShardId shard, cluster::PeerRequest request, cluster::PeerRpc::Callback done) {
    peers_.Call(shard, std::move(request), std::move(done));
  }
  // An error reply; to a node it carries this node's clock like any other
  // node message (a refusal names timestamps the receiver must move past).
  void ReplyError(const ReplyAddress& to, const protocol::ErrorReply& error);
  void HandleClientRequest(const protocol::Envelope& request, const ReplyAddress& from);
  // A request only nodes send, decoded; `sender_clock` is its hlc (or ours).
  void HandlePeerRequest(cluster::PeerRequest request, std::string_view src, Timestamp sender_clock,
                         const ReplyAddress& from);
  void RouteToOwner(const protocol::Envelope& request, const ReplyAddress& from);
  void FanOutToShards(const protocol::Envelope& request, const ReplyAddress& from);
  void FinishFanOut(FanOut& fan_out);
  // Runs a client request a node forwarded (its JSON) on this shard.
  cluster::PeerReply HandleForward(const std::string& request_json);
  void HandleStats(const ReplyAddress& from);
  Timestamp OldestActiveSnapshot() const;
  void StartPeriodicWork();
  void SendLowWaterMarks();

  // --- client requests (cluster_requests.cc), run by the coordinator ---
  void HandleTxnBegin(const protocol::Body& body, const ReplyAddress& from);
  // The request's txn_id if that transaction is open; else replies the
  // error and returns nullopt.
  std::optional<uint64_t> OpenTxnId(const protocol::Body& body, const ReplyAddress& from);
  void HandleTxnGet(const protocol::Body& body, const ReplyAddress& from);
  void HandleTxnWrite(const protocol::Body& body, bool is_delete, const ReplyAddress& from);
  void HandleTxnScan(const protocol::Body& body, const ReplyAddress& from);
  void HandleTxnCommit(const protocol::Body& body, const ReplyAddress& from);
  void HandleTxnAbort(const protocol::Body& body, const ReplyAddress& from);
  void HandleKvRead(const protocol::Body& body, const ReplyAddress& from);
  void HandleKvWrite(const protocol::Body& body, const ReplyAddress& from);
  void HandleKvCas(const protocol::Body& body, const ReplyAddress& from);
  void HandleTxnOps(const protocol::Body& body, const ReplyAddress& from);
  // Answers a failed commit: with its error, or (outcome unknown) not at all.
  void ReplyFailure(const ReplyAddress& from, const Status& commit_failure);

  const std::string node_id_;
  const std::vector<std::string> node_ids_;
  const uint32_t node_index_;
  const cluster::ShardMap map_;
  const cluster::ShardId shard_;
  const ClusterOptions options_;
  MvccStore* store_;
  TxnStore* db_;
  const Store* durable_;
  Transport* transport_;
  MaelstromPeerTransport peer_transport_;
  LocalHandler local_handler_;
  bool started_ = false;  // periodic work scheduled

  cluster::HybridLogicalClock clock_;
  cluster::Timers timers_;
  cluster::Peers peers_;
  std::unique_ptr<cluster::ShardServer> shard_server_;
  std::unique_ptr<cluster::Coordinator> coordinator_;

  // Low-water mark: each other node's last report.
  std::unordered_map<std::string, Timestamp> reported_snapshots_;
};

}  // namespace strata::node

#endif  // STRATA_NODE_CLUSTER_NODE_H_
