#include "storage/wal_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "storage/coding.h"
#include "storage/file_util.h"

namespace strata::storage {

namespace {

struct SegmentFile {
  uint64_t first_lsn;
  std::string path;
  std::string data;
};

bool HeaderIsValid(std::string_view data, uint64_t* first_lsn) {
  if (data.size() < kSegmentHeaderBytes) return false;
  if (std::memcmp(data.data(), kWalMagic, sizeof(kWalMagic)) != 0) return false;
  if (DecodeFixed32(data.data() + 8) != kWalFormatVersion) return false;
  if (DecodeFixed32(data.data() + 12) != kSegmentHeaderBytes) return false;
  if (DecodeFixed64(data.data() + 24) != Checksum(data.substr(0, 24))) return false;
  *first_lsn = DecodeFixed64(data.data() + 16);
  return true;
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// Why the record at `offset` is not a valid record with LSN `expected_lsn`
// (empty: it is one). Sets *end_of_data for an all-zero header: the
// preallocated rest of the segment.
std::string CheckRecord(std::string_view data, size_t offset, uint64_t expected_lsn,
                        bool* end_of_data) {
  *end_of_data = false;
  if (offset + kRecordHeaderBytes > data.size()) {
    if (AllZero(data.substr(offset))) {
      *end_of_data = true;
      return "";
    }
    return "a record header cut short by the end of the file";
  }
  std::string_view header = data.substr(offset, kRecordHeaderBytes);
  if (AllZero(header)) {
    *end_of_data = true;
    return "";
  }
  const uint32_t length = DecodeFixed32(header.data() + 8);
  if (length > kMaxRecordPayload || offset + AlignedRecordSize(length) > data.size()) {
    return "a record length (" + std::to_string(length) + ") that runs past the end of the file";
  }
  if (DecodeFixed64(header.data()) != Checksum(data.substr(offset + 8, 16 + length))) {
    return "a checksum mismatch";
  }
  const uint64_t lsn = DecodeFixed64(header.data() + 16);
  if (lsn != expected_lsn) {
    return "LSN " + std::to_string(lsn) + " where " + std::to_string(expected_lsn) +
           " was expected";
  }
  return "";
}

// Calls `visit(type, payload)` for every valid record (checksum and length
// right) with an LSN of at least `min_lsn` that starts at an aligned offset
// at or after `offset`, until it returns false. Older LSNs do not count:
// they can only be copies (a value that holds log bytes, say).
void ScanForRecords(std::string_view data, size_t offset, uint64_t min_lsn,
                    const std::function<bool(RecordType, std::string_view)>& visit) {
  offset = (offset + kRecordAlignment - 1) & ~(kRecordAlignment - 1);
  for (; offset + kRecordHeaderBytes <= data.size(); offset += kRecordAlignment) {
    const char* h = data.data() + offset;
    if (AllZero(std::string_view(h, kRecordHeaderBytes))) continue;
    const uint32_t length = DecodeFixed32(h + 8);
    if (length > kMaxRecordPayload || offset + kRecordHeaderBytes + length > data.size()) continue;
    if (DecodeFixed64(h + 16) < min_lsn) continue;
    if (DecodeFixed64(h) != Checksum(data.substr(offset + 8, 16 + length))) continue;
    if (!visit(static_cast<RecordType>(h[12]), data.substr(offset + kRecordHeaderBytes, length))) {
      return;
    }
  }
}

bool HasValidRecordFrom(std::string_view data, size_t offset, uint64_t min_lsn) {
  bool found = false;
  ScanForRecords(data, offset, min_lsn, [&](RecordType, std::string_view) {
    found = true;
    return false;
  });
  return found;
}

// The highest durable mark at or after `offset` (0: none).
uint64_t HighestMarkFrom(std::string_view data, size_t offset, uint64_t min_lsn) {
  uint64_t highest = 0;
  ScanForRecords(data, offset, min_lsn, [&](RecordType type, std::string_view payload) {
    uint64_t mark = 0;
    if (type == RecordType::kDurableMark && Decoder(payload).Varint(&mark)) {
      highest = std::max(highest, mark);
    }
    return true;
  });
  return highest;
}

std::string Where(const SegmentFile& segment, size_t offset) {
  return segment.path + " at offset " + std::to_string(offset);
}

// Says every `every` (a few seconds) how much of the log is replayed and, from the rate
// so far, about how long the rest will take: a long replay at start must
// not look like a hang. The total counts the segments' preallocated ends
// too, so the estimate errs long.
class ReplayProgress {
 public:
  ReplayProgress(const std::function<void(std::string_view)>& out, uint64_t total_bytes,
                 std::chrono::milliseconds every)
      : out_(out), total_(total_bytes), every_(every), started_(Clock::now()), last_(started_) {}
  void At(uint64_t done) {
    if (!out_ || ++calls_ % 4096 != 0) return;
    const auto now = Clock::now();
    if (now - last_ < every_) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    const double left = done > 0 && total_ > done ? elapsed * static_cast<double>(total_ - done) /
                                                        static_cast<double>(done)
                                                  : 0;
    char line[160];
    std::snprintf(
        line, sizeof line, "recovery: replayed %.1f of %.1f MiB of log (%.0f%%), about %.0f s left",
        static_cast<double>(done) / (1 << 20), static_cast<double>(total_) / (1 << 20),
        total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0, left);
    out_(line);
  }

 private:
  using Clock = std::chrono::steady_clock;
  const std::function<void(std::string_view)>& out_;
  const uint64_t total_;
  const std::chrono::milliseconds every_;
  const Clock::time_point started_;
  Clock::time_point last_;
  uint64_t calls_ = 0;
};

}  // namespace

Result<WalReadSummary> ReadWal(const std::string& dir, uint64_t after_lsn,
                               const std::function<Status(const WalRecord&)>& apply,
                               const std::function<void(std::string_view)>& progress,
                               std::chrono::milliseconds progress_every) {
  Result<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) return names.status();
  std::vector<SegmentFile> segments;
  for (const std::string& name : *names) {
    if (auto first = ParseSegmentFileName(name)) {
      segments.push_back({*first, JoinPath(dir, name), std::string()});
    }
  }
  std::sort(segments.begin(), segments.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.first_lsn < b.first_lsn; });

  uint64_t total_bytes = 0;
  for (const auto& segment : segments) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(segment.path, ec);
    if (!ec) total_bytes += size;
  }
  ReplayProgress replay_progress(progress, total_bytes, progress_every);

  WalReadSummary summary;
  uint64_t expected = 0;  // the next LSN; 0 until the first segment sets it
  // A segment's damage is judged against what comes after it: load lazily,
  // but let the torn-tail check look ahead at later segments.
  auto load = [&](SegmentFile& segment) -> Status {
    if (!segment.data.empty()) return Status::Ok();
    Result<std::string> data = ReadWholeFile(segment.path);
    if (!data.ok()) return data.status();
    segment.data = std::move(*data);
    return Status::Ok();
  };
  // Whether the log after a bad spot (segment `index` from `offset`) proves
  // that the record `bad_lsn` which should be there was durable: a later
  // flush group's mark says so. Then the spot is damage. Otherwise the spot
  // and everything after it belong to groups whose fsync never completed
  // (after a power loss, pages of such a group can reach the disk in any
  // order), nothing there was acknowledged, and it is a torn tail.
  auto proven_durable = [&](size_t index, size_t offset, uint64_t bad_lsn) -> Result<bool> {
    if (HighestMarkFrom(segments[index].data, offset, bad_lsn) >= bad_lsn) return true;
    for (size_t j = index + 1; j < segments.size(); ++j) {
      if (Status s = load(segments[j]); !s.ok()) return s;
      const bool proven =
          HighestMarkFrom(segments[j].data, kSegmentHeaderBytes, bad_lsn) >= bad_lsn;
      std::string().swap(segments[j].data);  // free it again: segments can be big
      if (proven) return true;
    }
    return false;
  };
  // Cuts segment `index` at `offset` and removes the later (empty) ones.
  auto cut_tail = [&](size_t index, size_t offset, const std::string& why) -> Status {
    SegmentFile& segment = segments[index];
    const uint64_t dropped = segment.data.size() - offset;
    summary.torn_tail = "dropped " + std::to_string(dropped) + " bytes of " + segment.path +
                        " from offset " + std::to_string(offset) + " (" + why +
                        "): the end of a write the crash interrupted";
    Result<File> file = OpenFile(segment.path, O_WRONLY);
    if (!file.ok()) return file.status();
    if (::ftruncate(file->fd(), static_cast<off_t>(offset)) != 0) {
      return ErrnoStatus("cannot truncate", segment.path, errno);
    }
    if (Status s = DataSync(*file, segment.path); !s.ok()) return s;
    for (size_t j = index + 1; j < segments.size(); ++j) {
      if (Status s = RemoveFile(segments[j].path); !s.ok()) return s;
    }
    segments.resize(index + 1);
    return SyncDir(dir);
  };

  for (size_t i = 0; i < segments.size(); ++i) {
    SegmentFile& segment = segments[i];
    if (Status s = load(segment); !s.ok()) return s;
    if (progress) {
      progress("recovery: reading " + segment.path + " (" + std::to_string(segment.data.size()) +
               " bytes)");
    }
    uint64_t header_lsn = 0;
    const bool header_ok = HeaderIsValid(segment.data, &header_lsn);
    if (!header_ok && i + 1 < segments.size() &&
        !HasValidRecordFrom(segment.data, kSegmentHeaderBytes, 0)) {
      // Not one record in it, and the log goes on: a segment created by a
      // roll that failed before writing anything. It holds nothing; the next
      // segment must continue the LSNs (checked below).
      if (progress) progress("recovery: removing the empty segment " + segment.path);
      if (Status s = RemoveFile(segment.path); !s.ok()) return s;
      segments.erase(segments.begin() + static_cast<std::ptrdiff_t>(i));
      --i;
      continue;
    }
    if (!header_ok || header_lsn != segment.first_lsn) {
      const uint64_t bad_lsn = expected == 0 ? after_lsn + 1 : expected;
      Result<bool> proven = proven_durable(i, kSegmentHeaderBytes, bad_lsn);
      if (!proven.ok()) return proven.status();
      if (*proven) {
        return Status::InvalidArgument("the write-ahead log is damaged: " + Where(segment, 0) +
                                       " has no valid segment header, and later records show "
                                       "its records were durable");
      }
      // A segment created just before the crash, never (fully) written.
      if (Status s = cut_tail(i, 0, "no valid segment header"); !s.ok()) return s;
      if (Status s = RemoveFile(segment.path); !s.ok()) return s;
      segments.pop_back();
      break;
    }
    if (expected == 0) {
      if (segment.first_lsn > after_lsn + 1) {
        return Status::InvalidArgument(
            "the write-ahead log is missing records " + std::to_string(after_lsn + 1) + " to " +
            std::to_string(segment.first_lsn - 1) + ": its oldest segment is " + segment.path);
      }
    } else if (segment.first_lsn != expected) {
      return Status::InvalidArgument("the write-ahead log is missing records: " + segment.path +
                                     " starts at LSN " + std::to_string(segment.first_lsn) +
                                     " but the previous segment ended before LSN " +
                                     std::to_string(expected));
    }
    expected = segment.first_lsn;

    size_t offset = kSegmentHeaderBytes;
    bool cut = false;
    for (;;) {
      bool end_of_data = false;
      std::string why = CheckRecord(segment.data, offset, expected, &end_of_data);
      if (end_of_data) {
        // Zeros: the preallocated end of this segment's data (the next
        // segment continues the LSNs), unless records follow them here.
        if (!HasValidRecordFrom(segment.data, offset + kRecordAlignment, expected)) break;
        why = "a zeroed record header with records after it";
      }
      if (!why.empty()) {
        Result<bool> proven = proven_durable(i, offset + kRecordAlignment, expected);
        if (!proven.ok()) return proven.status();
        if (*proven) {
          return Status::InvalidArgument(
              "the write-ahead log is damaged: " + Where(segment, offset) + " holds " + why +
              ", and later records show that record " + std::to_string(expected) +
              " was durable; refusing to recover past it, which would lose acknowledged writes");
        }
        if (Status s = cut_tail(i, offset, why); !s.ok()) return s;
        cut = true;
        break;
      }
      const uint32_t length = DecodeFixed32(segment.data.data() + offset + 8);
      WalRecord record{static_cast<RecordType>(segment.data[offset + 12]), expected,
                       std::string_view(segment.data).substr(offset + kRecordHeaderBytes, length)};
      if (record.lsn > after_lsn) {
        if (Status s = apply(record); !s.ok()) {
          return Status(s.code(), s.message() + " (" + Where(segment, offset) + ")");
        }
        ++summary.records_applied;
        replay_progress.At(summary.bytes_read + offset);
      }
      summary.last_lsn = expected;
      ++expected;
      offset += AlignedRecordSize(length);
    }
    summary.bytes_read += offset;
    summary.segments.push_back(segment.first_lsn);
    if (!cut && offset < segment.data.size()) {
      // Only preallocated zeros follow: give the space back, so that a
      // store restarted often does not keep a mostly empty chunk per run.
      Result<File> file = OpenFile(segment.path, O_WRONLY);
      if (!file.ok()) return file.status();
      if (::ftruncate(file->fd(), static_cast<off_t>(offset)) != 0) {
        return ErrnoStatus("cannot truncate", segment.path, errno);
      }
    }
    std::string().swap(segment.data);
    if (cut) break;
  }
  return summary;
}

}  // namespace strata::storage
