// StoreLeaseJournal: lease grants and revocations in a strata Store of
// their own (a directory beside the key-value data).
//
// Why a second store rather than keys in the first: etcd does not give a
// lease grant a revision, and in the key-value store every write takes one
// (revision = engine timestamp). A separate store keeps revisions exactly
// etcd's while reusing the log, group commit and recovery already tested.
#ifndef STRATA_SERVICE_LEASE_JOURNAL_H_
#define STRATA_SERVICE_LEASE_JOURNAL_H_

#include <memory>
#include <string>

#include "service/lease_table.h"
#include "strata/store.h"

namespace strata::service {

class StoreLeaseJournal final : public LeaseJournal {
 public:
  static Result<std::unique_ptr<StoreLeaseJournal>> Open(const std::string& dir,
                                                         StoreOpenOptions options);
  Status Record(int64_t id, int64_t ttl) override;
  Status Erase(int64_t id) override;
  Status Sync() override;
  std::vector<std::pair<int64_t, int64_t>> Load() override;

 private:
  explicit StoreLeaseJournal(std::unique_ptr<Store> store) : store_(std::move(store)) {}
  std::unique_ptr<Store> store_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_LEASE_JOURNAL_H_
