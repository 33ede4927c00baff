// A PeerTransport that sends nothing: it records every request (its
// destination and message id) so a test can look at what a role sent and
// answer it by hand through Peers::OnReply.
#ifndef STRATA_TESTS_CLUSTER_CAPTURING_TRANSPORT_H_
#define STRATA_TESTS_CLUSTER_CAPTURING_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/peer_transport.h"

namespace strata::cluster {

class CapturingTransport final : public PeerTransport {
 public:
  struct Sent {
    std::string dest;
    PeerRequest request;
    uint64_t msg_id;
    std::optional<ShardId> shard;
  };
  uint64_t Send(std::string_view dest, std::optional<ShardId> shard, const PeerRequest& request,
                Timestamp) override {
    sent.push_back(Sent{std::string(dest), request, next_id, shard});
    return next_id++;
  }
  std::vector<Sent> sent;
  uint64_t next_id = 1;
};

}  // namespace strata::cluster

#endif  // STRATA_TESTS_CLUSTER_CAPTURING_TRANSPORT_H_
