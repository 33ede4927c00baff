// The operator's dashboard on the metrics port (--listen-metrics-urls):
// /dashboard, one self-contained page (no external assets: the machine may
// have no internet) that refreshes from /metrics; and /dashboard/key, a
// key's versions as JSON for the page's timeline.
#ifndef STRATA_SERVER_DASHBOARD_H_
#define STRATA_SERVER_DASHBOARD_H_

#include <string>

#include "ops/http_listener.h"
#include "server/etcd_server.h"

namespace strata::server {

ops::HttpResponse DashboardPage();
// ?key=K[&limit=N]: K's versions (deletes too), the open transactions'
// snapshots and the compaction horizon. Refused (403) while authentication
// is enabled: the metrics port has no users, and values are data.
ops::HttpResponse KeyTimeline(const EtcdServer::Impl& server, const ops::HttpListener::Params& q);

}  // namespace strata::server

#endif  // STRATA_SERVER_DASHBOARD_H_
