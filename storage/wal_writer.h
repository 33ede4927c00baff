// WalWriter: the write-ahead log's appending side, with group commit.
//
// Appends happen under the store's writer lock, so they only encode the
// record into a memory buffer (and, every few MiB, grow the segment file
// with fallocate, so that a full disk refuses the write before it is
// visible). One flusher thread writes the buffer out and fsyncs it: every
// record that arrived while the previous fsync ran shares the next one
// (group commit), and in kBatch mode the flusher first waits up to
// batch_delay for more. A failed write or fsync is final (the "fsyncgate"
// lesson: after a failed fsync the kernel may have dropped the dirty pages,
// so retrying proves nothing): nothing more is written, records not yet
// durable are reported failed, and every later append is refused.
#ifndef STRATA_STORAGE_WAL_WRITER_H_
#define STRATA_STORAGE_WAL_WRITER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "storage/file_util.h"
#include "storage/wal_format.h"
#include "strata/store.h"
#include "strata/write_log.h"

namespace strata::storage {

struct WalOptions {
  SyncMode sync = SyncMode::kBatch;
  std::chrono::microseconds batch_delay{1000};
  bool wait_for_durability = true;
  uint64_t segment_bytes = uint64_t{64} << 20;
  std::function<void()> on_durable;
};

struct WalStats {
  uint64_t appended_lsn = 0;
  uint64_t durable_lsn = 0;
  uint64_t syncs = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;  // appended since Start, headers and padding included
  std::optional<std::string> failure;
  LogHistograms histograms;
};

class WalWriter final : public WriteLog {
 public:
  WalWriter(std::string dir, WalOptions options);
  // Writes and syncs what is pending (unless the log failed), then stops.
  ~WalWriter() override;

  // Starts appending at `next_lsn` in a new segment, after the segments
  // recovery found (`existing`: their first LSNs), and starts the flusher.
  Status Start(uint64_t next_lsn, std::vector<uint64_t> existing);

  Result<uint64_t> AppendWrites(Timestamp timestamp, std::span<const LoggedWrite> writes) override;
  Result<uint64_t> AppendHorizon(Timestamp horizon) override;
  // The oracle may hand out timestamps up to `through`.
  Result<uint64_t> AppendReserve(uint64_t through);

  // Waits only with wait_for_durability (see WriteLog).
  Status AwaitDurable(uint64_t lsn) override;
  // Always waits: returns once record `lsn` is durable, or the failure.
  Status WaitDurable(uint64_t lsn);
  uint64_t last_appended_lsn() const override;
  // Nothing more is coming for now: kBatch writes the pending group at once
  // instead of waiting out its delay (the node calls this once it has
  // processed all the input there is).
  void Flush();
  uint64_t durable_lsn() const;
  Status health() const;

  // Closes the current segment (if it holds records) and starts a new one;
  // returns the new segment's first LSN: every record before it is in an
  // older segment.
  Result<uint64_t> Roll();
  // Deletes the segments that hold only records below `lsn`.
  Status RemoveSegmentsBefore(uint64_t lsn);
  // Bytes appended since Start (for checkpoint scheduling).
  uint64_t bytes_appended() const;
  WalStats stats() const;

 private:
  struct Segment {
    std::string path;
    File file;
    uint64_t first_lsn = 0;
    uint64_t end = 0;        // append offset
    uint64_t allocated = 0;  // file size reserved with fallocate
  };
  // Bytes for one segment, at an offset, waiting for the flusher.
  struct PendingWrite {
    std::shared_ptr<Segment> segment;
    uint64_t offset = 0;
    std::string bytes;
  };

  // Appends one record whose payload `encode` writes (at most
  // `max_payload` bytes) straight into the pending buffer.
  Result<uint64_t> Append(RecordType type, size_t max_payload,
                          const std::function<void(std::string*)>& encode);
  Status OpenSegmentLocked(uint64_t first_lsn) STRATA_REQUIRES(mu_);
  // Encodes one record into the pending buffer; returns its LSN.
  uint64_t EncodeLocked(RecordType type, const std::function<void(std::string*)>& encode)
      STRATA_REQUIRES(mu_);
  Status ReserveSpaceLocked(uint64_t bytes) STRATA_REQUIRES(mu_);
  void FailLocked(const Status& cause) STRATA_REQUIRES(mu_);
  void FlushLoop();
  // Takes the pending group and writes it out (writing_ set meanwhile),
  // then publishes the outcome. Called with !writing_; lets go of mu_
  // during the I/O and holds it again when it returns.
  void WriteGroup() STRATA_REQUIRES(mu_);
  // Writes and syncs `batch`; *sync_seconds: the time its fsyncs took.
  Status WriteOut(const std::vector<PendingWrite>& batch, double* sync_seconds);

  const std::string dir_;
  const WalOptions options_;

  mutable Mutex mu_;
  CondVar work_cv_;     // flusher: there is pending work, or stop
  CondVar durable_cv_;  // waiters: durable_lsn_ moved, or failure
  std::shared_ptr<Segment> current_ STRATA_GUARDED_BY(mu_);
  std::deque<std::pair<uint64_t, std::string>> finished_;  // older segments: first LSN, path
  std::vector<PendingWrite> pending_ STRATA_GUARDED_BY(mu_);
  uint64_t pending_bytes_ STRATA_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point pending_since_ STRATA_GUARDED_BY(mu_);
  uint64_t next_lsn_ STRATA_GUARDED_BY(mu_) = 1;
  uint64_t durable_lsn_ STRATA_GUARDED_BY(mu_) = 0;
  bool group_marked_ STRATA_GUARDED_BY(mu_) = false;  // the pending group begins with its mark
  // kBatch's early end (see FlushLoop).
  uint64_t pending_records_ STRATA_GUARDED_BY(mu_) = 0;  // records of the pending group
  uint64_t pending_waiters_ STRATA_GUARDED_BY(mu_) = 0;  // threads waiting for one of them
  uint64_t handed_out_lsn_ STRATA_GUARDED_BY(mu_) = 0;   // the last record handed to a write-out
  bool flush_requested_ STRATA_GUARDED_BY(mu_) = false;
  // A write-out is in progress (the flusher's, or in kNone a committer's):
  // one at a time, so groups reach the disk in order.
  bool writing_ STRATA_GUARDED_BY(mu_) = false;
  std::optional<Status> failure_ STRATA_GUARDED_BY(mu_);
  bool stop_ STRATA_GUARDED_BY(mu_) = false;
  uint64_t syncs_ STRATA_GUARDED_BY(mu_) = 0;
  uint64_t records_ STRATA_GUARDED_BY(mu_) = 0;
  uint64_t bytes_ STRATA_GUARDED_BY(mu_) = 0;
  LogHistograms histograms_ STRATA_GUARDED_BY(mu_);
  std::thread flusher_;
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_WAL_WRITER_H_
