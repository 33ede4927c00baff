// Handlers of the raw MVCC API: each parses its request, runs it on the
// store and writes the reply's fields, or returns the error to send instead.
#ifndef STRATA_NODE_MVCC_HANDLERS_H_
#define STRATA_NODE_MVCC_HANDLERS_H_

#include "node/services.h"
#include "protocol/body.h"
#include "protocol/json_writer.h"

namespace strata::node {

using protocol::Body;
using protocol::JsonWriter;
using protocol::MaybeError;

MaybeError HandleMvccPut(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleMvccGet(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleMvccDelete(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleMvccScan(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleMvccHistory(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleMvccChanges(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleMvccCompact(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleMvccStats(Services& services, const Body& body, JsonWriter* reply);

}  // namespace strata::node

#endif  // STRATA_NODE_MVCC_HANDLERS_H_
