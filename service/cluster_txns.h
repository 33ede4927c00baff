// ClusterTxns: strata.v1's interactive transactions over the cluster, the
// same contract as one node's InteractiveTxns (service/interactive_txn.h).
//
// Each is a coordinator transaction (cluster::Coordinator) at snapshot S on
// the member that began it: reads go to the shards at S (serializable ones
// recorded by the coordinator, so a phantom or a changed read fails the
// commit), writes are buffered here until Commit, which reads the written
// keys at S, versions them by etcd's rules and commits in one phase or by
// two-phase commit (ClusterKv::CommitWrites). A lost conflict is kAborted,
// as on one node; the commit's revision is its commit timestamp.
//
// A transaction lives on the member that began it: its id means nothing
// to another member ("does not exist"). Idle longer than the timeout, it
// expires here and in the coordinator.
//
// Not thread-safe: runs on the loop thread that owns the coordinator.
#ifndef STRATA_SERVICE_CLUSTER_TXNS_H_
#define STRATA_SERVICE_CLUSTER_TXNS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cluster/coordinator.h"
#include "service/cluster_kv.h"
#include "service/interactive_txn.h"
#include "service/kv_types.h"
#include "service/service_error.h"

namespace strata::service {

class ClusterTxns final {
 public:
  using Clock = std::chrono::steady_clock;
  using Empty = InteractiveTxns::Empty;
  template <typename T>
  using Done = std::function<void(Reply<T>)>;

  // `coordinator` and `kv` must outlive it.
  ClusterTxns(cluster::Coordinator* coordinator, ClusterKv* kv, InteractiveTxnOptions options = {});
  ~ClusterTxns();

  // A follower read reads this member's own replicas (ClusterKv::FollowerReadAt).
  Reply<TxnBegun> Begin(TxnIsolation isolation, int64_t read_revision, const std::string& owner,
                        const FollowerRead& follower = {});
  Reply<Empty> CheckOwner(uint64_t id, const std::string& owner);
  void Get(uint64_t id, const std::string& key, Done<TxnRead> done);
  void Range(uint64_t id, const KeySpan& span, int64_t limit, Done<RangeResponse> done);
  Reply<Empty> Put(uint64_t id, const std::string& key, const std::string& value);
  Reply<Empty> Delete(uint64_t id, const std::string& key);
  void Commit(uint64_t id, Done<int64_t> done);
  Reply<Empty> Abort(uint64_t id);

  TxnStats Stats();

 private:
  struct Txn {
    uint64_t id = 0;
    int64_t snapshot = 0;
    bool serializable = true;
    bool read_only = false;
    std::string owner;
    Clock::time_point begun, last_used;
    std::map<std::string, std::optional<std::string>> writes;  // nullopt: a delete
  };
  // The open transaction `id`, now used; nullptr if unknown or expired.
  Txn* Find(uint64_t id);
  void ExpireIdle(Clock::time_point now);
  Reply<Empty> Write(uint64_t id, const std::string& key, std::optional<std::string> value);

  cluster::Coordinator* coordinator_;
  ClusterKv* kv_;
  const InteractiveTxnOptions options_;
  std::map<uint64_t, Txn> active_;
  uint64_t commits_ = 0, conflicts_ = 0, expired_ = 0;
  // Set to false when destroyed: callbacks still in flight see it and stop.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_CLUSTER_TXNS_H_
