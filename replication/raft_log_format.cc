#include "replication/raft_log_format.h"

#include <algorithm>
#include <utility>

#include "replication/raft_coding.h"
#include "storage/coding.h"
#include "storage/file_util.h"
#include "storage/wal_format.h"

namespace strata::replication {

using raft::Entry;
using raft::GroupId;
using raft::HardState;
using raft::Index;
using raft::RaftStorage;
using raft::Snapshot;
using storage::Checksum;
using storage::Decoder;
using storage::PutBytes;
using storage::PutFixed32;
using storage::PutFixed64;
using storage::PutVarint;

namespace {

constexpr std::string_view kPrefix = "raft-";
constexpr std::string_view kSuffix = ".log";

enum class Op : uint8_t {
  kRemove = 1,
  kSnapshot = 2,
  kHardState = 3,
  kEntries = 4,
  kSnapshotFile = 5
};

void PutOp(Op op, GroupId group, std::string* payload) {
  payload->push_back(static_cast<char>(op));
  PutVarint(payload, group);
}

// A snapshot op (`op`: kSnapshot or kSnapshotFile) with `bytes` as the
// snapshot's data or the name of the file holding it.
void PutSnapshot(Op op, GroupId group, const Snapshot& snapshot, std::string_view bytes,
                 bool keep_later, std::string* payload) {
  PutOp(op, group, payload);
  PutVarint(payload, snapshot.index);
  PutVarint(payload, snapshot.term);
  PutConf(snapshot.conf, payload);
  PutBytes(payload, bytes);
  payload->push_back(keep_later ? '\1' : '\0');
}

uint32_t LengthCheck(uint32_t length) {
  char bytes[4];
  storage::EncodeFixed32(bytes, length);
  return static_cast<uint32_t>(Checksum(std::string_view(bytes, 4)));
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == '\0'; });
}

// The entries a group keeps are those after its snapshot, without gaps.
Index LastIndex(const RaftStorage& state) { return state.snapshot.index + state.entries.size(); }

// `*bytes`: the snapshot's data, or its file's name for kSnapshotFile.
std::optional<std::string> ApplySnapshot(Decoder* in, RaftStorage* state, bool keep_data,
                                         std::string_view* bytes) {
  Snapshot snapshot;
  uint8_t keep_later = 0;
  if (!in->Varint(&snapshot.index) || !in->Varint(&snapshot.term) || !GetConf(in, &snapshot.conf) ||
      !in->Bytes(bytes) || !in->Byte(&keep_later) || keep_later > 1) {
    return "a malformed snapshot";
  }
  if (keep_data) snapshot.data.assign(*bytes);
  if (keep_later == 0) {
    state->entries.clear();
  } else {
    if (snapshot.index < state->snapshot.index) return "a compaction below the snapshot";
    const Index drop =
        std::min<Index>(snapshot.index - state->snapshot.index, state->entries.size());
    state->entries.erase(state->entries.begin(), state->entries.begin() + static_cast<long>(drop));
  }
  state->snapshot = std::move(snapshot);
  return std::nullopt;
}

std::optional<std::string> ApplyEntries(Decoder* in, RaftStorage* state, bool keep_data) {
  uint64_t first = 0;
  if (!in->Varint(&first)) return "malformed entries";
  if (first <= state->snapshot.index || first > LastIndex(*state) + 1) {
    return "entries from index " + std::to_string(first) + " where the log holds " +
           std::to_string(state->snapshot.index + 1) + ".." + std::to_string(LastIndex(*state));
  }
  state->entries.resize(first - state->snapshot.index - 1);
  if (!GetEntries(in, first, &state->entries, keep_data)) return "malformed entries";
  return std::nullopt;
}

}  // namespace

std::string RaftSegmentFileName(uint64_t sequence) {
  return storage::NumberedFileName(kPrefix, sequence, kSuffix);
}

std::optional<uint64_t> ParseRaftSegmentFileName(std::string_view name) {
  return storage::ParseNumberedFileName(name, kPrefix, kSuffix);
}

void EncodeRaftSegmentHeader(std::string* out) {
  const size_t start = out->size();
  out->append(kRaftLogMagic, sizeof(kRaftLogMagic));
  PutFixed32(out, kRaftLogFormatVersion);
  PutFixed32(out, kRaftLogHeaderBytes);
  PutFixed64(out, Checksum(std::string_view(*out).substr(start, 16)));
}

bool RaftSegmentHeaderValid(std::string_view file) {
  if (file.size() < kRaftLogHeaderBytes) return false;
  if (file.substr(0, 8) != std::string_view(kRaftLogMagic, 8)) return false;
  if (storage::DecodeFixed32(file.data() + 8) != kRaftLogFormatVersion) return false;
  if (storage::DecodeFixed32(file.data() + 12) != kRaftLogHeaderBytes) return false;
  return storage::DecodeFixed64(file.data() + 16) == Checksum(file.substr(0, 16));
}

void EncodeRemove(GroupId group, std::string* payload) { PutOp(Op::kRemove, group, payload); }

void EncodeSnapshot(GroupId group, const Snapshot& snapshot, bool keep_later,
                    std::string* payload) {
  PutSnapshot(Op::kSnapshot, group, snapshot, snapshot.data, keep_later, payload);
}

void EncodeSnapshotFile(GroupId group, const Snapshot& snapshot, std::string_view file,
                        bool keep_later, std::string* payload) {
  PutSnapshot(Op::kSnapshotFile, group, snapshot, file, keep_later, payload);
}

void EncodeHardState(GroupId group, const HardState& state, std::string* payload) {
  PutOp(Op::kHardState, group, payload);
  PutVarint(payload, state.term);
  PutVarint(payload, state.vote);
  PutVarint(payload, state.commit);
}

void EncodeEntries(GroupId group, std::span<const Entry> entries, std::string* payload) {
  if (entries.empty()) return;
  PutOp(Op::kEntries, group, payload);
  PutVarint(payload, entries.front().index);
  PutEntries(entries, payload);
}

void EncodeGroup(GroupId group, const RaftStorage& state, std::string_view snapshot_data,
                 std::string_view snapshot_file, std::span<const Entry> entries,
                 std::string* payload) {
  EncodeRemove(group, payload);
  if (snapshot_file.empty()) {
    PutSnapshot(Op::kSnapshot, group, state.snapshot, snapshot_data, /*keep_later=*/false, payload);
  } else {
    PutSnapshot(Op::kSnapshotFile, group, state.snapshot, snapshot_file, /*keep_later=*/false,
                payload);
  }
  EncodeHardState(group, state.hard_state, payload);
  EncodeEntries(group, entries, payload);
}

void EncodeRaftRecord(std::string_view payload, std::string* out) {
  const auto length = static_cast<uint32_t>(payload.size());
  PutFixed64(out, Checksum(payload));
  PutFixed32(out, length);
  PutFixed32(out, LengthCheck(length));
  out->append(payload);
}

std::optional<std::string> ApplyRaftRecord(std::string_view payload, StoredGroups* groups,
                                           bool keep_snapshot_data, bool keep_entry_data,
                                           SnapshotFiles* files) {
  Decoder in(payload);
  while (!in.done()) {
    uint8_t op = 0;
    GroupId group = 0;
    if (!in.Byte(&op) || !in.Varint(&group)) return "a malformed operation";
    std::optional<std::string> error;
    switch (static_cast<Op>(op)) {
      case Op::kRemove:
        groups->erase(group);
        if (files != nullptr) files->erase(group);
        break;
      case Op::kSnapshot:
      case Op::kSnapshotFile: {
        const bool in_file = static_cast<Op>(op) == Op::kSnapshotFile;
        std::string_view bytes;
        error = ApplySnapshot(&in, &(*groups)[group], keep_snapshot_data && !in_file, &bytes);
        if (!error && in_file && bytes.empty()) error = "a snapshot file without a name";
        if (error || files == nullptr) break;
        if (in_file) {
          (*files)[group] = std::string(bytes);
        } else {
          files->erase(group);
        }
        break;
      }
      case Op::kHardState: {
        HardState& state = (*groups)[group].hard_state;
        if (!in.Varint(&state.term) || !in.Varint(&state.vote) || !in.Varint(&state.commit)) {
          error = "a malformed hard state";
        }
        break;
      }
      case Op::kEntries:
        error = ApplyEntries(&in, &(*groups)[group], keep_entry_data);
        break;
      default:
        error = "an unknown operation " + std::to_string(op);
    }
    if (error) return "group " + std::to_string(group) + ": " + *error;
  }
  return std::nullopt;
}

RecordRead ReadRaftRecord(std::string_view file, size_t offset, std::string_view* payload,
                          size_t* next) {
  const std::string_view rest = file.substr(std::min(offset, file.size()));
  // A header cut short can only be the last write.
  if (rest.size() < kRaftRecordHeaderBytes) return RecordRead::kEnd;
  const uint32_t length = storage::DecodeFixed32(rest.data() + 8);
  const bool length_ok = storage::DecodeFixed32(rest.data() + 12) == LengthCheck(length) &&
                         length <= kMaxRaftRecordPayload;
  // A damaged length: a torn write if nothing was written after it.
  if (!length_ok) {
    return AllZero(rest.substr(kRaftRecordHeaderBytes)) ? RecordRead::kEnd : RecordRead::kDamaged;
  }
  // A record running past the end: its write was cut short.
  if (rest.size() - kRaftRecordHeaderBytes < length) return RecordRead::kEnd;
  const std::string_view body = rest.substr(kRaftRecordHeaderBytes, length);
  if (storage::DecodeFixed64(rest.data()) != Checksum(body)) {
    // Its blocks were not all written (the file grew, its data did not
    // land), unless something was written after it.
    return AllZero(rest.substr(kRaftRecordHeaderBytes + length)) ? RecordRead::kEnd
                                                                 : RecordRead::kDamaged;
  }
  *payload = body;
  *next = offset + kRaftRecordHeaderBytes + length;
  return RecordRead::kRecord;
}

}  // namespace strata::replication
