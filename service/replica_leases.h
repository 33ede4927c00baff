// ReplicaLeases: etcd's leases as replicated state (service/kv_replica.h):
// which leases exist, the TTL each was granted and the keys attached to
// each. Every replica applies grants and revocations in log order, so all
// agree on them.
//
// There is no clock here: when a lease expires is decided by the leader
// alone (server/replicated_front.h keeps the deadlines and proposes the
// revocation of an expired lease), as etcd's lessor does, so applying a
// command never depends on a member's time.
#ifndef STRATA_SERVICE_REPLICA_LEASES_H_
#define STRATA_SERVICE_REPLICA_LEASES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/kv_service.h"
#include "service/lease_table.h"

namespace strata::service {

class ReplicaLeases final : public LeaseKeys {
 public:
  // Told of every lease granted (its TTL) and ended (TTL 0), as applied.
  using Observer = std::function<void(int64_t id, int64_t ttl)>;

  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // False if the lease exists already.
  bool Grant(int64_t id, int64_t ttl);
  // The TTL `id` was granted; nullopt if there is no such lease.
  std::optional<int64_t> GrantedTtl(int64_t id) const;
  std::vector<std::string> Keys(int64_t id) const;
  std::vector<int64_t> Ids() const;
  // Every lease as (id, granted TTL), for a snapshot.
  std::vector<std::pair<int64_t, int64_t>> Granted() const;
  size_t size() const { return leases_.size(); }
  // Replaces every lease with `granted`, keys detached, telling no
  // observer (a restore: the leader, which keeps the deadlines, never
  // restores one).
  void Load(const std::vector<std::pair<int64_t, int64_t>>& granted);

  // LeaseKeys (KvService's writes and revocations).
  bool Exists(int64_t id) const override { return leases_.count(id) > 0; }
  void Move(const std::string& key, int64_t from, int64_t to) override;
  std::optional<std::vector<std::string>> End(int64_t id) override;

 private:
  struct Lease {
    int64_t ttl = 0;
    std::set<std::string> keys;
  };
  std::map<int64_t, Lease> leases_;
  Observer observer_;
};

// What a member asks the leader about a lease, which only the leader can
// answer since the deadlines are its own (a renewal, or the time left), and
// the answer, as bytes for the peer link.
struct LeaseQuery {
  enum class Kind : char { kRenewal = 'k', kTimeToLive = 't' };
  Kind kind = Kind::kRenewal;
  int64_t id = 0;
  bool keys = false;  // a time to live: with the lease's keys
};
std::string EncodeLeaseQuery(const LeaseQuery& query);
std::optional<LeaseQuery> DecodeLeaseQuery(std::string_view bytes);
// The answer to either: the seconds left (a renewal: the TTL; -1: no such
// lease), the TTL granted and, if asked, the keys.
std::string EncodeLeaseAnswer(const LeaseTimeToLiveResult& answer);
std::optional<LeaseTimeToLiveResult> DecodeLeaseAnswer(std::string_view bytes, int64_t id);

}  // namespace strata::service

#endif  // STRATA_SERVICE_REPLICA_LEASES_H_
