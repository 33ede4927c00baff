#include "service/commit_pipeline.h"

#include <algorithm>
#include <utility>

#include "base/thread_name.h"

namespace strata::service {

CommitPipeline::CommitPipeline(std::optional<DurabilitySource> log, int64_t durable_revision)
    : log_(std::move(log)), visible_revision_(durable_revision) {
  if (log_) {
    thread_ = std::thread([this] {
      NameThisThread("strata-commits");
      Run();
    });
  }
}

CommitPipeline::~CommitPipeline() {
  if (!thread_.joinable()) return;
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  thread_.join();
}

void CommitPipeline::SetEventSink(EventSink sink) { sink_ = std::move(sink); }

void CommitPipeline::Applied(int64_t revision, uint64_t lsn, std::vector<Event> events) {
  if (!log_) {
    visible_revision_.store(revision, std::memory_order_release);
    if (sink_) sink_(revision, std::move(events));
    return;
  }
  {
    MutexLock lock(mu_);
    last_applied_lsn_ = std::max(last_applied_lsn_, lsn);
    pending_.push_back({revision, lsn, std::move(events)});
    wake_ = true;
  }
  cv_.NotifyOne();
}

void CommitPipeline::WhenDurable(std::function<void(bool)> done, uint64_t lsn) {
  if (!log_) {
    done(true);
    return;
  }
  {
    MutexLock lock(mu_);
    lsn = std::max(lsn, last_applied_lsn_);
    // Waiters arrive nearly in lsn order; keep the deque sorted so the
    // thread pops from the front.
    auto at = waiters_.end();
    while (at != waiters_.begin() && std::prev(at)->lsn > lsn) --at;
    waiters_.insert(at, Waiter{lsn, std::move(done)});
    wake_ = true;
  }
  cv_.NotifyOne();
}

void CommitPipeline::Wake() {
  {
    MutexLock lock(mu_);
    wake_ = true;
  }
  cv_.NotifyOne();
}

void CommitPipeline::Run() {
  UniqueLock lock(mu_);
  for (;;) {
    // Woken by new work (Applied, WhenDurable) and by the log's progress;
    // a record not yet durable is looked at again at the log's next Wake.
    cv_.Wait(lock, [&]() STRATA_REQUIRES(mu_) { return stop_ || wake_; });
    wake_ = false;
    const uint64_t durable = log_->durable_lsn();
    std::vector<PendingRevision> ready;
    while (!pending_.empty() && pending_.front().lsn <= durable) {
      ready.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    std::vector<std::function<void(bool)>> acknowledged;
    while (!waiters_.empty() && waiters_.front().lsn <= durable) {
      acknowledged.push_back(std::move(waiters_.front().done));
      waiters_.pop_front();
    }
    std::vector<std::function<void(bool)>> failed;
    if (stop_ || log_->failure().has_value()) {
      for (auto& w : waiters_) failed.push_back(std::move(w.done));
      waiters_.clear();
    }
    const bool stopping = stop_;
    lock.unlock();
    // Visible first, then acknowledged: a client that saw its write
    // acknowledged reads it back.
    for (auto& r : ready) {
      visible_revision_.store(r.revision, std::memory_order_release);
      if (sink_) sink_(r.revision, std::move(r.events));
    }
    for (auto& done : acknowledged) done(true);
    for (auto& done : failed) done(false);
    if (stopping) return;
    lock.lock();
  }
}

}  // namespace strata::service
