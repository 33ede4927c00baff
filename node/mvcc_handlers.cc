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

MaybeError HandleMvccPut(Services& services, const Body& body, JsonWriter* reply) {
  protocol::MvccPutRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(services.db->RawPut(req.key, req.value_json, req.timestamp), reply);
}

MaybeError HandleMvccGet(Services& services, const Body& body, JsonWriter* reply) {
  protocol::MvccGetRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(services.store->Get(req.key, req.read_timestamp.value_or(Timestamp::Max())), reply);
}

MaybeError HandleMvccDelete(Services& services, const Body& body, JsonWriter* reply) {
  protocol::MvccDeleteRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(services.db->RawDelete(req.key, req.timestamp), reply);
}

MaybeError HandleMvccScan(Services& services, const Body& body, JsonWriter* reply) {
  protocol::MvccScanRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(
      services.store->Scan(req.range, req.read_timestamp.value_or(Timestamp::Max()), req.limit),
      reply);
}

MaybeError HandleMvccHistory(Services& services, const Body& body, JsonWriter* reply) {
  protocol::MvccHistoryRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(services.store->History(req.key, req.start_timestamp, req.end_timestamp, req.limit),
                reply);
}

MaybeError HandleMvccChanges(Services& services, const Body& body, JsonWriter* reply) {
  protocol::MvccChangesRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  return Finish(services.store->Changes(req.since_timestamp, req.range, req.limit), reply);
}

MaybeError HandleMvccCompact(Services& services, const Body& body, JsonWriter* reply) {
  protocol::MvccCompactRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  // The horizon stops at the oldest active transaction's snapshot.
  WriteReply(services.db->Compact(req.timestamp), reply);
  return std::nullopt;
}

MaybeError HandleMvccStats(Services& services, const Body&, JsonWriter* reply) {
  protocol::WriteStats(services.store->GetStats(), reply);
  protocol::WriteTxnStats(services.db->GetStats(), services.txns->expired(), reply);
  if (services.durable != nullptr) {
    protocol::WriteDurabilityStats(services.durable->GetDurabilityStats(), reply);
  }
  return std::nullopt;
}

}  // namespace strata::node
