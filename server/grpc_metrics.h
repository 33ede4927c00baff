// GrpcMetrics: per-method counts and handling times of every RPC the server
// serves, under the names etcd exports (go-grpc-prometheus'):
// grpc_server_started_total, grpc_server_handled_total (by status code),
// grpc_server_msg_received_total, grpc_server_msg_sent_total and
// grpc_server_handling_seconds, labelled grpc_type / grpc_service /
// grpc_method (/ grpc_code). Fed by a gRPC server interceptor, so no
// service has to count for itself; the hot path is a few relaxed atomic
// increments on a per-method record found by the method name's address.
#ifndef STRATA_SERVER_GRPC_METRICS_H_
#define STRATA_SERVER_GRPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ops/prometheus_text.h"

namespace strata::server {

class GrpcMetrics final {
 public:
  // go-grpc-prometheus' default buckets, in seconds.
  static constexpr std::array<double, 11> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10};
  static constexpr int kCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED

  struct Method {
    std::string type, service, name;
    std::atomic<uint64_t> started{0};
    std::array<std::atomic<uint64_t>, kCodes> handled{};
    std::atomic<uint64_t> received{0}, sent{0};
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};
    std::atomic<uint64_t> handling_micros{0};  // the histogram's sum
  };

  // The interceptor factory to hand to grpc::ServerBuilder; it refers to
  // this object, which must outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Factory();

  // The record of a method ("/etcdserverpb.KV/Range"), made on first use.
  Method* Find(const char* full_name, grpc::experimental::ServerRpcInfo::Type type);

  // Handled RPCs of one method, every code ("etcdserverpb.KV", "Put").
  uint64_t Handled(const std::string& service, const std::string& name) const;

  void Render(ops::PrometheusText& out) const;

  // Go's names for the codes, as the labels say them.
  static const char* CodeName(int code);

 private:
  mutable std::mutex mu_;
  // By the address of the method's name: gRPC passes the same pointer for
  // every call of a registered method.
  std::map<const char*, std::unique_ptr<Method>> methods_;  // guarded by mu_
};

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_METRICS_H_
