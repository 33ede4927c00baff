#include "cluster/shard_server.h"

#include <algorithm>

#include "cluster/local_shard_core.h"
#include "cluster/resolution.h"

namespace strata::cluster {

namespace {

// Each waits at most read_wait; this bounds them against a flood.
constexpr size_t kMaxWaitingReads = 100000;
// Watch reads held at once (each member's feeds hold one a shard); past
// this a read is answered at once, as without a long poll.
constexpr size_t kMaxParkedWatches = 1024;
// What a read result or scan item costs in a message beyond its key and
// value bytes (names, numbers, quoting; keys travel as hex).
constexpr size_t kItemOverheadBytes = 64;

// The bytes an item costs in a message.
size_t MessageBytes(const ScanItem& item) {
  return 2 * item.key.size() + item.value.size() + kItemOverheadBytes;
}
size_t MessageBytes(const Change& change) {
  return 2 * change.key.size() + change.value.size() + kItemOverheadBytes;
}

// Keeps the `items` that fit one message after `used` bytes; any cut sets
// `*more` (a merge then stops at the last item kept, so the answer stays
// exact).
template <typename Item>
void CutToFit(std::vector<Item>* items, bool* more, size_t used) {
  for (size_t i = 0; i < items->size(); ++i) {
    used += MessageBytes((*items)[i]);
    if (used > kMaxPeerMessageBytes) {
      items->resize(i);
      *more = true;
      return;
    }
  }
}

}  // namespace

Result<std::unique_ptr<ShardServer>> ShardServer::Create(ShardId shard, uint32_t shard_count,
                                                         MvccStore* store,
                                                         HybridLogicalClock* clock, Peers* peers,
                                                         Timers* timers, bool persist,
                                                         ShardServerOptions options) {
  Result<std::unique_ptr<LocalShardCore>> core =
      LocalShardCore::Create(shard, store, clock, timers, persist,
                             LocalShardCoreOptions{.heartbeat_timeout = options.heartbeat_timeout,
                                                   .outcome_retention = options.outcome_retention,
                                                   .describe_key = options.describe_key,
                                                   .change_log_bytes = options.change_log_bytes});
  if (!core.ok()) return core.status();
  return std::make_unique<ShardServer>(shard, shard_count, std::move(*core), peers, timers,
                                       std::move(options));
}

ShardServer::ShardServer(ShardId shard, uint32_t shard_count, std::unique_ptr<ShardCore> core,
                         Peers* peers, Timers* timers, ShardServerOptions options)
    : shard_(shard),
      shard_count_(shard_count),
      options_(std::move(options)),
      core_(std::move(core)),
      peers_(peers),
      timers_(timers) {
  // A change here is resolved (WatchFrontier passes it) at once when no
  // prepare holds the shard back (its clock is past it), and at the latest
  // once the wall clock is past its millisecond: the held watch reads are
  // looked at both times.
  core_->change_log().SetOnAppend([this](Timestamp t) {
    last_append_ms_ = std::max(last_append_ms_, HybridLogicalClock::PhysicalMillis(t));
    WakeWatchesSoon();
    WakeWatchesAt(last_append_ms_ + 1);
  });
}

ShardServer::~ShardServer() { core_->change_log().SetOnAppend(nullptr); }

void ShardServer::AnswerWaitingAsMoved() {
  const PeerError moved{Status::Unavailable("the replica of shard " + std::to_string(shard_) +
                                            " on this node was removed")};
  auto waiting = std::move(waiting_reads_);
  auto parked = std::move(parked_watches_);
  waiting_reads_.clear();
  parked_watches_.clear();
  for (auto& read : waiting) read->respond(moved);
  for (auto& watch : parked) watch.respond(moved);
}

void ShardServer::Start() {
  using std::chrono::milliseconds;
  timers_->Every(std::max(milliseconds(1), options_.push_after), lifetime_,
                 [this] { CheckWaitingReads(); });
  timers_->Every(std::max(milliseconds(1), options_.heartbeat_timeout / 2), lifetime_, [this] {
    PushStaleIntents();
    FinishAbandonedCommits();
  });
  timers_->Every(milliseconds(1000), lifetime_, [this] { ForgetOldState(); });
  // Only a core whose time moves by its changes alone needs moving along.
  if (!core_->ChangesFollowWallClock()) {
    timers_->Every(std::max(milliseconds(1), options_.close_interval), lifetime_,
                   [this] { core_->KeepTimeMoving(); });
  }
}

// --- reads -------------------------------------------------------------------

bool ShardServer::RedirectedToLeader(const Respond& respond) const {
  std::optional<std::string> leader = core_->LeaderElsewhere();
  if (!leader) return false;
  respond(PeerError{Status::Unavailable("shard " + std::to_string(shard_) + " is led by node " +
                                        *leader + ", not this one"),
                    std::move(leader)});
  return true;
}

void ShardServer::Read(ShardRead read, Respond respond) {
  if (read.at_closed) {
    // At this replica's closed time if that is at least the floor the
    // reader asks (its own last commit of the keys); else at the leader's,
    // the newest. The reader's commit checks what it read either way, so
    // a replica that knows of no leader serves what it has.
    if (core_->LastTimestamp() < read.snapshot && RedirectedToLeader(respond)) return;
    read.snapshot = core_->LastTimestamp();
    ++reads_at_closed_;
    return ServeOrWait(std::move(read), std::move(respond));
  }
  // A replica serves what it has closed; only the leader closes more.
  if (read.snapshot > core_->LastTimestamp() && RedirectedToLeader(respond)) return;
  // No prepare here may take a timestamp at or below the snapshot from now on.
  const Timestamp snapshot = read.snapshot;
  core_->Close(snapshot,
               [this, read = std::move(read), respond = std::move(respond)](Status closed) mutable {
                 if (!closed.ok()) return respond(PeerError{closed});
                 ServeOrWait(std::move(read), std::move(respond));
               });
}

void ShardServer::ServeOrWait(ShardRead read, Respond respond) {
  if (TryServeRead(read, respond)) return;
  if (waiting_reads_.size() >= kMaxWaitingReads) {
    return respond(PeerError{Status::Unavailable(
        "shard " + std::to_string(shard_) + " already holds " + std::to_string(kMaxWaitingReads) +
        " reads waiting for pending transactions; try again")});
  }
  ++reads_waited_;
  const Clock::time_point now = timers_->now();
  waiting_reads_.push_back(std::make_unique<WaitingRead>(WaitingRead{
      std::move(read), std::move(respond), now + options_.read_wait, now + options_.push_after}));
}

bool ShardServer::TryServeRead(const ShardRead& read, const Respond& respond) {
  for (const std::string& key : read.keys) {
    if (!core_->participant().BlockingIntents(key, read.snapshot).empty()) return false;
  }
  if (read.range && !core_->participant().BlockingIntents(*read.range, read.snapshot).empty()) {
    return false;
  }
  ShardReadReply reply;
  reply.snapshot = read.snapshot;
  reply.reads.resize(read.keys.size());
  size_t bytes = 0;
  for (size_t i = 0; i < read.keys.size(); ++i) {
    if (Status s = core_->store().GetInto(read.keys[i], read.snapshot, &reply.reads[i]); !s.ok()) {
      respond(PeerError{s});
      return true;
    }
    bytes += reply.reads[i].value.size() + kItemOverheadBytes;
  }
  if (bytes > kMaxPeerMessageBytes) {
    respond(PeerError{Status::InvalidArgument(
        "the values read on shard " + std::to_string(shard_) + " exceed " +
        std::to_string(kMaxPeerMessageBytes) +
        " bytes, more than one node message carries; read fewer keys at once")});
    return true;
  }
  if (read.range) {
    Result<ScanResult> scan = core_->store().Scan(*read.range, read.snapshot, read.limit);
    if (!scan.ok()) {
      respond(PeerError{scan.status()});
      return true;
    }
    CutToFit(&scan->items, &scan->more, bytes);
    reply.scan = std::move(*scan);
  }
  respond(std::move(reply));
  return true;
}

void ShardServer::Scan(const RawScan& scan, Respond respond) {
  Result<ScanResult> result = core_->store().Scan(scan.range, scan.at, scan.limit);
  if (!result.ok()) return respond(PeerError{result.status()});
  CutToFit(&result->items, &result->more, 0);
  respond(RawScanReply{std::move(*result)});
}

void ShardServer::Changes(const RawChanges& changes, Respond respond) {
  Result<ChangesResult> result =
      core_->store().Changes(changes.since, changes.range, changes.limit);
  if (!result.ok()) return respond(PeerError{result.status()});
  CutToFit(&result->changes, &result->more, 0);
  respond(RawChangesReply{std::move(*result)});
}

// A watch reply cut short (by a limit or by size) may end inside a
// timestamp: it then ends before that timestamp, so a commit's changes
// always travel together, and the next read starts over from the same
// cursor. A reply of one timestamp is whole (one commit's changes on one
// shard fit a message and a limit: kMaxTxnWriteBytes, kMaxTxnWriteKeys).
static void EndBeforeLastTimestamp(ShardWatchReply* reply, uint64_t cursor) {
  if (reply->changes.empty()) return;
  const Timestamp last = reply->changes.back().timestamp;
  reply->cursor = cursor;
  if (reply->changes.front().timestamp == last) {
    reply->resolved = last;
    return;
  }
  std::erase_if(reply->changes, [&](const Change& c) { return c.timestamp == last; });
  reply->resolved = Timestamp(last.value() - 1);
}

Timestamp ShardServer::WatchFrontier() const {
  const Timestamp wall(HybridLogicalClock::Make(HybridLogicalClock::SystemMillis(), 0).value() - 1);
  const Timestamp safe = core_->participant().SafeTime();
  // SafeTime is min(clock, oldest prepare - 1): the wall clock may stand in
  // for the clock only when no prepare holds the time back below it, and
  // only if later changes cannot take earlier times (ChangesFollowWallClock).
  if (safe < core_->LastTimestamp() || !core_->ChangesFollowWallClock()) return safe;
  return std::max(safe, wall);
}

void ShardServer::Watch(const ShardWatch& watch, Respond respond) {
  // Asked to resolve up to close_to first, where time moves only through
  // a log (elsewhere the wall clock moves it). Only the leader closes:
  // another replica names it (Peers follows), or knowing of none answers
  // as it is; so does the leader if its close fails (the reader asks
  // again).
  if (watch.close_to > WatchFrontier() && !core_->ChangesFollowWallClock()) {
    if (core_->Leads()) {
      ShardWatch after_close = watch;
      after_close.close_to = Timestamp();
      return core_->Close(watch.close_to, [this, after_close = std::move(after_close),
                                           respond = std::move(respond)](Status) mutable {
        Watch(after_close, std::move(respond));
      });
    }
    if (RedirectedToLeader(respond)) return;
  }
  if (watch.range.end && *watch.range.end <= watch.range.start) {
    // An empty range: the resolved timestamp alone (ResolvedFrontier).
    return respond(ShardWatchReply{{}, WatchFrontier(), watch.cursor, {}});
  }
  if (watch.after < core_->store().compaction_horizon()) {
    return respond(
        PeerError{Status::Compacted("a watch from " + std::to_string(watch.after.value()) +
                                    " reads below this shard's compaction horizon " +
                                    std::to_string(core_->store().compaction_horizon().value()))});
  }
  if (watch.park_ms == 0 || parked_watches_.size() >= kMaxParkedWatches) {
    TryServeWatch(watch, respond, /*even_if_empty=*/true);
    return;
  }
  if (TryServeWatch(watch, respond, /*even_if_empty=*/false)) return;
  const auto park = std::chrono::milliseconds(std::min(watch.park_ms, kMaxWatchParkMs));
  parked_watches_.push_back(ParkedWatch{watch, std::move(respond), timers_->now() + park});
  timers_->After(park, lifetime_, [this] { WakeParkedWatches(); });
  // A change appended in this millisecond, before anything was held to be
  // woken by it, is resolved at the next boundary: wake then too.
  if (last_append_ms_ >= HybridLogicalClock::SystemMillis()) WakeWatchesAt(last_append_ms_ + 1);
}

bool ShardServer::TryServeWatch(const ShardWatch& watch, const Respond& respond,
                                bool even_if_empty) {
  const Timestamp resolved = WatchFrontier();
  ShardWatchReply reply{{}, std::max(resolved, watch.after), watch.cursor, {}};
  if (resolved <= watch.after) {
    if (!even_if_empty) return false;
    respond(std::move(reply));
    return true;
  }
  const size_t limit = std::min(watch.limit == 0 ? kMaxRawLimit : watch.limit, kMaxRawLimit);
  if (auto page =
          core_->change_log().Read(watch.range, watch.after, resolved, watch.cursor, limit)) {
    reply.changes = std::move(page->changes);
    reply.resolved = page->upto;
    reply.cursor = page->next_cursor;
  } else {
    // The log no longer holds what this reader needs: the store has it.
    // One commit's keys on one shard always fit the limit asked, so the
    // first timestamp returned is whole.
    Result<ChangesResult> result =
        core_->store().Changes(watch.after, watch.range, kMaxTxnWriteKeys + limit);
    if (!result.ok()) {
      respond(PeerError{result.status()});
      return true;
    }
    std::erase_if(result->changes, [&](const Change& c) { return c.timestamp > resolved; });
    reply.changes = std::move(result->changes);
    reply.cursor = core_->change_log().begin();
    if (result->more) EndBeforeLastTimestamp(&reply, watch.cursor);
  }
  if (reply.changes.empty() && !even_if_empty) return false;
  bool cut = false;
  CutToFit(&reply.changes, &cut, 0);
  if (cut) EndBeforeLastTimestamp(&reply, watch.cursor);
  if (watch.with_previous) AddPrevious(&reply);
  respond(std::move(reply));
  return true;
}

void ShardServer::WakeParkedWatches() {
  if (parked_watches_.empty()) return;
  const Clock::time_point now = timers_->now();
  // Answering may hold a new read here at once (this node's own feed):
  // it joins the list after this pass.
  std::vector<ParkedWatch> parked = std::move(parked_watches_);
  parked_watches_.clear();
  std::vector<ParkedWatch> still;
  for (ParkedWatch& p : parked) {
    if (!TryServeWatch(p.watch, p.respond, /*even_if_empty=*/p.deadline <= now)) {
      still.push_back(std::move(p));
    }
  }
  for (ParkedWatch& p : still) parked_watches_.push_back(std::move(p));
}

void ShardServer::WakeWatchesSoon() {
  if (parked_watches_.empty() || wake_soon_) return;
  wake_soon_ = true;
  // After the request being handled (its change is then whole).
  timers_->After(std::chrono::microseconds(0), lifetime_, [this] {
    wake_soon_ = false;
    WakeParkedWatches();
  });
}

void ShardServer::WakeWatchesAt(uint64_t ms) {
  if (parked_watches_.empty() || !watch_wakes_.insert(ms).second) return;
  const uint64_t now_us = HybridLogicalClock::SystemMicros();
  const uint64_t due_us = ms * 1000;
  timers_->After(std::chrono::microseconds(due_us > now_us ? due_us - now_us : 0), lifetime_,
                 [this, ms] {
                   watch_wakes_.erase(ms);
                   // Timers count from the loop turn's start: this one may fire before the
                   // wall clock got there (the resolved timestamp would not have passed).
                   if (HybridLogicalClock::SystemMillis() < ms) return WakeWatchesAt(ms);
                   WakeParkedWatches();
                 });
}

void ShardServer::AddPrevious(ShardWatchReply* reply) const {
  size_t used = 0;
  for (const Change& c : reply->changes) used += MessageBytes(c);
  reply->previous.reserve(reply->changes.size());
  for (const Change& c : reply->changes) {
    std::optional<Change> previous;
    Result<ReadResult> r = core_->store().Get(c.key, Timestamp(c.timestamp.value() - 1));
    if (r.ok() && r->found && !r->deleted) {
      Change p{c.key, r->timestamp, r->version, false, std::move(r->value)};
      used += MessageBytes(p);
      if (used <= kMaxPeerMessageBytes) previous = std::move(p);
    }
    reply->previous.push_back(std::move(previous));
  }
}

void ShardServer::RetryWaitingReads() {
  std::erase_if(waiting_reads_, [this](const std::unique_ptr<WaitingRead>& waiting) {
    return TryServeRead(waiting->read, waiting->respond);
  });
}

void ShardServer::CheckWaitingReads() {
  RetryWaitingReads();
  const Clock::time_point now = timers_->now();
  std::erase_if(waiting_reads_, [&](const std::unique_ptr<WaitingRead>& waiting) {
    if (waiting->deadline > now) return false;
    ++read_wait_timeouts_;
    waiting->respond(PeerError{Status::Unavailable(
        "shard " + std::to_string(shard_) + " cannot serve a read at timestamp " +
        std::to_string(waiting->read.snapshot.value()) +
        " yet: a transaction that may commit at or below it is still pending after " +
        std::to_string(options_.read_wait.count()) + " ms; try again")});
    return true;
  });
  for (const auto& waiting : waiting_reads_) {
    if (waiting->next_push > now) continue;
    waiting->next_push = now + options_.push_after;
    std::vector<TxnId> blockers;
    for (const std::string& key : waiting->read.keys) {
      for (const TxnId& txn : core_->participant().BlockingIntents(key, waiting->read.snapshot)) {
        blockers.push_back(txn);
      }
    }
    if (waiting->read.range) {
      for (const TxnId& txn :
           core_->participant().BlockingIntents(*waiting->read.range, waiting->read.snapshot)) {
        blockers.push_back(txn);
      }
    }
    for (const TxnId& txn : blockers) {
      if (auto primary = core_->participant().PrimaryOf(txn)) Push(txn, *primary);
    }
  }
}

// --- pushes and abandoned commits ---------------------------------------------

void ShardServer::Push(TxnId txn, ShardId primary) {
  if (!pushing_.insert(txn).second) return;  // already asking
  ++pushes_;
  peers_->Call(
      primary, RecordCall{RecordOp::kPush, txn, Timestamp()},
      [this, owner = Timers::Owner(lifetime_), txn](const PeerReply* reply) {
        if (owner.expired()) return;  // this replica moved away meanwhile
        pushing_.erase(txn);
        const RecordReply* record = ReplyAs<RecordReply>(reply);
        // Asked again later if the record is still pending or unknown.
        if (record == nullptr || !record->status || *record->status == TxnStatus::kPending) {
          return;
        }
        if (*record->status == TxnStatus::kAborted) ++pushed_aborts_;
        ResolveHere(txn, *record->status, record->commit_timestamp, nullptr);
      });
}

void ShardServer::PushStaleIntents() {
  for (const StaleIntent& stale :
       core_->participant().StaleTransactions(timers_->now(), options_.heartbeat_timeout)) {
    Push(stale.txn, stale.primary);
  }
}

void ShardServer::FinishAbandonedCommits() {
  // By then the coordinator has resolved and had the record forgotten, or
  // given up on some call (each is dropped after the RPC timeout): a
  // committed record still here after that is ours to finish.
  const uint64_t age_ms =
      2 * static_cast<uint64_t>(options_.rpc_timeout.count() + options_.heartbeat_timeout.count());
  const uint64_t now_ms = HybridLogicalClock::SystemMillis();
  if (now_ms <= age_ms) return;
  const Timestamp floor = HybridLogicalClock::Make(now_ms - age_ms, 0);
  for (auto& [txn, record] : core_->records().CommittedBefore(floor)) {
    if (!finishing_.insert(txn).second) continue;  // still at it
    ResolveOn(
        peers_, txn, record.participants, TxnStatus::kCommitted, record.commit_timestamp,
        [this, owner = Timers::Owner(lifetime_), txn = txn](bool all_resolved) {
          if (owner.expired()) return;  // this replica moved away meanwhile
          finishing_.erase(txn);
          if (!all_resolved) return;  // again next round
          // A failed change is tried again next round.
          core_->Record(
              RecordCall{RecordOp::kForget, txn, Timestamp()}, [this, txn](const PeerReply& reply) {
                if (std::holds_alternative<RecordReply>(reply) && !core_->records().Find(txn)) {
                  ++commits_finished_by_primary_;
                }
              });
        });
  }
}

void ShardServer::ForgetOldState() { core_->ForgetOldState(HybridLogicalClock::SystemMillis()); }

// --- prepares, commits, resolutions -------------------------------------------

Status ShardServer::CheckShardIds(const ShardPrepare& prepare) const {
  if (prepare.request.primary >= shard_count_) {
    return Status::InvalidArgument("field 'primary' names no shard");
  }
  for (ShardId shard : prepare.participants) {
    if (shard >= shard_count_) {
      return Status::InvalidArgument(
          "field 'participants' must be a list of distinct shard ids below " +
          std::to_string(shard_count_));
    }
  }
  const bool is_primary = prepare.request.primary == shard_;
  if (is_primary && std::find(prepare.participants.begin(), prepare.participants.end(), shard_) ==
                        prepare.participants.end()) {
    return Status::InvalidArgument(
        "the primary's prepare must list the transaction's shards, itself included, in field "
        "'participants'");
  }
  return Status::Ok();
}

void ShardServer::Commit(const ShardCommit& commit, Timestamp sender_clock, Respond respond) {
  if (commit.request.primary >= shard_count_) {
    return respond(PeerError{Status::InvalidArgument("field 'primary' names no shard")});
  }
  if (RedirectedToLeader(respond)) return;
  core_->CommitOnePhase(commit.request, sender_clock, std::move(respond));
}

void ShardServer::Prepare(ShardPrepare prepare, Timestamp sender_clock, Respond respond) {
  if (Status s = CheckShardIds(prepare); !s.ok()) return respond(PeerError{s});
  if (RedirectedToLeader(respond)) return;
  core_->Prepare(std::move(prepare), sender_clock, std::move(respond));
}

void ShardServer::ResolveHere(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp,
                              ShardCore::Done done) {
  core_->Resolve(txn, outcome, commit_timestamp, [this, done = std::move(done)](Status resolved) {
    if (resolved.ok()) {
      RetryWaitingReads();
      // An intent gone may let the resolved timestamp pass changes the held
      // watch reads wait for (an abort appends nothing to wake them).
      WakeWatchesSoon();
      WakeWatchesAt(HybridLogicalClock::SystemMillis() + 1);
    }
    if (done) done(resolved);
  });
}

void ShardServer::Resolve(const ShardResolve& resolve, Respond respond) {
  if (resolve.outcome == TxnStatus::kPending) {
    return respond(PeerError{Status::InvalidArgument("a resolution must be committed or aborted")});
  }
  if (RedirectedToLeader(respond)) return;
  ResolveHere(resolve.txn, resolve.outcome, resolve.commit_timestamp,
              [respond = std::move(respond)](Status resolved) {
                if (!resolved.ok()) return respond(PeerError{resolved});
                respond(ResolveReply{});
              });
}

void ShardServer::Compact(Timestamp horizon, Respond respond) {
  if (RedirectedToLeader(respond)) return;
  core_->Compact(horizon, std::move(respond));
}

void ShardServer::Record(const RecordCall& call, Respond respond) {
  // Heartbeats and pushes too: the leader's own.
  if (RedirectedToLeader(respond)) return;
  core_->Record(call, std::move(respond));
}

ShardServerStats ShardServer::Stats() const {
  ShardServerStats stats;
  stats.intents = core_->participant().GetIntentStats(timers_->now());
  stats.resolved_timestamp = core_->participant().SafeTime();
  stats.txn_records = core_->records().size();
  stats.pending_txn_records = core_->records().pending();
  stats.commits_finished_by_primary = commits_finished_by_primary_;
  stats.reads_waited = reads_waited_;
  stats.reads_at_closed = reads_at_closed_;
  stats.reads_waiting = waiting_reads_.size();
  stats.read_wait_timeouts = read_wait_timeouts_;
  stats.pushes = pushes_;
  stats.pushed_aborts = pushed_aborts_;
  return stats;
}

}  // namespace strata::cluster
