// Handlers of the transaction API (PROTOCOL.md section 4): txn_begin,
// txn_get, txn_put, txn_delete, txn_scan, txn_commit, txn_abort.
#ifndef STRATA_NODE_TXN_HANDLERS_H_
#define STRATA_NODE_TXN_HANDLERS_H_

#include <string>

#include "node/services.h"
#include "protocol/body.h"
#include "protocol/json_writer.h"

namespace strata::node {

using protocol::Body;
using protocol::JsonWriter;
using protocol::MaybeError;

MaybeError HandleTxnBegin(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleTxnGet(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleTxnPut(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleTxnDelete(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleTxnScan(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleTxnCommit(Services& services, const Body& body, JsonWriter* reply);
MaybeError HandleTxnAbort(Services& services, const Body& body, JsonWriter* reply);

// The wire error for a failed commit: error 30 naming the transaction and
// the conflicting key, or the mapped store error.
protocol::ErrorReply CommitError(const Transaction& txn, const Status& status);

}  // namespace strata::node

#endif  // STRATA_NODE_TXN_HANDLERS_H_
