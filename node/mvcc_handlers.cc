#include "node/mvcc_handlers.h"

#include "protocol/mvcc_messages.h"

namespace strata::node {

using protocol::ErrorFromStatus;
using protocol::ParseRequest;
using protocol::WriteReply;

namespace {

// Writes the reply of a successful store call, or returns its error.
template <typename T>
MaybeError Finish(const Result<T>& result, JsonWriter* reply) {
  if (!result.ok()) return ErrorFromStatus(result.status());
  WriteReply(*result, reply);
  return std::nullopt;
}

}  // namespace

MaybeError HandleMvccPut(MvccStore& store, const Body& body, JsonWriter* reply) {
  protocol::MvccPutRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(store.Put(req.key, req.value_json, req.timestamp), reply);
}

MaybeError HandleMvccGet(MvccStore& store, const Body& body, JsonWriter* reply) {
  protocol::MvccGetRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(store.Get(req.key, req.read_timestamp.value_or(Timestamp::Max())), reply);
}

MaybeError HandleMvccDelete(MvccStore& store, const Body& body, JsonWriter* reply) {
  protocol::MvccDeleteRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(store.Delete(req.key, req.timestamp), reply);
}

MaybeError HandleMvccScan(MvccStore& store, const Body& body, JsonWriter* reply) {
  protocol::MvccScanRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(store.Scan(req.range, req.read_timestamp.value_or(Timestamp::Max()), req.limit),
                reply);
}

MaybeError HandleMvccHistory(MvccStore& store, const Body& body, JsonWriter* reply) {
  protocol::MvccHistoryRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(store.History(req.key, req.start_timestamp, req.end_timestamp, req.limit), reply);
}

MaybeError HandleMvccChanges(MvccStore& store, const Body& body, JsonWriter* reply) {
  protocol::MvccChangesRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(store.Changes(req.since_timestamp, req.range, req.limit), reply);
}

MaybeError HandleMvccCompact(MvccStore& store, const Body& body, JsonWriter* reply) {
  protocol::MvccCompactRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  // No transactions hold the horizon back yet (they arrive with the
  // transaction layer), so the requested timestamp is the new horizon.
  WriteReply(store.Compact(req.timestamp), reply);
  return std::nullopt;
}

MaybeError HandleMvccStats(MvccStore& store, const Body&, JsonWriter* reply) {
  protocol::WriteStats(store.GetStats(), reply);
  // Transaction fields: no transaction layer yet, so nothing is active.
  reply->Key("min_active_snapshot").Null();
  reply->FieldUint("active_txns", 0);
  reply->Key("oldest_txn_age_ms").Null();
  reply->FieldUint("commits", 0).FieldUint("conflicts", 0);
  return std::nullopt;
}

}  // namespace strata::node
