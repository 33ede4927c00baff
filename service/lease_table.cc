#include "service/lease_table.h"

#include <algorithm>

#include "base/thread_name.h"

namespace strata::service {

LeaseTable::LeaseTable(LeaseJournal* journal, LeaseTableOptions options)
    : journal_(journal), options_(options), random_(std::random_device{}()) {}

LeaseTable::~LeaseTable() {
  {
    MutexLock lock(tasks_mu_);
    stop_ = true;
  }
  tasks_cv_.NotifyAll();
  if (worker_.joinable()) worker_.join();
}

void LeaseTable::Start(KvService* kv) {
  kv_ = kv;
  const auto now = Clock::now();
  if (journal_) {
    MutexLock lock(mu_);
    for (const auto& [id, ttl] : journal_->Load()) {
      leases_[id] = Lease{ttl, now + std::chrono::seconds(ttl), {}, false};
      ScheduleExpiry(id, now + std::chrono::seconds(ttl));
    }
  }
  kv->ForEachLeasedKey([&](const std::string& key, int64_t lease) {
    MutexLock lock(mu_);
    auto it = leases_.find(lease);
    if (it != leases_.end()) it->second.keys.insert(key);
  });
  worker_ = std::thread([this] {
    NameThisThread("strata-leases");
    Run();
  });
}

void LeaseTable::Post(JournalTask task) {
  {
    MutexLock lock(tasks_mu_);
    tasks_.push_back(std::move(task));
  }
  tasks_cv_.NotifyOne();
}

void LeaseTable::Run() {
  UniqueLock lock(tasks_mu_);
  while (!stop_) {
    if (tasks_.empty()) tasks_cv_.WaitFor(lock, options_.expiry_check);
    if (!tasks_.empty()) {
      std::deque<JournalTask> batch;
      batch.swap(tasks_);
      lock.unlock();
      std::vector<Status> written;
      written.reserve(batch.size());
      for (auto& t : batch) written.push_back(t.write());
      const Status synced = journal_ ? journal_->Sync() : Status::Ok();
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i].done(written[i].ok() ? synced : written[i]);
      }
      lock.lock();
    }
    if (stop_) break;
    lock.unlock();
    ExpireDue();
    lock.lock();
  }
}

void LeaseTable::Grant(int64_t id, int64_t ttl, Done<LeaseGrantResult> done) {
  Reply<int64_t> granted = GrantedTtl(ttl, options_.limits);
  if (!granted.ok()) return done(granted.error());
  ttl = granted.value();
  {
    MutexLock lock(mu_);
    auto taken = [this](int64_t lease) STRATA_REQUIRES(mu_) {
      return leases_.count(lease) + granting_.count(lease) > 0;
    };
    if (id != 0 && taken(id)) return done(etcd_errors::LeaseExist());
    if (auto full = RoomForGrant(leases_.size() + granting_.size(), options_.limits)) {
      return done(*full);
    }
    if (id == 0) id = ChooseLeaseId(&random_, taken);
    granting_.insert(id);
  }
  Post({[this, id, ttl] { return journal_ ? journal_->Record(id, ttl) : Status::Ok(); },
        [this, id, ttl, done = std::move(done)](const Status& s) {
          {
            MutexLock lock(mu_);
            granting_.erase(id);
            if (s.ok()) {
              const auto expiry = Clock::now() + std::chrono::seconds(ttl);
              leases_[id] = Lease{ttl, expiry, {}, false};
              ScheduleExpiry(id, expiry);
            }
          }
          if (!s.ok()) return done(etcd_errors::StorageFailed(std::string(s.message())));
          done(LeaseGrantResult{id, ttl, kv_->current_revision()});
        }});
}

void LeaseTable::Revoke(int64_t id, Done<int64_t> done) {
  kv_->RevokeLease(id, [this, id, done = std::move(done)](Reply<int64_t> r) mutable {
    if (!r.ok()) return done(std::move(r));
    // The keys are gone (durably); now the lease's record.
    Post({[this, id] { return journal_ ? journal_->Erase(id) : Status::Ok(); },
          [r = std::move(r), done = std::move(done)](const Status& s) mutable {
            if (!s.ok()) return done(etcd_errors::StorageFailed(std::string(s.message())));
            done(std::move(r));
          }});
  });
}

void LeaseTable::ScheduleExpiry(int64_t id, Clock::time_point expiry) {
  // Entries of ended leases wait in the queue until they reach the top; a
  // client that grants and revokes long leases in a loop would pile them
  // up, so past twice the live leases the queue is rebuilt from them.
  if (expiry_queue_.size() >= 2 * leases_.size() + 1024) {
    std::vector<ExpiryEntry> live;
    live.reserve(leases_.size());
    for (const auto& [lease_id, lease] : leases_) {
      if (!lease.expiring) live.emplace_back(lease.expiry, lease_id);
    }
    expiry_queue_ = ExpiryQueue(std::greater<ExpiryEntry>(), std::move(live));
    if (leases_.count(id)) return;  // the rebuild took it
  }
  expiry_queue_.emplace(expiry, id);
}

void LeaseTable::ExpireDue() {
  std::vector<int64_t> due;
  {
    MutexLock lock(mu_);
    const auto now = Clock::now();
    while (!expiry_queue_.empty() && expiry_queue_.top().first <= now) {
      const int64_t id = expiry_queue_.top().second;
      expiry_queue_.pop();
      auto it = leases_.find(id);
      if (it == leases_.end() || it->second.expiring) continue;  // ended
      if (it->second.expiry > now) {
        expiry_queue_.emplace(it->second.expiry, id);  // renewed since
        continue;
      }
      it->second.expiring = true;
      due.push_back(id);
    }
  }
  for (int64_t id : due) {
    Revoke(id, [](Reply<int64_t>) {});
  }
}

std::optional<int64_t> LeaseTable::KeepAlive(int64_t id) {
  MutexLock lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end() || it->second.expiring) return std::nullopt;
  it->second.expiry = Clock::now() + std::chrono::seconds(it->second.ttl);
  return it->second.ttl;
}

LeaseTimeToLiveResult LeaseTable::TimeToLive(int64_t id, bool with_keys) const {
  MutexLock lock(mu_);
  LeaseTimeToLiveResult r;
  r.id = id;
  auto it = leases_.find(id);
  if (it == leases_.end()) return r;
  const auto left = it->second.expiry - Clock::now();
  r.ttl = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(left).count());
  r.granted_ttl = it->second.ttl;
  if (with_keys) r.keys.assign(it->second.keys.begin(), it->second.keys.end());
  return r;
}

std::vector<int64_t> LeaseTable::Leases() const {
  MutexLock lock(mu_);
  std::vector<int64_t> ids;
  ids.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) ids.push_back(id);
  return ids;
}

std::vector<std::pair<int64_t, int64_t>> LeaseTable::Granted() const {
  MutexLock lock(mu_);
  std::vector<std::pair<int64_t, int64_t>> out;
  out.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) out.emplace_back(id, lease.ttl);
  return out;
}

size_t LeaseTable::size() const {
  MutexLock lock(mu_);
  return leases_.size();
}

bool LeaseTable::Exists(int64_t lease) const {
  MutexLock lock(mu_);
  return leases_.count(lease) != 0;
}

void LeaseTable::Move(const std::string& key, int64_t from, int64_t to) {
  MutexLock lock(mu_);
  if (from != 0) {
    auto it = leases_.find(from);
    if (it != leases_.end()) it->second.keys.erase(key);
  }
  if (to != 0) {
    auto it = leases_.find(to);
    if (it != leases_.end()) it->second.keys.insert(key);
  }
}

std::optional<std::vector<std::string>> LeaseTable::End(int64_t lease) {
  MutexLock lock(mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) return std::nullopt;
  std::vector<std::string> keys(it->second.keys.begin(), it->second.keys.end());
  leases_.erase(it);
  return keys;
}

}  // namespace strata::service
