// What the operator's HTTP port serves about this server: /metrics (etcd's
// metric names where etcd has the concept, strata's own beside them), and
// etcd's /health plus /livez and /readyz.
#ifndef STRATA_SERVER_SERVER_METRICS_H_
#define STRATA_SERVER_SERVER_METRICS_H_

#include <string>

#include "ops/http_listener.h"
#include "server/etcd_server.h"

namespace strata::server {

// The Prometheus text of every metric (docs/METRICS.md lists them).
std::string RenderMetrics(const EtcdServer::Impl& s);

// etcd's /health: 200 {"health":"true"}, or 503 {"health":"false"} when the
// log failed, an alarm is raised or a read does not work; the reason goes
// to the log once per change, not per probe.
ops::HttpResponse Health(EtcdServer::Impl& s);
ops::HttpResponse Readyz(EtcdServer::Impl& s);
ops::HttpResponse Livez();

}  // namespace strata::server

#endif  // STRATA_SERVER_SERVER_METRICS_H_
