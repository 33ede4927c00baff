// Peer messages as protobuf (strata.peer.v1, server/proto/peer.proto): the
// cluster's typed messages (cluster/peer_messages.h) between strata-server
// processes, and back.
//
// Decoding trusts nothing a peer sends: a request that names no known
// message, an enum value outside its range, a missing range or a limit out
// of bounds is refused (kInvalidArgument, naming it), as the Maelstrom
// codec refuses the same in JSON; shard ids are checked by the shard
// server, which knows how many there are.
#ifndef STRATA_SERVER_PEER_PROTO_H_
#define STRATA_SERVER_PEER_PROTO_H_

#include "cluster/peer_messages.h"
#include "peer.pb.h"
#include "strata/status.h"

namespace strata::server {

namespace peerpb = ::strata::peer::v1;

void RequestToProto(const cluster::PeerRequest& request, peerpb::Message* out);
void ReplyToProto(const cluster::PeerReply& reply, peerpb::Message* out);

// Whether the message answers another (in_reply_to set, or an error).
bool IsReply(const peerpb::Message& message);
Status RequestFromProto(const peerpb::Message& message, cluster::PeerRequest* out);
// A reply that does not decode comes back as a PeerError (kIoError).
cluster::PeerReply ReplyFromProto(const peerpb::Message& message);

}  // namespace strata::server

#endif  // STRATA_SERVER_PEER_PROTO_H_
