#include "replication/snapshot_file.h"

#include <fcntl.h>
#include <xxhash.h>

#include <algorithm>

#include "storage/coding.h"
#include "storage/file_util.h"
#include "storage/wal_format.h"

namespace strata::replication {

using storage::Checksum;
using storage::DecodeFixed32;
using storage::DecodeFixed64;
using storage::JoinPath;

namespace {

constexpr std::string_view kSnapshotPrefix = "snapshot-";
constexpr std::string_view kSnapshotSuffix = ".snap";
constexpr char kSnapshotFileMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'S', 'N'};
constexpr uint32_t kSnapshotFileFormatVersion = 1;

std::string SnapshotFileHeader(raft::GroupId group, raft::Index index, std::string_view data) {
  std::string header(kSnapshotFileMagic, sizeof(kSnapshotFileMagic));
  storage::PutFixed32(&header, kSnapshotFileFormatVersion);
  storage::PutFixed32(&header, kSnapshotFileHeaderBytes);
  storage::PutFixed64(&header, group);
  storage::PutFixed64(&header, index);
  storage::PutFixed64(&header, data.size());
  storage::PutFixed64(&header, Checksum(data));
  storage::PutFixed64(&header, Checksum(header));
  return header;
}

// What is wrong with `header` (the file's first kSnapshotFileHeaderBytes,
// or fewer), for `group`'s snapshot at `index`; nullopt if nothing.
std::optional<std::string> HeaderProblem(std::string_view header, raft::GroupId group,
                                         raft::Index index) {
  if (header.size() < kSnapshotFileHeaderBytes ||
      header.substr(0, sizeof(kSnapshotFileMagic)) !=
          std::string_view(kSnapshotFileMagic, sizeof(kSnapshotFileMagic)) ||
      DecodeFixed32(header.data() + 8) != kSnapshotFileFormatVersion ||
      DecodeFixed32(header.data() + 12) != kSnapshotFileHeaderBytes ||
      DecodeFixed64(header.data() + 48) != Checksum(header.substr(0, 48))) {
    return "has no valid header";
  }
  const uint64_t file_group = DecodeFixed64(header.data() + 16);
  const uint64_t file_index = DecodeFixed64(header.data() + 24);
  if (file_group != group || file_index != index) {
    return "holds group " + std::to_string(file_group) + "'s snapshot at index " +
           std::to_string(file_index) + ", not group " + std::to_string(group) + "'s at " +
           std::to_string(index);
  }
  return std::nullopt;
}

// What is wrong with data of `size` bytes and checksum `checksum` for the
// header; nullopt if nothing.
std::optional<std::string> DataProblem(std::string_view header, uint64_t size, uint64_t checksum) {
  if (DecodeFixed64(header.data() + 32) != size) {
    return "is " + std::to_string(size) + " bytes of data where its header says " +
           std::to_string(DecodeFixed64(header.data() + 32));
  }
  if (DecodeFixed64(header.data() + 40) != checksum) {
    return std::string("does not read back (its checksum differs)");
  }
  return std::nullopt;
}

Status Damaged(const std::string& path, const std::string& what) {
  return Status::IoError("the Raft snapshot " + path + " " + what);
}

}  // namespace

std::string SnapshotFileName(uint64_t number) {
  return storage::NumberedFileName(kSnapshotPrefix, number, kSnapshotSuffix);
}

std::optional<uint64_t> ParseSnapshotFileName(std::string_view name) {
  return storage::ParseNumberedFileName(name, kSnapshotPrefix, kSnapshotSuffix);
}

bool IsSnapshotTemporaryFileName(std::string_view name) {
  return name.starts_with(kSnapshotPrefix) && name.ends_with(storage::kReplacingSuffix);
}

Status WriteSnapshotFile(const std::string& dir, const std::string& name, raft::GroupId group,
                         raft::Index index, std::string_view data, bool sync) {
  return storage::ReplaceFileDurably(dir, name, {SnapshotFileHeader(group, index, data), data},
                                     sync);
}

Result<std::string> ReadSnapshotFile(const std::string& dir, const std::string& name,
                                     raft::GroupId group, raft::Index index) {
  const std::string path = JoinPath(dir, name);
  Result<std::string> file = storage::ReadWholeFile(path);
  if (!file.ok()) return file.status();
  const std::string_view bytes = *file;
  if (auto problem = HeaderProblem(bytes, group, index)) return Damaged(path, *problem);
  const std::string_view data = bytes.substr(kSnapshotFileHeaderBytes);
  if (auto problem = DataProblem(bytes, data.size(), Checksum(data))) {
    return Damaged(path, *problem);
  }
  file->erase(0, kSnapshotFileHeaderBytes);
  return std::move(*file);
}

Result<std::string> ReadSnapshotFileRange(const std::string& dir, const std::string& name,
                                          raft::GroupId group, raft::Index index, uint64_t offset,
                                          size_t length) {
  const std::string path = JoinPath(dir, name);
  Result<storage::File> file = storage::OpenFile(path, O_RDONLY);
  if (!file.ok()) return file.status();
  Result<std::string> header = storage::ReadAt(*file, path, 0, kSnapshotFileHeaderBytes);
  if (!header.ok()) return header.status();
  if (auto problem = HeaderProblem(*header, group, index)) return Damaged(path, *problem);
  if (offset == 0) {
    // The whole data's checksum, a piece at a time (XXH3's streaming form
    // gives what storage::Checksum gives over the whole).
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    uint64_t size = 0;
    constexpr size_t kPiece = size_t{1} << 20;
    for (;;) {
      Result<std::string> piece =
          storage::ReadAt(*file, path, kSnapshotFileHeaderBytes + size, kPiece);
      if (!piece.ok()) {
        XXH3_freeState(state);
        return piece.status();
      }
      XXH3_64bits_update(state, piece->data(), piece->size());
      size += piece->size();
      if (piece->size() < kPiece) break;
    }
    const uint64_t checksum = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    if (auto problem = DataProblem(*header, size, checksum)) return Damaged(path, *problem);
  }
  const uint64_t size = DecodeFixed64(header->data() + 32);
  if (offset >= size) return std::string();
  const size_t wanted = static_cast<size_t>(std::min<uint64_t>(length, size - offset));
  Result<std::string> chunk =
      storage::ReadAt(*file, path, kSnapshotFileHeaderBytes + offset, wanted);
  if (!chunk.ok()) return chunk.status();
  if (chunk->size() != wanted) return Damaged(path, "is cut short");
  return chunk;
}

}  // namespace strata::replication
