// A node's Raft batch (raft::NodeBatch: every group's messages for one
// other node) as bytes on the wire, and back.
//
//   u8 version (1) | varint from | varint to | varint count | count x message
//   message: varint group | u8 type | varint term | varint index |
//            varint log_term | varint commit | varint reject_hint |
//            varint context | u8 flags (1: reject, 2: last_chunk) |
//            entries (raft_coding.h, numbered from index + 1) |
//            for a kSnapshot only: varint chunk_offset | bytes chunk | conf
//
// Each message's sender and receiver are the batch's. Decoding trusts
// nothing a peer sends: it refuses (naming what) a batch that does not
// parse, a message type or entry type out of range, counts larger than the
// bytes could hold, and a batch for another node. Raft itself drops what
// parses but no correct member sends (raft.h, Step).
#ifndef STRATA_REPLICATION_RAFT_WIRE_H_
#define STRATA_REPLICATION_RAFT_WIRE_H_

#include <string>
#include <string_view>
#include <vector>

#include "raft/multi_raft.h"
#include "strata/status.h"

namespace strata::replication {

inline constexpr uint8_t kRaftWireVersion = 1;

std::string EncodeNodeBatch(const raft::NodeBatch& batch);
// The same batch as one or more batches (its messages in order), each of
// at most `max_bytes` unless one message alone is larger (it then goes
// alone): for a transport that bounds what it carries at once.
std::vector<std::string> EncodeNodeBatchWithin(const raft::NodeBatch& batch, size_t max_bytes);
// kInvalidArgument for anything malformed; `self`: the node it is for.
Status DecodeNodeBatch(std::string_view bytes, raft::NodeId self, raft::NodeBatch* batch);

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_RAFT_WIRE_H_
