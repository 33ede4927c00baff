// ChangeMerger: the changes of several shards as one stream in timestamp
// order, released only up to the frontier every shard has resolved.
//
// The building block of a watch over the whole key space (CockroachDB's
// rangefeeds with resolved timestamps, TiKV's resolved-ts): each shard
// reports the changes committed in the watched range, in any order and
// possibly more than once, and from time to time its resolved timestamp
// (Participant::SafeTime: no change at or below it can still appear
// there). A change is released once every shard has resolved past its
// timestamp. So what a watch built on it delivers is
//  - ordered: by (timestamp, key), across shards;
//  - unique: a change reported twice is released once;
//  - atomic: every change of one commit timestamp, on every shard, comes
//    out of the same Release();
//  - complete up to the frontier, which is also the revision a progress
//    notification can name.
// Memory: changes above the frontier wait here; a caller bounds them by
// how much it asks a shard that is ahead (pending()).
//
// Not thread-safe.
#ifndef STRATA_CLUSTER_CHANGE_MERGER_H_
#define STRATA_CLUSTER_CHANGE_MERGER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/timestamp.h"

namespace strata::cluster {

class ChangeMerger final {
 public:
  // Merges `shards` shards' changes after `start` (nothing at or below it
  // is released).
  ChangeMerger(size_t shards, Timestamp start);

  // Changes committed on some shard, with each one's previous version
  // (`previous`: empty, or one per change) to be released beside it. One at
  // or below the frontier already released is dropped and counted (late():
  // a shard that resolved past a change it had not reported yet broke its
  // promise).
  void Add(const std::vector<Change>& changes,
           const std::vector<std::optional<Change>>& previous = {});
  // `shard` has resolved up to `resolved`; a lower value than before is
  // ignored (resolved timestamps never move back).
  void Resolve(size_t shard, Timestamp resolved);

  // min over the shards of what each resolved.
  Timestamp frontier() const;
  // Every change at or below the frontier not released yet, in
  // (timestamp, key) order; with `previous`, their previous versions too,
  // one per change (nullopt where none was added).
  std::vector<Change> Release(std::vector<std::optional<Change>>* previous = nullptr);

  size_t pending() const { return pending_.size(); }
  uint64_t late() const { return late_; }

 private:
  std::vector<Timestamp> resolved_;  // per shard
  Timestamp released_;               // everything at or below it is out
  struct Pending {
    Change change;
    std::optional<Change> previous;
  };
  std::map<std::pair<uint64_t, std::string>, Pending> pending_;
  uint64_t late_ = 0;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_CHANGE_MERGER_H_
