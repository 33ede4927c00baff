#include "node/txn_handlers.h"

#include "protocol/key_codec.h"
#include "protocol/mvcc_messages.h"
#include "protocol/txn_messages.h"

namespace strata::node {

using protocol::ErrorCode;
using protocol::ErrorFromStatus;
using protocol::ErrorReply;
using protocol::KeyText;

namespace {

// The open transaction named by the body's txn_id, or error 14.
MaybeError FindTxn(Services& services, const Body& body, Transaction** txn) {
  uint64_t id = 0;
  if (auto err = protocol::ParseTxnId(body, &id)) return err;
  *txn = services.txns->Touch(id, services.now);
  if (*txn == nullptr) {
    return ErrorReply{ErrorCode::kAbort,
                      "transaction " + std::to_string(id) +
                          " does not exist: it committed, aborted, or expired after being idle "
                          "longer than --txn-timeout-ms"};
  }
  return std::nullopt;
}

// txn_put or txn_delete.
MaybeError WriteInTxn(Services& services, const Body& body, bool is_delete) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  protocol::TxnWriteRequest req;
  if (auto err = ParseRequest(body, is_delete, &req)) return err;
  Status s = req.value ? txn->Put(req.key, *req.value) : txn->Delete(req.key);
  if (!s.ok()) return ErrorFromStatus(s);
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
  protocol::TxnBeginRequest req;
  if (auto err = ParseRequest(body, services.default_isolation, &req)) return err;
  TxnOptions options;
  options.isolation = req.isolation;
  options.read_only = req.read_only;
  options.read_timestamp = req.read_timestamp;

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
  protocol::TxnGetRequest req;
  if (auto err = ParseRequest(body, &req)) return err;
  Result<ReadResult> read = txn->Get(req.key);
  if (!read.ok()) return ErrorFromStatus(read.status());
  protocol::WriteReply(*read, reply);
  return std::nullopt;
}

MaybeError HandleTxnPut(Services& services, const Body& body, JsonWriter*) {
  return WriteInTxn(services, body, /*is_delete=*/false);
}

MaybeError HandleTxnDelete(Services& services, const Body& body, JsonWriter*) {
  return WriteInTxn(services, body, /*is_delete=*/true);
}

MaybeError HandleTxnScan(Services& services, const Body& body, JsonWriter* reply) {
  Transaction* txn = nullptr;
  if (auto err = FindTxn(services, body, &txn)) return err;
  protocol::MvccScanRequest req;
  if (auto err = protocol::ParseTxnScan(body, &req)) return err;
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
