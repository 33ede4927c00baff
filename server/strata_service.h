// The strata.v1 gRPC service (server/proto/strata.proto): interactive
// transactions, history, changes and stats, beside etcd's services.
#ifndef STRATA_SERVER_STRATA_SERVICE_H_
#define STRATA_SERVER_STRATA_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "server/etcd_server.h"
#include "service/service_error.h"
#include "strata.pb.h"
#include "strata/mvcc_store.h"

namespace strata::server {

std::unique_ptr<grpc::Service> MakeStrataService(EtcdServer::Impl* server);

// strata.v1's History of request.key(), stored in `store` under
// `engine_key` (the key itself on one node), no newer than `newest`: into
// `resp`, or the error (Compacted, or kInternal for a damaged version).
std::optional<service::ServiceError> ReadHistory(const MvccStore& store,
                                                 std::string_view engine_key,
                                                 const ::strata::v1::HistoryRequest& request,
                                                 int64_t newest,
                                                 ::strata::v1::HistoryResponse* resp);

}  // namespace strata::server

#endif  // STRATA_SERVER_STRATA_SERVICE_H_
