// Maintenance.Snapshot on a member of a cluster: the whole cluster at one
// held snapshot, in service/snapshot.h's cluster format (3), a page of
// keys a message, read from every shard in key order. `etcdctl snapshot
// save` keeps it as it keeps etcd's; `strata-ctl snapshot restore --name
// --initial-cluster` restores each member of a new cluster from it.
#ifndef STRATA_SERVER_CLUSTER_SNAPSHOT_H_
#define STRATA_SERVER_CLUSTER_SNAPSHOT_H_

#include <grpcpp/grpcpp.h>

#include "rpc.pb.h"
#include "server/etcd_server.h"

namespace strata::server {

// Starts the stream (authorization is checked before).
grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* StartClusterSnapshot(EtcdServer::Impl* s);

}  // namespace strata::server

#endif  // STRATA_SERVER_CLUSTER_SNAPSHOT_H_
