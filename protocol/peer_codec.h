// Peer codec: the cluster's typed peer messages (cluster/peer_messages.h)
// as Maelstrom message bodies, and back.
//
// Each request has its own type (shard_read, shard_prepare, shard_commit,
// shard_resolve, record_commit|abort|push|heartbeat|forget, forward,
// lwm_report, raw_scan, raw_changes, raw_compact); its reply is the type with "_ok", or "error"
// with a code and text. Every message carries the sender's hybrid clock as "hlc". Keys and ranges
// travel as hex of their engine bytes (cluster_codec.h); docs/CLUSTER.md lists the fields. Decoding
// checks everything a peer could get wrong and answers it as a client's bad request would be (error
// 12, or 10 for an unknown record call); what it cannot know (how many shards there are) the shard
// server checks.
#ifndef STRATA_PROTOCOL_PEER_CODEC_H_
#define STRATA_PROTOCOL_PEER_CODEC_H_

#include <optional>
#include <string>
#include <string_view>

#include "cluster/peer_messages.h"
#include "protocol/body.h"
#include "protocol/envelope.h"
#include "strata/timestamp.h"

namespace strata::protocol {

// The type a request or reply travels as.
std::string_view PeerRequestType(const cluster::PeerRequest& request);
std::string_view PeerReplyType(const cluster::PeerReply& reply);

// The body fields (continuing an object) of a request or reply, the
// sender's clock `hlc` included, and for a request the shard it is for
// ("shard", absent for the node itself).
std::string PeerRequestFields(const cluster::PeerRequest& request, Timestamp hlc,
                              std::optional<cluster::ShardId> shard = std::nullopt);
std::string PeerReplyFields(const cluster::PeerReply& reply, Timestamp hlc);

// Whether `type` names a request only nodes send (anything else from a node
// is a client request it relays, or a reply).
bool IsPeerRequestType(std::string_view type);
// A one-way message: never answered, not even with an error.
bool IsOneWayType(std::string_view type);

// Decodes a request whose type IsPeerRequestType.
MaybeError ReadPeerRequest(const Envelope& message, cluster::PeerRequest* out);
// Decodes a reply. One that does not decode, or names a failure, comes back
// as a PeerError (a reply is never answered, so this is where it ends).
cluster::PeerReply ReadPeerReply(const Envelope& message);

// The sender's clock, if the message has one; error 12 if it is not a
// timestamp.
MaybeError ReadSenderClock(const Envelope& message, std::optional<Timestamp>* out);
// The shard a request is for, if it names one; error 12 if it is not a
// shard id.
MaybeError ReadTargetShard(const Envelope& message, std::optional<cluster::ShardId>* out);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_PEER_CODEC_H_
