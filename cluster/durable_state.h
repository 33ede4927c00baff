// DurableClusterState: a shard's prepared transactions and transaction
// records, kept in the shard's own store so they survive a restart.
//
// Why in the store: it already has a write-ahead log, group commit,
// checkpoints and recovery; cluster state written there is durable exactly
// when the data is, is carried across checkpoints, and needs no second log
// to keep in step. The keys start with a tag byte (kInternalKeyTag) that no
// client key has, so client reads, scans and changes never meet them (the
// protocol's ranges stop before the tag). An entry is removed by a delete
// (tombstone), which garbage collection later sweeps like any other.
//
//   prepared: tag 'p' stamp coordinator -> the PrepareRequest and its prepare timestamp
//   record:   tag 'r' stamp coordinator -> status, commit timestamp, participant shards
//
// Each change is one store write at a fresh timestamp of the shard's clock;
// a node replies only once the log is durable past it (node.h), so nothing
// a peer was told can be lost. Not thread-safe: the event loop owns it.
#ifndef STRATA_CLUSTER_DURABLE_STATE_H_
#define STRATA_CLUSTER_DURABLE_STATE_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/hybrid_clock.h"
#include "cluster/participant.h"
#include "cluster/txn_id.h"
#include "cluster/txn_record_table.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::cluster {

// The first byte of the node's own keys; client keys use 0x00 and 0x01
// (protocol/key_codec.h), so these sort after every client key.
inline constexpr char kInternalKeyTag = '\x02';

class DurableClusterState final {
 public:
  DurableClusterState(MvccStore* store, HybridLogicalClock* clock) : store_(store), clock_(clock) {}

  Status SavePrepared(const PrepareRequest& request, Timestamp prepare_timestamp);
  Status ErasePrepared(TxnId txn);
  Status SaveRecord(TxnId txn, const TxnRecord& record);
  Status EraseRecord(TxnId txn);

  struct Loaded {
    std::vector<std::pair<PrepareRequest, Timestamp>> prepared;
    std::vector<std::pair<TxnId, TxnRecord>> records;
  };
  // Everything saved and not erased. kInvalidArgument names an entry that
  // does not decode (a store this code did not write).
  Result<Loaded> Load() const;

  static std::string PreparedKey(TxnId txn);
  static std::string RecordKey(TxnId txn);

 private:
  Status Write(std::string key, std::optional<std::string> value);

  MvccStore* store_;
  HybridLogicalClock* clock_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_DURABLE_STATE_H_
