#include "service/key_lanes.h"

#include <algorithm>
#include <utility>

namespace strata::service {

void KeyLanes::Enter(std::vector<std::string> keys, std::function<void()> start) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const uint64_t id = next_id_++;
  for (const std::string& key : keys) queues_[key].push_back(id);
  waiting_.emplace(id, Write{std::move(keys), std::move(start)});
  StartIfFirst(id);
}

void KeyLanes::StartIfFirst(uint64_t id) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;
  for (const std::string& key : it->second.keys) {
    if (queues_[key].front() != id) return;
  }
  std::function<void()> start = std::move(it->second.start);
  waiting_.erase(it);
  start();
}

void KeyLanes::Leave(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  // The write leaving is first in each of its queues; those that become
  // first next may start (in arrival order).
  std::vector<uint64_t> next;
  for (const std::string& key : keys) {
    auto q = queues_.find(key);
    if (q == queues_.end()) continue;
    q->second.pop_front();
    if (q->second.empty()) {
      queues_.erase(q);
    } else {
      next.push_back(q->second.front());
    }
  }
  std::sort(next.begin(), next.end());
  next.erase(std::unique(next.begin(), next.end()), next.end());
  for (uint64_t id : next) StartIfFirst(id);
}

}  // namespace strata::service
