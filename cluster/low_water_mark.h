// LowWaterMark: the cluster-wide garbage-collection horizon, as one node
// learns it.
//
// Each node reports the oldest snapshot it still uses (open transactions,
// one-shot requests, and its shard's pending intents, which may still
// commit just above their prepare timestamps) to every other node, often.
// The mark is the minimum of this node's own and every other node's last
// report; until every node has reported once it is unknown, and nothing may
// be collected.
#ifndef STRATA_CLUSTER_LOW_WATER_MARK_H_
#define STRATA_CLUSTER_LOW_WATER_MARK_H_

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "strata/timestamp.h"

namespace strata::cluster {

class LowWaterMark final {
 public:
  // `others`: every other node's id.
  explicit LowWaterMark(std::vector<std::string> others) : others_(std::move(others)) {}

  // A node joined: the mark is unknown again until it reports (it may
  // hold a snapshot no other does). One that left is no longer waited for.
  void AddNode(const std::string& node);
  void RemoveNode(std::string_view node);

  // A node's report; reports from nodes not in `others` are ignored.
  void Report(std::string_view node, Timestamp oldest_snapshot);

  // The mark, given this node's own oldest snapshot (nullopt: not every
  // node has reported yet).
  std::optional<Timestamp> Mark(Timestamp own) const;
  // Who holds `mark`: `self` if its own oldest snapshot is the mark and it
  // holds one, else the first node (by id) whose report is the mark, else
  // `self`.
  std::string Holder(Timestamp mark, const std::string& self, bool self_holds) const;

 private:
  std::vector<std::string> others_;
  std::unordered_map<std::string, Timestamp> reported_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_LOW_WATER_MARK_H_
