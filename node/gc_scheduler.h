// GcScheduler: background garbage collection for --gc-retention N.
//
// The horizon follows (highest timestamp seen - N), held back by the oldest
// active transaction. Each run raises it and
// sweeps a bounded number of keys, so collection proceeds in slices between
// requests instead of one long pause. A sweep starts only when the horizon
// has moved since the last one finished: nothing else creates garbage.
#ifndef STRATA_NODE_GC_SCHEDULER_H_
#define STRATA_NODE_GC_SCHEDULER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "strata/txn_store.h"

namespace strata::node {

class GcScheduler final {
 public:
  using Clock = std::chrono::steady_clock;

  GcScheduler(TxnStore* db, uint64_t retention, std::chrono::milliseconds interval,
              size_t keys_per_step);

  // In a cluster: the horizon never rises above what this returns (the
  // cluster's low-water mark; nullopt: unknown, so no rise at all).
  void SetCeiling(std::function<std::optional<Timestamp>()> ceiling) {
    ceiling_ = std::move(ceiling);
  }

  // Runs one slice if it is due; returns when the next one is due.
  Clock::time_point RunIfDue(Clock::time_point now);

 private:
  TxnStore* db_;
  const uint64_t retention_;
  const std::chrono::milliseconds interval_;
  const size_t keys_per_step_;
  Clock::time_point next_run_{};
  bool sweeping_ = false;
  uint64_t sweep_horizon_ = 0;  // the horizon the current sweep enforces
  uint64_t swept_horizon_ = 0;  // the horizon the last finished sweep enforced
  std::function<std::optional<Timestamp>()> ceiling_;
};

}  // namespace strata::node

#endif  // STRATA_NODE_GC_SCHEDULER_H_
