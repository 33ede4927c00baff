// ClusterNode: what a node does when `init` names several nodes.
//
// The cluster itself is cluster::Member (cluster/member.h): the hybrid
// clock, the shard this node serves (ShardServer), the transactions it
// coordinates (Coordinator), the key space (Router) and the low-water mark,
// all in typed messages. This class is its Maelstrom shell:
//  - intake (cluster_node.cc): a node's message is decoded by the peer
//    codec (protocol/peer_codec.h) and handed to the member with a way to
//    answer; a client's request is parsed and run;
//  - the raw API (cluster_node.cc): requests about one key are forwarded to
//    its owner, whose own single-node handler runs them; scans, changes and
//    compaction go through the router; stats;
//  - client transactions and workloads (cluster_requests.cc): txn_*, read,
//    write, cas and txn, as Coordinator calls.
// The wire messages are listed in docs/CLUSTER.md.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_NODE_CLUSTER_NODE_H_
#define STRATA_NODE_CLUSTER_NODE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/coordinator.h"
#include "cluster/member.h"
#include "cluster/peer_messages.h"
#include "cluster/shard_groups.h"
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
  // Above 1: each shard a Raft group of this many nodes
  // (cluster/shard_groups.h), its log in `raft_dir` (required then), its
  // batches between nodes as raft_batch messages; Raft's clock ticks every
  // raft_tick, and a follower that hears nothing for election_ticks of it
  // (up to twice that) campaigns. The raw API (mvcc_*, but stats) runs on
  // a node's own store, which then holds no shard: it is refused.
  uint32_t replication_factor = 1;
  std::string raft_dir;
  std::chrono::milliseconds raft_tick{10};
  int election_ticks = 10;
  // Lines for the operator about the replicas (a member refused or taken
  // back, a replica moved); null: none.
  std::function<void(const std::string&)> log;
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
  // Runs what is due (the replicated shards' rounds too); returns when to
  // call again.
  Clock::time_point RunTimers(Clock::time_point now);

  // The highest garbage-collection horizon the cluster allows (nullopt:
  // not known yet, so collect nothing).
  std::optional<Timestamp> LowWaterMark() const { return member_->LowWaterMark(); }

 private:
  ClusterNode(ClusterOptions options, MvccStore* store, const Store* durable, Transport* transport,
              LocalHandler local_handler);

  // --- intake, raw API, stats (cluster_node.cc) ---
  // An error reply; to a node it carries this node's clock like any other
  // node message (a refusal names timestamps the receiver must move past).
  void ReplyError(const ReplyAddress& to, const protocol::ErrorReply& error);
  void HandleClientRequest(const protocol::Envelope& request, const ReplyAddress& from);
  // raft_batch and raft_refused: one-way, for the shards' groups (dropped
  // without replicated shards, or if they do not decode).
  void HandleRaftMessage(const protocol::Envelope& message);
  void RouteToOwner(const protocol::Envelope& request, const ReplyAddress& from);
  // Runs a client request a node forwarded (its JSON) on this shard.
  cluster::PeerReply ServeForward(const std::string& request_json);
  void HandleScan(const protocol::Body& body, const ReplyAddress& from);
  void HandleChanges(const protocol::Body& body, const ReplyAddress& from);
  void HandleCompact(const protocol::Body& body, const ReplyAddress& from);
  // A callback that answers `from` with a T (as `reply_type`) or the error.
  template <typename T>
  std::function<void(Result<T>)> ReplyWith(const ReplyAddress& from, std::string_view reply_type);
  void HandleStats(const ReplyAddress& from);
  // shard_place {shard, nodes}: the shard's group placed on those nodes,
  // by its leader (a Forward of the request beginning kPlaceShardPrefix,
  // ServePlaceShard).
  void HandleShardPlace(const protocol::Body& body, const ReplyAddress& from);
  void ServePlaceShard(const std::string& request, cluster::ShardServer::Respond respond);
  static constexpr std::string_view kPlaceShardPrefix = R"({"type":"shard_place")";

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

  const ClusterOptions options_;
  MvccStore* store_;
  const Store* durable_;
  Transport* transport_;
  MaelstromPeerTransport peer_transport_;
  LocalHandler local_handler_;
  // Replicated shards only; the member's cores point into it, so it goes
  // after the member.
  std::unique_ptr<cluster::ShardGroups> shard_groups_;
  Clock::time_point next_raft_tick_{};
  std::unique_ptr<cluster::Member> member_;
  cluster::Coordinator* coordinator_ = nullptr;  // the member's
};

}  // namespace strata::node

#endif  // STRATA_NODE_CLUSTER_NODE_H_
