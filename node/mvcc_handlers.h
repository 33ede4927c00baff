// Handlers of the raw MVCC API: each parses its request, runs it on the
// store and writes the reply's fields, or returns the error to send instead.
#ifndef STRATA_NODE_MVCC_HANDLERS_H_
#define STRATA_NODE_MVCC_HANDLERS_H_

#include "protocol/body.h"
#include "protocol/json_writer.h"
#include "strata/mvcc_store.h"

namespace strata::node {

using protocol::Body;
using protocol::JsonWriter;
using protocol::MaybeError;

MaybeError HandleMvccPut(MvccStore& store, const Body& body, JsonWriter* reply);
MaybeError HandleMvccGet(MvccStore& store, const Body& body, JsonWriter* reply);
MaybeError HandleMvccDelete(MvccStore& store, const Body& body, JsonWriter* reply);
MaybeError HandleMvccScan(MvccStore& store, const Body& body, JsonWriter* reply);
MaybeError HandleMvccHistory(MvccStore& store, const Body& body, JsonWriter* reply);
MaybeError HandleMvccChanges(MvccStore& store, const Body& body, JsonWriter* reply);
MaybeError HandleMvccCompact(MvccStore& store, const Body& body, JsonWriter* reply);
MaybeError HandleMvccStats(MvccStore& store, const Body& body, JsonWriter* reply);

}  // namespace strata::node

#endif  // STRATA_NODE_MVCC_HANDLERS_H_
