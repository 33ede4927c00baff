// LeaseTable: etcd's leases. A lease has a TTL; keys attach to it with
// Put(lease=ID); when it expires or is revoked, every attached key is
// deleted in one revision (KvService::RevokeLease).
//
// Grants and revocations are recorded in a LeaseJournal before they are
// acknowledged, so leases survive a restart; as in etcd, a restarted server
// gives every lease its full TTL again (remaining time is not persisted: a
// restart must never make a lease expire early). Attachments are not
// journaled: they are rebuilt from the keys' own lease fields at start.
//
// One worker thread does the journal's (blocking, fsyncing) writes and the
// expiry checks, so request threads never wait on a disk; it takes every
// write that queued up while it synced the last batch, so many grants share
// one fsync.
#ifndef STRATA_SERVICE_LEASE_TABLE_H_
#define STRATA_SERVICE_LEASE_TABLE_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "service/kv_service.h"
#include "service/lease_rules.h"
#include "service/service_error.h"
#include "strata/status.h"

namespace strata::service {

// Where grants and revocations are made durable (service/lease_journal.h).
class LeaseJournal {
 public:
  virtual ~LeaseJournal() = default;
  // Record and Erase append; Sync returns once everything appended is
  // durable, so a batch of grants shares one fsync.
  virtual Status Record(int64_t id, int64_t ttl) = 0;
  virtual Status Erase(int64_t id) = 0;
  virtual Status Sync() = 0;
  virtual std::vector<std::pair<int64_t, int64_t>> Load() = 0;  // (id, ttl)
};

struct LeaseTableOptions {
  LeaseLimits limits;  // TTLs and how many leases live at once
  std::chrono::milliseconds expiry_check{50};
};

struct LeaseGrantResult {
  int64_t id = 0;
  int64_t ttl = 0;
  int64_t revision = 0;  // header.revision
};

struct LeaseTimeToLiveResult {
  int64_t id = 0;
  int64_t ttl = -1;  // seconds left; -1: no such lease (etcd's answer)
  int64_t granted_ttl = 0;
  std::vector<std::string> keys;
};

class LeaseTable final : public LeaseKeys {
 public:
  using Clock = std::chrono::steady_clock;
  template <typename T>
  using Done = std::function<void(Reply<T>)>;

  // `journal` may be null (in memory); it must outlive the table.
  LeaseTable(LeaseJournal* journal, LeaseTableOptions options = {});
  ~LeaseTable() override;
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;

  // Loads the journal, attaches keys (from `kv`, which must outlive the
  // table) and starts expiring leases. Call once, before serving.
  void Start(KvService* kv);

  // id 0: the server picks one.
  void Grant(int64_t id, int64_t ttl, Done<LeaseGrantResult> done);
  // done gets the revision after the keys were deleted.
  void Revoke(int64_t id, Done<int64_t> done);
  // Renews the lease: its TTL in seconds, or nullopt if it does not exist.
  std::optional<int64_t> KeepAlive(int64_t id);
  LeaseTimeToLiveResult TimeToLive(int64_t id, bool with_keys) const;
  std::vector<int64_t> Leases() const;
  // Every live lease as (id, granted TTL), for a snapshot.
  std::vector<std::pair<int64_t, int64_t>> Granted() const;
  size_t size() const;

  // LeaseKeys (called by KvService under its writer lock).
  bool Exists(int64_t lease) const override;
  void Move(const std::string& key, int64_t from, int64_t to) override;
  std::optional<std::vector<std::string>> End(int64_t lease) override;

 private:
  struct Lease {
    int64_t ttl = 0;
    Clock::time_point expiry;
    std::set<std::string> keys;
    bool expiring = false;  // an expiry revocation is under way
  };
  // A journal write and what to do once it is durable (or failed).
  struct JournalTask {
    std::function<Status()> write;
    std::function<void(const Status&)> done;
  };
  void Run();
  void Post(JournalTask task);
  void ExpireDue();
  void ScheduleExpiry(int64_t id, Clock::time_point expiry) STRATA_REQUIRES(mu_);

  // Ordered by expiry, earliest on top; each live lease has one entry.
  // Entries are checked lazily: a renewed lease's entry is pushed back
  // with its new expiry when it reaches the top, and an ended lease's
  // entry is dropped there. So a keep-alive costs no heap work and the
  // expiry check looks only at leases that are (or were) due, instead of
  // walking every lease (which made a grant O(leases)).
  using ExpiryEntry = std::pair<Clock::time_point, int64_t>;
  using ExpiryQueue =
      std::priority_queue<ExpiryEntry, std::vector<ExpiryEntry>, std::greater<ExpiryEntry>>;

  LeaseJournal* journal_;
  const LeaseTableOptions options_;
  KvService* kv_ = nullptr;

  mutable Mutex mu_;
  std::map<int64_t, Lease> leases_ STRATA_GUARDED_BY(mu_);
  std::set<int64_t> granting_ STRATA_GUARDED_BY(mu_);  // ids whose grant is being journaled
  ExpiryQueue expiry_queue_ STRATA_GUARDED_BY(mu_);
  std::mt19937_64 random_ STRATA_GUARDED_BY(mu_);

  Mutex tasks_mu_;
  CondVar tasks_cv_;
  std::deque<JournalTask> tasks_ STRATA_GUARDED_BY(tasks_mu_);
  bool stop_ STRATA_GUARDED_BY(tasks_mu_) = false;
  std::thread worker_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_LEASE_TABLE_H_
