// SpaceQuota: etcd's --quota-backend-bytes and its NOSPACE alarm.
//
// The size that counts is the engine's memory estimate (everything
// allocated for keys, versions and values: strata keeps the store in
// memory, so that is what a quota must bound). A write that would take it
// past the quota raises the alarm; while the alarm is raised every write
// that adds data (a Put, a Txn with a put, a lease grant) is refused with
// "etcdserver: mvcc: database space exceeded", and reads, deletes and
// compaction go on, so an operator can make room and then disarm it
// (etcdctl alarm disarm), as with etcd.
#ifndef STRATA_SERVICE_SPACE_QUOTA_H_
#define STRATA_SERVICE_SPACE_QUOTA_H_

#include <atomic>
#include <cstdint>

#include "strata/mvcc_store.h"

namespace strata::service {

class SpaceQuota final {
 public:
  // quota_bytes 0: etcd's default, 2 GiB.
  SpaceQuota(const MvccStore* store, uint64_t quota_bytes)
      : store_(store), quota_(quota_bytes == 0 ? kDefaultBytes : quota_bytes) {}

  static constexpr uint64_t kDefaultBytes = uint64_t{2} << 30;

  // Whether a write adding about `bytes` may go ahead; raises the alarm
  // when it would pass the quota.
  bool Admit(uint64_t bytes) {
    if (alarmed_.load()) return false;
    if (used_bytes() + bytes > quota_) {
      alarmed_ = true;
      return false;
    }
    return true;
  }
  bool alarmed() const { return alarmed_.load(); }
  void Raise() { alarmed_ = true; }
  void Disarm() { alarmed_ = false; }
  uint64_t used_bytes() const { return store_->GetStats().memory_bytes; }
  uint64_t quota_bytes() const { return quota_; }

 private:
  const MvccStore* store_;
  const uint64_t quota_;
  std::atomic<bool> alarmed_{false};
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_SPACE_QUOTA_H_
