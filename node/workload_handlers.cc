#include "node/workload_handlers.h"

#include <string>

#include "node/txn_handlers.h"
#include "protocol/workload_messages.h"

namespace strata::node {

using protocol::ErrorFromStatus;
using protocol::StoredValue;

namespace {

// Begins a single-request transaction at the node's isolation level.
MaybeError BeginWorkloadTxn(Services& services, std::optional<Transaction>* txn) {
  TxnOptions options;
  options.isolation = services.default_isolation;
  Result<Transaction> begun = services.db->Begin(options);
  if (!begun.ok()) return ErrorFromStatus(begun.status());
  txn->emplace(std::move(*begun));
  return std::nullopt;
}

MaybeError CommitWorkloadTxn(Transaction& txn) {
  Result<Timestamp> committed = txn.Commit();
  if (!committed.ok()) return CommitError(txn, committed.status());
  return std::nullopt;
}

// The stored value of `key` as `txn` reads it.
Result<StoredValue> ReadValue(Transaction& txn, std::string_view key) {
  Result<ReadResult> read = txn.Get(key);
  if (!read.ok()) return read.status();
  if (!read->found || read->deleted) return StoredValue();
  return StoredValue(std::move(read->value));
}

}  // namespace

MaybeError HandleKvRead(Services& services, const Body& body, JsonWriter* reply) {
  protocol::KvReadRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  // The newest committed version: a single node applies commits in order,
  // so this read is linearizable.
  Result<ReadResult> read = services.store->Get(req.key);
  if (!read.ok()) return ErrorFromStatus(read.status());
  if (!read->found || read->deleted) return protocol::KeyMissing(req.key);
  reply->Key("value").Raw(read->value);
  return std::nullopt;
}

MaybeError HandleKvWrite(Services& services, const Body& body, JsonWriter*) {
  protocol::KvWriteRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  std::optional<Transaction> txn;
  if (auto err = BeginWorkloadTxn(services, &txn)) return err;
  if (Status s = txn->Put(req.key, req.value); !s.ok()) return ErrorFromStatus(s);
  return CommitWorkloadTxn(*txn);
}

MaybeError HandleKvCas(Services& services, const Body& body, JsonWriter*) {
  protocol::KvCasRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  std::optional<Transaction> txn;
  if (auto err = BeginWorkloadTxn(services, &txn)) return err;
  Result<StoredValue> current = ReadValue(*txn, req.key);
  if (!current.ok()) return ErrorFromStatus(current.status());
  if (auto refusal = protocol::CasRefusal(req, *current)) return refusal;
  if (Status s = txn->Put(req.key, req.to); !s.ok()) return ErrorFromStatus(s);
  return CommitWorkloadTxn(*txn);
}

MaybeError HandleTxnOps(Services& services, const Body& body, JsonWriter* reply) {
  protocol::TxnOpsRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  std::optional<Transaction> txn;
  if (auto err = BeginWorkloadTxn(services, &txn)) return err;
  // Read as the rules ask: the transaction then validates exactly what the
  // answer depended on.
  protocol::TxnOpsOutcome outcome;
  if (auto err = protocol::RunTxnOps(
          req, [&](const std::string& key) { return ReadValue(*txn, key); }, &outcome)) {
    return err;
  }
  for (auto& [key, value] : outcome.writes) {
    if (Status s = txn->Put(key, *value); !s.ok()) return ErrorFromStatus(s);
  }
  if (auto err = CommitWorkloadTxn(*txn)) return err;
  reply->Key("txn").Raw(outcome.completed);
  return std::nullopt;
}

}  // namespace strata::node
