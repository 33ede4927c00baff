// The strata.v1 gRPC service (server/proto/strata.proto): interactive
// transactions, history, changes and stats, beside etcd's services.
#ifndef STRATA_SERVER_STRATA_SERVICE_H_
#define STRATA_SERVER_STRATA_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "server/etcd_server.h"

namespace strata::server {

std::unique_ptr<grpc::Service> MakeStrataService(EtcdServer::Impl* server);

}  // namespace strata::server

#endif  // STRATA_SERVER_STRATA_SERVICE_H_
