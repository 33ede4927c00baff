#include "cluster/replicated_shard.h"

#include <utility>
#include <vector>

#include "cluster/txn_coding.h"
#include "storage/coding.h"
#include "storage/store_image.h"

namespace strata::cluster {

using storage::Decoder;
using storage::PutBytes;
using storage::PutVarint;

namespace {

// A command: u8 kind | varint proposer ms | the kind's body. The kinds
// start above the bytes of the group's registry of members
// (replication::RegisteredState, 1, 2 and 5), which the server wraps a shard
// in, so the two never read each other's commands.
enum CommandKind : uint8_t {
  kPrepare = 0x11,  // varint sent ms | txn | varint participants, each | request | u8 blind
  kCommit = 0x12,   // the same, without participants
  kResolve = 0x13,  // txn | status (txn_coding) | varint commit timestamp
  kRecord = 0x14,   // u8 op | txn | varint commit timestamp
  kClose = 0x15,    // varint closed
  kCompact = 0x16,  // varint horizon
};

// A reply: u8 kind | body.
enum ReplyKind : uint8_t {
  kError = 0,        // varint code | bytes message
  kPrepared = 1,     // varint prepare timestamp
  kCommitted = 2,    // varint commit timestamp
  kResolved = 3,     // nothing
  kRecordAfter = 4,  // u8 op | u8 has status | [status] | varint commit timestamp
  kCompacted = 5,    // varint horizon | varint versions removed | varint bytes reclaimed
};

constexpr std::string_view kSnapshotMagic = "strata-replicated-shard/1\n";

std::string Begin(CommandKind kind, uint64_t proposer_ms) {
  std::string out(1, static_cast<char>(kind));
  PutVarint(&out, proposer_ms);
  return out;
}

void PutRequest(std::string* out, const PrepareRequest& request) {
  PutTxnId(out, request.txn);
  PutPrepareRequest(out, request);
  out->push_back(request.blind ? 1 : 0);
}

bool GetRequest(Decoder* in, PrepareRequest* request) {
  uint8_t blind = 0;
  if (!GetTxnId(in, &request->txn) || !GetPrepareRequest(in, request) || !in->Byte(&blind) ||
      blind > 1) {
    return false;
  }
  request->blind = blind == 1;
  return true;
}

std::string EncodeReply(const PeerReply& reply) {
  std::string out;
  if (const auto* r = std::get_if<PrepareReply>(&reply)) {
    out.push_back(kPrepared);
    PutVarint(&out, r->prepare_timestamp.value());
  } else if (const auto* c = std::get_if<CommitReply>(&reply)) {
    out.push_back(kCommitted);
    PutVarint(&out, c->commit_timestamp.value());
  } else if (std::holds_alternative<ResolveReply>(reply)) {
    out.push_back(kResolved);
  } else if (const auto* rec = std::get_if<RecordReply>(&reply)) {
    out.push_back(kRecordAfter);
    out.push_back(static_cast<char>(rec->op));
    out.push_back(rec->status ? 1 : 0);
    if (rec->status) PutTxnStatus(&out, *rec->status);
    PutVarint(&out, rec->commit_timestamp.value());
  } else if (const auto* k = std::get_if<RawCompactReply>(&reply)) {
    out.push_back(kCompacted);
    PutVarint(&out, k->compacted.horizon.value());
    PutVarint(&out, k->compacted.versions_removed);
    PutVarint(&out, k->compacted.bytes_reclaimed);
  } else {
    const Status& s = std::get<PeerError>(reply).status;
    out.push_back(kError);
    PutVarint(&out, static_cast<uint64_t>(s.code()));
    PutBytes(&out, s.message());
  }
  return out;
}

PeerError Undecodable(std::string_view what) {
  return PeerError{Status::InvalidArgument("a replicated shard's " + std::string(what) +
                                           " that does not decode (written by another version "
                                           "of strata, or damaged)")};
}

}  // namespace

// The state a snapshot replaces whole. The participant points into the
// store and the clock, so they are rebuilt together.
struct ReplicatedShard::Core {
  Core(const ReplicatedShardOptions& options, HybridLogicalClock::PhysicalClock wall,
       ChangeLog* change_log)
      : clock(std::move(wall), HybridClockOptions{.max_offset = std::chrono::milliseconds(0),
                                                  .node_index = options.residue}),
        participant(&store, &clock,
                    ParticipantOptions{.outcome_retention = options.outcome_retention,
                                       .describe_key = options.describe_key,
                                       .change_log = change_log}),
        records(options.heartbeat_timeout) {}

  MvccStore store;
  HybridLogicalClock clock;
  Participant participant;
  TxnRecordTable records;
  // The second of the shard's clock old state was last forgotten at
  // (ForgetOld), kept in snapshots: replicated state like the rest.
  uint64_t forgot_second = 0;
};

ReplicatedShard::ReplicatedShard(ReplicatedShardOptions options)
    : options_(std::move(options)), change_log_(options_.change_log_bytes, 0), core_(NewCore()) {}

ReplicatedShard::~ReplicatedShard() = default;

std::shared_ptr<ReplicatedShard::Core> ReplicatedShard::NewCore() {
  // The log outlives every core: the participant of each appends to it.
  return std::make_shared<Core>(
      options_, [this] { return proposer_ms_; }, &change_log_);
}

// --- commands -------------------------------------------------------------------

std::string ReplicatedShard::PrepareCommand(const ShardPrepare& prepare, uint64_t sent_ms,
                                            uint64_t proposer_ms) {
  std::string out = Begin(kPrepare, proposer_ms);
  PutVarint(&out, sent_ms);
  PutVarint(&out, prepare.participants.size());
  for (ShardId shard : prepare.participants) PutVarint(&out, shard);
  PutRequest(&out, prepare.request);
  return out;
}

std::string ReplicatedShard::CommitCommand(const ShardCommit& commit, uint64_t sent_ms,
                                           uint64_t proposer_ms) {
  std::string out = Begin(kCommit, proposer_ms);
  PutVarint(&out, sent_ms);
  PutRequest(&out, commit.request);
  return out;
}

std::string ReplicatedShard::ResolveCommand(const ShardResolve& resolve, uint64_t proposer_ms) {
  std::string out = Begin(kResolve, proposer_ms);
  PutTxnId(&out, resolve.txn);
  PutTxnStatus(&out, resolve.outcome);
  PutVarint(&out, resolve.commit_timestamp.value());
  return out;
}

std::string ReplicatedShard::RecordCommand(const RecordCall& call, uint64_t proposer_ms) {
  std::string out = Begin(kRecord, proposer_ms);
  out.push_back(static_cast<char>(call.op));
  PutTxnId(&out, call.txn);
  PutVarint(&out, call.commit_timestamp.value());
  return out;
}

std::string ReplicatedShard::CloseCommand(Timestamp closed, uint64_t proposer_ms) {
  std::string out = Begin(kClose, proposer_ms);
  PutVarint(&out, closed.value());
  return out;
}

std::string ReplicatedShard::CompactCommand(Timestamp horizon, uint64_t proposer_ms) {
  std::string out = Begin(kCompact, proposer_ms);
  PutVarint(&out, horizon.value());
  return out;
}

PeerReply ReplicatedShard::DecodeReply(std::string_view reply) {
  Decoder in(reply);
  uint8_t kind = 0;
  if (!in.Byte(&kind)) return Undecodable("reply");
  switch (kind) {
    case kError: {
      uint64_t code = 0;
      std::string_view message;
      if (!in.Varint(&code) || code == 0 || code > static_cast<uint64_t>(StatusCode::kIoError) ||
          !in.Bytes(&message) || !in.done()) {
        return Undecodable("reply");
      }
      return PeerError{Status(static_cast<StatusCode>(code), std::string(message))};
    }
    case kPrepared:
    case kCommitted: {
      Timestamp t;
      if (!GetTimestamp(&in, &t) || !in.done()) return Undecodable("reply");
      if (kind == kPrepared) return PrepareReply{t};
      return CommitReply{t};
    }
    case kResolved:
      if (!in.done()) return Undecodable("reply");
      return ResolveReply{};
    case kRecordAfter: {
      uint8_t op = 0, has_status = 0;
      RecordReply out;
      TxnStatus status = TxnStatus::kPending;
      if (!in.Byte(&op) || op > static_cast<uint8_t>(RecordOp::kForget) || !in.Byte(&has_status) ||
          has_status > 1 || (has_status == 1 && !GetTxnStatus(&in, &status)) ||
          !GetTimestamp(&in, &out.commit_timestamp) || !in.done()) {
        return Undecodable("reply");
      }
      out.op = static_cast<RecordOp>(op);
      if (has_status == 1) out.status = status;
      return out;
    }
    case kCompacted: {
      RawCompactReply out;
      if (!GetTimestamp(&in, &out.compacted.horizon) ||
          !in.Varint(&out.compacted.versions_removed) ||
          !in.Varint(&out.compacted.bytes_reclaimed) || !in.done()) {
        return Undecodable("reply");
      }
      return out;
    }
    default:
      return Undecodable("reply");
  }
}

// --- applying -------------------------------------------------------------------

std::string ReplicatedShard::Apply(raft::Index /*index*/, std::string_view command) {
  Decoder in(command);
  uint8_t kind = 0;
  uint64_t proposer_ms = 0;
  if (!in.Byte(&kind) || !in.Varint(&proposer_ms)) return EncodeReply(Refuse());
  proposer_ms_ = proposer_ms;
  PeerReply reply = ApplyDecoded(kind, in.rest());
  ForgetOld();
  return EncodeReply(reply);
}

PeerReply ReplicatedShard::Refuse() {
  ++commands_refused_;
  return Undecodable("command");
}

PeerReply ReplicatedShard::ApplyDecoded(uint8_t kind, std::string_view body) {
  Core& core = *core_;
  Decoder in(body);
  const auto now = options_.steady_now();
  switch (kind) {
    case kPrepare: {
      uint64_t sent_ms = 0, count = 0;
      ShardPrepare prepare;
      bool ok = in.Varint(&sent_ms) && in.Varint(&count) && count <= body.size();
      for (uint64_t i = 0; ok && i < count; ++i) {
        uint64_t shard = 0;
        ok = in.Varint(&shard) && shard <= UINT32_MAX;
        prepare.participants.push_back(static_cast<ShardId>(shard));
      }
      if (!ok || !GetRequest(&in, &prepare.request) || !in.done()) return Refuse();
      const PrepareRequest& request = prepare.request;
      const bool is_primary = request.primary == options_.shard;
      if (is_primary && !core.participant.Outcome(request.txn)) {
        // The record comes into being with the primary's intents; one a
        // push left ABORTED fails the prepare (as ShardServer::Prepare).
        if (Status s = core.records.Create(request.txn, std::move(prepare.participants), now);
            !s.ok()) {
          return PeerError{s};
        }
      }
      Result<Timestamp> prepared = core.participant.Prepare(request, sent_ms, now);
      if (!prepared.ok()) {
        if (is_primary) core.records.Abort(request.txn);
        return PeerError{prepared.status()};
      }
      return PrepareReply{*prepared};
    }
    case kCommit: {
      uint64_t sent_ms = 0;
      PrepareRequest request;
      if (!in.Varint(&sent_ms) || !GetRequest(&in, &request) || !in.done()) return Refuse();
      Result<Timestamp> committed = core.participant.CommitOnePhase(request, sent_ms);
      if (!committed.ok()) return PeerError{committed.status()};
      return CommitReply{*committed};
    }
    case kResolve: {
      ShardResolve resolve;
      if (!GetTxnId(&in, &resolve.txn) || !GetTxnStatus(&in, &resolve.outcome) ||
          !GetTimestamp(&in, &resolve.commit_timestamp) || !in.done()) {
        return Refuse();
      }
      if (Status s =
              core.participant.Resolve(resolve.txn, resolve.outcome, resolve.commit_timestamp);
          !s.ok()) {
        return PeerError{s};
      }
      return ResolveReply{};
    }
    case kRecord: {
      uint8_t op = 0;
      RecordCall call;
      if (!in.Byte(&op) || op > static_cast<uint8_t>(RecordOp::kForget) ||
          !GetTxnId(&in, &call.txn) || !GetTimestamp(&in, &call.commit_timestamp) || !in.done()) {
        return Refuse();
      }
      call.op = static_cast<RecordOp>(op);
      if (call.op == RecordOp::kPush || call.op == RecordOp::kHeartbeat) {
        return PeerError{Status::InvalidArgument(
            "a push or heartbeat is the shard leader's, not a command of its log")};
      }
      return ApplyRecordCall(&core.records, call, now);
    }
    case kClose: {
      Timestamp closed;
      if (!GetTimestamp(&in, &closed) || !in.done()) return Refuse();
      core.clock.Observe(closed);
      return RawCompactReply{CompactResult{.horizon = core.store.compaction_horizon()}};
    }
    case kCompact: {
      Timestamp horizon;
      if (!GetTimestamp(&in, &horizon) || !in.done()) return Refuse();
      return RawCompactReply{core.store.Compact(horizon)};
    }
    default:
      return Refuse();
  }
}

void ReplicatedShard::ForgetOld() {
  // Once a second of the shard's clock, not after every command (the
  // walks are cheap, but they run on every replica's apply path). Which
  // commands do it is decided by replicated state alone, so every replica
  // forgets at the same point of the log.
  const uint64_t second = HybridLogicalClock::PhysicalMillis(core_->clock.Last()) / 1000;
  if (second == core_->forgot_second) return;
  core_->forgot_second = second;
  const uint64_t now_ms = second * 1000;
  core_->participant.ForgetOldOutcomes(now_ms);
  const auto retention =
      static_cast<uint64_t>(std::chrono::milliseconds(kAbortedRecordRetention).count());
  if (now_ms > retention) {
    core_->records.ForgetAbortedBefore(HybridLogicalClock::Make(now_ms - retention, 0).value());
  }
}

// --- snapshots ------------------------------------------------------------------

// "strata-replicated-shard/1\n" | varint clock's last | varint second old
// state was last forgotten at | bytes store image |
// varint prepared | per: txn | varint prepare timestamp | request (as a
// command's) | varint finished | per: txn | status | varint commit
// timestamp | varint records | per: txn | record.
std::string ReplicatedShard::Save() const {
  const Core& core = *core_;
  std::string out(kSnapshotMagic);
  PutVarint(&out, core.clock.Last().value());
  PutVarint(&out, core.forgot_second);
  PutBytes(&out, storage::SaveStoreImage(core.store));
  const auto prepared = core.participant.PreparedTransactions();
  PutVarint(&out, prepared.size());
  for (const auto& [request, prepare_timestamp] : prepared) {
    PutTxnId(&out, request.txn);
    PutVarint(&out, prepare_timestamp.value());
    PutPrepareRequest(&out, request);
  }
  const auto& finished = core.participant.finished();
  PutVarint(&out, finished.size());
  for (const auto& [txn, outcome] : finished) {
    PutTxnId(&out, txn);
    PutTxnStatus(&out, outcome.outcome);
    PutVarint(&out, outcome.commit_timestamp.value());
  }
  const auto records = core.records.All();
  PutVarint(&out, records.size());
  for (const auto& [txn, record] : records) {
    PutTxnId(&out, txn);
    PutTxnRecord(&out, record);
  }
  return out;
}

std::string ReplicatedShard::InitialSnapshot(const MvccStore& store) {
  std::string out(kSnapshotMagic);
  PutVarint(&out, store.max_timestamp().value_or(Timestamp()).value());
  PutVarint(&out, 0);  // nothing forgotten yet
  PutBytes(&out, storage::SaveStoreImage(store));
  PutVarint(&out, 0);  // prepared transactions
  PutVarint(&out, 0);  // outcomes
  PutVarint(&out, 0);  // records
  return out;
}

Status ReplicatedShard::Restore(std::string_view snapshot) {
  std::shared_ptr<Core> core = NewCore();
  if (!snapshot.empty()) {
    auto damaged = [](std::string_view what) {
      return Status::InvalidArgument("a replicated shard's snapshot with " + std::string(what) +
                                     " (written by another version of strata, or damaged)");
    };
    if (snapshot.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) return damaged("no header");
    Decoder in(snapshot.substr(kSnapshotMagic.size()));
    Timestamp last;
    std::string_view image;
    if (!GetTimestamp(&in, &last) || !in.Varint(&core->forgot_second) || !in.Bytes(&image)) {
      return damaged("a header cut short");
    }
    if (Status s = storage::LoadStoreImage(image, &core->store); !s.ok()) return s;
    const auto now = options_.steady_now();
    uint64_t count = 0;
    if (!in.Varint(&count)) return damaged("no prepared transactions");
    for (uint64_t i = 0; i < count; ++i) {
      PrepareRequest request;
      Timestamp prepare_timestamp;
      if (!GetTxnId(&in, &request.txn) || !GetTimestamp(&in, &prepare_timestamp) ||
          !GetPrepareRequest(&in, &request)) {
        return damaged("a prepared transaction that does not decode");
      }
      core->participant.RestorePrepared(request, prepare_timestamp, now);
    }
    if (!in.Varint(&count)) return damaged("no outcomes");
    for (uint64_t i = 0; i < count; ++i) {
      TxnId txn;
      Participant::Finished finished;
      if (!GetTxnId(&in, &txn) || !GetTxnStatus(&in, &finished.outcome) ||
          !GetTimestamp(&in, &finished.commit_timestamp)) {
        return damaged("an outcome that does not decode");
      }
      core->participant.RestoreFinished(txn, finished);
    }
    if (!in.Varint(&count)) return damaged("no records");
    for (uint64_t i = 0; i < count; ++i) {
      TxnId txn;
      TxnRecord record;
      if (!GetTxnId(&in, &txn) || !GetTxnRecord(&in, &record)) {
        return damaged("a transaction record that does not decode");
      }
      core->records.Restore(txn, record, now);
    }
    if (!in.done()) return damaged("bytes after its records");
    core->clock.Observe(last);
  }
  core_ = std::move(core);
  change_log_.Reset(core_->store.max_timestamp().value_or(Timestamp()));
  return Status::Ok();
}

// --- the replica ----------------------------------------------------------------

const MvccStore& ReplicatedShard::store() const { return core_->store; }
std::shared_ptr<const MvccStore> ReplicatedShard::shared_store() const {
  return std::shared_ptr<const MvccStore>(core_, &core_->store);
}
const Participant& ReplicatedShard::participant() const { return core_->participant; }
Timestamp ReplicatedShard::closed() const { return core_->clock.Last(); }
Timestamp ReplicatedShard::SafeTime() const { return core_->participant.SafeTime(); }
const TxnRecordTable& ReplicatedShard::records() const { return core_->records; }

}  // namespace strata::cluster
