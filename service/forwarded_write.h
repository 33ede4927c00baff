// A client write one member runs for another: the member a client called
// sends a write whose keys all live on one other member's shard to that
// member (cluster::Router::Forward), which runs it as if called itself.
// One round trip instead of two (a read of the keys, then the commit), and
// the rules run beside the data.
//
// The write travels in the front end's encoding: the gRPC front end
// encodes with etcd's own protobuf messages (server/), so service/ never
// sees protobuf; tests use a codec of their own.
#ifndef STRATA_SERVICE_FORWARDED_WRITE_H_
#define STRATA_SERVICE_FORWARDED_WRITE_H_

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "service/kv_types.h"
#include "service/service_error.h"

namespace strata::service {

using KvWrite = std::variant<PutRequest, DeleteRangeRequest, TxnRequest>;
using KvWriteReply = std::variant<PutResponse, DeleteRangeResponse, TxnResponse>;

class KvWriteCodec {
 public:
  virtual ~KvWriteCodec() = default;
  virtual std::string EncodeWrite(const KvWrite& write) const = 0;
  // nullopt: not a write this codec made.
  virtual std::optional<KvWrite> DecodeWrite(std::string_view bytes) const = 0;
  // An error travels as its code and text, so the client sees the
  // owner's answer exactly.
  virtual std::string EncodeReply(const Reply<KvWriteReply>& reply) const = 0;
  // A garbled reply decodes to an error saying so.
  virtual Reply<KvWriteReply> DecodeReply(std::string_view bytes) const = 0;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_FORWARDED_WRITE_H_
