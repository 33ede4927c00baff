#include "replication/raft_log_store.h"

#include <fcntl.h>

#include <algorithm>
#include <set>
#include <utility>

#include "replication/snapshot_file.h"

namespace strata::replication {

using raft::GroupId;
using raft::Ready;
using raft::Snapshot;
using storage::JoinPath;

Result<std::unique_ptr<RaftLogStore>> RaftLogStore::Open(std::string dir, RaftLogOptions options) {
  if (dir.empty()) {
    return std::unique_ptr<RaftLogStore>(new RaftLogStore("", options, std::nullopt));
  }
  if (Status created = storage::CreateDir(dir); !created.ok()) return created;
  Result<storage::DirLock> lock = storage::DirLock::Acquire(dir);
  if (!lock.ok()) return lock.status();
  std::unique_ptr<RaftLogStore> store(new RaftLogStore(std::move(dir), options, std::move(*lock)));
  store->fail_budget_ = options.fail_after_bytes;
  if (Status recovered = store->Recover(); !recovered.ok()) return recovered;
  return store;
}

Status RaftLogStore::Recover() {
  Result<std::vector<std::string>> names = storage::ListDir(dir_);
  if (!names.ok()) return names.status();
  std::vector<uint64_t> sequences;
  for (const std::string& name : *names) {
    if (std::optional<uint64_t> sequence = ParseRaftSegmentFileName(name)) {
      sequences.push_back(*sequence);
    }
  }
  std::sort(sequences.begin(), sequences.end());
  for (size_t i = 0; i < sequences.size(); ++i) {
    const bool last = i + 1 == sequences.size();
    const std::string path = JoinPath(dir_, RaftSegmentFileName(sequences[i]));
    Result<std::string> data = storage::ReadWholeFile(path);
    if (!data.ok()) return data.status();
    const auto damaged = [&](size_t offset, const std::string& what) {
      return Status::IoError("the Raft log " + path + " is damaged at offset " +
                             std::to_string(offset) + ": " + what);
    };
    if (!RaftSegmentHeaderValid(*data)) {
      // A crash while a segment was being created leaves it without a
      // whole header, and only the newest one.
      if (!last) return damaged(0, "no valid segment header");
      stats_.torn_bytes += data->size();
      if (Status removed = storage::RemoveFile(path); !removed.ok()) return removed;
      if (Status synced = storage::SyncDir(dir_); !synced.ok()) return synced;
      break;
    }
    size_t offset = kRaftLogHeaderBytes;
    while (true) {
      std::string_view payload;
      size_t next = 0;
      const RecordRead read = ReadRaftRecord(*data, offset, &payload, &next);
      if (read == RecordRead::kDamaged) return damaged(offset, "a record does not read back");
      if (read == RecordRead::kEnd) break;
      if (std::optional<std::string> error =
              ApplyRaftRecord(payload, &groups_, /*keep_snapshot_data=*/true,
                              /*keep_entry_data=*/true, &snapshot_files_)) {
        return damaged(offset, *error);
      }
      ++stats_.rounds;
      offset = next;
    }
    if (offset < data->size()) {
      // Only the last write can have been cut short: older segments were
      // durable before a newer one was begun.
      if (!last) return damaged(offset, "a record is cut short");
      stats_.torn_bytes += data->size() - offset;
      if (Status cut = storage::TruncateFile(path, offset); !cut.ok()) return cut;
    }
    older_segments_.push_back(sequences[i]);
  }
  stats_.rounds = 0;  // counts commits since Open
  if (Status loaded = LoadSnapshotFiles(); !loaded.ok()) return loaded;
  return OpenSegment(sequences.empty() ? 1 : sequences.back() + 1);
}

Status RaftLogStore::LoadSnapshotFiles() {
  std::set<std::string> referred;
  for (const auto& [group, file] : snapshot_files_) {
    const raft::Index index = groups_[group].snapshot.index;
    Result<std::string> data = ReadSnapshotFile(dir_, file, group, index);
    if (!data.ok()) return data.status();
    groups_[group].snapshot.data = std::move(*data);
    referred.insert(file);
  }
  // Files written but never referred to by a durable round (a crash came
  // first, or the driver dropped them), and replaced ones not yet deleted.
  Result<std::vector<std::string>> names = storage::ListDir(dir_);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    const std::optional<uint64_t> number = ParseSnapshotFileName(name);
    if (number) next_snapshot_file_ = std::max(next_snapshot_file_, *number + 1);
    if ((number && referred.count(name) == 0) || IsSnapshotTemporaryFileName(name)) {
      if (Status removed = storage::RemoveFile(JoinPath(dir_, name)); !removed.ok()) {
        return removed;
      }
    }
  }
  return Status::Ok();
}

bool RaftLogStore::SnapshotInFile(GroupId group, raft::Index index) const {
  auto file = snapshot_files_.find(group);
  if (file == snapshot_files_.end()) return false;
  auto stored = groups_.find(group);
  return stored != groups_.end() && stored->second.snapshot.index == index;
}

std::optional<std::string> RaftLogStore::ReadSnapshotChunk(GroupId group, raft::Index index,
                                                           uint64_t offset, size_t length) {
  if (!SnapshotInFile(group, index)) return std::nullopt;
  Result<std::string> chunk =
      ReadSnapshotFileRange(dir_, snapshot_files_.at(group), group, index, offset, length);
  if (!chunk.ok()) {
    ++stats_.snapshot_reads_failed;
    return std::nullopt;
  }
  return std::move(*chunk);
}

std::string RaftLogStore::NewSnapshotFileName() { return SnapshotFileName(next_snapshot_file_++); }

void RaftLogStore::DiscardSnapshotFile(const std::string& name) {
  // Nothing refers to it: left behind, recovery deletes it.
  (void)storage::RemoveFile(JoinPath(dir_, name));
}

void RaftLogStore::StageSnapshotFile(GroupId group, const Snapshot& snapshot, std::string file,
                                     bool keep_later) {
  if (file.empty()) {
    file = NewSnapshotFileName();
    Status written =
        WriteSnapshotFile(dir_, file, group, snapshot.index, snapshot.data, options_.sync);
    if (!written.ok()) {
      (void)Fail(written);
      return;
    }
    ++stats_.snapshot_files_written;
  }
  EncodeSnapshotFile(group, snapshot, file, keep_later, &staged_);
  staged_snapshots_ = true;
  staged_files_.insert(file);
  if (!snapshot_source_) staged_file_data_[file] = snapshot.data;
}

Status RaftLogStore::OpenSegment(uint64_t sequence) {
  const std::string path = JoinPath(dir_, RaftSegmentFileName(sequence));
  Result<storage::File> file = storage::OpenFile(path, O_RDWR | O_CREAT | O_TRUNC);
  if (!file.ok()) return Fail(file.status());
  sequence_ = sequence;
  path_ = path;
  file_ = std::move(*file);
  end_ = 0;
  std::string header;
  EncodeRaftSegmentHeader(&header);
  if (Status written = WriteDurably(header); !written.ok()) return written;
  if (Status synced = storage::SyncDir(dir_); !synced.ok()) return Fail(synced);
  return Status::Ok();
}

void RaftLogStore::Stage(GroupId group, const Ready& ready) {
  // A round that moved a group's commit index alone writes nothing for it
  // (as etcd's raft syncs no such round): Raft learns a commit index again
  // from its leader, and a stored one only spares replaying entries (one
  // below the snapshot is raised to it). It rides along with the group's
  // next record. So a write costs each replica one sync, not two (its
  // entries', then the commit's).
  const bool writes = ready.snapshot.index != 0 || !ready.entries.empty();
  if (!writes && !ready.has_hard_state) return;  // nothing to keep for it
  std::optional<raft::HardState> hard_state;
  if (ready.has_hard_state) hard_state = ready.hard_state;
  if (hard_state && !writes) {
    auto stored = groups_.find(group);
    const bool commit_alone = stored != groups_.end() &&
                              stored->second.hard_state.term == hard_state->term &&
                              stored->second.hard_state.vote == hard_state->vote;
    if (commit_alone) {
      unwritten_commits_[group] = *hard_state;
      return;
    }
  }
  if (!hard_state && writes) {
    if (auto later = unwritten_commits_.find(group); later != unwritten_commits_.end()) {
      hard_state = later->second;
    }
  }
  unwritten_commits_.erase(group);
  if (ready.snapshot.index != 0) {
    if (snapshots_in_files()) {
      // A leader's snapshot, whole: written here, on the driver's thread
      // (a member takes one only when it is far behind).
      StageSnapshotFile(group, ready.snapshot, "", /*keep_later=*/false);
    } else {
      EncodeSnapshot(group, ready.snapshot, /*keep_later=*/false, &staged_);
    }
  }
  EncodeEntries(group, ready.entries, &staged_);
  if (hard_state) EncodeHardState(group, *hard_state, &staged_);
}

void RaftLogStore::StageCompaction(GroupId group, const Snapshot& snapshot,
                                   const std::string& file) {
  // A group's first (empty) snapshot stays in the record: there is no
  // state to keep.
  if (snapshots_in_files() && (snapshot.index != 0 || !file.empty())) {
    StageSnapshotFile(group, snapshot, file, /*keep_later=*/true);
    return;
  }
  EncodeSnapshot(group, snapshot, /*keep_later=*/true, &staged_);
  staged_snapshots_ = true;
}

void RaftLogStore::StageRemoval(GroupId group) {
  unwritten_commits_.erase(group);
  EncodeRemove(group, &staged_);
  staged_snapshots_ = true;
}

Status RaftLogStore::Commit() {
  if (failure_) return health();
  if (staged_.empty()) return Status::Ok();
  std::string payload = std::move(staged_);
  staged_.clear();
  if (payload.size() > options_.max_record_bytes) {
    return Fail(Status::InvalidArgument("a Raft round of " + std::to_string(payload.size()) +
                                        " bytes is more than the log's record limit"));
  }
  // The files this round replaces (those referred to before it, and those
  // it staged, that it leaves no group referring to), deleted once it is
  // durable.
  std::set<std::string> replaced = std::move(staged_files_);
  staged_files_.clear();
  if (staged_snapshots_) {
    for (const auto& [group, file] : snapshot_files_) replaced.insert(file);
  }
  staged_snapshots_ = false;
  // What the driver staged must make sense on what is stored: a round that
  // does not would not read back either, so it is not written.
  if (std::optional<std::string> error =
          ApplyRaftRecord(payload, &groups_, /*keep_snapshot_data=*/!snapshot_source_,
                          /*keep_entry_data=*/!entries_source_, &snapshot_files_)) {
    return Fail(Status::InvalidArgument("an inconsistent Raft round: " + *error));
  }
  if (!replaced.empty()) {
    for (const auto& [group, file] : snapshot_files_) replaced.erase(file);
  }
  if (!staged_file_data_.empty()) {
    for (const auto& [group, file] : snapshot_files_) {
      auto data = staged_file_data_.find(file);
      if (data != staged_file_data_.end()) groups_[group].snapshot.data = std::move(data->second);
    }
    staged_file_data_.clear();
  }
  if (!lock_) {  // in memory: groups_ is all there is
    ++stats_.rounds;
    return Status::Ok();
  }
  std::string record;
  EncodeRaftRecord(payload, &record);
  if (Status written = WriteDurably(record); !written.ok()) return written;
  for (const std::string& file : replaced) DiscardSnapshotFile(file);
  ++stats_.rounds;
  written_since_rewrite_ += record.size();
  if (written_since_rewrite_ > std::max(options_.rewrite_bytes, last_rewrite_bytes_)) {
    return Rewrite();
  }
  if (end_ >= options_.segment_bytes) {
    older_segments_.push_back(sequence_);
    return OpenSegment(sequence_ + 1);
  }
  return Status::Ok();
}

Status RaftLogStore::WriteDurably(std::string_view bytes) {
  if (failure_) return health();
  if (options_.fail_after_bytes != 0 && bytes.size() >= fail_budget_) {
    // The crash tests' cut: part of the write lands, then nothing more.
    (void)storage::WriteAt(file_, path_, bytes.substr(0, fail_budget_), end_);
    return Fail(Status::IoError("injected failure after " +
                                std::to_string(options_.fail_after_bytes) + " bytes"));
  }
  if (options_.fail_after_bytes != 0) fail_budget_ -= bytes.size();
  if (Status written = storage::WriteAt(file_, path_, bytes, end_); !written.ok()) {
    return Fail(written);
  }
  end_ += bytes.size();
  stats_.bytes += bytes.size();
  if (options_.sync) {
    if (Status synced = storage::DataSync(file_, path_); !synced.ok()) return Fail(synced);
    ++stats_.syncs;
  }
  return Status::Ok();
}

namespace {

// The part of `source` that is `stored` (same indexes, same terms), or
// nothing if it does not hold them all.
std::span<const raft::Entry> SourceEntries(std::span<const raft::Entry> source,
                                           const std::vector<raft::Entry>& stored) {
  if (source.empty() || stored.front().index < source.front().index) return {};
  const size_t skip = stored.front().index - source.front().index;
  if (source.size() - std::min(source.size(), skip) < stored.size()) return {};
  source = source.subspan(skip, stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    if (source[i].index != stored[i].index || source[i].term != stored[i].term) return {};
  }
  return source;
}

}  // namespace

Status RaftLogStore::Rewrite() {
  // A record a group: replaying a partial rewrite after a crash replaces
  // some groups by the same state, and the old segments are still there.
  std::string records;
  for (const auto& [group, state] : groups_) {
    std::span<const raft::Entry> entries = state.entries;
    if (entries_source_ && !entries.empty()) {
      entries = SourceEntries(entries_source_(group), state.entries);
      if (entries.empty()) {
        ++stats_.rewrites_skipped;
        written_since_rewrite_ = 0;
        return Status::Ok();
      }
    }
    std::string payload;
    auto file = snapshot_files_.find(group);
    if (file != snapshot_files_.end()) {
      EncodeGroup(group, state, "", file->second, entries, &payload);
    } else {
      EncodeGroup(
          group, state,
          snapshot_source_ ? snapshot_source_(group) : std::string_view(state.snapshot.data), "",
          entries, &payload);
    }
    if (payload.size() > options_.max_record_bytes) {
      // A group's state too large for one record (its snapshot and the
      // entries since): no rewrite for now. The segments stay (the disk
      // grows) and stay readable; it is tried again after as many bytes.
      ++stats_.rewrites_skipped;
      last_rewrite_bytes_ = records.size() + payload.size();
      written_since_rewrite_ = 0;
      return Status::Ok();
    }
    EncodeRaftRecord(payload, &records);
  }
  std::vector<uint64_t> old = std::move(older_segments_);
  older_segments_.clear();
  old.push_back(sequence_);
  if (Status opened = OpenSegment(sequence_ + 1); !opened.ok()) return opened;
  if (Status written = WriteDurably(records); !written.ok()) return written;
  for (uint64_t sequence : old) {
    if (Status removed = storage::RemoveFile(JoinPath(dir_, RaftSegmentFileName(sequence)));
        !removed.ok()) {
      return Fail(removed);
    }
  }
  if (Status synced = storage::SyncDir(dir_); !synced.ok()) return Fail(synced);
  last_rewrite_bytes_ = records.size();
  written_since_rewrite_ = 0;
  ++stats_.rewrites;
  return Status::Ok();
}

void RaftLogStore::TakeSnapshotDataFrom(SnapshotSource source) {
  snapshot_source_ = std::move(source);
  for (auto& [group, state] : groups_) {
    state.snapshot.data.clear();
    state.snapshot.data.shrink_to_fit();
  }
}

void RaftLogStore::TakeEntryDataFrom(EntriesSource source) {
  entries_source_ = std::move(source);
  for (auto& [group, state] : groups_) {
    for (raft::Entry& entry : state.entries) {
      entry.data.clear();
      entry.data.shrink_to_fit();
    }
  }
}

Status RaftLogStore::Fail(Status cause) {
  if (!failure_) failure_ = cause.message();
  return cause;
}

RaftLogStats RaftLogStore::stats() const {
  RaftLogStats stats = stats_;
  stats.segments = lock_ ? older_segments_.size() + 1 : 0;
  stats.snapshot_files = snapshot_files_.size();
  return stats;
}

}  // namespace strata::replication
