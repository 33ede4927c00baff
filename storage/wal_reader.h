// WalReader: reads the write-ahead log back at recovery.
//
// Records are checked one by one (checksum, length, consecutive LSN). The
// first bad one decides, by what the log after it proves. Every flush group
// begins with a durable mark: "every record up to LSN d was durable when
// this group began". If a later mark covers the bad record, it had been
// durable (and maybe acknowledged): the log was damaged in the middle, and
// recovering past it would silently lose acknowledged writes, so reading
// fails, naming the file and the offset. Otherwise the bad record and
// everything after it belong to flush groups whose fsync never completed
// (after a power loss their pages may have reached the disk in any order,
// leaving holes): nothing there was acknowledged, so it is a torn tail, cut
// off, and recovery goes on.
#ifndef STRATA_STORAGE_WAL_READER_H_
#define STRATA_STORAGE_WAL_READER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/wal_format.h"
#include "strata/status.h"

namespace strata::storage {

struct WalRecord {
  RecordType type;
  uint64_t lsn = 0;
  std::string_view payload;
};

struct WalReadSummary {
  std::vector<uint64_t> segments;  // first LSNs of the segments kept
  uint64_t last_lsn = 0;           // the last valid record (0: none)
  uint64_t records_applied = 0;
  uint64_t bytes_read = 0;
  std::optional<std::string> torn_tail;  // what was cut, if anything
};

// Reads every segment of `dir` in order and calls `apply` for each record
// with an LSN above `after_lsn` (older ones are checked, not applied; a log
// that starts later than after_lsn + 1 is missing records and fails).
// A torn tail is cut off the file (and later empty segments are removed).
// Errors: kInvalidArgument for damage (file and offset named), the status
// of `apply`, or an I/O error.
Result<WalReadSummary> ReadWal(const std::string& dir, uint64_t after_lsn,
                               const std::function<Status(const WalRecord&)>& apply,
                               const std::function<void(std::string_view)>& progress,
                               std::chrono::milliseconds progress_every = std::chrono::seconds(2));

}  // namespace strata::storage

#endif  // STRATA_STORAGE_WAL_READER_H_
