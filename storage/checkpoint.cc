#include "storage/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "storage/coding.h"
#include "storage/file_util.h"
#include "storage/store_image.h"
#include "storage/wal_format.h"
#include "storage/wal_writer.h"

namespace strata::storage {

namespace {

constexpr char kCheckpointMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'C', 'K'};
constexpr uint64_t kCheckpointVersion = 1;
constexpr size_t kBlockHeaderBytes = 16;
enum class BlockType : uint8_t { kHeader = 1, kKeys = 2, kFooter = 3 };
// Keys per batch: one batch is copied under one hold of the writer lock.
constexpr size_t kKeysPerBatch = 256;
// The file is written in pieces of about this size.
constexpr size_t kWriteChunk = size_t{1} << 20;

void AppendBlock(BlockType type, std::string_view payload, std::string* out) {
  const size_t start = out->size();
  out->append(8, '\0');
  PutFixed32(out, static_cast<uint32_t>(payload.size()));
  out->push_back(static_cast<char>(type));
  out->append(3, '\0');
  out->append(payload);
  EncodeFixed64(out->data() + start, Checksum(std::string_view(*out).substr(start + 8)));
}

}  // namespace

std::string CheckpointFileName(uint64_t log_start) {
  return NumberedFileName("checkpoint-", log_start, ".ckpt");
}

std::optional<uint64_t> ParseCheckpointFileName(std::string_view name) {
  return ParseNumberedFileName(name, "checkpoint-", ".ckpt");
}

bool CheckpointInfo::Contains(std::string_view key, uint64_t lsn) const {
  auto after = std::upper_bound(cuts.begin(), cuts.end(), key,
                                [](std::string_view k, const Cut& c) { return k < c.range_start; });
  if (after == cuts.begin()) return false;
  return lsn <= std::prev(after)->cut_lsn;
}

Result<CheckpointResult> WriteCheckpoint(const std::string& dir, const MvccStore& store,
                                         WalWriter* wal,
                                         const std::function<uint64_t()>& reserved_through,
                                         const std::function<void(std::string_view)>& progress) {
  Result<uint64_t> next_segment = wal->Roll();
  if (!next_segment.ok()) return next_segment.status();
  const uint64_t covered = *next_segment - 1;

  CheckpointResult result;
  result.path = JoinPath(dir, CheckpointFileName(covered));
  const std::string tmp_path = result.path + ".tmp";
  Result<File> file = OpenFile(tmp_path, O_WRONLY | O_CREAT | O_TRUNC);
  if (!file.ok()) return file.status();

  std::string out(kCheckpointMagic, sizeof(kCheckpointMagic));
  uint64_t offset = 0;
  auto write_out = [&]() -> Status {
    if (Status s = WriteAt(*file, tmp_path, out, offset); !s.ok()) return s;
    offset += out.size();
    out.clear();
    return Status::Ok();
  };

  // The horizon and the highest timestamp are read under the writer lock
  // (an empty first batch), where a horizon's record and its rise happen
  // together: read outside it, a rise whose record lies before the roll
  // could be missed, and the log after the roll would not bring it back.
  std::string cursor;
  uint64_t horizon = 0, max_ts_plus_one = 0;
  bool done = store.ExportKeys(
      &cursor, 0,
      [&] {
        horizon = store.compaction_horizon().value();
        auto max_ts = store.max_timestamp();
        max_ts_plus_one = max_ts ? max_ts->value() + 1 : 0;
      },
      [](std::string_view, uint64_t, std::span<const ExportedVersion>) {});
  std::string payload;
  PutVarint(&payload, kCheckpointVersion);
  PutVarint(&payload, covered);
  PutVarint(&payload, horizon);
  PutVarint(&payload, max_ts_plus_one);
  PutVarint(&payload, reserved_through());
  AppendBlock(BlockType::kHeader, payload, &out);

  // The first batch starts at the first key that existed at that cut; a key
  // created before it later belongs to no batch, so its records replay.
  uint64_t blocks = 1, last_cut = covered;
  std::string keys;
  while (!done) {
    payload.clear();
    keys.clear();
    uint64_t count = 0;
    std::string range_start = cursor;
    uint64_t cut = 0;
    done = store.ExportKeys(
        &cursor, kKeysPerBatch, [&] { cut = wal->last_appended_lsn(); },
        [&](std::string_view key, uint64_t write_count, std::span<const ExportedVersion> versions) {
          PutExportedKey(&keys, key, write_count, versions);
          ++count;
          result.versions += versions.size();
        });
    PutVarint(&payload, cut);
    PutBytes(&payload, range_start);
    PutVarint(&payload, count);
    payload.append(keys);
    AppendBlock(BlockType::kKeys, payload, &out);
    ++blocks;
    result.keys += count;
    last_cut = std::max(last_cut, cut);
    if (out.size() >= kWriteChunk) {
      if (Status s = write_out(); !s.ok()) return s;
    }
  }
  payload.clear();
  PutVarint(&payload, blocks + 1);
  PutVarint(&payload, result.keys);
  PutVarint(&payload, result.versions);
  AppendBlock(BlockType::kFooter, payload, &out);
  if (Status s = write_out(); !s.ok()) return s;
  if (Status s = DataSync(*file, tmp_path); !s.ok()) return s;
  result.bytes = offset;

  // The file reflects records up to last_cut: they must be durable before
  // it replaces the log they came from.
  if (Status s = wal->WaitDurable(last_cut); !s.ok()) return s;
  if (::rename(tmp_path.c_str(), result.path.c_str()) != 0) {
    return ErrnoStatus("cannot rename checkpoint", tmp_path, errno);
  }
  if (Status s = SyncDir(dir); !s.ok()) return s;
  result.covered_lsn = covered;

  // Only now is the older state unnecessary.
  Result<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    auto lsn = ParseCheckpointFileName(name);
    if (lsn && *lsn < covered) {
      if (Status s = RemoveFile(JoinPath(dir, name)); !s.ok()) return s;
    }
  }
  if (Status s = wal->RemoveSegmentsBefore(covered + 1); !s.ok()) return s;
  if (progress) {
    progress("checkpoint: wrote " + result.path + " (" + std::to_string(result.keys) + " keys, " +
             std::to_string(result.versions) + " versions, " + std::to_string(result.bytes) +
             " bytes)");
  }
  return result;
}

Status RemoveTemporaryCheckpoints(const std::string& dir) {
  Result<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (!name.starts_with("checkpoint-") || !name.ends_with(".ckpt.tmp")) continue;
    if (Status s = RemoveFile(JoinPath(dir, name)); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<CheckpointInfo> LoadCheckpoint(const std::string& path, MvccStore* store) {
  // Read block by block: a checkpoint can be as big as the store, and
  // reading it whole would need that much memory again.
  Result<File> file = OpenFile(path, O_RDONLY);
  if (!file.ok()) return file.status();
  struct stat st;
  if (::fstat(file->fd(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  auto damaged = [&](uint64_t offset, const std::string& why) {
    return Status::InvalidArgument("the checkpoint " + path + " is damaged at offset " +
                                   std::to_string(offset) + ": " + why);
  };
  std::string block;
  auto read = [&](uint64_t offset, size_t n) -> Status {
    block.resize(n);
    size_t done = 0;
    while (done < n) {
      ssize_t got =
          ::pread(file->fd(), block.data() + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return ErrnoStatus("cannot read", path, errno);
      if (got == 0) return damaged(offset, "the file ends early");
      done += static_cast<size_t>(got);
    }
    return Status::Ok();
  };
  if (file_size < sizeof(kCheckpointMagic)) {
    return damaged(0, "it does not start with the checkpoint magic bytes");
  }
  if (Status s = read(0, sizeof(kCheckpointMagic)); !s.ok()) return s;
  if (std::memcmp(block.data(), kCheckpointMagic, sizeof(kCheckpointMagic)) != 0) {
    return damaged(0, "it does not start with the checkpoint magic bytes");
  }
  CheckpointInfo info;
  uint64_t offset = sizeof(kCheckpointMagic);
  uint64_t blocks = 0;
  bool footer = false;
  while (offset < file_size) {
    if (footer) return damaged(offset, "bytes after the footer");
    if (offset + kBlockHeaderBytes > file_size) return damaged(offset, "a block header cut short");
    if (Status s = read(offset, kBlockHeaderBytes); !s.ok()) return s;
    const uint32_t length = DecodeFixed32(block.data() + 8);
    if (length > file_size - offset - kBlockHeaderBytes) {
      return damaged(offset, "a block length that runs past the end of the file");
    }
    if (Status s = read(offset, kBlockHeaderBytes + length); !s.ok()) return s;
    const std::string_view whole = block;
    if (DecodeFixed64(whole.data()) != Checksum(whole.substr(8))) {
      return damaged(offset, "a checksum mismatch");
    }
    const auto type = static_cast<BlockType>(whole[12]);
    Decoder in(whole.substr(kBlockHeaderBytes, length));
    ++blocks;
    if (blocks == 1 && type != BlockType::kHeader) return damaged(offset, "no header block");
    bool ok = true;
    switch (type) {
      case BlockType::kHeader: {
        uint64_t version = 0;
        ok = blocks == 1 && in.Varint(&version) && version == kCheckpointVersion &&
             in.Varint(&info.covered_lsn) && in.Varint(&info.horizon) &&
             in.Varint(&info.max_timestamp_plus_one) && in.Varint(&info.reserved_through);
        break;
      }
      case BlockType::kKeys: {
        uint64_t cut = 0, count = 0;
        std::string_view range_start;
        ok = in.Varint(&cut) && in.Bytes(&range_start) && in.Varint(&count);
        if (ok) info.cuts.push_back({std::string(range_start), cut});
        for (uint64_t k = 0; ok && k < count; ++k) {
          ok = RestoreExportedKey(&in, store, &info.versions);
          ++info.keys;
        }
        break;
      }
      case BlockType::kFooter: {
        uint64_t total_blocks = 0, keys = 0, versions = 0;
        ok = in.Varint(&total_blocks) && in.Varint(&keys) && in.Varint(&versions) &&
             total_blocks == blocks && keys == info.keys && versions == info.versions;
        footer = true;
        break;
      }
      default:
        ok = false;
    }
    if (!ok || !in.done()) return damaged(offset, "a block whose contents do not decode");
    offset += kBlockHeaderBytes + length;
  }
  if (!footer) return damaged(offset, "the file ends before its footer (truncated)");
  if (info.horizon > 0) store->RestoreHorizon(Timestamp(info.horizon));
  if (info.max_timestamp_plus_one > 0) {
    store->RestoreMaxTimestamp(Timestamp(info.max_timestamp_plus_one - 1));
  }
  return info;
}

}  // namespace strata::storage
