#include "node/gc_scheduler.h"

#include <algorithm>

namespace strata::node {

GcScheduler::GcScheduler(TxnStore* db, uint64_t retention, std::chrono::milliseconds interval,
                         size_t keys_per_step)
    : db_(db), retention_(retention), interval_(interval), keys_per_step_(keys_per_step) {}

GcScheduler::Clock::time_point GcScheduler::RunIfDue(Clock::time_point now) {
  if (now < next_run_) return next_run_;
  MvccStore& store = db_->store();
  std::optional<Timestamp> max_ts = store.max_timestamp();
  if (max_ts && max_ts->value() > retention_) {
    Timestamp wanted(max_ts->value() - retention_);
    if (ceiling_) wanted = std::min(wanted, ceiling_().value_or(Timestamp(0)));
    db_->RaiseHorizon(wanted);
  }
  if (!sweeping_) {
    uint64_t horizon = store.compaction_horizon().value();
    if (horizon == swept_horizon_) {
      next_run_ = now + interval_;
      return next_run_;
    }
    sweeping_ = true;
    sweep_horizon_ = horizon;
  }
  CompactStepResult step = store.CompactStep(keys_per_step_);
  if (step.sweep_finished) {
    sweeping_ = false;
    swept_horizon_ = sweep_horizon_;
    next_run_ = now + interval_;
  } else {
    // Continue at once: the event loop still serves every waiting request
    // between two slices.
    next_run_ = now;
  }
  return next_run_;
}

}  // namespace strata::node
