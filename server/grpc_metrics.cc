#include "server/grpc_metrics.h"

#include <chrono>
#include <string_view>

namespace strata::server {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

const char* TypeName(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unary";
}

class Interceptor final : public grpc::experimental::Interceptor {
 public:
  explicit Interceptor(GrpcMetrics::Method* m) : m_(m), start_(std::chrono::steady_clock::now()) {
    m_->started.fetch_add(1, std::memory_order_relaxed);
  }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      m_->received.fetch_add(1, std::memory_order_relaxed);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      m_->sent.fetch_add(1, std::memory_order_relaxed);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      int code = static_cast<int>(methods->GetSendStatus().error_code());
      if (code < 0 || code >= GrpcMetrics::kCodes) code = grpc::StatusCode::UNKNOWN;
      m_->handled[code].fetch_add(1, std::memory_order_relaxed);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      size_t i = 0;
      while (i < GrpcMetrics::kBounds.size() && seconds > GrpcMetrics::kBounds[i]) ++i;
      m_->buckets[i].fetch_add(1, std::memory_order_relaxed);
      m_->handling_micros.fetch_add(static_cast<uint64_t>(seconds * 1e6),
                                    std::memory_order_relaxed);
    }
    methods->Proceed();
  }

 private:
  GrpcMetrics::Method* m_;
  std::chrono::steady_clock::time_point start_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(GrpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new Interceptor(metrics_->Find(info->method(), info->type()));
  }

 private:
  GrpcMetrics* metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> GrpcMetrics::Factory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

GrpcMetrics::Method* GrpcMetrics::Find(const char* full_name, ServerRpcInfo::Type type) {
  std::lock_guard lock(mu_);
  auto& slot = methods_[full_name];
  if (!slot) {
    slot = std::make_unique<Method>();
    // "/package.Service/Method"
    std::string_view n = full_name ? full_name : "/unknown/unknown";
    if (!n.empty() && n.front() == '/') n.remove_prefix(1);
    const size_t slash = n.find('/');
    slot->service = std::string(n.substr(0, slash));
    slot->name = slash == std::string_view::npos ? "" : std::string(n.substr(slash + 1));
    slot->type = TypeName(type);
  }
  return slot.get();
}

uint64_t GrpcMetrics::Handled(const std::string& service, const std::string& name) const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& [key, m] : methods_) {
    if (m->service != service || m->name != name) continue;
    for (const auto& c : m->handled) total += c.load(std::memory_order_relaxed);
  }
  return total;
}

const char* GrpcMetrics::CodeName(int code) {
  static constexpr const char* kNames[kCodes] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return code >= 0 && code < kCodes ? kNames[code] : "Unknown";
}

void GrpcMetrics::Render(ops::PrometheusText& out) const {
  std::lock_guard lock(mu_);
  auto labels = [](const Method& m) {
    return ops::Labels{{"grpc_method", m.name}, {"grpc_service", m.service}, {"grpc_type", m.type}};
  };
  out.Counter("grpc_server_started_total", "Total number of RPCs started on the server.");
  for (const auto& [k, m] : methods_) out.Sample(m->started.load(), labels(*m));
  out.Counter("grpc_server_handled_total",
              "Total number of RPCs completed on the server, regardless of success or failure.");
  for (const auto& [k, m] : methods_) {
    for (int c = 0; c < kCodes; ++c) {
      const uint64_t n = m->handled[c].load();
      if (n == 0 && c != 0) continue;  // OK always; other codes once seen
      auto l = labels(*m);
      l.insert(l.begin(), {"grpc_code", CodeName(c)});
      out.Sample(static_cast<double>(n), l);
    }
  }
  out.Counter("grpc_server_msg_received_total",
              "Total number of RPC stream messages received on the server.");
  for (const auto& [k, m] : methods_) out.Sample(m->received.load(), labels(*m));
  out.Counter("grpc_server_msg_sent_total",
              "Total number of gRPC stream messages sent by the server.");
  for (const auto& [k, m] : methods_) out.Sample(m->sent.load(), labels(*m));
  out.Histogram("grpc_server_handling_seconds",
                "Histogram of response latency (seconds) of gRPC that had been application-level "
                "handled by the server.");
  const std::vector<double> bounds(kBounds.begin(), kBounds.end());
  for (const auto& [k, m] : methods_) {
    std::vector<uint64_t> counts;
    for (const auto& b : m->buckets) counts.push_back(b.load());
    out.HistogramSample(bounds, counts, static_cast<double>(m->handling_micros.load()) / 1e6,
                        labels(*m));
  }
}

}  // namespace strata::server
