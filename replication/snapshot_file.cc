#include "replication/snapshot_file.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdio>

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
constexpr std::string_view kSnapshotTemporarySuffix = ".tmp";
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

Status WriteSnapshotTemporary(const std::string& temporary, raft::GroupId group, raft::Index index,
                              std::string_view data, bool sync) {
  Result<storage::File> file = storage::OpenFile(temporary, O_WRONLY | O_CREAT | O_TRUNC);
  if (!file.ok()) return file.status();
  const std::string header = SnapshotFileHeader(group, index, data);
  if (Status written = storage::WriteAt(*file, temporary, header, 0); !written.ok()) {
    return written;
  }
  if (Status written = storage::WriteAt(*file, temporary, data, header.size()); !written.ok()) {
    return written;
  }
  return sync ? storage::DataSync(*file, temporary) : Status::Ok();
}

}  // namespace

std::string SnapshotFileName(uint64_t number) {
  return storage::NumberedFileName(kSnapshotPrefix, number, kSnapshotSuffix);
}

std::optional<uint64_t> ParseSnapshotFileName(std::string_view name) {
  return storage::ParseNumberedFileName(name, kSnapshotPrefix, kSnapshotSuffix);
}

bool IsSnapshotTemporaryFileName(std::string_view name) {
  return name.starts_with(kSnapshotPrefix) && name.ends_with(kSnapshotTemporarySuffix);
}

Status WriteSnapshotFile(const std::string& dir, const std::string& name, raft::GroupId group,
                         raft::Index index, std::string_view data, bool sync) {
  const std::string path = JoinPath(dir, name);
  const std::string temporary = path + std::string(kSnapshotTemporarySuffix);
  if (Status written = WriteSnapshotTemporary(temporary, group, index, data, sync); !written.ok()) {
    (void)storage::RemoveFile(temporary);  // a full disk gets its space back
    return written;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return storage::ErrnoStatus("cannot rename", temporary, errno);
  }
  return sync ? storage::SyncDir(dir) : Status::Ok();
}

Result<std::string> ReadSnapshotFile(const std::string& dir, const std::string& name,
                                     raft::GroupId group, raft::Index index) {
  const std::string path = JoinPath(dir, name);
  Result<std::string> file = storage::ReadWholeFile(path);
  if (!file.ok()) return file.status();
  const auto damaged = [&](const std::string& what) {
    return Status::IoError("the Raft snapshot " + path + " " + what);
  };
  const std::string_view bytes = *file;
  if (bytes.size() < kSnapshotFileHeaderBytes ||
      bytes.substr(0, sizeof(kSnapshotFileMagic)) !=
          std::string_view(kSnapshotFileMagic, sizeof(kSnapshotFileMagic)) ||
      DecodeFixed32(bytes.data() + 8) != kSnapshotFileFormatVersion ||
      DecodeFixed32(bytes.data() + 12) != kSnapshotFileHeaderBytes ||
      DecodeFixed64(bytes.data() + 48) != Checksum(bytes.substr(0, 48))) {
    return damaged("has no valid header");
  }
  const uint64_t file_group = DecodeFixed64(bytes.data() + 16);
  const uint64_t file_index = DecodeFixed64(bytes.data() + 24);
  if (file_group != group || file_index != index) {
    return damaged("holds group " + std::to_string(file_group) + "'s snapshot at index " +
                   std::to_string(file_index) + ", not group " + std::to_string(group) + "'s at " +
                   std::to_string(index));
  }
  const std::string_view data = bytes.substr(kSnapshotFileHeaderBytes);
  if (DecodeFixed64(bytes.data() + 32) != data.size()) {
    return damaged("is " + std::to_string(data.size()) + " bytes of data where its header says " +
                   std::to_string(DecodeFixed64(bytes.data() + 32)));
  }
  if (DecodeFixed64(bytes.data() + 40) != Checksum(data)) {
    return damaged("does not read back (its checksum differs)");
  }
  file->erase(0, kSnapshotFileHeaderBytes);
  return std::move(*file);
}

}  // namespace strata::replication
