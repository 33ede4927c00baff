#include "storage/durable_oracle.h"

#include <algorithm>

namespace strata::storage {

DurableOracle::DurableOracle(WalWriter* wal, uint64_t recovered_through)
    : wal_(wal),
      last_(recovered_through),
      usable_through_(recovered_through),
      reserved_appended_(recovered_through) {}

Result<Timestamp> DurableOracle::Next() {
  uint64_t last = last_.load(std::memory_order_relaxed);
  for (;;) {
    if (last >= Timestamp::kMaxValue) return LocalOracle::Exhausted();
    if (last + 1 > usable_through_.load(std::memory_order_acquire)) {
      if (Status s = Reserve(last + 1); !s.ok()) return s;
      last = last_.load(std::memory_order_relaxed);
      continue;
    }
    if (last_.compare_exchange_weak(last, last + 1, std::memory_order_acq_rel)) {
      return Timestamp(last + 1);
    }
  }
}

Status DurableOracle::Reserve(uint64_t needed) {
  MutexLock lock(reserve_mutex_);
  if (usable_through_.load(std::memory_order_relaxed) >= needed) return Status::Ok();
  const uint64_t through = needed + std::min(kWindow, Timestamp::kMaxValue - needed);
  Result<uint64_t> lsn = wal_->AppendReserve(through);
  if (!lsn.ok()) return lsn.status();
  reserved_appended_ = through;
  // A node holds every reply until the log is durable past it, so there the
  // record only needs to be appended; a library caller waits here.
  if (Status s = wal_->AwaitDurable(*lsn); !s.ok()) return s;
  usable_through_.store(through, std::memory_order_release);
  return Status::Ok();
}

void DurableOracle::Observe(Timestamp seen) {
  uint64_t last = last_.load(std::memory_order_relaxed);
  while (last < seen.value() &&
         !last_.compare_exchange_weak(last, seen.value(), std::memory_order_acq_rel)) {
  }
}

Timestamp DurableOracle::Last() const { return Timestamp(last_.load(std::memory_order_acquire)); }

uint64_t DurableOracle::reserved_through() const {
  MutexLock lock(reserve_mutex_);
  return reserved_appended_;
}

}  // namespace strata::storage
