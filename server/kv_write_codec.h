// ProtoKvWriteCodec: a forwarded etcd write (service/forwarded_write.h) in
// etcd's own protobuf messages. The request is an etcdserverpb.RequestOp;
// the answer is one tag byte, then an etcdserverpb.ResponseOp (tag 0) or an
// error (tag 1: one byte of gRPC code, then the message), so a client
// gets the owner's answer exactly, code and text.
#ifndef STRATA_SERVER_KV_WRITE_CODEC_H_
#define STRATA_SERVER_KV_WRITE_CODEC_H_

#include <optional>
#include <string>
#include <string_view>

#include "service/forwarded_write.h"

namespace strata::server {

class ProtoKvWriteCodec final : public service::KvWriteCodec {
 public:
  std::string EncodeWrite(const service::KvWrite& write) const override;
  std::optional<service::KvWrite> DecodeWrite(std::string_view bytes) const override;
  std::string EncodeReply(const service::Reply<service::KvWriteReply>& reply) const override;
  service::Reply<service::KvWriteReply> DecodeReply(std::string_view bytes) const override;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_KV_WRITE_CODEC_H_
