// ShardCore: a shard's state and the changes made to it, under the
// ShardServer that serves the shard's requests.
//
// The server decides what to do (serve a read or make it wait, push a
// record, finish an abandoned commit, answer a watch); the core holds the
// state those decisions read (versions, intents, records, the change log)
// and makes the changes. Two kinds:
//  - LocalShardCore (local_shard_core.h): the shard on one node, changed
//    at once, kept durable in the node's own store;
//  - a replicated one: each change a command of the shard's Raft group
//    (cluster/replicated_shard.h), answered once the group applied it.
// So every change answers through a callback, which a local core calls
// before returning.
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_SHARD_CORE_H_
#define STRATA_CLUSTER_SHARD_CORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cluster/change_log.h"
#include "cluster/participant.h"
#include "cluster/peer_messages.h"
#include "cluster/txn_record_table.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::cluster {

class ShardCore {
 public:
  using Clock = std::chrono::steady_clock;
  using Respond = std::function<void(PeerReply)>;
  using Done = std::function<void(Status)>;

  virtual ~ShardCore() = default;

  // --- Changes (the requests already checked by the server) --------------

  // Places the intents (and, on the primary, creates the record); answers
  // PrepareReply or PeerError. `sender_clock`: the coordinator's clock
  // when it sent the prepare.
  virtual void Prepare(ShardPrepare prepare, Timestamp sender_clock, Respond done) = 0;
  // A one-phase commit: CommitReply or PeerError.
  virtual void CommitOnePhase(const PrepareRequest& request, Timestamp sender_clock,
                              Respond done) = 0;
  // A transaction's fate here (never kPending).
  virtual void Resolve(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp, Done done) = 0;
  // A call on a record this shard keeps as a primary: RecordReply.
  virtual void Record(const RecordCall& call, Respond done) = 0;
  // Makes a read at `snapshot` complete here: no change applied after
  // `done` is told Ok takes a timestamp at or below it.
  virtual void Close(Timestamp snapshot, Done done) = 0;
  // Forgets outcomes and aborted records past their retention (`now_ms`:
  // the wall clock); a core that forgets as it applies does nothing.
  virtual void ForgetOldState(uint64_t now_ms) = 0;
  // Collects the versions below `horizon` (the caller keeps it at or below
  // the cluster's low-water mark): RawCompactReply. A local core's store
  // is the node's, which its owner compacts (Member's compactor): it
  // refuses.
  virtual void Compact(Timestamp horizon, Respond done) {
    (void)horizon;
    done(PeerError{Status::InvalidArgument("this shard is compacted by its node, not its core")});
  }

  // --- The state the server reads -----------------------------------------

  virtual const MvccStore& store() const = 0;
  // The same for a reader that works over several turns of the loop: it
  // stays valid (not current) after a replica restores a snapshot.
  virtual std::shared_ptr<const MvccStore> shared_store() const = 0;
  virtual const Participant& participant() const = 0;
  virtual const TxnRecordTable& records() const = 0;
  // Every change applied here, for watches.
  virtual const ChangeLog& change_log() const = 0;
  virtual ChangeLog& change_log() = 0;
  // The shard clock's last timestamp: every change applied later takes a
  // timestamp above it.
  virtual Timestamp LastTimestamp() const = 0;
  // The node that leads the shard when this one holds a replica and does
  // not (as far as it knows): changes, and reads above LastTimestamp(),
  // go there. nullopt: this node, or no leader known.
  virtual std::optional<std::string> LeaderElsewhere() const { return std::nullopt; }
  // Whether this node leads the shard (a local core always does): what
  // only one node may do for a shard at a time (home its leases, answer
  // its forwarded calls) is done by the leader.
  virtual bool Leads() const { return true; }
  // Whether every change applied from now on takes a timestamp at or above
  // the wall clock now: true of a local core (its changes apply at once,
  // from the node's clock); not of a replicated one, whose commands take
  // the time their proposer read, maybe a while before they apply. Only
  // then may an idle shard's resolved time follow the wall clock.
  virtual bool ChangesFollowWallClock() const { return true; }
  // Called now and then (ShardServerOptions::close_interval) on a core
  // whose changes do not follow the wall clock: its time moves only by its
  // changes, so it moves it along while idle (a replicated shard's leader
  // proposes a close at its clock), and watches and reads at fresh
  // timestamps need not wait for a write.
  virtual void KeepTimeMoving() {}
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_SHARD_CORE_H_
