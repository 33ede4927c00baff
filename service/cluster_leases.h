// ClusterLeases: etcd's leases over a cluster.
//
// A lease is a record in the cluster's own key space (tag 0x00, which no
// etcd key has: etcd's keys are 0x01 + key): "\0L" + id -> its granted TTL.
// The node leading the record's shard is the lease's home (in a cluster
// without replicas, the member serving the shard). A key put with a lease also gets
// an attachment record "\0A" + id + key, written in the same transaction,
// so a revocation finds the lease's keys with one range read.
//
//  - Grant, Revoke and the attachments are cluster transactions: a Put
//    with a lease reads the lease's record, so a revocation racing it
//    conflicts and one of them retries. Any member runs a Put; a grant or
//    a revocation asked of any member runs on the lease's home, which so
//    knows every lease it keeps and refuses a grant past
//    LeaseLimits::max_leases (the rules of lease_rules.h, as on one node).
//  - Deadlines live in memory on the home member, as etcd keeps them on its
//    leader: keep-alives and time-to-live questions are forwarded there
//    (Router::Forward). A home that restarts learns its leases again from
//    its shard's records (a page each look, the first pass at once) and
//    gives each a full TTL from then on, as etcd does on a leader change;
//    so does a member that becomes the leader of a replicated shard, and
//    one that stops leading it forgets that shard's leases (its calls go
//    to the new leader: Member answers a shard's forwards on its leader).
//  - The home revokes what expired: one transaction deletes every key still
//    attached to the lease (on any shard), the attachments and the record.
//    Attachments of keys that moved to another lease or were deleted are
//    dropped then too (a key is deleted only if it still names the lease).
//
// Not thread-safe: runs on the member's loop thread.
#ifndef STRATA_SERVICE_CLUSTER_LEASES_H_
#define STRATA_SERVICE_CLUSTER_LEASES_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cluster/member.h"
#include "service/lease_rules.h"
#include "service/lease_table.h"
#include "service/service_error.h"

namespace strata::service {

struct ClusterLeasesOptions {
  // TTLs, and how many leases one member homes (max_leases).
  LeaseLimits limits;
  std::chrono::milliseconds expiry_check{100};
  // How often the home looks at a page of its shard's records for leases
  // it does not know (those granted before a restart), and how many
  // records a look reads.
  std::chrono::milliseconds discover_interval{1000};
  size_t discover_page = 10'000;
  int max_attempts = 8;  // a transaction that loses conflicts this often fails
};

class ClusterLeases final {
 public:
  template <typename T>
  using Done = std::function<void(Reply<T>)>;

  // `member` must outlive it; starts the home's timers. The home's records
  // are read from the stores of the shards the member leads (its own, or
  // its replicas of shards' groups).
  explicit ClusterLeases(cluster::Member* member, ClusterLeasesOptions options = {});
  ~ClusterLeases();

  void Grant(int64_t id, int64_t ttl, Done<LeaseGrantResult> done);
  // done gets the revision of the deletion.
  void Revoke(int64_t id, Done<int64_t> done);
  // The TTL left in seconds after renewing, 0 if there is no such lease.
  void KeepAlive(int64_t id, Done<int64_t> done);
  void TimeToLive(int64_t id, bool with_keys, Done<LeaseTimeToLiveResult> done);
  void Leases(Done<std::vector<int64_t>> done);

  // The leases this member homes and knows of (granted here, or found in
  // its shard's records since it started).
  size_t homed() const { return homed_.size(); }

  // A forwarded request from another member (or this one), for a lease
  // whose home is this member (the member's forward handler): answered
  // once, now or after a transaction.
  void ServeForward(const std::string& request, std::function<void(cluster::PeerReply)> respond);

  // The engine keys of a lease's record and of a key's attachment to it;
  // the lease a record key names (nullopt: not a record's key).
  static std::string RecordKey(int64_t id);
  static std::optional<int64_t> LeaseOfRecordKey(std::string_view key);
  static std::string AttachmentKey(int64_t id, std::string_view etcd_key);

 private:
  struct Home {
    int64_t ttl = 0;
    std::chrono::steady_clock::time_point deadline;
    bool expiring = false;
    cluster::ShardId shard = 0;  // its record's
  };
  // The look at one led shard's records (Discover).
  struct Discovery {
    uint64_t from = 0;             // where the next look starts
    bool first_pass_done = false;  // every record looked at since it was led here
  };
  // Ids in the order of their records' keys (unsigned), so a page of the
  // records is a range of the map.
  struct InKeyOrder {
    bool operator()(int64_t a, int64_t b) const {
      return static_cast<uint64_t>(a) < static_cast<uint64_t>(b);
    }
  };
  // Renews (or learns) a lease homed here: its TTL, or nullopt if its
  // record is not in its shard's store as this member holds it.
  std::optional<Home*> Renew(int64_t id);
  // The home's side of a grant and a revocation (every member forwards
  // them here, so the home knows what it keeps): `done` gets the revision.
  void GrantHere(int64_t id, int64_t ttl, Done<int64_t> done);
  void RevokeHere(int64_t id, Done<int64_t> done);
  // keep-alives ("renew") and time-to-live questions ("ttl").
  cluster::PeerReply ServeQuestion(const std::string& verb, int64_t id);
  void ExpireDue();
  // A page of each led shard's records; forgets the leases of shards no
  // longer led here.
  void Discover();
  void DiscoverShard(const cluster::ShardServer& shard, Discovery& discovery);
  // Ends `id`: deletes its keys, attachments and record in one transaction.
  void End(int64_t id, Done<int64_t> done, int attempt);
  // Asks `id`'s home "verb id [argument]"; `done` gets its answer.
  void Forward(int64_t id, const std::string& verb, Done<std::string> done,
               const std::string& argument = "");
  // A grant or revocation: the home's answer read as a revision.
  void ForwardChange(int64_t id, const std::string& verb, const std::string& argument,
                     Done<int64_t> done);

  // The shard lease `id`'s record lives on.
  cluster::ShardId ShardOf(int64_t id) const { return member_->map().ShardFor(RecordKey(id)).id; }
  // The server of `shard` if this member homes its leases (it leads it),
  // else nullptr.
  const cluster::ShardServer* LedHere(cluster::ShardId shard) const {
    const cluster::ShardServer* server = member_->FindShardServer(shard);
    return server != nullptr && server->Leads() ? server : nullptr;
  }

  cluster::Member* member_;
  const ClusterLeasesOptions options_;
  std::map<int64_t, Home, InKeyOrder> homed_;        // leases whose record is on a shard led here
  std::set<int64_t> granting_;                       // grants homed here under way
  std::map<cluster::ShardId, Discovery> discovery_;  // the shards led here
  std::mt19937_64 rng_{std::random_device{}()};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_CLUSTER_LEASES_H_
