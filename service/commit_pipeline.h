// CommitPipeline: a write becomes visible, and is acknowledged, only once
// it is durable.
//
// The etcd model applies each write transaction to the engine at its
// revision under the writer lock and hands its log record here. Nothing a
// client can observe may be taken back by a crash, so:
//  - reads without a revision read at visible_revision(), the newest
//    revision whose record is durable (a later one is in the engine but not
//    yet promised);
//  - a write's reply waits in WhenDurable() until its record is durable;
//  - watchers get a revision's events once it is durable, in order.
// Waiting happens on the pipeline's own thread, woken by the log as group
// commit makes records durable: no request thread ever waits on an fsync,
// and any number of writes share one. Without a log (an in-memory server)
// everything is durable at once and runs inline.
#ifndef STRATA_SERVICE_COMMIT_PIPELINE_H_
#define STRATA_SERVICE_COMMIT_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "service/kv_types.h"

namespace strata::service {

// What the pipeline needs of a write-ahead log.
struct DurabilitySource {
  // The highest durable log record.
  std::function<uint64_t()> durable_lsn;
  // Set once the log failed for good: why (writes are refused since).
  std::function<std::optional<std::string>()> failure;
};

class CommitPipeline final {
 public:
  using EventSink = std::function<void(int64_t revision, std::vector<Event>&& events)>;

  // `log` nullopt: in memory, everything is durable when applied.
  CommitPipeline(std::optional<DurabilitySource> log, int64_t durable_revision);
  ~CommitPipeline();
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // Where a revision's events go once it is durable (the watch hub). Set
  // before the first write; called on the pipeline's thread (or inline).
  void SetEventSink(EventSink sink);

  // Called by the writer, under its lock, in revision order: revision
  // `revision` was applied with log record `lsn`.
  void Applied(int64_t revision, uint64_t lsn, std::vector<Event> events);
  // Calls done(true) once everything Applied so far is durable and visible,
  // or done(false) if the log failed first. `lsn`: the newest record the
  // caller depends on (0: only what was Applied).
  void WhenDurable(std::function<void(bool durable)> done, uint64_t lsn = 0);
  // The log made progress (or failed): called from the log's thread.
  void Wake();

  int64_t visible_revision() const { return visible_revision_.load(std::memory_order_acquire); }

 private:
  struct PendingRevision {
    int64_t revision;
    uint64_t lsn;
    std::vector<Event> events;
  };
  struct Waiter {
    uint64_t lsn;
    std::function<void(bool)> done;
  };
  void Run();

  const std::optional<DurabilitySource> log_;
  std::atomic<int64_t> visible_revision_;
  EventSink sink_;

  Mutex mu_;
  CondVar cv_;
  std::deque<PendingRevision> pending_ STRATA_GUARDED_BY(mu_);
  std::deque<Waiter> waiters_ STRATA_GUARDED_BY(mu_);  // in lsn order
  uint64_t last_applied_lsn_ STRATA_GUARDED_BY(mu_) = 0;
  bool wake_ STRATA_GUARDED_BY(mu_) = false;
  bool stop_ STRATA_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_COMMIT_PIPELINE_H_
