// Encodings of Raft's values shared by the log on disk (raft_log_format.h)
// and the batches between nodes (raft_wire.h): entries, and the members in
// a snapshot. Decoding trusts nothing: counts are bounded by the bytes
// left, enum values by their range.
#ifndef STRATA_REPLICATION_RAFT_CODING_H_
#define STRATA_REPLICATION_RAFT_CODING_H_

#include <span>
#include <string>
#include <vector>

#include "raft/raft_types.h"
#include "storage/coding.h"

namespace strata::replication {

// Entries numbered from their first: varint count | count x
// (varint term | u8 type | bytes data). The indexes are not written: a
// reader numbers them from where they start, so they have no gaps.
void PutEntries(std::span<const raft::Entry> entries, std::string* out);
// Without `keep_data`, the entries come without their data (checked, not
// copied).
bool GetEntries(storage::Decoder* in, raft::Index first, std::vector<raft::Entry>* entries,
                bool keep_data = true);

// varint voters, voters... | varint learners, learners...
void PutConf(const raft::ConfState& conf, std::string* out);
bool GetConf(storage::Decoder* in, raft::ConfState* conf);

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_RAFT_CODING_H_
