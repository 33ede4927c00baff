// HybridLogicalClock: the cluster's timestamp oracle (Kulkarni et al.,
// "Logical Physical Clocks", 2014).
//
// A timestamp is (physical milliseconds << 16) | logical counter, in the
// same 64-bit Timestamp every other layer uses, so the engine and the
// transactions do not change. Each node hands out timestamps above both its
// own wall clock and every timestamp it has seen from other nodes (carried
// on every node-to-node message), so causality is never violated: a
// message's receiver always timestamps after its sender. Timestamps stay
// close to wall-clock time (within the clocks' offset), which is what lets
// a snapshot read wait for a shard's safe time instead of forever.
//
// The single-node store keeps using LocalOracle; this is the cluster case.
// Thread-safe.
#ifndef STRATA_CLUSTER_HYBRID_CLOCK_H_
#define STRATA_CLUSTER_HYBRID_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "strata/status.h"
#include "strata/timestamp.h"
#include "strata/timestamp_oracle.h"

namespace strata::cluster {

struct HybridClockOptions {
  // A remote timestamp further ahead of our wall clock than this is refused
  // by Update(): a clock that wrong would drag every node's timestamps (and
  // safe time) into the future.
  std::chrono::milliseconds max_offset{500};
  // In a cluster, each node hands out only timestamps whose low
  // kNodeBits bits are its index, so no two nodes ever hand out the same
  // one: a commit timestamp names one commit, cluster-wide.
  std::optional<uint32_t> node_index;
};

class HybridLogicalClock final : public TimestampOracle {
 public:
  static constexpr int kLogicalBits = 16;
  // Of the logical bits, how many name the node (HybridClockOptions::node_index).
  static constexpr int kNodeBits = 5;
  static constexpr uint32_t kMaxNodes = 1u << kNodeBits;

  // Milliseconds since the Unix epoch; injectable so tests control time.
  using PhysicalClock = std::function<uint64_t()>;
  static uint64_t SystemMillis();
  static uint64_t SystemMicros();  // the same clock, finer

  explicit HybridLogicalClock(PhysicalClock now = SystemMillis, HybridClockOptions options = {});

  // A timestamp above everything issued or seen, and at least the wall clock.
  Result<Timestamp> Next() override;
  // Takes in a timestamp seen elsewhere (no check).
  void Observe(Timestamp seen) override;
  Timestamp Last() const override;

  // The receive rule: Observe(remote), unless the remote physical time is
  // more than max_offset ahead of our wall clock (kUnavailable, naming both).
  Status Update(Timestamp remote);

  static Timestamp Make(uint64_t physical_ms, uint64_t logical) {
    return Timestamp((physical_ms << kLogicalBits) | logical);
  }
  static uint64_t PhysicalMillis(Timestamp t) { return t.value() >> kLogicalBits; }
  static uint64_t Logical(Timestamp t) { return t.value() & ((uint64_t{1} << kLogicalBits) - 1); }

 private:
  const PhysicalClock now_;
  const HybridClockOptions options_;
  std::atomic<uint64_t> last_{0};
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_HYBRID_CLOCK_H_
