// A Raft group's snapshot in a file of its own, beside the Raft log
// (replication/raft_log_store.h keeps only a reference to it).
//
// Why a file and not a log record: a snapshot is a group's whole state.
// Written into the log, it was written and synced on the node's loop (a
// stall of seconds for a state of some GB, every client of the node
// waiting), and written again by each rewrite of the log. A file is
// written by whichever thread made the bytes, once, and the log's record
// of it is a few dozen bytes.
//
// The file, snapshot-<number, 20 digits>.snap (numbers never reused
// within a directory):
//   magic "STRATASN" | u32 format version (1) | u32 header size (56) |
//   u64 group | u64 index | u64 data length | u64 XXH3-64 of the data |
//   u64 XXH3-64 of the previous 48 bytes | data
// little-endian. It is written under a temporary name (".new" after it:
// storage::ReplaceFileDurably), synced, renamed and the directory synced,
// so a name that exists holds a whole snapshot; a temporary file is a
// crash's leftover.
//
// Thread-safe: functions of their arguments alone.
#ifndef STRATA_REPLICATION_SNAPSHOT_FILE_H_
#define STRATA_REPLICATION_SNAPSHOT_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "raft/multi_raft.h"
#include "strata/status.h"

namespace strata::replication {

inline constexpr size_t kSnapshotFileHeaderBytes = 56;

std::string SnapshotFileName(uint64_t number);
std::optional<uint64_t> ParseSnapshotFileName(std::string_view name);
// A temporary file's name (a write under way, or one a crash cut short).
bool IsSnapshotTemporaryFileName(std::string_view name);

// Writes `data`, the snapshot of `group` at `index`, as <dir>/<name>,
// durably (synced, and the directory too, unless `sync` is false: tests
// that never crash the machine).
Status WriteSnapshotFile(const std::string& dir, const std::string& name, raft::GroupId group,
                         raft::Index index, std::string_view data, bool sync);

// The data of <dir>/<name>, checked: its header and data read back, and it
// holds `group`'s snapshot at `index`. An error names the file and what
// is wrong.
Result<std::string> ReadSnapshotFile(const std::string& dir, const std::string& name,
                                     raft::GroupId group, raft::Index index);

// `length` bytes of that data from `offset` (fewer at its end; none past
// it), for a snapshot sent in chunks without holding it whole. At offset 0
// the whole file is checked first, as ReadSnapshotFile does, reading it in
// pieces: a damaged file is not sent. Later chunks are read as they are.
Result<std::string> ReadSnapshotFileRange(const std::string& dir, const std::string& name,
                                          raft::GroupId group, raft::Index index, uint64_t offset,
                                          size_t length);

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_SNAPSHOT_FILE_H_
