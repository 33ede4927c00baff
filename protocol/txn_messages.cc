#include "protocol/txn_messages.h"

namespace strata::protocol {

MaybeError ParseRequest(const Body& body, Isolation fallback, TxnBeginRequest* out) {
  if (auto err = ParseIsolation(body, fallback, &out->isolation)) return err;
  std::optional<bool> read_only;
  if (auto err = body.OptionalBool("read_only", &read_only)) return err;
  out->read_only = read_only.value_or(false);
  return body.OptionalTimestamp("read_timestamp", &out->read_timestamp);
}

MaybeError ParseTxnId(const Body& body, uint64_t* id) { return body.RequiredUint("txn_id", id); }

MaybeError ParseRequest(const Body& body, TxnGetRequest* out) {
  return body.RequiredKey("key", &out->key);
}

MaybeError ParseRequest(const Body& body, bool is_delete, TxnWriteRequest* out) {
  if (auto err = body.RequiredKey("key", &out->key)) return err;
  if (is_delete) {
    out->value.reset();
    return std::nullopt;
  }
  std::string value;
  if (auto err = body.RequiredValue("value", &value)) return err;
  out->value = std::move(value);
  return std::nullopt;
}

MaybeError ParseTxnScan(const Body& body, MvccScanRequest* out) {
  if (auto err = ParseRequest(body, out)) return err;
  if (out->read_timestamp) {
    return Malformed(
        "field 'read_timestamp' is not allowed in txn_scan: a transaction reads at its start "
        "timestamp");
  }
  return std::nullopt;
}

}  // namespace strata::protocol
