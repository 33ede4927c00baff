// PeerNetwork: this server's gRPC links to the other servers of its cluster.
//
// Outbound, one long-lived Deliver stream per peer, written by a thread of
// its own: messages queue per peer (bounded: past the bound a message is
// dropped and counted, which the cluster tolerates since every call is
// resent until answered), and go out in batches, as many as are waiting,
// so a burst costs a few writes. A stream that fails is reopened after a
// backoff that doubles up to a ceiling; what was in flight is lost, the
// same as any message on a network, but for Raft batches, which go out
// once more on the next stream. Inbound, the Peer service hands every
// message of every batch to a callback, on gRPC's thread.
//
// A peer removed from the cluster (RemovePeer) that still sends is
// answered kRemovedRefusal and its stream closed, as etcd answers a
// removed member's messages: told so, it stops (OnRemoved), even if it was
// cut off from everyone while the others learned of its removal.
//
// With faults (PeerFaults, tests only), a message may also wait in the
// link for its time or for a file, or go out twice.
//
// Why its own code rather than gRPC's async API: each peer's stream has
// exactly one writer and the queue needs a bound and a drop count; a
// thread per peer (at most 31) is the plainest way to get both.
#ifndef STRATA_SERVER_PEER_NETWORK_H_
#define STRATA_SERVER_PEER_NETWORK_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "base/mutex.h"
#include "peer.grpc.pb.h"
#include "server/peer_faults.h"
#include "server/peer_proto.h"

namespace strata::server {

struct PeerNetworkOptions {
  // What the links present (peer TLS); null: plain text.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  size_t max_queued = 10000;  // messages waiting per peer
  size_t max_batch = 512;     // messages per write
  // Bytes per write: a batch stops before the message that would pass
  // this (it always holds at least one), so a receiver's bound on one
  // batch (ClusterRuntime::ConfigureServer) is never hit by batching.
  size_t max_batch_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds min_backoff{20};
  std::chrono::milliseconds max_backoff{1000};
  // Faults a test injects (null: none).
  std::shared_ptr<PeerFaults> faults;
  // A sharded cluster's replication factor, sent with every batch; a peer
  // that sends another is refused (kFactorRefusal), since the members would
  // place the shards differently. 0: none sent, none checked.
  uint32_t replication_factor = 0;
  // Lines for the operator (a peer refused, or refusing this member);
  // each said once until it changes. Null: none.
  std::function<void(const std::string&)> log;
};

struct PeerNetworkStats {
  uint64_t sent = 0, dropped = 0, reconnects = 0, received = 0;
};

class PeerNetwork final {
 public:
  // Called for each message received, with the sender's name.
  using OnMessage = std::function<void(const std::string& from, peerpb::Message message)>;

  // Called when a peer's stream into this server ends (its process died,
  // its connection broke, or it reconnects), with the peer's name.
  using OnStreamEnd = std::function<void(const std::string& from)>;
  // Called on a link's thread when the peer at its end refused this server
  // as a member removed from the cluster, with that peer's name.
  using OnRemoved = std::function<void(const std::string& by)>;
  // What a removed member's stream is refused with (FAILED_PRECONDITION).
  static constexpr std::string_view kRemovedRefusal =
      "strata: this member was removed from the cluster";
  // How a refusal for another replication factor begins (the rest names
  // both factors).
  static constexpr std::string_view kFactorRefusal = "strata: another replication factor";
  // Answers a joining member (on gRPC's thread; it may wait).
  using OnJoin = std::function<grpc::Status(const peerpb::JoinRequest&, peerpb::JoinReply*)>;

  PeerNetwork(std::string self, PeerNetworkOptions options, OnMessage on_message);
  // Stops every sender (in-flight writes are cancelled).
  ~PeerNetwork();
  // Stops every sender now and waits for their threads (they call no
  // callback after): for an owner whose callbacks end before the network.
  // No AddPeer after it.
  void StopLinks();

  // Before the service is registered: who hears of streams that end.
  void set_on_stream_end(OnStreamEnd on_stream_end) { on_stream_end_ = std::move(on_stream_end); }
  // Before the service is registered: who answers Join (unset: refused).
  void set_on_join(OnJoin on_join) { on_join_ = std::move(on_join); }
  // Before the first AddPeer: who hears that a peer refused this server as
  // removed.
  void set_on_removed(OnRemoved on_removed) { on_removed_ = std::move(on_removed); }
  // The service a gRPC server registers to receive from peers.
  grpc::Service* service() { return &service_; }
  // Where `peer` listens (host:port); starts its sender.
  void AddPeer(const std::string& peer, const std::string& address);
  // `peer` left the cluster: its link stops and is sent nothing more (it
  // stays listed, idle: a name is never given to another node), and a
  // stream it opens is refused with kRemovedRefusal.
  void RemovePeer(const std::string& peer);
  // Queues `message` for `peer`; false if dropped (queue full, unknown or
  // removed peer).
  bool Send(const std::string& peer, peerpb::Message message);
  PeerNetworkStats Stats() const;

 private:
  struct Link;
  class Service final : public peerpb::Peer::Service {
   public:
    explicit Service(PeerNetwork* network) : network_(network) {}
    grpc::Status Deliver(grpc::ServerContext* context, grpc::ServerReader<peerpb::Batch>* reader,
                         peerpb::Delivered* reply) override;
    grpc::Status Join(grpc::ServerContext* context, const peerpb::JoinRequest* request,
                      peerpb::JoinReply* reply) override;

   private:
    PeerNetwork* network_;
  };
  void RunLink(Link* link);
  bool IsRemoved(const std::string& peer) const;
  // The refusal of a batch from a peer of another factor, said once a peer
  // and factor; OK if its factor is this member's (or either is unsaid).
  grpc::Status CheckFactor(const peerpb::Batch& batch);
  // Logs `line` unless it was the last line logged under `about`.
  void LogOnce(const std::string& about, const std::string& line);

  const std::string self_;
  const PeerNetworkOptions options_;
  const OnMessage on_message_;
  OnStreamEnd on_stream_end_;
  OnJoin on_join_;
  OnRemoved on_removed_;
  Service service_{this};
  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<Link>> links_ STRATA_GUARDED_BY(mu_);
  std::set<std::string> removed_ STRATA_GUARDED_BY(mu_);
  std::map<std::string, std::string> last_logged_ STRATA_GUARDED_BY(mu_);  // by LogOnce's about
  std::atomic<uint64_t> received_{0};
};

}  // namespace strata::server

#endif  // STRATA_SERVER_PEER_NETWORK_H_
