// MaelstromPeerTransport: the cluster's typed peer messages as Maelstrom
// lines (protocol/peer_codec.h), written through the node's Transport.
#ifndef STRATA_NODE_MAELSTROM_PEER_TRANSPORT_H_
#define STRATA_NODE_MAELSTROM_PEER_TRANSPORT_H_

#include <cstdint>
#include <string_view>

#include "cluster/peer_messages.h"
#include "cluster/peer_transport.h"
#include "node/transport.h"
#include "protocol/peer_codec.h"

namespace strata::node {

class MaelstromPeerTransport final : public cluster::PeerTransport {
 public:
  explicit MaelstromPeerTransport(Transport* lines) : lines_(lines) {}

  uint64_t Send(std::string_view dest, std::optional<cluster::ShardId> shard,
                const cluster::PeerRequest& request, Timestamp hlc) override {
    return lines_->Send(dest, protocol::PeerRequestType(request),
                        protocol::PeerRequestFields(request, hlc, shard));
  }
  // Answers a node's request.
  void Reply(const ReplyAddress& to, const cluster::PeerReply& reply, Timestamp hlc) {
    lines_->Reply(to, protocol::PeerReplyType(reply), protocol::PeerReplyFields(reply, hlc));
  }

 private:
  Transport* lines_;
};

}  // namespace strata::node

#endif  // STRATA_NODE_MAELSTROM_PEER_TRANSPORT_H_
