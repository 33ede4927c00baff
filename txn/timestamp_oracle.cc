#include "strata/timestamp_oracle.h"

namespace strata {

Timestamp LocalOracle::Next() {
  return Timestamp(last_.fetch_add(1, std::memory_order_acq_rel) + 1);
}

void LocalOracle::Observe(Timestamp seen) {
  uint64_t last = last_.load(std::memory_order_relaxed);
  while (last < seen.value() &&
         !last_.compare_exchange_weak(last, seen.value(), std::memory_order_acq_rel)) {
  }
}

Timestamp LocalOracle::Last() const { return Timestamp(last_.load(std::memory_order_acquire)); }

}  // namespace strata
