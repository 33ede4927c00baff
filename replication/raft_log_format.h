// The Raft log store's on-disk format (replication/raft_log_store.h).
//
// The store is a sequence of segment files named raft-<sequence, 20
// digits>.log. Each starts with a 24-byte header:
//   magic "STRATARL" | u32 format version (1) | u32 header size (24) |
//   u64 XXH3-64 of the previous 16 bytes
// followed by records:
//   u64 XXH3-64 of the payload | u32 payload length |
//   u32 low half of the XXH3-64 of the length's 4 bytes | payload
// (the length has a check of its own, so a damaged length is told from a
// record cut short by a crash).
// All integers are little-endian; varints are LEB128, "bytes" a varint
// length and the bytes.
//
// A record is one round of the node's driver: what every group's Ready
// asked to make durable, written with one write and one fdatasync, so a
// crash keeps a round whole or not at all (a group's hard state never
// survives without the entries it commits). Its payload is a sequence of
// operations on the groups' stored state, each
//   u8 op | varint group | the op's fields:
//   kRemove                            the group is gone from this node
//   kSnapshot  varint index | varint term | varint voters, voters... |
//              varint learners, learners... | bytes data | u8 keep_later
//              keep_later 0: a snapshot from the leader replaces the
//              stored snapshot and every entry; 1: a compaction, entries
//              after the index stay
//   kSnapshotFile varint index | varint term | voters and learners as
//              kSnapshot's | bytes file name | u8 keep_later
//              a snapshot as kSnapshot, its data in a file of its own
//              beside the segments (replication/snapshot_file.h)
//   kHardState varint term | varint vote | varint commit
//   kEntries   varint first index | varint count | count x
//              (varint term | u8 type | bytes data)
//              they replace the stored entries from the first index on
// Replaying every record in order rebuilds every group's stored state. A
// rewrite (compaction of the store itself) writes each live group as
// kRemove, kSnapshot, kHardState, kEntries into a new segment, so replay
// needs no special case for it.
#ifndef STRATA_REPLICATION_RAFT_LOG_FORMAT_H_
#define STRATA_REPLICATION_RAFT_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "raft/multi_raft.h"
#include "raft/raft.h"

namespace strata::replication {

inline constexpr char kRaftLogMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'R', 'L'};
inline constexpr uint32_t kRaftLogFormatVersion = 1;
inline constexpr size_t kRaftLogHeaderBytes = 24;
inline constexpr size_t kRaftRecordHeaderBytes = 16;
// A round is at most this big: a damaged length above it is known to be one.
inline constexpr uint32_t kMaxRaftRecordPayload = 1u << 30;

// Every group's stored state, by group: what a restarted member starts from.
using StoredGroups = std::map<raft::GroupId, raft::RaftStorage>;
// The groups whose stored snapshot's data is in a file, and its name.
using SnapshotFiles = std::map<raft::GroupId, std::string>;

std::string RaftSegmentFileName(uint64_t sequence);
std::optional<uint64_t> ParseRaftSegmentFileName(std::string_view name);

void EncodeRaftSegmentHeader(std::string* out);
bool RaftSegmentHeaderValid(std::string_view file);

// Operations appended to a round's payload.
void EncodeRemove(raft::GroupId group, std::string* payload);
void EncodeSnapshot(raft::GroupId group, const raft::Snapshot& snapshot, bool keep_later,
                    std::string* payload);
// A snapshot whose data is in the file `file` (`snapshot.data` is not
// written).
void EncodeSnapshotFile(raft::GroupId group, const raft::Snapshot& snapshot, std::string_view file,
                        bool keep_later, std::string* payload);
void EncodeHardState(raft::GroupId group, const raft::HardState& state, std::string* payload);
void EncodeEntries(raft::GroupId group, std::span<const raft::Entry> entries, std::string* payload);
// A whole group's state as a rewrite writes it: its snapshot's data
// `snapshot_data`, or the file `snapshot_file` holding it if not empty, and
// its entries `entries` (the stored state may hold neither:
// RaftLogStore::TakeSnapshotDataFrom, TakeEntryDataFrom).
void EncodeGroup(raft::GroupId group, const raft::RaftStorage& state,
                 std::string_view snapshot_data, std::string_view snapshot_file,
                 std::span<const raft::Entry> entries, std::string* payload);

// Appends the framed record (header and payload).
void EncodeRaftRecord(std::string_view payload, std::string* out);

// Applies a round's operations to `groups`. On a malformed or inconsistent
// payload (entries that leave a gap, a compaction that goes back) returns
// what is wrong; `groups` may then hold part of the round. Without
// `keep_snapshot_data`, snapshots are kept without their data; without
// `keep_entry_data`, entries without theirs (their indexes and terms only).
// A snapshot in a file is kept without data; `files` (if given) is told
// which groups' snapshots are in which files.
std::optional<std::string> ApplyRaftRecord(std::string_view payload, StoredGroups* groups,
                                           bool keep_snapshot_data = true,
                                           bool keep_entry_data = true,
                                           SnapshotFiles* files = nullptr);

// Reading records back from a segment's bytes.
enum class RecordRead {
  kRecord,  // *payload and *next set
  kEnd,     // no more records: the segment ends here, or its last write was torn
  kDamaged  // a bad record with data after it: not a torn write
};
RecordRead ReadRaftRecord(std::string_view file, size_t offset, std::string_view* payload,
                          size_t* next);

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_RAFT_LOG_FORMAT_H_
