#include "cluster/participant.h"

#include <algorithm>
#include <utility>

namespace strata::cluster {

namespace {

// Without a describe_key option: the key's first 32 bytes in hex (engine
// bytes need not be text, and error texts must be UTF-8).
std::string HexKeyText(std::string_view key) {
  constexpr size_t kMaxBytes = 32;
  constexpr char kDigits[] = "0123456789abcdef";
  std::string text = "0x";
  for (unsigned char c : key.substr(0, kMaxBytes)) {
    text.push_back(kDigits[c >> 4]);
    text.push_back(kDigits[c & 15]);
  }
  if (key.size() > kMaxBytes) text.append("...");
  return text;
}

std::string TsText(Timestamp t) { return std::to_string(t.value()); }

Status Conflict(std::string message) { return Status(StatusCode::kConflict, std::move(message)); }

}  // namespace

Participant::Participant(MvccStore* store, HybridLogicalClock* clock, ParticipantOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

std::string Participant::KeyTextOf(std::string_view key) const {
  return options_.describe_key ? options_.describe_key(key) : HexKeyText(key);
}

Status Participant::CheckSentTime(uint64_t sent_ms) const {
  // "Now" is the later of this shard's clock and the newest wall time any
  // outcome was forgotten at: a message older than the retention by either
  // may be about a transaction whose outcome is gone.
  const uint64_t now_ms =
      std::max(HybridLogicalClock::PhysicalMillis(clock_->Last()), forgot_at_ms_);
  const uint64_t retention = static_cast<uint64_t>(options_.outcome_retention.count());
  if (sent_ms + retention < now_ms) {
    return Conflict("the request was sent at " + std::to_string(sent_ms) + " ms, " +
                    std::to_string(now_ms - sent_ms) +
                    " ms ago, longer than the outcome retention of " + std::to_string(retention) +
                    " ms: refusing it, as its transaction may already have finished");
  }
  return Status::Ok();
}

Status Participant::CheckRequest(const PrepareRequest& request, uint64_t sent_ms) const {
  if (Status s = CheckSentTime(sent_ms); !s.ok()) return s;
  const Timestamp horizon = store_->compaction_horizon();
  if (request.start < horizon) {
    return Status::Compacted("transaction " + request.txn.ToString() + "'s start timestamp " +
                             TsText(request.start) + " is below the compaction horizon " +
                             TsText(horizon));
  }
  for (const BatchWrite& w : request.writes) {
    std::string_view value;
    if (w.value) value = *w.value;
    if (Status s = store_->CheckWrite(w.key, w.value ? &value : nullptr); !s.ok()) return s;
  }
  return CheckConflicts(request);
}

Status Participant::CheckConflicts(const PrepareRequest& request) const {
  const TxnId self = request.txn;
  const std::string start = TsText(request.start);
  auto other_intent = [&](std::string_view key) -> std::optional<TxnId> {
    auto it = intents_.find(key);
    if (it == intents_.end() || it->second == self) return std::nullopt;
    return it->second;
  };

  for (const BatchWrite& w : request.writes) {
    if (std::optional<Timestamp> latest = store_->LatestTimestamp(w.key);
        latest && *latest > request.start) {
      return Conflict("write-write conflict: key " + KeyTextOf(w.key) + " was written at " +
                      TsText(*latest) + ", after the transaction's start timestamp " + start);
    }
    if (std::optional<TxnId> holder = other_intent(w.key)) {
      return Conflict("write-write conflict: key " + KeyTextOf(w.key) +
                      " has an intent of transaction " + holder->ToString());
    }
    auto [begin, end] = read_locks_.equal_range(w.key);
    for (auto it = begin; it != end; ++it) {
      if (it->second != self) {
        return Conflict("write-read conflict: key " + KeyTextOf(w.key) +
                        " was read by prepared transaction " + it->second.ToString());
      }
    }
    for (const auto& [txn, prepared] : prepared_) {
      if (txn == self) continue;
      for (const KeyRange& range : prepared.read_ranges) {
        if (range.Contains(w.key)) {
          return Conflict("write-read conflict: key " + KeyTextOf(w.key) +
                          " is in a range read by prepared transaction " + txn.ToString());
        }
      }
    }
  }

  if (request.isolation != Isolation::kSerializable) return Status::Ok();
  for (const std::string& key : request.read_keys) {
    if (std::optional<Timestamp> latest = store_->LatestTimestamp(key);
        latest && *latest > request.start) {
      return Conflict("read-write conflict: key " + KeyTextOf(key) + " was written at " +
                      TsText(*latest) + ", after the transaction's start timestamp " + start);
    }
    if (std::optional<TxnId> holder = other_intent(key)) {
      return Conflict("read-write conflict: key " + KeyTextOf(key) +
                      " has an intent of transaction " + holder->ToString());
    }
  }
  for (const KeyRange& range : request.read_ranges) {
    if (std::optional<std::string> key = store_->FirstKeyWrittenAfter(range, request.start)) {
      return Conflict("read-write conflict: key " + KeyTextOf(*key) +
                      " in a range the transaction read was written after its start timestamp " +
                      start);
    }
    for (auto it = intents_.lower_bound(range.start);
         it != intents_.end() && (!range.end || it->first < *range.end); ++it) {
      if (it->second != self) {
        return Conflict("read-write conflict: key " + KeyTextOf(it->first) +
                        " in a range the transaction read has an intent of transaction " +
                        it->second.ToString());
      }
    }
  }
  return Status::Ok();
}

Result<Timestamp> Participant::Prepare(const PrepareRequest& request, uint64_t sent_ms,
                                       Clock::time_point now) {
  if (auto it = prepared_.find(request.txn); it != prepared_.end()) {
    return it->second.prepare_timestamp;  // a retry
  }
  if (auto it = finished_.find(request.txn); it != finished_.end()) {
    return Conflict("transaction " + request.txn.ToString() + " already finished here (" +
                    TxnStatusName(it->second.outcome) + ")");
  }
  if (Status s = CheckRequest(request, sent_ms); !s.ok()) {
    // Final, as in CommitOnePhase: the coordinator aborts on this answer.
    finished_[request.txn] = Finished{TxnStatus::kAborted, Timestamp()};
    return s;
  }
  Result<Timestamp> prepare_timestamp = clock_->Next();
  if (!prepare_timestamp.ok()) return prepare_timestamp.status();
  Register(request, *prepare_timestamp, now);
  return *prepare_timestamp;
}

void Participant::Register(const PrepareRequest& request, Timestamp prepare_timestamp,
                           Clock::time_point now) {
  Prepared prepared;
  prepared.prepare_timestamp = prepare_timestamp;
  prepared.primary = request.primary;
  prepared.prepared_at = now;
  prepared.writes = request.writes;
  if (request.isolation == Isolation::kSerializable) {
    prepared.read_keys = request.read_keys;
    prepared.read_ranges = request.read_ranges;
  }
  for (const BatchWrite& w : prepared.writes) intents_.emplace(w.key, request.txn);
  for (const std::string& key : prepared.read_keys) read_locks_.emplace(key, request.txn);
  // Only intents can become commits here: a transaction that merely read
  // this shard does not hold back its safe time.
  if (!prepared.writes.empty()) prepare_timestamps_.insert(prepare_timestamp.value());
  prepared_.emplace(request.txn, std::move(prepared));
}

Result<Timestamp> Participant::CommitOnePhase(const PrepareRequest& request, uint64_t sent_ms) {
  if (auto it = finished_.find(request.txn); it != finished_.end()) {
    if (it->second.outcome == TxnStatus::kCommitted) return it->second.commit_timestamp;
    return Conflict("transaction " + request.txn.ToString() + " already finished here (" +
                    TxnStatusName(it->second.outcome) + ")");
  }
  if (prepared_.count(request.txn) != 0) {
    return Status::InvalidArgument("transaction " + request.txn.ToString() +
                                   " is prepared here; it must be resolved, not committed in "
                                   "one phase");
  }
  PrepareRequest checked_request;
  const PrepareRequest* checked = &request;
  if (request.blind) {
    checked_request = request;
    checked_request.start = std::max(request.start, clock_->Last());
    checked = &checked_request;
  }
  if (Status s = CheckRequest(*checked, sent_ms); !s.ok()) {
    // Final: a resent copy arriving after the conflict is gone must get the
    // same answer, or a transaction its coordinator reported as failed
    // could still commit.
    finished_[request.txn] = Finished{TxnStatus::kAborted, Timestamp()};
    return s;
  }
  Result<Timestamp> commit_timestamp = clock_->Next();
  if (!commit_timestamp.ok()) return commit_timestamp.status();
  if (!request.writes.empty()) {
    Status applied = store_->ApplyBatch(request.writes, *commit_timestamp);
    if (!applied.ok() && applied.code() != StatusCode::kIoError) return applied;
    if (options_.change_log) options_.change_log->Append(request.writes, *commit_timestamp);
    finished_[request.txn] = Finished{TxnStatus::kCommitted, *commit_timestamp};
    if (!applied.ok()) return applied;
  } else {
    finished_[request.txn] = Finished{TxnStatus::kCommitted, *commit_timestamp};
  }
  return *commit_timestamp;
}

void Participant::Release(TxnId txn, const Prepared& prepared) {
  for (const BatchWrite& w : prepared.writes) {
    auto it = intents_.find(w.key);
    if (it != intents_.end() && it->second == txn) intents_.erase(it);
  }
  for (const std::string& key : prepared.read_keys) {
    auto [begin, end] = read_locks_.equal_range(key);
    for (auto it = begin; it != end;) {
      it = (it->second == txn) ? read_locks_.erase(it) : std::next(it);
    }
  }
  if (!prepared.writes.empty()) {
    auto it = prepare_timestamps_.find(prepared.prepare_timestamp.value());
    if (it != prepare_timestamps_.end()) prepare_timestamps_.erase(it);
  }
}

void Participant::RestorePrepared(const PrepareRequest& request, Timestamp prepare_timestamp,
                                  Clock::time_point now) {
  if (prepared_.count(request.txn) != 0) return;
  clock_->Observe(prepare_timestamp);
  Register(request, prepare_timestamp, now);
}

Status Participant::Resolve(TxnId txn, TxnStatus outcome, Timestamp commit_timestamp) {
  if (outcome == TxnStatus::kPending) {
    return Status::InvalidArgument("transaction " + txn.ToString() +
                                   " cannot be resolved as pending");
  }
  if (auto it = finished_.find(txn); it != finished_.end()) {
    if (it->second.outcome == outcome) return Status::Ok();  // a retry
    return Status::InvalidArgument("transaction " + txn.ToString() + " already finished here (" +
                                   TxnStatusName(it->second.outcome) +
                                   "); it cannot be resolved as " + TxnStatusName(outcome));
  }
  const Timestamp recorded = outcome == TxnStatus::kCommitted ? commit_timestamp : Timestamp();
  auto it = prepared_.find(txn);
  if (it == prepared_.end()) {
    // Never prepared here: remember the outcome, so a late prepare is refused.
    if (outcome == TxnStatus::kCommitted) clock_->Observe(commit_timestamp);
    finished_[txn] = Finished{outcome, recorded};
    return Status::Ok();
  }
  const Prepared& prepared = it->second;
  Status applied;
  if (outcome == TxnStatus::kCommitted) {
    if (commit_timestamp < prepared.prepare_timestamp) {
      return Status::InvalidArgument("transaction " + txn.ToString() + "'s commit timestamp " +
                                     TsText(commit_timestamp) + " is below its prepare timestamp " +
                                     TsText(prepared.prepare_timestamp) + " here");
    }
    // After a restart the versions may be in the store already (the crash
    // came between applying them and recording the resolution): apply only
    // what is missing, so resolving again is harmless.
    std::vector<BatchWrite> missing;
    for (const BatchWrite& w : prepared.writes) {
      Result<ReadResult> existing = store_->Get(w.key, commit_timestamp);
      if (!existing.ok() || !existing->found || existing->timestamp != commit_timestamp) {
        missing.push_back(w);
      }
    }
    if (!missing.empty()) {
      applied = store_->ApplyBatch(missing, commit_timestamp);
      // kIoError: the versions are in the store, only their durability is
      // in doubt, so the intents are done with. Anything else changed
      // nothing: keep the intents for a retry.
      if (!applied.ok() && applied.code() != StatusCode::kIoError) return applied;
      if (options_.change_log) options_.change_log->Append(missing, commit_timestamp);
    }
    clock_->Observe(commit_timestamp);
  }
  Release(txn, prepared);
  prepared_.erase(it);
  finished_[txn] = Finished{outcome, recorded};
  return applied;
}

std::vector<TxnId> Participant::BlockingIntents(std::string_view key, Timestamp read_timestamp,
                                                std::optional<TxnId> reader) const {
  std::vector<TxnId> blocking;
  auto it = intents_.find(key);
  if (it == intents_.end() || it->second == reader) return blocking;
  auto prepared = prepared_.find(it->second);
  if (prepared != prepared_.end() && prepared->second.prepare_timestamp <= read_timestamp) {
    blocking.push_back(it->second);
  }
  return blocking;
}

std::vector<TxnId> Participant::BlockingIntents(const KeyRange& range, Timestamp read_timestamp,
                                                std::optional<TxnId> reader) const {
  std::vector<TxnId> blocking;
  for (auto it = intents_.lower_bound(range.start);
       it != intents_.end() && (!range.end || it->first < *range.end); ++it) {
    if (it->second == reader) continue;
    auto prepared = prepared_.find(it->second);
    if (prepared != prepared_.end() && prepared->second.prepare_timestamp <= read_timestamp) {
      blocking.push_back(it->second);
    }
  }
  std::sort(blocking.begin(), blocking.end());
  blocking.erase(std::unique(blocking.begin(), blocking.end()), blocking.end());
  return blocking;
}

std::optional<TxnStatus> Participant::Outcome(TxnId txn) const {
  auto it = finished_.find(txn);
  if (it == finished_.end()) return std::nullopt;
  return it->second.outcome;
}

std::optional<uint32_t> Participant::PrimaryOf(TxnId txn) const {
  auto it = prepared_.find(txn);
  if (it == prepared_.end()) return std::nullopt;
  return it->second.primary;
}

Timestamp Participant::SafeTime() const {
  const Timestamp last = clock_->Last();
  if (prepare_timestamps_.empty()) return last;
  const uint64_t oldest = *prepare_timestamps_.begin();
  const Timestamp below_oldest(oldest == 0 ? 0 : oldest - 1);
  return std::min(last, below_oldest);
}

std::vector<StaleIntent> Participant::StaleTransactions(Clock::time_point now,
                                                        std::chrono::milliseconds age) const {
  std::vector<StaleIntent> stale;
  for (const auto& [txn, prepared] : prepared_) {
    if (prepared.prepared_at + age <= now) stale.push_back({txn, prepared.primary});
  }
  return stale;
}

IntentStats Participant::GetIntentStats(Clock::time_point now) const {
  IntentStats stats;
  stats.intents = intents_.size();
  stats.prepared_txns = prepared_.size();
  for (const auto& [txn, prepared] : prepared_) {
    if (prepared.writes.empty()) continue;
    const auto age =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - prepared.prepared_at);
    const uint64_t age_ms = age.count() < 0 ? 0 : static_cast<uint64_t>(age.count());
    size_t bucket = 0;
    while (bucket < kIntentAgeBoundsMs.size() && age_ms >= kIntentAgeBoundsMs[bucket]) ++bucket;
    stats.age_histogram[bucket] += prepared.writes.size();
  }
  if (!prepare_timestamps_.empty()) stats.oldest_prepare = Timestamp(*prepare_timestamps_.begin());
  return stats;
}

std::vector<std::pair<PrepareRequest, Timestamp>> Participant::PreparedTransactions() const {
  std::vector<std::pair<PrepareRequest, Timestamp>> out;
  out.reserve(prepared_.size());
  for (const auto& [txn, prepared] : prepared_) {
    PrepareRequest request;
    request.txn = txn;
    request.primary = prepared.primary;
    request.writes = prepared.writes;
    request.read_keys = prepared.read_keys;
    request.read_ranges = prepared.read_ranges;
    request.isolation = prepared.read_keys.empty() && prepared.read_ranges.empty()
                            ? Isolation::kSnapshot
                            : Isolation::kSerializable;
    out.emplace_back(std::move(request), prepared.prepare_timestamp);
  }
  return out;
}

void Participant::ForgetOldOutcomes(uint64_t now_ms) {
  forgot_at_ms_ = std::max(forgot_at_ms_, now_ms);
  const uint64_t retention = static_cast<uint64_t>(options_.outcome_retention.count());
  for (auto it = finished_.begin(); it != finished_.end();) {
    const uint64_t stamp_ms = HybridLogicalClock::PhysicalMillis(Timestamp(it->first.stamp));
    if (stamp_ms + retention >= now_ms) break;  // and so is every later stamp
    it = finished_.erase(it);
  }
}

}  // namespace strata::cluster
