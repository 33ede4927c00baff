#include "cluster/hybrid_clock.h"

#include <algorithm>
#include <string>

namespace strata::cluster {

uint64_t HybridLogicalClock::SystemMillis() { return SystemMicros() / 1000; }

uint64_t HybridLogicalClock::SystemMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

HybridLogicalClock::HybridLogicalClock(PhysicalClock now, HybridClockOptions options)
    : now_(std::move(now)), options_(options) {}

Result<Timestamp> HybridLogicalClock::Next() {
  // Wall clock in timestamp units; a clock past the representable range
  // (year ~4400) counts as exhausted rather than wrapping.
  const uint64_t wall_ms = now_();
  const uint64_t wall = wall_ms > (Timestamp::kMaxValue >> kLogicalBits) ? Timestamp::kMaxValue
                                                                         : wall_ms << kLogicalBits;
  uint64_t last = last_.load(std::memory_order_relaxed);
  for (;;) {
    if (last >= Timestamp::kMaxValue) return LocalOracle::Exhausted();
    // Ahead of the wall clock (a burst, or a remote clock seen): count on
    // in the logical part, which carries into the physical one if it must.
    uint64_t next = std::max(last + 1, wall);
    if (options_.node_index) {
      // Round up to this node's residue (see HybridClockOptions).
      constexpr uint64_t kMask = kMaxNodes - 1;
      const uint64_t rounded = (next & ~kMask) | *options_.node_index;
      next = rounded >= next ? rounded : rounded + kMaxNodes;
      if (next > Timestamp::kMaxValue) return LocalOracle::Exhausted();
    }
    if (last_.compare_exchange_weak(last, next, std::memory_order_acq_rel)) return Timestamp(next);
  }
}

void HybridLogicalClock::Observe(Timestamp seen) {
  uint64_t last = last_.load(std::memory_order_relaxed);
  while (last < seen.value() &&
         !last_.compare_exchange_weak(last, seen.value(), std::memory_order_acq_rel)) {
  }
}

Timestamp HybridLogicalClock::Last() const {
  return Timestamp(last_.load(std::memory_order_acquire));
}

Status HybridLogicalClock::Update(Timestamp remote) {
  const uint64_t wall_ms = now_();
  const uint64_t remote_ms = PhysicalMillis(remote);
  if (remote_ms > wall_ms + static_cast<uint64_t>(options_.max_offset.count())) {
    return Status::Unavailable("a remote timestamp is " + std::to_string(remote_ms - wall_ms) +
                               " ms ahead of this node's clock, more than the maximum offset of " +
                               std::to_string(options_.max_offset.count()) +
                               " ms: refusing it rather than moving time forward");
  }
  Observe(remote);
  return Status::Ok();
}

}  // namespace strata::cluster
