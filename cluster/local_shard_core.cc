#include "cluster/local_shard_core.h"

#include <utility>

namespace strata::cluster {

Result<std::unique_ptr<LocalShardCore>> LocalShardCore::Create(ShardId shard, MvccStore* store,
                                                               HybridLogicalClock* clock,
                                                               Timers* timers, bool persist,
                                                               LocalShardCoreOptions options) {
  std::unique_ptr<LocalShardCore> core(new LocalShardCore(shard, store, clock, timers, options));
  if (persist) {
    // Prepares and records from before a restart come back as they were;
    // pending ones are settled through their records like any other.
    core->durable_state_.emplace(store, clock);
    Result<DurableClusterState::Loaded> loaded = core->durable_state_->Load();
    if (!loaded.ok()) return loaded.status();
    const Clock::time_point now = timers->now();
    for (const auto& [request, prepare_ts] : loaded->prepared) {
      core->participant_.RestorePrepared(request, prepare_ts, now);
    }
    for (const auto& [txn, record] : loaded->records) core->records_.Restore(txn, record, now);
  }
  return core;
}

LocalShardCore::LocalShardCore(ShardId shard, MvccStore* store, HybridLogicalClock* clock,
                               Timers* timers, const LocalShardCoreOptions& options)
    : shard_(shard),
      store_(store),
      clock_(clock),
      timers_(timers),
      boot_ms_(HybridLogicalClock::SystemMillis()),
      // Above every sequence number a log of this shard handed out before a
      // restart (it appends far fewer than one entry a microsecond), and
      // behind everything the store already holds.
      change_log_(options.change_log_bytes, HybridLogicalClock::SystemMicros(),
                  store->max_timestamp().value_or(Timestamp())),
      participant_(store, clock,
                   ParticipantOptions{.outcome_retention = options.outcome_retention,
                                      .describe_key = options.describe_key,
                                      .change_log = &change_log_}),
      records_(options.heartbeat_timeout) {}

Status LocalShardCore::CheckSentAfterStart(TxnId txn, Timestamp sender_clock) const {
  if (HybridLogicalClock::PhysicalMillis(sender_clock) >= boot_ms_) return Status::Ok();
  return Status(StatusCode::kConflict, "transaction " + txn.ToString() + " was sent to shard " +
                                           std::to_string(shard_) +
                                           " before it restarted; a copy that old is refused");
}

Status LocalShardCore::PersistRecord(TxnId txn, const std::optional<TxnRecord>& before) {
  if (!durable_state_) return Status::Ok();
  const std::optional<TxnRecord> after = records_.Find(txn);
  if (!after) return before ? durable_state_->EraseRecord(txn) : Status::Ok();
  if (before && before->status == after->status) return Status::Ok();
  return durable_state_->SaveRecord(txn, *after);
}

void LocalShardCore::Prepare(ShardPrepare prepare, Timestamp sender_clock, Respond done) {
  const PrepareRequest& request = prepare.request;
  if (Status s = CheckSentAfterStart(request.txn, sender_clock); !s.ok()) {
    return done(PeerError{s});
  }
  const bool is_primary = request.primary == shard_;
  const Clock::time_point now = timers_->now();
  if (is_primary && !participant_.Outcome(request.txn)) {
    // The record comes into being with the primary's intents. A push that
    // got here first left it ABORTED, and then this prepare fails.
    const std::optional<TxnRecord> before = records_.Find(request.txn);
    if (Status s = records_.Create(request.txn, std::move(prepare.participants), now); !s.ok()) {
      return done(PeerError{s});
    }
    if (Status s = PersistRecord(request.txn, before); !s.ok()) return done(PeerError{s});
  }
  const bool retry = participant_.PrimaryOf(request.txn).has_value();
  Result<Timestamp> prepared =
      participant_.Prepare(request, HybridLogicalClock::PhysicalMillis(sender_clock), now);
  if (prepared.ok() && !retry && durable_state_) {
    if (Status s = durable_state_->SavePrepared(request, *prepared); !s.ok()) {
      // Not logged, so not prepared: nothing may rely on these intents.
      (void)participant_.Resolve(request.txn, TxnStatus::kAborted, Timestamp());
      prepared = s;
    }
  }
  if (!prepared.ok()) {
    if (is_primary) {
      const std::optional<TxnRecord> before = records_.Find(request.txn);
      records_.Abort(request.txn);
      (void)PersistRecord(request.txn, before);
    }
    return done(PeerError{prepared.status()});
  }
  done(PrepareReply{*prepared});
}

void LocalShardCore::CommitOnePhase(const PrepareRequest& request, Timestamp sender_clock,
                                    Respond done) {
  if (Status s = CheckSentAfterStart(request.txn, sender_clock); !s.ok()) {
    // Unjudged, not a conflict: a copy of this commit sent before may have
    // committed here before the restart (Coordinator::CommitOnePhase).
    return done(PeerError{Status::Unavailable(std::string(s.message()))});
  }
  Result<Timestamp> committed =
      participant_.CommitOnePhase(request, HybridLogicalClock::PhysicalMillis(sender_clock));
  if (!committed.ok()) return done(PeerError{committed.status()});
  done(CommitReply{*committed});
}

void LocalShardCore::Resolve(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp, Done done) {
  const bool was_prepared = participant_.PrimaryOf(txn).has_value();
  Status resolved = participant_.Resolve(txn, outcome, commit_timestamp);
  if (resolved.ok() && was_prepared && durable_state_) {
    // After the versions: a crash in between leaves the intent, and
    // resolving it again after the restart applies nothing twice.
    resolved = durable_state_->ErasePrepared(txn);
  }
  done(resolved);
}

void LocalShardCore::Record(const RecordCall& call, Respond done) {
  const Clock::time_point now = timers_->now();
  const std::optional<TxnRecord> before = records_.Find(call.txn);
  RecordReply reply = ApplyRecordCall(&records_, call, now);
  if (Status s = PersistRecord(call.txn, before); !s.ok()) return done(PeerError{s});
  done(std::move(reply));
}

void LocalShardCore::Close(Timestamp snapshot, Done done) { done(clock_->Update(snapshot)); }

void LocalShardCore::ForgetOldState(uint64_t now_ms) {
  participant_.ForgetOldOutcomes(now_ms);
  // Records are normally forgotten when every participant has resolved
  // (RecordOp::kForget); an ABORTED one whose coordinator died first goes
  // after this (a COMMITTED one: ShardServer::FinishAbandonedCommits).
  const auto retention =
      static_cast<uint64_t>(std::chrono::milliseconds(kAbortedRecordRetention).count());
  if (now_ms <= retention) return;
  for (TxnId txn :
       records_.ForgetAbortedBefore(HybridLogicalClock::Make(now_ms - retention, 0).value())) {
    // Or it would come back at the next restart. A failed log refuses
    // everything after anyway.
    if (durable_state_) (void)durable_state_->EraseRecord(txn);
  }
}

}  // namespace strata::cluster
