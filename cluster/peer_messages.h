// Peer messages: everything one node of a cluster says to another, as
// typed values.
//
// The roles (shard server, coordinator, router) speak only these; a
// transport (cluster/peer_transport.h) carries them in its own encoding
// (Maelstrom JSON lines today, protocol/peer_codec.h; gRPC streams later).
// A request is answered by exactly one reply; a LowWaterMarkReport is
// one-way. Every request is idempotent, which is what lets PeerRpc resend
// it until an answer comes (a Forward is made so, see below).
#ifndef STRATA_CLUSTER_PEER_MESSAGES_H_
#define STRATA_CLUSTER_PEER_MESSAGES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cluster/participant.h"
#include "cluster/shard_map.h"
#include "cluster/txn_id.h"
#include "cluster/txn_record_table.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/timestamp.h"

namespace strata::cluster {

// The most one message between nodes may carry. A transport must carry at
// least this much; roles cut or refuse what would exceed it.
inline constexpr size_t kMaxPeerMessageBytes = 4 * 1024 * 1024 - 64 * 1024;
// What one transaction writes (keys and values) travels in one prepare to
// each shard, so it must fit one message with room to spare.
inline constexpr size_t kMaxTxnWriteBytes = 3 * 1024 * 1024;
// Keys one transaction may write in a cluster.
inline constexpr size_t kMaxTxnWriteKeys = 10240;
// The most items a raw scan or changes request may ask of one shard.
inline constexpr size_t kMaxRawLimit = 10000;
// The most items a transaction's scan may ask of one shard: twice a raw
// limit (a scan's limit plus its own writes in the range).
inline constexpr size_t kMaxShardReadLimit = 2 * kMaxRawLimit + 10240;

// --- requests ----------------------------------------------------------------

// Read point keys and/or one range at `snapshot` on the receiver's shard
// (waiting for intents at or below it; see ShardServer).
struct ShardRead {
  Timestamp snapshot;
  std::vector<std::string> keys;  // engine keys
  std::optional<KeyRange> range;
  size_t limit = 0;  // of the range's items; at least 1 when there is a range
  // Read at the newest timestamp the receiving replica has closed instead
  // of at `snapshot`, which is then the least it must have closed (else
  // the shard's leader serves it, at its own), and name it in the reply: a
  // write's reads, which its commit validates, need no close of the
  // shard's log (see Coordinator::StartAtShardClocks).
  bool at_closed = false;
};

// Place a transaction's intents (two-phase commit, first phase). The
// primary's copy lists every participant shard, for its record.
struct ShardPrepare {
  PrepareRequest request;
  std::vector<ShardId> participants;
};

// Check and apply a transaction that touches only the receiver's shard.
struct ShardCommit {
  PrepareRequest request;
};

// A transaction's fate is known: apply or drop its intents.
struct ShardResolve {
  TxnId txn;
  TxnStatus outcome = TxnStatus::kAborted;  // never kPending
  Timestamp commit_timestamp;               // kCommitted only
};

// A call on a transaction record, to the record's primary shard.
enum class RecordOp { kCommit, kAbort, kPush, kHeartbeat, kForget };
struct RecordCall {
  RecordOp op = RecordOp::kPush;
  TxnId txn;
  Timestamp commit_timestamp;  // kCommit only
};

// A client request the receiver's shard serves as a single node would. Its
// bytes are the front end's own encoding: the cluster carries them unread.
// Not idempotent (a forwarded write), so the receiver runs it once per
// (sender, id) and answers resent copies from memory. The id also says
// when the forward was first sent (ForwardedCalls::IdAt); 0 asks for no
// such care.
struct Forward {
  std::string request;
  uint64_t id = 0;
};

// One-way: the sender's oldest snapshot in use, for the low-water mark.
struct LowWaterMarkReport {
  Timestamp oldest_snapshot;
};

// The raw MVCC API's cluster-wide requests, one shard's part each: a scan
// at a timestamp (Timestamp::Max() for the newest versions, no waiting for
// intents), the changes since a timestamp, and compaction up to one (never
// past the receiver's view of the cluster's low-water mark).
struct RawScan {
  KeyRange range;
  Timestamp at;
  size_t limit = 0;
};
struct RawChanges {
  Timestamp since;
  KeyRange range;
  size_t limit = 0;
};
struct RawCompact {
  Timestamp horizon;
};

// A watch's read of one shard (its change feed, cluster/change_log.h): the
// changes in `range` with timestamps above `after`, up to the shard's
// resolved timestamp, from `cursor` on in the shard's change log. Over an
// empty range (end <= start), the shard's resolved timestamp alone, as it
// is (cluster/resolved_frontier.h).
struct ShardWatch {
  KeyRange range;
  Timestamp after;
  uint64_t cursor = 0;
  size_t limit = 0;
  bool with_previous = false;  // also each change's previous version (etcd's prev_kv)
  // A long poll: with no change to hand on, the shard holds the read up to
  // this long (at most kMaxWatchParkMs) and answers as soon as a change in
  // the range is resolved, or then with its resolved timestamp. 0: answer
  // at once.
  uint32_t park_ms = 0;
  // The reader needs the shard resolved up to here: a shard whose time
  // moves only through its log has its leader close to it before
  // answering (ResolvedFrontier's question). None: Timestamp().
  Timestamp close_to = Timestamp();
};
inline constexpr uint32_t kMaxWatchParkMs = 1000;

using PeerRequest =
    std::variant<ShardRead, ShardPrepare, ShardCommit, ShardResolve, RecordCall, Forward,
                 LowWaterMarkReport, RawScan, RawChanges, RawCompact, ShardWatch>;

// --- replies -----------------------------------------------------------------

struct ShardReadReply {
  std::vector<ReadResult> reads;     // one per ShardRead::keys, in order
  std::optional<ScanResult> scan;    // when the read had a range
  Timestamp snapshot = Timestamp();  // what it read at
};

struct PrepareReply {
  Timestamp prepare_timestamp;
};

struct CommitReply {
  Timestamp commit_timestamp;
};

struct ResolveReply {};

// What the record says after the call (nothing once forgotten, or for a
// transaction the primary never heard of and the call did not create).
struct RecordReply {
  RecordOp op = RecordOp::kPush;  // the call answered
  std::optional<TxnStatus> status;
  Timestamp commit_timestamp;  // when kCommitted
};

// Makes `call` on a primary's `records` (push and heartbeat measured at
// `now`) and answers it with the record it left (none once forgotten, or
// never created).
inline RecordReply ApplyRecordCall(TxnRecordTable* records, const RecordCall& call,
                                   TxnRecordTable::Clock::time_point now);

// The answer to a call `op` that left `record` (nullopt: none).
inline RecordReply RecordReplyOf(RecordOp op, const std::optional<TxnRecord>& record) {
  RecordReply reply;
  reply.op = op;
  if (record) {
    reply.status = record->status;
    if (record->status == TxnStatus::kCommitted) reply.commit_timestamp = record->commit_timestamp;
  }
  return reply;
}

inline RecordReply ApplyRecordCall(TxnRecordTable* records, const RecordCall& call,
                                   TxnRecordTable::Clock::time_point now) {
  std::optional<TxnRecord> record;
  switch (call.op) {
    case RecordOp::kCommit:
      record = records->Commit(call.txn, call.commit_timestamp);
      break;
    case RecordOp::kAbort:
      record = records->Abort(call.txn);
      break;
    case RecordOp::kPush:
      record = records->Push(call.txn, now);
      break;
    case RecordOp::kHeartbeat:
      record = records->Heartbeat(call.txn, now);
      break;
    case RecordOp::kForget:
      records->Forget(call.txn);
      break;
  }
  return RecordReplyOf(call.op, record);
}

// The receiver's answer to a Forward, in the front end's encoding.
struct ForwardReply {
  std::string reply;
};

struct RawScanReply {
  ScanResult scan;  // cut to fit one message (then `more`)
};
struct RawChangesReply {
  ChangesResult changes;  // cut to fit one message (then `more`)
};
struct RawCompactReply {
  CompactResult compacted;
};
// Every change in the range with a timestamp in (after, resolved], in
// (timestamp, key) order; no change at or below `resolved` can still
// appear on the shard. The next read passes resolved as `after` and
// `cursor` as its cursor.
struct ShardWatchReply {
  std::vector<Change> changes;
  Timestamp resolved;
  uint64_t cursor = 0;
  // With with_previous, one per change: the key's version just before it
  // (nullopt: none, a delete, compacted away, or past what one message
  // carries once the changes are in).
  std::vector<std::optional<Change>> previous;
};

// The request failed (never OK). With `leader`, kUnavailable from a node
// that holds a replica of the shard but does not lead it: the node that
// does, as far as this one knows; Peers resends the call there.
struct PeerError {
  Status status;
  std::optional<std::string> leader = std::nullopt;
};

using PeerReply =
    std::variant<ShardReadReply, PrepareReply, CommitReply, ResolveReply, RecordReply, ForwardReply,
                 RawScanReply, RawChangesReply, RawCompactReply, ShardWatchReply, PeerError>;

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_PEER_MESSAGES_H_
