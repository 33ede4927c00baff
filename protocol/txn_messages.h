// The transaction API's requests (PROTOCOL.md section 4) as typed structs,
// parsed once for one node and for a cluster.
//
// Every request after txn_begin names its transaction first: a shell parses
// the id (ParseTxnId), reports a transaction that is gone (error 14) before
// anything else wrong with the request, then parses the rest here.
#ifndef STRATA_PROTOCOL_TXN_MESSAGES_H_
#define STRATA_PROTOCOL_TXN_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/body.h"
#include "protocol/mvcc_messages.h"
#include "strata/timestamp.h"
#include "strata/txn_store.h"

namespace strata::protocol {

struct TxnBeginRequest {
  Isolation isolation = Isolation::kSerializable;
  bool read_only = false;
  std::optional<Timestamp> read_timestamp;  // a read-only transaction's past
};

struct TxnGetRequest {
  std::string key;  // encoded (key_codec.h)
};

// txn_put (a value) and txn_delete (none).
struct TxnWriteRequest {
  std::string key;
  std::optional<std::string> value;  // canonical JSON
};

// `isolation` defaults to `fallback`, the node's --isolation.
MaybeError ParseRequest(const Body& body, Isolation fallback, TxnBeginRequest* out);
MaybeError ParseTxnId(const Body& body, uint64_t* id);
MaybeError ParseRequest(const Body& body, TxnGetRequest* out);
// `is_delete`: a txn_delete, which has no value.
MaybeError ParseRequest(const Body& body, bool is_delete, TxnWriteRequest* out);
// txn_scan: mvcc_scan's fields but read_timestamp (a transaction reads at
// its start), which is refused.
MaybeError ParseTxnScan(const Body& body, MvccScanRequest* out);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_TXN_MESSAGES_H_
