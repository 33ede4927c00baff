#include "cluster/change_merger.h"

#include <algorithm>

namespace strata::cluster {

ChangeMerger::ChangeMerger(size_t shards, Timestamp start)
    : resolved_(shards, start), released_(start) {}

void ChangeMerger::Add(const std::vector<Change>& changes) {
  for (const Change& change : changes) {
    if (change.timestamp <= released_) {
      ++late_;
      continue;
    }
    pending_.try_emplace({change.timestamp.value(), change.key}, change);
  }
}

void ChangeMerger::Resolve(size_t shard, Timestamp resolved) {
  resolved_[shard] = std::max(resolved_[shard], resolved);
}

Timestamp ChangeMerger::frontier() const {
  return *std::min_element(resolved_.begin(), resolved_.end());
}

std::vector<Change> ChangeMerger::Release() {
  const Timestamp up_to = frontier();
  std::vector<Change> out;
  auto it = pending_.begin();
  for (; it != pending_.end() && Timestamp(it->first.first) <= up_to; ++it) {
    out.push_back(std::move(it->second));
  }
  pending_.erase(pending_.begin(), it);
  released_ = std::max(released_, up_to);
  return out;
}

}  // namespace strata::cluster
