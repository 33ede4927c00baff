// etcd's Auth service (etcdserverpb.Auth) over service::AuthStore.
//
// Every call runs on one worker thread of its own: password hashing takes
// about 25 ms and 19 MiB (service/password_hash.h), and a change waits for an fsync, none of
// which may happen on gRPC's threads. One thread bounds the memory; past
// kMaxWaiting queued calls, callers get "etcdserver: too many requests".
#ifndef STRATA_SERVER_AUTH_SERVICE_H_
#define STRATA_SERVER_AUTH_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "server/etcd_server.h"

namespace strata::server {

std::unique_ptr<grpc::Service> MakeAuthService(EtcdServer::Impl* server);

}  // namespace strata::server

#endif  // STRATA_SERVER_AUTH_SERVICE_H_
