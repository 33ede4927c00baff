#include "node/txn_table.h"

#include <algorithm>

namespace strata::node {

void TxnTable::Add(Transaction txn, Clock::time_point now) {
  uint64_t id = txn.id();
  open_.insert_or_assign(id, Open{std::move(txn), now});
}

Transaction* TxnTable::Touch(uint64_t id, Clock::time_point now) {
  auto it = open_.find(id);
  if (it == open_.end()) return nullptr;
  it->second.last_used = now;
  return &it->second.txn;
}

void TxnTable::Remove(uint64_t id) { open_.erase(id); }

TxnTable::Clock::time_point TxnTable::ExpireIdle(Clock::time_point now) {
  // No deadline can come before the earliest one found by the last scan:
  // using a transaction only moves its deadline later, and a new one's is a
  // whole timeout away. So the scan runs only when something may be due.
  if (now < next_deadline_) return next_deadline_;
  Clock::time_point next = now + idle_timeout_;
  for (auto it = open_.begin(); it != open_.end();) {
    Clock::time_point deadline = it->second.last_used + idle_timeout_;
    if (deadline <= now) {
      it = open_.erase(it);  // the Transaction's destructor aborts it
      ++expired_;
    } else {
      next = std::min(next, deadline);
      ++it;
    }
  }
  next_deadline_ = next;
  return next;
}

}  // namespace strata::node
