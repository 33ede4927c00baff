#include "strata/timestamp_oracle.h"

namespace strata {

Status LocalOracle::Exhausted() {
  return Status::Unavailable(
      "no timestamps are left: the highest timestamp (2^63-1) has already been written or "
      "issued, so no transaction can start or commit above it");
}

Result<Timestamp> LocalOracle::Next() {
  uint64_t last = last_.load(std::memory_order_relaxed);
  do {
    if (last >= Timestamp::kMaxValue) return Exhausted();
  } while (!last_.compare_exchange_weak(last, last + 1, std::memory_order_acq_rel));
  return Timestamp(last + 1);
}

void LocalOracle::Observe(Timestamp seen) {
  uint64_t last = last_.load(std::memory_order_relaxed);
  while (last < seen.value() &&
         !last_.compare_exchange_weak(last, seen.value(), std::memory_order_acq_rel)) {
  }
}

Timestamp LocalOracle::Last() const { return Timestamp(last_.load(std::memory_order_acquire)); }

}  // namespace strata
