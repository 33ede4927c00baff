#include "cluster/change_merger.h"

#include <algorithm>

namespace strata::cluster {

ChangeMerger::ChangeMerger(size_t shards, Timestamp start)
    : resolved_(shards, start), released_(start) {}

void ChangeMerger::Add(const std::vector<Change>& changes,
                       const std::vector<std::optional<Change>>& previous) {
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& change = changes[i];
    if (change.timestamp <= released_) {
      ++late_;
      continue;
    }
    pending_.try_emplace({change.timestamp.value(), change.key},
                         Pending{change, i < previous.size() ? previous[i] : std::nullopt});
  }
}

void ChangeMerger::Resolve(size_t shard, Timestamp resolved) {
  resolved_[shard] = std::max(resolved_[shard], resolved);
}

Timestamp ChangeMerger::frontier() const {
  return *std::min_element(resolved_.begin(), resolved_.end());
}

std::vector<Change> ChangeMerger::Release(std::vector<std::optional<Change>>* previous) {
  const Timestamp up_to = frontier();
  std::vector<Change> out;
  auto it = pending_.begin();
  for (; it != pending_.end() && Timestamp(it->first.first) <= up_to; ++it) {
    out.push_back(std::move(it->second.change));
    if (previous != nullptr) previous->push_back(std::move(it->second.previous));
  }
  pending_.erase(pending_.begin(), it);
  released_ = std::max(released_, up_to);
  return out;
}

}  // namespace strata::cluster
