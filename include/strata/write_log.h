// WriteLog: where an MvccStore sends every change before making it visible.
//
// The engine knows nothing about files. A store built with a WriteLog calls
// it under its writer lock, after every check has passed and before any
// reader can see the change, so the log's order is the order in which the
// changes became visible. The storage layer (storage/wal.h) implements it
// with a write-ahead log; a later replica could implement it by shipping the
// records. Writes made without a log (the in-memory store) skip all of this.
#ifndef STRATA_WRITE_LOG_H_
#define STRATA_WRITE_LOG_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "strata/status.h"
#include "strata/timestamp.h"

namespace strata {

// One write as the log records it: the version number the store assigned is
// part of the record, so replay restores it exactly instead of recounting.
struct LoggedWrite {
  std::string_view key;
  std::optional<std::string_view> value;  // nullopt: a delete
  uint64_t version = 0;
};

class WriteLog {
 public:
  virtual ~WriteLog() = default;

  // Records that `writes` (all at `timestamp`) are about to become visible;
  // returns the record's log sequence number (LSN, increasing from 1).
  // A non-ok status refuses the writes: the store applies none of them and
  // returns the status to its caller. Called under the store's writer lock.
  virtual Result<uint64_t> AppendWrites(Timestamp timestamp,
                                        std::span<const LoggedWrite> writes) = 0;

  // Records that the compaction horizon rose to `horizon`. Called under the
  // store's writer lock.
  virtual Result<uint64_t> AppendHorizon(Timestamp horizon) = 0;

  // Called without any store lock once a change is visible: returns when the
  // record `lsn` is durable, or at once if the log's owner waits elsewhere
  // (the node holds each reply instead). A failure means the change is
  // visible in memory but may not survive a restart.
  virtual Status AwaitDurable(uint64_t lsn) = 0;

  // The LSN of the last record appended. Read under the store's writer lock,
  // it tells which records a consistent cut of the store already contains.
  virtual uint64_t last_appended_lsn() const = 0;
};

}  // namespace strata

#endif  // STRATA_WRITE_LOG_H_
