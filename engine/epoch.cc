#include "engine/epoch.h"

#include <algorithm>
#include <functional>
#include <thread>

namespace strata::engine {

EpochDomain::ReadGuard::ReadGuard(const EpochDomain& domain) {
  // Start probing at a slot derived from the thread, so concurrent readers on
  // different threads usually land on different cache lines.
  size_t index = std::hash<std::thread::id>{}(std::this_thread::get_id()) % kSlots;
  for (;;) {
    std::atomic<uint64_t>& slot = domain.slots_[index].pinned_epoch;
    uint64_t expected = 0;
    uint64_t epoch = domain.epoch_.load(std::memory_order_seq_cst);
    // seq_cst: the pin must be visible to a reclaimer before this reader
    // loads any pointer of the shared structures.
    if (slot.compare_exchange_strong(expected, epoch, std::memory_order_seq_cst)) {
      slot_ = &slot;
      return;
    }
    index = (index + 1) % kSlots;
    if (index == 0) std::this_thread::yield();  // all slots busy: extremely rare
  }
}

EpochDomain::ReadGuard::~ReadGuard() { slot_->store(0, std::memory_order_release); }

EpochDomain::~EpochDomain() {
  for (const Retired& r : retired_) r.deleter(r.object);
}

void EpochDomain::Retire(void* object, void (*deleter)(void*)) {
  MutexLock lock(mutex_);
  retired_.push_back({object, deleter, epoch_.load(std::memory_order_seq_cst)});
  if (retired_.size() >= reclaim_threshold_) ReclaimLocked();
}

size_t EpochDomain::pending() const {
  MutexLock lock(mutex_);
  return retired_.size();
}

void EpochDomain::ReclaimLocked() {
  // Readers pinned from now on see the new epoch; anything retired before
  // this point carries an older stamp.
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  uint64_t oldest_pinned = UINT64_MAX;
  for (const Slot& s : slots_) {
    uint64_t e = s.pinned_epoch.load(std::memory_order_seq_cst);
    if (e != 0) oldest_pinned = std::min(oldest_pinned, e);
  }
  // A reader pinned at epoch e may hold anything retired at epoch >= e.
  auto still_needed = [&](const Retired& r) { return r.epoch >= oldest_pinned; };
  auto keep_end = std::stable_partition(retired_.begin(), retired_.end(), still_needed);
  for (auto it = keep_end; it != retired_.end(); ++it) it->deleter(it->object);
  retired_.erase(keep_end, retired_.end());
  // If readers hold many objects back, reclaim less often rather than
  // rescanning the same list on every retire (keeps Retire amortized O(1)).
  reclaim_threshold_ = std::max<size_t>(64, retired_.size() * 2);
}

}  // namespace strata::engine
