#include "node/txn_handlers.h"

#include "protocol/key_codec.h"
#include "protocol/mvcc_messages.h"

namespace strata::node {

using protocol::ErrorCode;
using protocol::ErrorFromStatus;
using protocol::ErrorReply;
using protocol::KeyText;
using protocol::ParseIsolation;

namespace {

// The open transaction named by the body's txn_id, or error 14.
MaybeError FindTxn(Services& services, const Body& body, Transaction** txn) {
  uint64_t id = 0;
  if (auto err = body.RequiredUint("txn_id", &id)) return err;
  *txn = services.txns->Touch(id, services.now);
  if (*txn == nullptr) {
    return ErrorReply{ErrorCode::kAbort,
                      "transaction " + std::to_string(id) +
                          " does not exist: it committed, aborted, or expired after being idle "
                          "longer than --txn-timeout-ms"};
  }
  return std::nullopt;
}

}  // namespace

ErrorReply CommitError(const Transaction& txn, const Status& status) {
  if (status.code() != StatusCode::kConflict) return ErrorFromStatus(status);
  std::string text = "transaction " + std::to_string(txn.id()) + " aborted: " + status.message();
  if (txn.conflict_key()) text += " (key " + KeyText(*txn.conflict_key()) + ")";
  return ErrorReply{ErrorCode::kTxnConflict, std::move(text)};
}

MaybeError HandleTxnBegin(Services& services, const Body& body, JsonWriter* reply) {
  TxnOptions options;
  if (auto err = ParseIsolation(body, services.default_isolation, &options.isolation)) return err;
  std::optional<bool> read_only;
  if (auto err = body.OptionalBool("read_only", &read_only)) return err;
  options.read_only = read_only.value_or(false);
  if (auto err = body.OptionalTimestamp("read_timestamp", &options.read_timestamp)) return err;

  Result<Transaction> txn = services.db->Begin(options);
  if (!txn.ok()) return ErrorFromStatus(txn.status());
  reply->FieldUint("txn_id", txn->id())
      .FieldUint("start_timestamp", txn->start_timestamp().value());
  services.txns->Add(std::move(*txn), services.now);
  return std::nullopt;
}

MaybeError HandleTxnGet(Services& services, const Body& body, JsonWriter* reply) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  std::string key;
  if (auto err = body.RequiredKey("key", &key)) return err;
  Result<ReadResult> read = txn->Get(key);
  if (!read.ok()) return ErrorFromStatus(read.status());
  protocol::WriteReply(*read, reply);
  return std::nullopt;
}

MaybeError HandleTxnPut(Services& services, const Body& body, JsonWriter*) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  std::string key, value;
  if (auto err = body.RequiredKey("key", &key)) return err;
  if (auto err = body.RequiredValue("value", &value)) return err;
  if (Status s = txn->Put(key, value); !s.ok()) return ErrorFromStatus(s);
  return std::nullopt;
}

MaybeError HandleTxnDelete(Services& services, const Body& body, JsonWriter*) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  std::string key;
  if (auto err = body.RequiredKey("key", &key)) return err;
  if (Status s = txn->Delete(key); !s.ok()) return ErrorFromStatus(s);
  return std::nullopt;
}

MaybeError HandleTxnScan(Services& services, const Body& body, JsonWriter* reply) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  protocol::MvccScanRequest req;
  if (auto err = protocol::ParseRequest(body, &req)) return err;
  if (req.read_timestamp) {
    return protocol::Malformed(
        "field 'read_timestamp' is not allowed in txn_scan: a transaction reads at its start "
        "timestamp");
  }
  Result<ScanResult> scan = txn->Scan(req.range, req.limit);
  if (!scan.ok()) return ErrorFromStatus(scan.status());
  protocol::WriteReply(*scan, reply);
  return std::nullopt;
}

MaybeError HandleTxnCommit(Services& services, const Body& body, JsonWriter* reply) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  Result<Timestamp> committed = txn->Commit();
  MaybeError error;
  if (committed.ok()) {
    reply->FieldUint("commit_timestamp", committed->value());
  } else {
    error = CommitError(*txn, committed.status());
  }
  services.txns->Remove(txn->id());  // ended either way
  return error;
}

MaybeError HandleTxnAbort(Services& services, const Body& body, JsonWriter*) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  services.txns->Remove(txn->id());  // the handle's destructor aborts it
  return std::nullopt;
}

}  // namespace strata::node
