#include "server/kv_write_codec.h"

#include "server/proto_convert.h"

namespace strata::server {

namespace pb = etcdserverpb;
using service::KvWrite;
using service::KvWriteReply;
using service::Reply;
using service::ServiceError;

namespace {

constexpr char kAnswer = 0;
constexpr char kError = 1;

ServiceError Garbled(std::string_view what) {
  return ServiceError{service::ErrorCode::kInternal,
                      "strata: a forwarded write's " + std::string(what) +
                          " from the member owning its keys did not decode"};
}

}  // namespace

std::string ProtoKvWriteCodec::EncodeWrite(const KvWrite& write) const {
  pb::RequestOp op;
  if (const auto* put = std::get_if<service::PutRequest>(&write)) {
    ToProto(*put, op.mutable_request_put());
  } else if (const auto* del = std::get_if<service::DeleteRangeRequest>(&write)) {
    ToProto(*del, op.mutable_request_delete_range());
  } else {
    ToProto(std::get<service::TxnRequest>(write), op.mutable_request_txn());
  }
  return op.SerializeAsString();
}

std::optional<KvWrite> ProtoKvWriteCodec::DecodeWrite(std::string_view bytes) const {
  pb::RequestOp op;
  if (!op.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  switch (op.request_case()) {
    case pb::RequestOp::kRequestPut:
      return KvWrite{FromProto(op.request_put())};
    case pb::RequestOp::kRequestDeleteRange:
      return KvWrite{FromProto(op.request_delete_range())};
    case pb::RequestOp::kRequestTxn:
      return KvWrite{FromProto(op.request_txn())};
    default:
      return std::nullopt;  // a Range is never forwarded
  }
}

std::string ProtoKvWriteCodec::EncodeReply(const Reply<KvWriteReply>& reply) const {
  if (!reply.ok()) {
    std::string out{kError, static_cast<char>(reply.error().code)};
    return out + reply.error().message;
  }
  pb::ResponseOp op;
  const KvWriteReply& r = reply.value();
  if (const auto* put = std::get_if<service::PutResponse>(&r)) {
    ToProto(*put, op.mutable_response_put());
  } else if (const auto* del = std::get_if<service::DeleteRangeResponse>(&r)) {
    ToProto(*del, op.mutable_response_delete_range());
  } else {
    ToProto(std::get<service::TxnResponse>(r), op.mutable_response_txn());
  }
  return std::string(1, kAnswer) + op.SerializeAsString();
}

Reply<KvWriteReply> ProtoKvWriteCodec::DecodeReply(std::string_view bytes) const {
  if (bytes.empty()) return Garbled("answer");
  if (bytes[0] == kError) {
    if (bytes.size() < 2) return Garbled("error");
    const auto code = static_cast<unsigned char>(bytes[1]);
    if (code == 0 || code > static_cast<unsigned char>(service::ErrorCode::kUnauthenticated)) {
      return Garbled("error");
    }
    return ServiceError{static_cast<service::ErrorCode>(code), std::string(bytes.substr(2))};
  }
  pb::ResponseOp op;
  if (bytes[0] != kAnswer ||
      !op.ParseFromArray(bytes.data() + 1, static_cast<int>(bytes.size() - 1))) {
    return Garbled("answer");
  }
  switch (op.response_case()) {
    case pb::ResponseOp::kResponsePut:
      return KvWriteReply{FromProto(op.response_put())};
    case pb::ResponseOp::kResponseDeleteRange:
      return KvWriteReply{FromProto(op.response_delete_range())};
    case pb::ResponseOp::kResponseTxn:
      return KvWriteReply{FromProto(op.response_txn())};
    default:
      return Garbled("answer");
  }
}

}  // namespace strata::server
