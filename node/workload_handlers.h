// Handlers of Maelstrom's standard workloads, on the same keyspace as the
// rest of the API: lin-kv (read, write, cas) and the txn message of
// txn-rw-register and txn-list-append. Each request runs as one
// transaction at the node's isolation level. What they mean is
// protocol/workload_messages.h, which a cluster (cluster_requests.cc) runs
// too; here they read and commit through the node's own engine.
#ifndef STRATA_NODE_WORKLOAD_HANDLERS_H_
#define STRATA_NODE_WORKLOAD_HANDLERS_H_

#include "node/services.h"
#include "protocol/body.h"
#include "protocol/json_writer.h"

namespace strata::node {

using protocol::Body;
using protocol::JsonWriter;
using protocol::MaybeError;

MaybeError HandleKvRead(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleKvWrite(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleKvCas(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleTxnOps(Services& services, const Body& body, JsonWriter* reply);

}  // namespace strata::node

#endif  // STRATA_NODE_WORKLOAD_HANDLERS_H_
