// RaftLogStore: where one node keeps what its Raft groups must not forget
// (each group's hard state, snapshot and log entries), all groups in one
// log of their own (the format: replication/raft_log_format.h).
//
// Why not the store's WAL (storage/wal_writer.h): that log holds MVCC
// writes in timestamp order and is trimmed by checkpoints of the engine;
// Raft entries are proposed before they are ordered, replaced when a
// leader overrules them and trimmed group by group as each group
// compacts. A log of its own keeps each simple.
//
// The driver stages a round (every group's Ready, compactions, removals)
// and commits it: one record, one write, one fdatasync for all of them
// (group commit across groups). A record is whole or absent after a
// crash. The store keeps the durable state of every group in memory too
// (`groups()`): it is what recovery returns, and what a rewrite writes
// when the segments have grown past the live state: a new segment with
// every live group in it, then the old segments deleted. Once its driver
// runs the groups, the bulk of that state (entries' data) is read from the
// driver's Raft instead of kept twice. So the disk holds at most about
// twice the live entries plus rewrite_bytes (unless a group's entries are
// more than one record holds: then the rewrite waits).
//
// Snapshots (a group's whole state) are files of their own
// (replication/snapshot_file.h), the log holding a reference: written
// once, by whichever thread made them (the driver's saver, off its loop),
// never copied by a rewrite, and of any size. A file is deleted once a
// round that replaces it (a newer snapshot, the group's removal) is
// durable; recovery deletes the files no group refers to (a crash's
// leftovers). A store in memory keeps snapshots in its groups().
//
// A failed write or sync is final, as in the WAL (after a failed fsync the
// kernel may have dropped the pages): every later commit is refused.
//
// Not thread-safe: the driver's thread owns it.
#ifndef STRATA_REPLICATION_RAFT_LOG_STORE_H_
#define STRATA_REPLICATION_RAFT_LOG_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "raft/multi_raft.h"
#include "replication/raft_log_format.h"
#include "storage/file_util.h"
#include "strata/status.h"

namespace strata::replication {

struct RaftLogOptions {
  // fdatasync each round (only tests that never crash the machine skip it).
  bool sync = true;
  // A new segment once the current one holds this much.
  uint64_t segment_bytes = uint64_t{64} << 20;
  // Rewrite the live state once this much was written since the last
  // rewrite, and more than that rewrite wrote.
  uint64_t rewrite_bytes = uint64_t{64} << 20;
  // The largest record written (at most kMaxRaftRecordPayload, what
  // recovery reads): a larger round fails the log, a group too large for
  // one record postpones the rewrite. Lower only in tests.
  uint64_t max_record_bytes = kMaxRaftRecordPayload;
  // For crash tests: after this many more bytes reach the disk a write
  // stops short and fails, as a crash in the middle of it would (0: never).
  uint64_t fail_after_bytes = 0;
};

struct RaftLogStats {
  uint64_t rounds = 0;                  // records committed
  uint64_t syncs = 0;                   // fdatasyncs (segment headers and rewrites too)
  uint64_t bytes = 0;                   // written since Open
  uint64_t rewrites = 0;                // of the live state into a new segment
  uint64_t rewrites_skipped = 0;        // a group's state was more than one record holds, or its
                                        // entries' source did not hold them
  uint64_t segments = 0;                // on disk now
  uint64_t torn_bytes = 0;              // cut off the last segment by recovery (a crash mid-write)
  uint64_t snapshot_files = 0;          // the groups' snapshots in files now
  uint64_t snapshot_files_written = 0;  // since Open, by the store and by its driver
  uint64_t snapshot_reads_failed = 0;   // chunks to send that did not read back
};

class RaftLogStore final {
 public:
  // Opens (creating) `dir` and replays its segments. A record cut short at
  // the end of the last segment (a crash during its write) is dropped and
  // the file truncated; anything else that does not read back is an error
  // naming the file and offset. An empty `dir`: a store in memory, which
  // keeps what is committed in groups() alone and writes no file (a
  // member in memory: what it held is gone when it stops, as if its disk
  // were lost).
  static Result<std::unique_ptr<RaftLogStore>> Open(std::string dir, RaftLogOptions options);

  // Every group's durable state (what the last committed round left); the
  // snapshots without their data once it is taken from elsewhere.
  const StoredGroups& groups() const { return groups_; }

  // Where a group's snapshot data is, from now on: the store stops keeping
  // a copy of its own (a snapshot is the group's whole state, and the
  // driver's Raft keeps one to send). `source` must return the data of the
  // snapshot last staged for the group; a rewrite reads it for a snapshot
  // not in a file (a store in memory, or one written before snapshot files).
  using SnapshotSource = std::function<std::string_view(raft::GroupId)>;
  void TakeSnapshotDataFrom(SnapshotSource source);

  // Whether snapshots go into files (a store on disk), and the name for
  // the next one (never used before in this directory). The driver writes
  // the file itself, on any thread (WriteSnapshotFile with dir() and
  // sync()), then stages a compaction naming it, or discards it.
  bool snapshots_in_files() const { return lock_.has_value(); }
  std::string NewSnapshotFileName();
  bool sync() const { return options_.sync; }
  // Deletes a snapshot file the driver wrote and will not stage.
  void DiscardSnapshotFile(const std::string& name);
  // Counts a file the driver wrote (for stats()).
  void CountSnapshotFileWritten() { ++stats_.snapshot_files_written; }
  // Whether `group`'s durable snapshot is at `index` and in a file: its
  // driver need not hold the data any more.
  bool SnapshotInFile(raft::GroupId group, raft::Index index) const;
  // `length` bytes from `offset` of that file's data (ReadSnapshotFileRange:
  // at offset 0 the whole file is checked); nullopt if `group`'s durable
  // snapshot is not at `index` in a file, or does not read back (counted).
  std::optional<std::string> ReadSnapshotChunk(raft::GroupId group, raft::Index index,
                                               uint64_t offset, size_t length);
  // The same for the entries' data: `source` returns the group's entries
  // in order (the driver's Raft log), holding at least those stored; the
  // store keeps only their indexes and terms (each entry's data was in
  // memory twice, and copied once more every round). A rewrite takes the
  // data from the source; one that does not hold the stored entries, with
  // their terms, postpones the rewrite (counted in rewrites_skipped).
  using EntriesSource = std::function<std::span<const raft::Entry>(raft::GroupId)>;
  void TakeEntryDataFrom(EntriesSource source);

  // Stages what `ready` asks to make durable for `group`: its snapshot
  // (written to its file now, on disk), entries and hard state; a hard
  // state that moved the commit index alone waits for the group's next
  // record (its commit index is a hint).
  void Stage(raft::GroupId group, const raft::Ready& ready);
  // Stages a compaction: `snapshot` replaces the entries up to its index.
  // `file`: the snapshot file the driver wrote for it (NewSnapshotFileName);
  // "" on disk: the store writes one now.
  void StageCompaction(raft::GroupId group, const raft::Snapshot& snapshot,
                       const std::string& file = "");
  // Stages forgetting `group` (its replica moved away).
  void StageRemoval(raft::GroupId group);
  bool has_staged() const { return !staged_.empty(); }
  // Makes everything staged durable (one write, one sync), then rolls to a
  // new segment or rewrites the live state if due.
  Status Commit();

  Status health() const { return failure_ ? Status::IoError(*failure_) : Status::Ok(); }
  RaftLogStats stats() const;
  const std::string& dir() const { return dir_; }

 private:
  RaftLogStore(std::string dir, RaftLogOptions options, std::optional<storage::DirLock> lock)
      : dir_(std::move(dir)), options_(options), lock_(std::move(lock)) {}

  Status Recover();
  // Creates segment `sequence` with its header, durably.
  Status OpenSegment(uint64_t sequence);
  // Writes `bytes` at the end of the current segment and syncs.
  Status WriteDurably(std::string_view bytes);
  Status Rewrite();
  Status Fail(Status cause);
  // Loads every group's snapshot file into groups_ and deletes the files
  // nothing refers to.
  Status LoadSnapshotFiles();
  // Stages `snapshot` for `group` as a file, `file` or one written now.
  void StageSnapshotFile(raft::GroupId group, const raft::Snapshot& snapshot, std::string file,
                         bool keep_later);

  std::string dir_;
  RaftLogOptions options_;
  std::optional<storage::DirLock> lock_;  // none in memory
  StoredGroups groups_;
  SnapshotSource snapshot_source_;  // set: groups_ hold no snapshot data
  EntriesSource entries_source_;    // set: groups_ hold no entry data
  SnapshotFiles snapshot_files_;    // the groups whose stored snapshot is in a file
  uint64_t next_snapshot_file_ = 1;
  bool staged_snapshots_ = false;       // the staged round may replace snapshot files
  std::set<std::string> staged_files_;  // the snapshot files it stages
  // Without a SnapshotSource: the data of the files staged, by file, for
  // groups_ once the round is committed.
  std::map<std::string, std::string> staged_file_data_;
  std::string staged_;  // the next record's payload
  // Hard states whose commit index alone moved since they were stored.
  std::map<raft::GroupId, raft::HardState> unwritten_commits_;

  std::vector<uint64_t> older_segments_;  // sequences, oldest first
  uint64_t sequence_ = 0;                 // the current segment's
  std::string path_;
  storage::File file_;
  uint64_t end_ = 0;  // the current segment's size

  uint64_t written_since_rewrite_ = 0;
  uint64_t last_rewrite_bytes_ = 0;
  uint64_t fail_budget_ = 0;  // options_.fail_after_bytes still to go
  std::optional<std::string> failure_;
  RaftLogStats stats_;
};

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_RAFT_LOG_STORE_H_
