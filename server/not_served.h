// A gRPC service that answers every method nobody registered with
// Unimplemented and a sentence: what this server does not serve in the
// mode it runs, and where to read why.
#ifndef STRATA_SERVER_NOT_SERVED_H_
#define STRATA_SERVER_NOT_SERVED_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace strata::server {

// Each call to method M is answered "strata: M is not served by <what>".
std::unique_ptr<grpc::CallbackGenericService> MakeNotServedService(std::string what);

}  // namespace strata::server

#endif  // STRATA_SERVER_NOT_SERVED_H_
