// ClusterNode, shard-server role: this node's shard as other nodes (and
// its own coordinator) see it. See cluster_node.h.
//
// Reads at a snapshot S first move the clock past S (so every later
// prepare here is above S), then wait while an intent at or below S lies
// in what they read: such a transaction may still commit at or below S.
// A waiting read asks the intent's record (`record_push`) after
// --push-after-ms, and again while it waits: a committed record's intents
// are applied here, an aborted one's dropped, and a record whose
// coordinator stopped heartbeating is aborted by the push. After
// --read-wait-ms the read gives up with error 11. Independently, intents
// older than the heartbeat timeout are pushed even with no reader waiting,
// so a dead coordinator leaves no key locked.
#include <algorithm>

#include "node/cluster_node.h"
#include "node/txn_handlers.h"
#include "protocol/cluster_codec.h"
#include "protocol/limits.h"

namespace strata::node {

using protocol::Body;
using protocol::ErrorCode;
using protocol::ErrorReply;
using protocol::JsonWriter;

namespace {

std::optional<cluster::TxnStatus> ParseStatus(std::string_view name) {
  if (name == "committed") return cluster::TxnStatus::kCommitted;
  if (name == "aborted") return cluster::TxnStatus::kAborted;
  if (name == "pending") return cluster::TxnStatus::kPending;
  return std::nullopt;
}

}  // namespace

void ClusterNode::HandleShardRead(const protocol::Envelope& request, const ReplyAddress& from) {
  ShardRead read;
  const Body& body = request.body;
  if (auto err = body.RequiredTimestamp("ts", &read.snapshot)) {
    return ReplyError(from, *err);
  }
  if (auto err = protocol::ReadHexKeys(body, "keys", &read.keys)) {
    return ReplyError(from, *err);
  }
  if (auto scan = body.Find("scan")) {
    read.range.emplace();
    if (auto err = protocol::ReadRange(*scan, &*read.range)) {
      return ReplyError(from, *err);
    }
    uint64_t limit = 0;
    if ((*scan)["limit"].get_uint64().get(limit) || limit == 0 ||
        limit > 2 * protocol::kMaxLimit + protocol::kMaxTxnOps * 10) {
      return ReplyError(from, protocol::Malformed("scan.limit is out of range"));
    }
    read.limit = limit;
  }
  // No prepare here may take a timestamp at or below the snapshot from now on.
  if (Status s = clock_.Update(read.snapshot); !s.ok()) {
    return ReplyError(from, protocol::ErrorFromStatus(s));
  }
  if (TryServeRead(read, from)) return;
  // Each waits at most --read-wait-ms; this bounds them against a flood.
  constexpr size_t kMaxWaitingReads = 100000;
  if (waiting_reads_.size() >= kMaxWaitingReads) {
    return ReplyError(from, ErrorReply{ErrorCode::kTemporarilyUnavailable,
                                       "shard " + std::to_string(shard_) + " already holds " +
                                           std::to_string(kMaxWaitingReads) +
                                           " reads waiting for pending transactions; try again"});
  }
  ++reads_waited_;
  auto waiting = std::make_unique<WaitingRead>();
  waiting->read = std::move(read);
  waiting->from = from;
  waiting->deadline = now_ + options_.read_wait;
  waiting->next_push = now_ + options_.push_after;
  waiting_reads_.push_back(std::move(waiting));
}

bool ClusterNode::TryServeRead(const ShardRead& read, const ReplyAddress& from) {
  for (const std::string& key : read.keys) {
    if (!participant_.BlockingIntents(key, read.snapshot).empty()) return false;
  }
  if (read.range && !participant_.BlockingIntents(*read.range, read.snapshot).empty()) {
    return false;
  }
  std::string out;
  JsonWriter w = JsonWriter::ContinuingObject(&out);
  w.Key("reads").BeginArray();
  ReadResult result;
  for (const std::string& key : read.keys) {
    if (Status s = store_->GetInto(key, read.snapshot, &result); !s.ok()) {
      ReplyError(from, protocol::ErrorFromStatus(s));
      return true;
    }
    protocol::WriteReadResult(&w, result);
  }
  w.EndArray();
  if (out.size() > protocol::kMaxNodeMessageBytes) {
    ReplyError(from, protocol::Malformed(
                         "the values read on shard " + std::to_string(shard_) + " exceed " +
                         std::to_string(protocol::kMaxNodeMessageBytes) +
                         " bytes, more than one node message carries; read fewer keys at once"));
    return true;
  }
  if (read.range) {
    Result<ScanResult> scan = store_->Scan(*read.range, read.snapshot, read.limit);
    if (!scan.ok()) {
      ReplyError(from, protocol::ErrorFromStatus(scan.status()));
      return true;
    }
    // Cut by size as well as by count: the coordinator's merge stops at a
    // shard's last item when it says `more`, so a shorter answer is exact.
    bool more = scan->more;
    w.Key("items").BeginArray();
    for (const ScanItem& item : scan->items) {
      if (out.size() + 2 * item.key.size() + item.value.size() + 64 >
          protocol::kMaxNodeMessageBytes) {
        more = true;
        break;
      }
      w.BeginObject().Key("k");
      protocol::WriteHexKey(&w, item.key);
      w.FieldUint("v", item.version).FieldUint("t", item.timestamp.value());
      w.Key("val").Raw(item.value).EndObject();
    }
    w.EndArray().Key("more").Bool(more);
  }
  ReplyToNode(from, "shard_read_ok", out);
  return true;
}

void ClusterNode::RetryWaitingReads() {
  std::erase_if(waiting_reads_, [this](const std::unique_ptr<WaitingRead>& waiting) {
    return TryServeRead(waiting->read, waiting->from);
  });
}

void ClusterNode::CheckWaitingReads() {
  RetryWaitingReads();
  std::erase_if(waiting_reads_, [this](const std::unique_ptr<WaitingRead>& waiting) {
    if (waiting->deadline > now_) return false;
    ++read_wait_timeouts_;
    ReplyError(
        waiting->from,
        ErrorReply{
            ErrorCode::kTemporarilyUnavailable,
            "shard " + std::to_string(shard_) + " cannot serve a read at timestamp " +
                std::to_string(waiting->read.snapshot.value()) +
                " yet: a transaction that may commit at or below it is still pending after " +
                std::to_string(options_.read_wait.count()) + " ms; try again"});
    return true;
  });
  for (const auto& waiting : waiting_reads_) {
    if (waiting->next_push > now_) continue;
    waiting->next_push = now_ + options_.push_after;
    std::vector<cluster::TxnId> blockers;
    for (const std::string& key : waiting->read.keys) {
      for (const cluster::TxnId& txn : participant_.BlockingIntents(key, waiting->read.snapshot)) {
        blockers.push_back(txn);
      }
    }
    if (waiting->read.range) {
      for (const cluster::TxnId& txn :
           participant_.BlockingIntents(*waiting->read.range, waiting->read.snapshot)) {
        blockers.push_back(txn);
      }
    }
    for (const cluster::TxnId& txn : blockers) {
      if (auto primary = participant_.PrimaryOf(txn)) Push(txn, *primary);
    }
  }
}

void ClusterNode::Push(cluster::TxnId txn, uint32_t primary) {
  if (!pushing_.insert(txn).second) return;  // already asking
  ++pushes_;
  Call(primary, "record_push", protocol::TxnIdFields(txn),
       [this, txn](const protocol::Envelope* reply) {
         pushing_.erase(txn);
         std::optional<std::string_view> name;
         if (reply == nullptr || reply->type == "error" ||
             reply->body.OptionalString("status", &name) || !name) {
           return;  // asked again later
         }
         std::optional<cluster::TxnStatus> status = ParseStatus(*name);
         if (!status || *status == cluster::TxnStatus::kPending) return;
         Timestamp commit_ts;
         if (*status == cluster::TxnStatus::kCommitted &&
             reply->body.RequiredTimestamp("commit_ts", &commit_ts)) {
           return;
         }
         if (*status == cluster::TxnStatus::kAborted) ++pushed_aborts_;
         (void)ResolveHere(txn, *status, commit_ts);
       });
}

void ClusterNode::PushStaleIntents() {
  for (const cluster::StaleIntent& stale :
       participant_.StaleTransactions(now_, options_.heartbeat_timeout)) {
    Push(stale.txn, stale.primary);
  }
}

void ClusterNode::FinishAbandonedCommits() {
  // By then the coordinator has resolved and had the record forgotten, or
  // given up on some call (each is dropped after --rpc-timeout-ms): a
  // committed record still here after that is ours to finish.
  const uint64_t age_ms =
      2 * static_cast<uint64_t>(options_.rpc_timeout.count() + options_.heartbeat_timeout.count());
  const uint64_t now_ms = cluster::HybridLogicalClock::SystemMillis();
  if (now_ms <= age_ms) return;
  const Timestamp floor = cluster::HybridLogicalClock::Make(now_ms - age_ms, 0);
  for (auto& [txn, record] : records_.CommittedBefore(floor)) {
    if (!finishing_.insert(txn).second) continue;  // still at it
    ResolveOn(txn, record.participants, cluster::TxnStatus::kCommitted, record.commit_timestamp,
              [this, txn = txn](bool all_resolved) {
                finishing_.erase(txn);
                if (!all_resolved) return;  // again next round
                const std::optional<cluster::TxnRecord> before = records_.Find(txn);
                if (records_.Forget(txn)) ++commits_finished_by_primary_;
                (void)PersistRecord(txn, before);  // a failed log refuses everything anyway
              });
  }
}

void ClusterNode::HandlePrepare(const protocol::Envelope& request, const ReplyAddress& from,
                                bool one_phase) {
  const Body& body = request.body;
  cluster::PrepareRequest prepare;
  uint64_t primary = 0;
  if (auto err = protocol::ReadTxnId(body, "txn", &prepare.txn)) {
    return ReplyError(from, *err);
  }
  protocol::MaybeError err = body.RequiredTimestamp("start", &prepare.start);
  if (!err) err = ParseIsolation(body, Isolation::kSerializable, &prepare.isolation);
  if (!err) err = body.RequiredUint("primary", &primary);
  if (!err) err = protocol::ReadWrites(body, "writes", &prepare.writes);
  if (!err) err = protocol::ReadHexKeys(body, "read_keys", &prepare.read_keys);
  if (!err) err = protocol::ReadRanges(body, "read_ranges", &prepare.read_ranges);
  std::vector<uint32_t> participants;  // the primary's prepare names them for the record
  const auto shard_count = static_cast<uint32_t>(map_.shards().size());
  if (!err) err = protocol::ReadShardIds(body, "participants", shard_count, &participants);
  std::optional<bool> blind;
  if (!err) err = body.OptionalBool("blind", &blind);
  if (!err && blind.value_or(false) && !one_phase) {
    err = protocol::Malformed("field 'blind' is for one-phase commits (shard_commit) only");
  }
  prepare.blind = blind.value_or(false);
  if (err) return ReplyError(from, *err);
  if (primary >= shard_count) {
    return ReplyError(from, protocol::Malformed("field 'primary' names no shard"));
  }
  const bool is_primary = primary == shard_;
  if (!one_phase && is_primary &&
      std::find(participants.begin(), participants.end(), shard_) == participants.end()) {
    return ReplyError(from, protocol::Malformed("the primary's prepare must list the "
                                                "transaction's shards, itself included, in "
                                                "field 'participants'"));
  }
  prepare.primary = static_cast<uint32_t>(primary);
  std::optional<Timestamp> hlc;
  (void)body.OptionalTimestamp("hlc", &hlc);
  const uint64_t sent_ms = cluster::HybridLogicalClock::PhysicalMillis(hlc.value_or(clock_.Last()));
  auto conflict = [&](const Status& s) { ReplyError(from, protocol::ErrorFromStatus(s)); };
  if (sent_ms < boot_ms_) {
    return conflict(
        Status(StatusCode::kConflict, "transaction " + prepare.txn.ToString() +
                                          " was sent to shard " + std::to_string(shard_) +
                                          " before it restarted; a copy that old is refused"));
  }
  std::string out;
  if (one_phase) {
    Result<Timestamp> committed = participant_.CommitOnePhase(prepare, sent_ms);
    if (!committed.ok()) return conflict(committed.status());
    JsonWriter::ContinuingObject(&out).FieldUint("commit_ts", committed->value());
    return ReplyToNode(from, "shard_commit_ok", out);
  }
  if (is_primary && !participant_.Outcome(prepare.txn)) {
    // The record comes into being with the primary's intents. A push that
    // got here first left it ABORTED, and then this prepare fails.
    const std::optional<cluster::TxnRecord> before = records_.Find(prepare.txn);
    if (Status s = records_.Create(prepare.txn, std::move(participants), now_); !s.ok()) {
      return conflict(s);
    }
    if (Status s = PersistRecord(prepare.txn, before); !s.ok()) return conflict(s);
  }
  const bool retry = participant_.PrimaryOf(prepare.txn).has_value();
  Result<Timestamp> prepared = participant_.Prepare(prepare, sent_ms, now_);
  if (prepared.ok() && !retry && durable_state_) {
    if (Status s = durable_state_->SavePrepared(prepare, *prepared); !s.ok()) {
      // Not logged, so not prepared: nothing may rely on these intents.
      (void)participant_.Resolve(prepare.txn, cluster::TxnStatus::kAborted, Timestamp());
      prepared = s;
    }
  }
  if (!prepared.ok()) {
    if (is_primary) {
      const std::optional<cluster::TxnRecord> before = records_.Find(prepare.txn);
      records_.Abort(prepare.txn);
      (void)PersistRecord(prepare.txn, before);
    }
    return conflict(prepared.status());
  }
  JsonWriter::ContinuingObject(&out).FieldUint("prepare_ts", prepared->value());
  ReplyToNode(from, "shard_prepare_ok", out);
}

Status ClusterNode::ResolveHere(cluster::TxnId txn, cluster::TxnStatus outcome,
                                Timestamp commit_ts) {
  const bool was_prepared = participant_.PrimaryOf(txn).has_value();
  Status resolved = participant_.Resolve(txn, outcome, commit_ts);
  if (resolved.ok() && was_prepared && durable_state_) {
    // After the versions: a crash in between leaves the intent, and
    // resolving it again after the restart applies nothing twice.
    resolved = durable_state_->ErasePrepared(txn);
  }
  if (resolved.ok()) RetryWaitingReads();
  return resolved;
}

Status ClusterNode::PersistRecord(cluster::TxnId txn,
                                  const std::optional<cluster::TxnRecord>& before) {
  if (!durable_state_) return Status::Ok();
  const std::optional<cluster::TxnRecord> after = records_.Find(txn);
  if (!after) {
    return before ? durable_state_->EraseRecord(txn) : Status::Ok();
  }
  if (before && before->status == after->status) return Status::Ok();
  return durable_state_->SaveRecord(txn, *after);
}

void ClusterNode::HandleResolve(const protocol::Envelope& request, const ReplyAddress& from) {
  cluster::TxnId txn;
  std::optional<std::string_view> name;
  Timestamp commit_ts;
  protocol::MaybeError err = protocol::ReadTxnId(request.body, "txn", &txn);
  if (!err) err = request.body.OptionalString("status", &name);
  if (!err) err = request.body.RequiredTimestamp("commit_ts", &commit_ts);
  if (err) return ReplyError(from, *err);
  cluster::TxnStatus status = cluster::TxnStatus::kPending;
  if (name && *name == "committed") status = cluster::TxnStatus::kCommitted;
  if (name && *name == "aborted") status = cluster::TxnStatus::kAborted;
  if (status == cluster::TxnStatus::kPending) {
    return ReplyError(from,
                      protocol::Malformed("field 'status' must be \"committed\" or \"aborted\""));
  }
  if (Status s = ResolveHere(txn, status, commit_ts); !s.ok()) {
    return ReplyError(from, protocol::ErrorFromStatus(s));
  }
  ReplyToNode(from, "shard_resolve_ok", "");
}

void ClusterNode::HandleRecordRequest(const protocol::Envelope& request, const ReplyAddress& from) {
  cluster::TxnId txn;
  if (auto err = protocol::ReadTxnId(request.body, "txn", &txn)) {
    return ReplyError(from, *err);
  }
  const std::string_view type = request.type;
  const std::optional<cluster::TxnRecord> before = records_.Find(txn);
  std::optional<cluster::TxnRecord> record;
  if (type == "record_commit") {
    Timestamp commit_ts;
    if (auto err = request.body.RequiredTimestamp("commit_ts", &commit_ts)) {
      return ReplyError(from, *err);
    }
    record = records_.Commit(txn, commit_ts);
  } else if (type == "record_abort") {
    record = records_.Abort(txn);
  } else if (type == "record_push") {
    record = records_.Push(txn, now_);
  } else if (type == "record_heartbeat") {
    record = records_.Heartbeat(txn, now_);
  } else if (type == "record_forget") {
    records_.Forget(txn);
  } else {
    return ReplyError(from,
                      ErrorReply{ErrorCode::kNotSupported,
                                 "unknown message type '" + protocol::Abbreviate(type) + "'"});
  }
  if (Status s = PersistRecord(txn, before); !s.ok()) {
    return ReplyError(from, protocol::ErrorFromStatus(s));
  }
  std::string out;
  JsonWriter w = JsonWriter::ContinuingObject(&out);
  if (record) {
    w.Field("status", cluster::TxnStatusName(record->status));
    if (record->status == cluster::TxnStatus::kCommitted) {
      w.FieldUint("commit_ts", record->commit_timestamp.value());
    }
  }
  ReplyToNode(from, std::string(type) + "_ok", out);
}

}  // namespace strata::node
