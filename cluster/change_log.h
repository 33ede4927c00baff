// ChangeLog: the changes a shard applied recently, in the order it applied
// them, so that watches read what is new without scanning the store.
//
// Every commit the shard applies (a one-phase commit, or a resolution
// turning intents into versions) is appended with a sequence number. The
// order of application is not timestamp order: a two-phase commit at C may
// be applied after a one-phase commit above C. So a watcher keeps, per
// shard, two things: `after`, the timestamp up to which it has everything
// (the shard's resolved timestamp it last got), and `cursor`, the first
// sequence number it may still need. A read returns the changes of a range
// with timestamps in (after, upto] from the cursor on, sorted by
// (timestamp, key), and the next cursor: the first entry it had to hold
// back (above upto), or the end. So each read costs the entries applied
// since the last, plus those held back.
//
// Bounded by bytes: the oldest entries go first. A reader whose cursor
// points before what is left gets nullopt if anything evicted could be
// one it needs (its timestamp above `after`), and reads the store instead
// (MvccStore::Changes).
//
// A shard that restarts starts a new log, above every sequence number the
// old one handed out, and counts what its store held at start as evicted:
// a reader's cursor from before the restart then points before the new
// log, and it reads the store for what it has not seen. (A cursor past the
// end, which no reader of this log can hold, is read from the store too.)
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_CHANGE_LOG_H_
#define STRATA_CLUSTER_CHANGE_LOG_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/timestamp.h"

namespace strata::cluster {

class ChangeLog final {
 public:
  // `first_seq` numbers the first entry; `before` is the newest commit
  // applied before the log began (held in the store, not here).
  explicit ChangeLog(size_t max_bytes = size_t{16} << 20, uint64_t first_seq = 0,
                     Timestamp before = Timestamp())
      : max_bytes_(max_bytes), first_seq_(first_seq), evicted_max_(before) {}

  // `writes` were applied at `timestamp` (nullopt value: a delete).
  void Append(const std::vector<BatchWrite>& writes, Timestamp timestamp);
  // Called after each Append with its timestamp (a shard wakes the watch
  // reads it holds).
  void SetOnAppend(std::function<void(Timestamp)> on_append) { on_append_ = std::move(on_append); }

  struct Page {
    std::vector<Change> changes;  // (timestamp, key) order
    // Everything in the range with a timestamp in (after, upto] is in
    // `changes`: at most the upto asked for, lower if `limit` cut the page
    // (never inside one timestamp: a commit's changes come together).
    Timestamp upto;
    uint64_t next_cursor = 0;
  };
  // nullopt: something the reader may need was evicted (read the store).
  std::optional<Page> Read(const KeyRange& range, Timestamp after, Timestamp upto, uint64_t cursor,
                           size_t limit) const;

  // Drops every entry and counts what a store restored under the log holds
  // (its newest commit `before`) as evicted, as a restart does: numbering
  // goes on, so a reader's cursor points before the log and it reads the
  // store for what it has not seen.
  void Reset(Timestamp before);

  // The sequence number the next entry gets, and the oldest kept.
  uint64_t end() const { return first_seq_ + entries_.size(); }
  uint64_t begin() const { return first_seq_; }
  size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    Change change;
    size_t bytes;
  };
  const size_t max_bytes_;
  std::function<void(Timestamp)> on_append_;
  std::deque<Entry> entries_;
  uint64_t first_seq_ = 0;
  size_t bytes_ = 0;
  Timestamp evicted_max_;  // the highest timestamp of an evicted entry
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_CHANGE_LOG_H_
