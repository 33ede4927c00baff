// PeerTransport: what a transport offers the cluster's roles.
//
// Outbound, a request (or a one-way message) to a node, which may be this
// node, for one of the shards it holds a replica of, or for the node. Inbound, the transport hands
// the node each request with a way to answer it (ShardServer::Respond) and each reply with the
// message id it answers. Every message carries the sender's hybrid clock: the receiver moves its
// own past it before anything else (the HLC receive rule), so causality holds across nodes.
// Delivery is at most once per send: a message may be lost, delayed, duplicated by a resend or
// reordered, and PeerRpc is what turns that into calls that complete or give up.
#ifndef STRATA_CLUSTER_PEER_TRANSPORT_H_
#define STRATA_CLUSTER_PEER_TRANSPORT_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "cluster/peer_messages.h"
#include "strata/timestamp.h"

namespace strata::cluster {

class PeerTransport {
 public:
  virtual ~PeerTransport() = default;
  // Sends `request` to node `dest`, for its replica of `shard` (nullopt:
  // for the node itself, as a low-water-mark report or a forward); returns
  // the message id its reply will name.
  virtual uint64_t Send(std::string_view dest, std::optional<ShardId> shard,
                        const PeerRequest& request, Timestamp hlc) = 0;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_PEER_TRANSPORT_H_
