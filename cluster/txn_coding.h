// The bytes of a prepare request and of a transaction record, shared by
// everything that keeps them: a shard's durable state in its own store
// (cluster/durable_state.h) and a replicated shard's commands and
// snapshots (cluster/replicated_shard.h). Varints as storage/coding.h.
//
//   request: varint start | u8 isolation ('s' serializable, 'i' snapshot) |
//            varint primary | varint writes | per write: bytes key | 'v' bytes value, or 'd' |
//            varint read keys | bytes each | varint read ranges | per range: bytes start |
//            'e' bytes end, or 'o' (open)
//   record:  status | varint commit timestamp | varint participants | varint each
//   status:  u8 'p' pending, 'c' committed, 'a' aborted
// The transaction's id is not in either: its owner keeps it beside.
#ifndef STRATA_CLUSTER_TXN_CODING_H_
#define STRATA_CLUSTER_TXN_CODING_H_

#include <string>

#include "cluster/participant.h"
#include "cluster/txn_record_table.h"
#include "storage/coding.h"

namespace strata::cluster {

void PutPrepareRequest(std::string* out, const PrepareRequest& request);
// Every field but the id (and `blind`, which only a one-phase commit's
// caller sets). False if the bytes do not decode.
bool GetPrepareRequest(storage::Decoder* in, PrepareRequest* request);

void PutTxnRecord(std::string* out, const TxnRecord& record);
bool GetTxnRecord(storage::Decoder* in, TxnRecord* record);

void PutTxnId(std::string* out, TxnId txn);
bool GetTxnId(storage::Decoder* in, TxnId* txn);

void PutTxnStatus(std::string* out, TxnStatus status);
bool GetTxnStatus(storage::Decoder* in, TxnStatus* status);

// A varint no larger than Timestamp::kMaxValue.
bool GetTimestamp(storage::Decoder* in, Timestamp* t);

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_TXN_CODING_H_
