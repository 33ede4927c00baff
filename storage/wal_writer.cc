#include "storage/wal_writer.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/thread_name.h"
#include "storage/coding.h"

namespace strata::storage {

namespace {

// Segments grow by this much at a time (never more than segment_bytes).
constexpr uint64_t kAllocationChunk = uint64_t{4} << 20;
// kBatch: a group this big is written without waiting out the delay.
constexpr uint64_t kMaxGroupBytes = uint64_t{4} << 20;
constexpr size_t kMaxVarint = 10;

}  // namespace

WalWriter::WalWriter(std::string dir, WalOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {}

WalWriter::~WalWriter() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  work_cv_.NotifyAll();
  if (flusher_.joinable()) flusher_.join();
}

Status WalWriter::Start(uint64_t next_lsn, std::vector<uint64_t> existing) {
  MutexLock lock(mu_);
  std::sort(existing.begin(), existing.end());
  for (uint64_t first : existing) {
    if (first != next_lsn) finished_.emplace_back(first, JoinPath(dir_, SegmentFileName(first)));
  }
  next_lsn_ = next_lsn;
  durable_lsn_ = next_lsn - 1;
  handed_out_lsn_ = next_lsn - 1;
  if (Status s = OpenSegmentLocked(next_lsn); !s.ok()) return s;
  flusher_ = std::thread([this] {
    NameThisThread("strata-wal-sync");
    FlushLoop();
  });
  return Status::Ok();
}

Status WalWriter::OpenSegmentLocked(uint64_t first_lsn) {
  auto segment = std::make_shared<Segment>();
  segment->path = JoinPath(dir_, SegmentFileName(first_lsn));
  segment->first_lsn = first_lsn;
  // O_TRUNC: a file of this name can only be an empty segment a crash left
  // behind (recovery found no record in it, or next_lsn would be past it).
  Result<File> file = OpenFile(segment->path, O_WRONLY | O_CREAT | O_TRUNC);
  if (!file.ok()) return file.status();
  segment->file = std::move(*file);
  // On failure the new file goes again, so it never sits among the segments
  // as an empty one (the next roll may start at another LSN).
  auto abandon = [&](Status cause) {
    (void)RemoveFile(segment->path);
    return cause;
  };
  if (Status s = SyncDir(dir_); !s.ok()) return abandon(s);
  std::shared_ptr<Segment> previous = std::move(current_);
  current_ = segment;
  std::string header;
  EncodeSegmentHeader(first_lsn, &header);
  if (Status s = ReserveSpaceLocked(header.size()); !s.ok()) {
    current_ = std::move(previous);
    return abandon(s);
  }
  if (previous != nullptr) finished_.emplace_back(previous->first_lsn, previous->path);
  if (pending_.empty()) pending_since_ = std::chrono::steady_clock::now();
  pending_.push_back({current_, 0, std::move(header)});
  current_->end = kSegmentHeaderBytes;
  // The header is pending work too: a flusher asleep on an empty queue must
  // see it, or the records appended behind it would wait forever.
  work_cv_.NotifyOne();
  return Status::Ok();
}

Status WalWriter::ReserveSpaceLocked(uint64_t bytes) {
  Segment& seg = *current_;
  if (seg.end + bytes <= seg.allocated) return Status::Ok();
  uint64_t want = std::max(seg.end + bytes, seg.allocated + kAllocationChunk);
  want = std::max(seg.end + bytes, std::min(want, options_.segment_bytes));
  int rc = ::fallocate(seg.file.fd(), 0, static_cast<off_t>(seg.allocated),
                       static_cast<off_t>(want - seg.allocated));
  if (rc != 0 && errno != EOPNOTSUPP) {
    // Refused before anything is visible: a definite failure, and not a
    // fatal one (the next write tries again, e.g. once space is freed).
    return ErrnoStatus("cannot grow the write-ahead log segment", seg.path, errno);
  }
  seg.allocated = want;  // on a file system without fallocate, writes allocate
  return Status::Ok();
}

Result<uint64_t> WalWriter::Append(RecordType type, size_t max_payload,
                                   const std::function<void(std::string*)>& encode) {
  if (max_payload > kMaxRecordPayload) {
    // One record per commit keeps a commit atomic on disk; past this size
    // recovery could not tell a record from a damaged length.
    return Status::InvalidArgument("the write is too large for one log record (about " +
                                   std::to_string(max_payload) + " bytes; the limit is " +
                                   std::to_string(kMaxRecordPayload) + ")");
  }
  UniqueLock lock(mu_);
  if (failure_) return Status::Unavailable(failure_->message());
  if (current_ == nullptr) return Status::Unavailable("the write-ahead log is not open");
  const bool was_idle = pending_.empty();
  const uint64_t max_size = AlignedRecordSize(max_payload) + AlignedRecordSize(kMaxVarint);
  if (current_->end + max_size > options_.segment_bytes && current_->end > kSegmentHeaderBytes) {
    if (Status s = OpenSegmentLocked(next_lsn_); !s.ok()) return s;
  }
  if (Status s = ReserveSpaceLocked(max_size); !s.ok()) return s;

  if (!group_marked_) {
    // The first record of a flush group says how far the log was durable
    // when the group began: recovery's evidence (see wal_reader.h).
    const uint64_t durable = durable_lsn_;
    EncodeLocked(RecordType::kDurableMark, [&](std::string* out) { PutVarint(out, durable); });
    group_marked_ = true;
  }
  const uint64_t lsn = EncodeLocked(type, encode);
  ++pending_records_;
  // A busy flusher looks at the queue again before it sleeps, so only the
  // first record of a group needs to wake it (a wake-up per record costs a
  // context switch per write); in kBatch a full group cuts the delay short.
  const bool wake = was_idle || pending_bytes_ >= kMaxGroupBytes;
  lock.unlock();
  if (wake) work_cv_.NotifyOne();
  return lsn;
}

uint64_t WalWriter::EncodeLocked(RecordType type, const std::function<void(std::string*)>& encode) {
  if (pending_.empty() || pending_.back().segment != current_) {
    if (pending_.empty()) pending_since_ = std::chrono::steady_clock::now();
    pending_.push_back({current_, current_->end, std::string()});
  }
  std::string& out = pending_.back().bytes;
  const size_t start = out.size();
  const uint64_t lsn = next_lsn_++;
  out.append(kRecordHeaderBytes, '\0');
  encode(&out);
  const size_t payload = out.size() - start - kRecordHeaderBytes;
  EncodeFixed32(out.data() + start + 8, static_cast<uint32_t>(payload));
  out[start + 12] = static_cast<char>(type);
  EncodeFixed64(out.data() + start + 16, lsn);
  EncodeFixed64(out.data() + start,
                Checksum(std::string_view(out).substr(start + 8, 16 + payload)));
  out.append(AlignedRecordSize(payload) - (out.size() - start), '\0');
  const uint64_t size = out.size() - start;
  current_->end += size;
  pending_bytes_ += size;
  bytes_ += size;
  ++records_;
  return lsn;
}

Result<uint64_t> WalWriter::AppendWrites(Timestamp timestamp, std::span<const LoggedWrite> writes) {
  size_t bound = 2 * kMaxVarint;
  for (const LoggedWrite& w : writes) {
    bound += 1 + 3 * kMaxVarint + w.key.size() + (w.value ? w.value->size() : 0);
  }
  return Append(RecordType::kWrites, bound, [&](std::string* out) {
    PutVarint(out, timestamp.value());
    PutVarint(out, writes.size());
    for (const LoggedWrite& w : writes) {
      out->push_back(w.value ? 1 : 0);
      PutBytes(out, w.key);
      PutVarint(out, w.version);
      if (w.value) PutBytes(out, *w.value);
    }
  });
}

Result<uint64_t> WalWriter::AppendHorizon(Timestamp horizon) {
  return Append(RecordType::kHorizon, kMaxVarint,
                [&](std::string* out) { PutVarint(out, horizon.value()); });
}

Result<uint64_t> WalWriter::AppendReserve(uint64_t through) {
  return Append(RecordType::kReserve, kMaxVarint,
                [&](std::string* out) { PutVarint(out, through); });
}

Status WalWriter::AwaitDurable(uint64_t lsn) {
  if (!options_.wait_for_durability) return Status::Ok();
  return WaitDurable(lsn);
}

Status WalWriter::WaitDurable(uint64_t lsn) {
  UniqueLock lock(mu_);
  if (lsn > handed_out_lsn_ && !failure_) {
    // A writer of the pending group is waiting: once all of them are, no
    // one else is about to join, and kBatch stops waiting for more.
    ++pending_waiters_;
    if (pending_waiters_ >= pending_records_) work_cv_.NotifyOne();
  }
  while (durable_lsn_ < lsn && !failure_) {
    if (options_.sync == SyncMode::kNone && !writing_ && !pending_.empty()) {
      // Nothing to fsync: handing the group to the flusher and waiting to
      // be woken would cost more than writing it here (two thread wake-ups
      // per commit). Whoever writes a group sets writing_, so groups still
      // reach the disk, and durable_lsn_ moves, in order.
      WriteGroup();
    } else {
      durable_cv_.Wait(lock);
    }
  }
  if (durable_lsn_ >= lsn) return Status::Ok();
  return Status::IoError(
      "the change was applied but its write-ahead log record could not be made durable, so it "
      "may or may not survive a restart: " +
      failure_->message());
}

void WalWriter::Flush() {
  {
    MutexLock lock(mu_);
    if (pending_.empty()) return;
    flush_requested_ = true;
  }
  work_cv_.NotifyOne();
}

uint64_t WalWriter::last_appended_lsn() const {
  MutexLock lock(mu_);
  return next_lsn_ - 1;
}

uint64_t WalWriter::durable_lsn() const {
  MutexLock lock(mu_);
  return durable_lsn_;
}

Status WalWriter::health() const {
  MutexLock lock(mu_);
  return failure_ ? *failure_ : Status::Ok();
}

uint64_t WalWriter::bytes_appended() const {
  MutexLock lock(mu_);
  return bytes_;
}

WalStats WalWriter::stats() const {
  MutexLock lock(mu_);
  WalStats s;
  s.appended_lsn = next_lsn_ - 1;
  s.durable_lsn = durable_lsn_;
  s.syncs = syncs_;
  s.records = records_;
  s.bytes = bytes_;
  if (failure_) s.failure = failure_->message();
  s.histograms = histograms_;
  return s;
}

Result<uint64_t> WalWriter::Roll() {
  MutexLock lock(mu_);
  if (failure_) return Status::Unavailable(failure_->message());
  if (current_->end > kSegmentHeaderBytes) {
    if (Status s = OpenSegmentLocked(next_lsn_); !s.ok()) return s;
  }
  return current_->first_lsn;
}

Status WalWriter::RemoveSegmentsBefore(uint64_t lsn) {
  std::vector<std::string> doomed;
  {
    MutexLock lock(mu_);
    // A segment holds records up to the next segment's first LSN - 1.
    while (!finished_.empty()) {
      const uint64_t next_first = finished_.size() > 1 ? finished_[1].first : current_->first_lsn;
      if (next_first > lsn) break;
      doomed.push_back(finished_.front().second);
      finished_.pop_front();
    }
  }
  for (const std::string& path : doomed) {
    if (Status s = RemoveFile(path); !s.ok()) return s;
  }
  return doomed.empty() ? Status::Ok() : SyncDir(dir_);
}

void WalWriter::FailLocked(const Status& cause) {
  failure_ = Status::Unavailable("the write-ahead log failed (" + cause.message() +
                                 "); no more writes are accepted until the store is reopened "
                                 "(a node: restarted)");
  pending_.clear();
  pending_bytes_ = 0;
}

Status WalWriter::WriteOut(const std::vector<PendingWrite>& batch, double* sync_seconds) {
  *sync_seconds = 0;
  for (const PendingWrite& w : batch) {
    if (Status s = WriteAt(w.segment->file, w.segment->path, w.bytes, w.offset); !s.ok()) return s;
  }
  if (options_.sync == SyncMode::kNone) return Status::Ok();
  const auto start = std::chrono::steady_clock::now();
  const Segment* synced = nullptr;
  for (const PendingWrite& w : batch) {
    if (w.segment.get() == synced) continue;
    if (Status s = DataSync(w.segment->file, w.segment->path); !s.ok()) return s;
    synced = w.segment.get();
  }
  *sync_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Status::Ok();
}

namespace {

template <size_t N, typename Bound, typename T>
void Observe(std::array<uint64_t, N>& counts, Bound bound, T value) {
  size_t i = 0;
  while (i + 1 < N && value > bound(i)) ++i;
  ++counts[i];
}

}  // namespace

void WalWriter::WriteGroup() {
  std::vector<PendingWrite> batch;
  batch.swap(pending_);
  pending_bytes_ = 0;
  group_marked_ = false;
  const uint64_t group_records = pending_records_;
  pending_records_ = 0;
  pending_waiters_ = 0;
  flush_requested_ = false;
  writing_ = true;
  const uint64_t last = handed_out_lsn_ = next_lsn_ - 1;
  mu_.unlock();
  double sync_seconds = 0;
  Status written = WriteOut(batch, &sync_seconds);
  mu_.lock();
  writing_ = false;
  if (written.ok()) {
    durable_lsn_ = std::max(durable_lsn_, last);
    ++syncs_;
    if (options_.sync != SyncMode::kNone) {
      Observe(histograms_.sync_counts, LogHistograms::SyncBound, sync_seconds);
      histograms_.sync_seconds_sum += sync_seconds;
    }
    Observe(histograms_.group_counts, LogHistograms::GroupBound, group_records);
    histograms_.group_records_sum += group_records;
  } else if (!failure_) {
    FailLocked(written);
  }
  mu_.unlock();
  durable_cv_.NotifyAll();
  work_cv_.NotifyOne();  // a flusher held back by this write-out may go on
  if (options_.on_durable) options_.on_durable();
  mu_.lock();
}

void WalWriter::FlushLoop() {
  UniqueLock lock(mu_);
  for (;;) {
    work_cv_.Wait(lock, [&]() STRATA_REQUIRES(mu_) {
      return (stop_ && !writing_) || (!pending_.empty() && !writing_);
    });
    if (pending_.empty()) return;  // stopping, nothing left
    if (options_.sync != SyncMode::kAlways && !stop_) {
      // Let more commits join this fsync, but never past the delay. kNone
      // groups the same way: it has no fsync to share, but a write-out and
      // a wake-up per record would cost more than the records.
      // Cut short when the group is big, when the caller says nothing more
      // is coming (Flush), or when every writer in it is already waiting
      // (closed-loop writers: waiting longer only adds latency).
      work_cv_.WaitUntil(lock, pending_since_ + options_.batch_delay, [&]() STRATA_REQUIRES(mu_) {
        return stop_ || flush_requested_ || pending_bytes_ >= kMaxGroupBytes ||
               (pending_records_ > 0 && pending_waiters_ >= pending_records_);
      });
    }
    if (pending_.empty() || writing_) continue;  // a committer wrote it meanwhile (kNone)
    WriteGroup();
    if (failure_ && stop_) return;
  }
}

}  // namespace strata::storage
