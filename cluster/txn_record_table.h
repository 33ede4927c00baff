// TxnRecordTable: the transaction records a primary shard keeps.
//
// A multi-shard transaction's record lives on one shard, its primary, and is
// the single point of truth about its fate: PENDING while it prepares,
// then COMMITTED (with the commit timestamp) or ABORTED, and never changes
// after that. The coordinator commits through the record; a participant
// that finds an intent it cannot wait out any longer pushes the record,
// which aborts the transaction if its coordinator has stopped heartbeating.
// Whoever reaches the record first decides, so a coordinator that dies at
// any point leaves no transaction in doubt.
//
// A push or abort of a transaction whose record does not exist yet (its
// prepare has not reached the primary) leaves an ABORTED record behind, so
// a prepare arriving later cannot bring it back to life.
//
// A COMMITTED record is forgotten once every participant has resolved the
// transaction: normally the coordinator says so (Forget); if it died first,
// the primary resolves the participants the record lists itself (see
// CommittedBefore). Forgetting it earlier would be wrong: a participant cut
// off for long would push the missing record and be told ABORTED. ABORTED
// records are forgotten by age (a missing record answers ABORTED anyway;
// they are kept only so a late prepare fails, and shards refuse prepares
// that old by themselves, see Participant).
//
// Not thread-safe: the node's event loop owns it.
#ifndef STRATA_CLUSTER_TXN_RECORD_TABLE_H_
#define STRATA_CLUSTER_TXN_RECORD_TABLE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "cluster/txn_id.h"
#include "strata/status.h"
#include "strata/timestamp.h"

namespace strata::cluster {

struct TxnRecord {
  TxnStatus status = TxnStatus::kPending;
  Timestamp commit_timestamp;  // when COMMITTED
  // The shards the transaction prepared on (the primary included), as the
  // primary's prepare named them: whom to resolve if the coordinator is gone.
  // Empty for a record created ABORTED (nothing to resolve through it).
  std::vector<uint32_t> participants;
};

// ABORTED records whose coordinator never asked to forget them are
// forgotten this long after their transaction began (a prepare that old
// is refused by every shard anyway, see Participant).
inline constexpr std::chrono::minutes kAbortedRecordRetention{10};

class TxnRecordTable final {
 public:
  using Clock = std::chrono::steady_clock;

  // heartbeat_timeout: a PENDING record not heartbeated for this long may be
  // aborted by a push.
  explicit TxnRecordTable(std::chrono::milliseconds heartbeat_timeout)
      : heartbeat_timeout_(heartbeat_timeout) {}

  // Creates the PENDING record (the primary's prepare) naming the shards the
  // transaction prepares on. Idempotent for a PENDING record (a retried
  // prepare; refreshes the heartbeat). kConflict if the record is ABORTED (a
  // push or the coordinator got there first) or COMMITTED (a prepare that
  // old is a duplicate).
  Status Create(TxnId txn, std::vector<uint32_t> participants, Clock::time_point now);

  // PENDING -> COMMITTED at `commit_timestamp`. Returns the record after
  // the call: COMMITTED (also when it already was, at whatever timestamp it
  // has) or ABORTED (pushed, or no record: one is left ABORTED).
  TxnRecord Commit(TxnId txn, Timestamp commit_timestamp);

  // The coordinator gives up: PENDING or missing -> ABORTED. Returns the
  // record after the call (a COMMITTED record stays committed).
  TxnRecord Abort(TxnId txn);

  // A participant asks: a missing record becomes ABORTED; a PENDING one not
  // heartbeated within the timeout becomes ABORTED; otherwise unchanged.
  // Returns the record after the call.
  TxnRecord Push(TxnId txn, Clock::time_point now);
  // Whether a push now would abort `txn` (its record is missing, or PENDING
  // and not heartbeated within the timeout).
  bool Abandoned(TxnId txn, Clock::time_point now) const;

  // The coordinator is alive: refreshes a PENDING record. Returns the record
  // (nullopt if there is none yet).
  std::optional<TxnRecord> Heartbeat(TxnId txn, Clock::time_point now);

  std::optional<TxnRecord> Find(TxnId txn) const;

  // Recovery: puts back a record kept before a restart (a PENDING one counts
  // as heartbeated at `now`).
  void Restore(TxnId txn, const TxnRecord& record, Clock::time_point now);

  // Forgets a finished record once every participant has resolved the
  // transaction (nobody will ask again); false if it is PENDING or missing.
  bool Forget(TxnId txn);

  // Forgets ABORTED records whose id stamp is below `stamp_floor` (a missing
  // record answers ABORTED anyway). COMMITTED ones stay until Forget: a
  // participant cut off for long must still learn the commit. Returns the
  // forgotten ids (for the caller to erase what it saved of them).
  std::vector<TxnId> ForgetAbortedBefore(uint64_t stamp_floor);

  // COMMITTED records with a commit timestamp below `floor`, oldest id first:
  // ones the coordinator should long have had resolved and forgotten.
  std::vector<std::pair<TxnId, TxnRecord>> CommittedBefore(Timestamp floor) const;

  // Every record, oldest id first (a replicated shard's snapshot).
  std::vector<std::pair<TxnId, TxnRecord>> All() const;

  size_t size() const { return records_.size(); }
  size_t pending() const { return pending_; }

 private:
  struct Entry {
    TxnRecord record;
    Clock::time_point last_heartbeat;
  };
  void SetStatus(TxnId txn, Entry* entry, TxnStatus status);

  const std::chrono::milliseconds heartbeat_timeout_;
  std::map<TxnId, Entry> records_;  // ordered by stamp, so expiry is a prefix walk
  size_t pending_ = 0;
  // The COMMITTED ones among records_: few (normally forgotten within a round
  // trip), while ABORTED ones may pile up for the whole retention.
  std::set<TxnId> committed_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_TXN_RECORD_TABLE_H_
