// Protobuf (etcdserverpb, mvccpb) <-> the service layer's typed requests.
// The only code besides server/*_service.cc that sees protobuf.
#ifndef STRATA_SERVER_PROTO_CONVERT_H_
#define STRATA_SERVER_PROTO_CONVERT_H_

#include <grpcpp/grpcpp.h>

#include "rpc.pb.h"
#include "service/kv_types.h"
#include "service/service_error.h"
#include "service/watch_hub.h"

namespace strata::server {

// What every response header carries besides the revision.
struct HeaderIdentity {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  uint64_t raft_term = 0;
};

service::RangeRequest FromProto(const etcdserverpb::RangeRequest& p);
service::PutRequest FromProto(const etcdserverpb::PutRequest& p);
service::DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& p);
service::TxnRequest FromProto(const etcdserverpb::TxnRequest& p);
service::WatchCreateRequest FromProto(const etcdserverpb::WatchCreateRequest& p);

void ToProto(const HeaderIdentity& id, const service::ResponseHeader& h,
             etcdserverpb::ResponseHeader* p);
void ToProto(const service::KeyValue& kv, mvccpb::KeyValue* p);
// Nested responses carry only the revision in their header, as etcd's.
void ToProto(const service::RangeResponse& r, etcdserverpb::RangeResponse* p);
void ToProto(const service::PutResponse& r, etcdserverpb::PutResponse* p);
void ToProto(const service::DeleteRangeResponse& r, etcdserverpb::DeleteRangeResponse* p);
void ToProto(const service::TxnResponse& r, etcdserverpb::TxnResponse* p);
void ToProto(const HeaderIdentity& id, const service::WatchResponse& r,
             etcdserverpb::WatchResponse* p);

// The other way, for writes one member forwards to another
// (server/kv_write_codec.h): requests to protobuf, responses back.
void ToProto(const service::RangeRequest& r, etcdserverpb::RangeRequest* p);
void ToProto(const service::PutRequest& r, etcdserverpb::PutRequest* p);
void ToProto(const service::DeleteRangeRequest& r, etcdserverpb::DeleteRangeRequest* p);
void ToProto(const service::TxnRequest& r, etcdserverpb::TxnRequest* p);
service::KeyValue FromProto(const mvccpb::KeyValue& p);
service::RangeResponse FromProto(const etcdserverpb::RangeResponse& p);
service::PutResponse FromProto(const etcdserverpb::PutResponse& p);
service::DeleteRangeResponse FromProto(const etcdserverpb::DeleteRangeResponse& p);
service::TxnResponse FromProto(const etcdserverpb::TxnResponse& p);

grpc::Status ToGrpc(const service::ServiceError& e);
// `e` as etcd's Go code prints a gRPC error ("rpc error: code =
// PermissionDenied desc = etcdserver: permission denied"): the text etcd
// puts where a reply carries an error as a string (a watch's cancel_reason).
std::string GoGrpcErrorText(const service::ServiceError& e);

}  // namespace strata::server

#endif  // STRATA_SERVER_PROTO_CONVERT_H_
