#include "server/grpc_metrics.h"

#include <chrono>
#include <string_view>
#include <utility>

namespace strata::server {
namespace {

const char* TypeName(GrpcMetrics::Type type) {
  switch (type) {
    case GrpcMetrics::Type::kUnary:
      return "unary";
    case GrpcMetrics::Type::kClientStream:
      return "client_stream";
    case GrpcMetrics::Type::kServerStream:
      return "server_stream";
    case GrpcMetrics::Type::kBidiStream:
      return "bidi_stream";
  }
  return "unary";
}

}  // namespace

void GrpcMetrics::Handled(Method* m, grpc::StatusCode code, double seconds) {
  int c = static_cast<int>(code);
  if (c < 0 || c >= kCodes) c = grpc::StatusCode::UNKNOWN;
  m->handled[c].fetch_add(1, std::memory_order_relaxed);
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  m->buckets[i].fetch_add(1, std::memory_order_relaxed);
  m->handling_micros.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

MeteredReactor::MeteredReactor(GrpcMetrics::Method* method) : meter_(method) { meter_.Received(); }

void MeteredReactor::Finish(grpc::Status status) {
  const auto& method = meter_.method();
  if (status.ok()) {
    meter_.Sent();
  } else if (method.owner->on_error) {
    method.owner->on_error(method, status);
  }
  meter_.Finished(status.error_code());
  grpc::ServerUnaryReactor::Finish(std::move(status));
}

GrpcMetrics::Method* GrpcMetrics::Find(const char* full_name, Type type) {
  MutexLock lock(mu_);
  const std::string_view key = full_name ? full_name : "/unknown/unknown";
  auto it = methods_.find(key);
  if (it == methods_.end()) it = methods_.emplace(std::string(key), nullptr).first;
  auto& slot = it->second;
  if (!slot) {
    slot = std::make_unique<Method>();
    slot->owner = this;
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
  MutexLock lock(mu_);
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
  MutexLock lock(mu_);
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
