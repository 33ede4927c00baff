// Transport: how the node's cluster code writes Maelstrom lines.
//
// Send a message to a node, or reply to a request (a client's or a
// node's), from any event: a request, a reply, a timer. The Node
// implements it; MaelstromPeerTransport puts the cluster's typed peer
// messages on it.
#ifndef STRATA_NODE_TRANSPORT_H_
#define STRATA_NODE_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/errors.h"

namespace strata::node {

// Where a reply goes: the request's sender and msg_id (as JSON).
struct ReplyAddress {
  std::string dest;
  std::string in_reply_to_json;
  bool wanted = true;  // false: the request had no msg_id
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends a request to node `dest` (which may be this node); returns its msg_id.
  virtual uint64_t Send(std::string_view dest, std::string_view type, std::string_view fields) = 0;
  // `fields` continue the body object (JsonWriter::ContinuingObject).
  virtual void Reply(const ReplyAddress& to, std::string_view type, std::string_view fields) = 0;
  void ReplyError(const ReplyAddress& to, const protocol::ErrorReply& error);
};

}  // namespace strata::node

#endif  // STRATA_NODE_TRANSPORT_H_
