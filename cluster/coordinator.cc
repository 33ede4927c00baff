#include "cluster/coordinator.h"

#include <algorithm>
#include <functional>
#include <string_view>

#include "cluster/resolution.h"

namespace strata::cluster {

// An open client transaction, until commit or abort.
struct Coordinator::Txn {
  TxnId id;
  Timestamp start;
  Isolation isolation = Isolation::kSerializable;
  bool read_only = false;
  bool reads_here_first = false;  // ReadHereFirst
  // StartAtShardClocks: on, and each shard's start once a read there came
  // back (the oldest timestamp it served this transaction's reads at).
  bool starts_at_shards = false;
  bool at_leaders = false;  // not this node's replicas
  std::map<ShardId, Timestamp> shard_starts;
  bool has_read = false;  // a read was sent for it
  Writes writes;
  size_t write_bytes = 0;           // of keys and values in `writes`
  std::set<std::string> read_keys;  // serializable only
  std::vector<KeyRange> read_ranges;
  Timers::Clock::time_point last_used;
  bool validates_reads() const { return isolation == Isolation::kSerializable && !read_only; }
  // OK while it may remember one more read for validation (kMaxTxnReads).
  Status ReadRoom() const;
};

// A commit in flight: its parts per participant shard.
struct Coordinator::CommitInFlight {
  TxnId txn;
  Timestamp start;
  std::map<ShardId, PrepareRequest> parts;  // by participant shard
  std::vector<ShardId> shards() const {
    std::vector<ShardId> ids;
    for (const auto& [shard, part] : parts) ids.push_back(shard);
    return ids;
  }
  ShardId primary = 0;
  size_t waiting = 0;
  Timestamp max_prepare;
  bool decided = false;  // the record's commit sent, or aborted: late replies change nothing
  bool finished = false;
  Done<Timestamp> done;
};

namespace {

Status TxnNotFound(uint64_t id) {
  return Status::NotFound("transaction " + std::to_string(id) +
                          " does not exist on this node: it committed, aborted, expired after "
                          "being idle longer than --txn-timeout-ms, or was begun on another node");
}

Status TooMuchWritten(uint64_t id) {
  return Status::InvalidArgument(
      "transaction " + std::to_string(id) + " would write more than " +
      std::to_string(kMaxTxnWriteBytes >> 20) +
      " MiB of keys and values, the most one transaction carries between the nodes of a "
      "cluster; split it");
}

// Why a read's answer from a shard (`read`, null if it was no read reply)
// cannot be used.
Status ShardReadFailed(const PeerReply* reply, const ShardReadReply* read) {
  return read != nullptr
             ? Status::IoError("a shard's read reply was unreadable")
             : CallFailure(reply, "the shard holding a key did not answer the read in time");
}

// A commit whose outcome is unknown: the client gets no answer.
Status UnknownOutcome(std::string text) { return Status::IoError(std::move(text)); }

}  // namespace

Status Coordinator::Txn::ReadRoom() const {
  if (read_keys.size() + read_ranges.size() < kMaxTxnReads) return Status::Ok();
  return Status::InvalidArgument("transaction " + std::to_string(id.stamp) + " already read " +
                                 std::to_string(kMaxTxnReads) +
                                 " keys and ranges, the most a serializable transaction may "
                                 "validate; commit it and continue in a new one");
}

Coordinator::Coordinator(uint32_t node_index, ShardId local_shard, const MvccStore* store,
                         HybridLogicalClock* clock, Peers* peers, Timers* timers,
                         CoordinatorOptions options)
    : node_index_(node_index),
      local_shard_(local_shard),
      store_(store),
      clock_(clock),
      peers_(peers),
      timers_(timers),
      options_(options) {}

Coordinator::~Coordinator() = default;

TxnId Coordinator::NewTxnId(Timestamp* stamp) {
  Result<Timestamp> next = clock_->Next();
  *stamp = next.ok() ? *next : clock_->Last();
  return TxnId{stamp->value(), node_index_};
}

Timestamp Coordinator::FreshTimestamp() {
  Timestamp stamp;
  NewTxnId(&stamp);
  return stamp;
}

Timestamp Coordinator::HoldSnapshot() {
  const Timestamp snapshot = FreshTimestamp();
  active_snapshots_.insert(snapshot.value());
  return snapshot;
}

void Coordinator::ReleaseSnapshot(Timestamp snapshot) {
  active_snapshots_.erase(active_snapshots_.find(snapshot.value()));
}

Timestamp Coordinator::NewestSeen(const std::vector<ReadResult>& reads) {
  Timestamp newest;
  for (const ReadResult& read : reads) {
    if (read.found && !read.own_write) newest = std::max(newest, read.timestamp);
  }
  return newest;
}

// --- interactive transactions --------------------------------------------------

Result<Coordinator::Begun> Coordinator::Begin(std::optional<Isolation> isolation, bool read_only,
                                              std::optional<Timestamp> read_timestamp) {
  if (read_timestamp && !read_only) {
    return Status::InvalidArgument(
        "field 'read_timestamp' needs 'read_only': true (only a read-only transaction may read "
        "the past)");
  }
  if (txns_.size() >= options_.max_active_txns) {
    return Status::Unavailable("this node has " + std::to_string(txns_.size()) +
                               " open transactions, the limit; commit or abort some first");
  }
  auto txn = std::make_unique<Txn>();
  txn->isolation = isolation.value_or(options_.isolation);
  txn->read_only = read_only;
  Timestamp stamp;
  txn->id = NewTxnId(&stamp);
  txn->start = read_timestamp.value_or(stamp);
  if (read_timestamp && *read_timestamp > stamp) {
    // Reading ahead of the clocks would drag every shard's time forward
    // (and every commit's wait with it).
    return Status::InvalidArgument(
        "field 'read_timestamp' (" + std::to_string(read_timestamp->value()) +
        ") is ahead of this node's clock (" + std::to_string(stamp.value()) +
        "): a read-only transaction in a cluster reads the past");
  }
  if (read_timestamp && *read_timestamp < store_->compaction_horizon()) {
    return Status::Compacted("read_timestamp " + std::to_string(read_timestamp->value()) +
                             " is below the compaction horizon " +
                             std::to_string(store_->compaction_horizon().value()));
  }
  txn->last_used = timers_->now();
  const Begun begun{txn->id.stamp, txn->start};
  active_snapshots_.insert(txn->start.value());
  txns_.emplace(txn->id.stamp, std::move(txn));
  return begun;
}

Coordinator::Txn* Coordinator::Find(uint64_t id) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return nullptr;
  it->second->last_used = timers_->now();
  return it->second.get();
}

Status Coordinator::CheckOpen(uint64_t id) {
  return Find(id) != nullptr ? Status::Ok() : TxnNotFound(id);
}

Status Coordinator::ReadHereFirst(uint64_t id) {
  Txn* txn = Find(id);
  if (txn == nullptr) return TxnNotFound(id);
  if (!txn->read_only) {
    return Status::InvalidArgument("transaction " + std::to_string(id) +
                                   " writes: it reads from the shards' leaders");
  }
  txn->reads_here_first = true;
  return Status::Ok();
}

Status Coordinator::StartAtShardClocks(uint64_t id, bool at_leaders) {
  Txn* txn = Find(id);
  if (txn == nullptr) return TxnNotFound(id);
  if (!txn->validates_reads()) {
    return Status::InvalidArgument("transaction " + std::to_string(id) +
                                   " does not validate its reads: it reads at its start");
  }
  if (txn->has_read) {
    return Status::InvalidArgument("transaction " + std::to_string(id) +
                                   " has read already: it reads at its start");
  }
  txn->starts_at_shards = true;
  txn->at_leaders = at_leaders;
  remember_commits_ = true;
  return Status::Ok();
}

void Coordinator::CallToRead(ShardId shard, PeerRequest request, bool here_first,
                             PeerRpc::Callback done) {
  if (here_first) return peers_->CallHereFirst(shard, std::move(request), std::move(done));
  peers_->Call(shard, std::move(request), std::move(done));
}

void Coordinator::Get(uint64_t id, std::string key, Done<ReadResult> done) {
  Txn* txn = Find(id);
  if (txn == nullptr) return done(TxnNotFound(id));
  if (auto own = txn->writes.find(key); own != txn->writes.end()) {
    ReadResult result;
    result.found = result.own_write = true;
    result.deleted = !own->second;
    if (own->second) result.value = *own->second;
    return done(std::move(result));
  }
  txn->has_read = true;
  if (txn->starts_at_shards) return GetAtShardClock(*txn, std::move(key), std::move(done));
  ReadKeys(
      {key}, txn->start,
      [this, id, key, done = std::move(done)](Result<std::vector<ReadResult>> reads) {
        if (!reads.ok()) return done(reads.status());
        Txn* open = Find(id);
        if (open == nullptr) return done(TxnNotFound(id));
        if (open->validates_reads()) {
          if (Status room = open->ReadRoom(); !room.ok()) return done(room);
          open->read_keys.insert(key);
        }
        ReadResult result = std::move((*reads)[0]);
        AfterCommitWait(NewestSeen(*reads),
                        [done, result = std::move(result)]() mutable { done(std::move(result)); });
      },
      txn->reads_here_first);
}

void Coordinator::GetAtShardClock(Txn& txn, std::string key, Done<ReadResult> done) {
  if (Status room = txn.ReadRoom(); !room.ok()) return done(room);
  const ShardId shard = peers_->map().ShardFor(key).id;
  ShardRead read{txn.start, {key}, std::nullopt, 0};
  // A shard read before is read where it was: its start stays put.
  auto known = txn.shard_starts.find(shard);
  if (known != txn.shard_starts.end()) {
    read.snapshot = known->second;
  } else {
    read.at_closed = true;
    // The floor a replica must have closed to serve it.
    read.snapshot = txn.at_leaders ? Timestamp::Max() : FloorOf(key);
  }
  const uint64_t id = txn.id.stamp;
  CallToRead(
      shard, std::move(read), /*here_first=*/!txn.at_leaders,
      [this, id, shard, key = std::move(key), done = std::move(done)](const PeerReply* reply) {
        const auto* answer = ReplyAs<ShardReadReply>(reply);
        if (answer == nullptr || answer->reads.size() != 1) {
          return done(ShardReadFailed(reply, answer));
        }
        Txn* open = Find(id);
        if (open == nullptr) return done(TxnNotFound(id));
        // Two first reads of one shard may come back at different
        // times: checked from the older, both are.
        auto [it, first] = open->shard_starts.try_emplace(shard, answer->snapshot);
        if (!first) it->second = std::min(it->second, answer->snapshot);
        open->read_keys.insert(key);
        AfterCommitWait(NewestSeen(answer->reads),
                        [done, result = answer->reads[0]]() mutable { done(std::move(result)); });
      });
}

Status Coordinator::Write(uint64_t id, std::string key, std::optional<std::string> value) {
  Txn* txn = Find(id);
  if (txn == nullptr) return TxnNotFound(id);
  if (txn->read_only) {
    return Status::InvalidArgument("transaction " + std::to_string(id) +
                                   " is read-only: it cannot write");
  }
  const std::optional<std::string_view> value_view(value);
  if (Status s = store_->CheckWrite(key, value_view ? &*value_view : nullptr); !s.ok()) return s;
  if (!txn->writes.count(key) && txn->writes.size() >= kMaxTxnWriteKeys) {
    return Status::InvalidArgument("transaction " + std::to_string(id) + " already writes " +
                                   std::to_string(txn->writes.size()) +
                                   " keys, the limit in a cluster");
  }
  const size_t value_size = value ? value->size() : 0;
  size_t bytes_after = txn->write_bytes + key.size() + value_size;
  if (auto old = txn->writes.find(key); old != txn->writes.end()) {
    bytes_after -= key.size() + (old->second ? old->second->size() : 0);
  }
  if (bytes_after > kMaxTxnWriteBytes) return TooMuchWritten(id);
  txn->write_bytes = bytes_after;
  txn->writes[std::move(key)] = std::move(value);
  return Status::Ok();
}

void Coordinator::Scan(uint64_t id, KeyRange range, size_t limit, Done<ScanResult> done) {
  Txn* txn = Find(id);
  if (txn == nullptr) return done(TxnNotFound(id));
  if (txn->starts_at_shards) {
    return done(Status::InvalidArgument("transaction " + std::to_string(id) +
                                        " reads at its shards' clocks: it reads keys only"));
  }
  txn->has_read = true;
  struct Gather {
    size_t waiting = 0;
    std::optional<Status> error;
    std::vector<ScanItem> items;
    std::optional<std::string> bound;  // merge nothing past this key
    Done<ScanResult> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->waiting = peers_->map().shards().size();
  gather->done = std::move(done);
  // Each shard returns enough to fill the limit even if the transaction's
  // own writes delete some of what it returns.
  auto own_begin = txn->writes.lower_bound(range.start);
  auto own_end = range.end ? txn->writes.lower_bound(*range.end) : txn->writes.end();
  const size_t own_count = static_cast<size_t>(std::distance(own_begin, own_end));
  const ShardRead read{txn->start, {}, range, limit + own_count};
  for (const Shard& shard : peers_->map().shards()) {
    CallToRead(shard.id, read, txn->reads_here_first, [=, this](const PeerReply* reply) {
      const auto* read_reply = ReplyAs<ShardReadReply>(reply);
      if (read_reply == nullptr) {
        gather->error = CallFailure(reply, "a shard did not answer the scan in time; try again");
      } else if (!read_reply->scan) {
        gather->error = Status::IoError("a shard's scan reply had no items");
      } else {
        const ScanResult& scan = *read_reply->scan;
        for (const ScanItem& item : scan.items) gather->items.push_back(item);
        // Cut short: past its last item, that shard may hold items not seen.
        const std::string last = scan.items.empty() ? std::string() : scan.items.back().key;
        if (scan.more && (!gather->bound || last < *gather->bound)) gather->bound = last;
      }
      if (--gather->waiting > 0) return;
      if (gather->error) return gather->done(*gather->error);
      Txn* open = Find(id);
      if (open == nullptr) return gather->done(TxnNotFound(id));
      // Stored items, overlaid with the transaction's own writes.
      std::map<std::string, ScanItem> merged;
      for (ScanItem& item : gather->items) {
        if (!gather->bound || item.key <= *gather->bound) merged[item.key] = std::move(item);
      }
      bool more = gather->bound.has_value();
      for (auto own = open->writes.lower_bound(range.start);
           own != open->writes.end() && range.Contains(own->first); ++own) {
        if (gather->bound && own->first > *gather->bound) break;
        if (own->second) {
          merged[own->first] = ScanItem{own->first, *own->second, 0, Timestamp()};
        } else {
          merged.erase(own->first);
        }
      }
      ScanResult result;
      for (auto& [key, item] : merged) {
        if (result.items.size() == limit) {
          more = true;
          break;
        }
        result.items.push_back(std::move(item));
      }
      result.more = more;
      if (open->validates_reads()) {
        if (Status room = open->ReadRoom(); !room.ok()) return gather->done(room);
        open->read_ranges.push_back(range);
      }
      Timestamp newest;
      for (const ScanItem& item : result.items) newest = std::max(newest, item.timestamp);
      AfterCommitWait(newest, [gather, result = std::move(result)]() mutable {
        gather->done(std::move(result));
      });
    });
  }
}

void Coordinator::Commit(uint64_t id, Done<Timestamp> done) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return done(TxnNotFound(id));
  std::unique_ptr<Txn> txn = std::move(it->second);
  txns_.erase(it);
  const Timestamp start = txn->start;
  CommitWrites(
      start, txn->isolation, std::move(txn->writes), std::move(txn->read_keys),
      std::move(txn->read_ranges), /*blind=*/false,
      [this, start, id, done = std::move(done)](Result<Timestamp> committed) {
        ReleaseSnapshot(start);
        if (!committed.ok() && committed.status().code() == StatusCode::kConflict) {
          return done(Status(
              StatusCode::kConflict,
              "transaction " + std::to_string(id) + " aborted: " + committed.status().message()));
        }
        done(std::move(committed));
      },
      std::move(txn->shard_starts));
}

Status Coordinator::Abort(uint64_t id) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return TxnNotFound(id);
  ReleaseSnapshot(it->second->start);
  txns_.erase(it);  // nothing was sent to any shard yet
  return Status::Ok();
}

void Coordinator::ExpireIdle() {
  const Timers::Clock::time_point now = timers_->now();
  for (auto it = txns_.begin(); it != txns_.end();) {
    if (it->second->last_used + options_.txn_timeout <= now) {
      ReleaseSnapshot(it->second->start);
      it = txns_.erase(it);
      ++expired_txns_;
    } else {
      ++it;
    }
  }
}

// --- reads ---------------------------------------------------------------------

void Coordinator::ReadKeys(std::vector<std::string> keys, Timestamp snapshot,
                           Done<std::vector<ReadResult>> done, bool here_first) {
  struct Gather {
    size_t waiting = 0;
    bool failed = false;
    std::vector<ReadResult> results;
    Done<std::vector<ReadResult>> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->results.resize(keys.size());
  gather->done = std::move(done);
  std::map<ShardId, std::vector<size_t>> by_shard;  // indexes into keys
  for (size_t i = 0; i < keys.size(); ++i) {
    by_shard[peers_->map().ShardFor(keys[i]).id].push_back(i);
  }
  gather->waiting = by_shard.size();
  if (by_shard.empty()) return gather->done(std::vector<ReadResult>());
  for (auto& [shard, indexes] : by_shard) {
    std::vector<std::string> shard_keys;
    for (size_t i : indexes) shard_keys.push_back(keys[i]);
    CallToRead(shard, ShardRead{snapshot, std::move(shard_keys), std::nullopt, 0}, here_first,
               [gather, indexes = indexes](const PeerReply* reply) {
                 if (gather->failed) return;
                 const auto* read = ReplyAs<ShardReadReply>(reply);
                 if (read != nullptr && read->reads.size() == indexes.size()) {
                   for (size_t i = 0; i < indexes.size(); ++i) {
                     gather->results[indexes[i]] = read->reads[i];
                   }
                   if (--gather->waiting == 0) gather->done(std::move(gather->results));
                   return;
                 }
                 gather->failed = true;
                 gather->done(ShardReadFailed(reply, read));
               });
  }
}

// --- commit --------------------------------------------------------------------

namespace {
uint64_t FloorKeyHash(std::string_view key) { return std::hash<std::string_view>()(key); }
}  // namespace

void Coordinator::RememberCommit(const CommitInFlight& commit, Timestamp commit_timestamp) {
  if (!remember_commits_) return;
  for (const auto& [shard, part] : commit.parts) {
    for (const BatchWrite& w : part.writes) {
      const uint64_t hash = FloorKeyHash(w.key);
      recent_commits_[hash] = commit_timestamp;
      recent_order_.emplace_back(hash, commit_timestamp);
    }
  }
  while (recent_order_.size() > kRecentCommits) {
    const auto [hash, at] = recent_order_.front();
    auto it = recent_commits_.find(hash);
    if (it != recent_commits_.end() && it->second == at) recent_commits_.erase(it);
    recent_order_.pop_front();
  }
}

Timestamp Coordinator::FloorOf(const std::string& key) const {
  auto it = recent_commits_.find(FloorKeyHash(key));
  return it == recent_commits_.end() ? Timestamp() : it->second;
}

void Coordinator::CommitWrites(Timestamp start, Isolation isolation, Writes writes,
                               std::set<std::string> read_keys, std::vector<KeyRange> read_ranges,
                               bool blind, Done<Timestamp> done,
                               std::map<ShardId, Timestamp> shard_starts) {
  if (writes.empty()) {
    // Read-only: its reads were one consistent snapshot; nothing to check.
    ++commits_;
    return done(start);
  }
  size_t write_bytes = 0;
  for (const auto& [key, value] : writes) write_bytes += key.size() + (value ? value->size() : 0);
  if (write_bytes > kMaxTxnWriteBytes) return done(TooMuchWritten(start.value()));
  auto commit = std::make_shared<CommitInFlight>();
  Timestamp stamp;
  const TxnId txn = NewTxnId(&stamp);
  commit->txn = txn;
  commit->start = start;
  commit->done = std::move(done);
  auto part = [&](ShardId shard) -> PrepareRequest& {
    PrepareRequest& request = commit->parts[shard];
    request.txn = txn;
    auto own = shard_starts.find(shard);
    request.start = own != shard_starts.end() ? own->second : start;
    request.isolation = isolation;
    request.blind = blind;
    return request;
  };
  const ShardMap& map = peers_->map();
  for (auto& [key, value] : writes) {
    part(map.ShardFor(key).id).writes.push_back(BatchWrite{key, std::move(value)});
  }
  // The primary holds the record: this node's own shard if it is written
  // (record calls are then local), else the first written shard.
  commit->primary = commit->parts.count(local_shard_) ? local_shard_ : commit->parts.begin()->first;
  if (isolation == Isolation::kSerializable) {
    for (const std::string& key : read_keys) part(map.ShardFor(key).id).read_keys.push_back(key);
    if (!read_ranges.empty()) {
      // A range spans every shard (keys are placed by hash).
      for (const Shard& shard : map.shards()) part(shard.id).read_ranges = read_ranges;
    }
  }
  for (auto& [shard, request] : commit->parts) request.primary = commit->primary;
  if (commit->parts.size() == 1) return CommitOnePhase(std::move(commit));
  CommitTwoPhase(std::move(commit));
}

void Coordinator::CommitOnePhase(std::shared_ptr<CommitInFlight> commit) {
  const auto& [shard, request] = *commit->parts.begin();
  peers_->Call(shard, ShardCommit{request}, [this, commit](const PeerReply* reply) {
    if (reply == nullptr) {
      ++unknown_outcomes_;
      return commit->done(UnknownOutcome("the shard did not answer the commit"));
    }
    const auto* committed = ReplyAs<CommitReply>(reply);
    if (committed == nullptr) {
      Status error = CallFailure(reply, {});
      if (peers_->rpc().copies_sent() > 1 && error.code() != StatusCode::kConflict) {
        // An earlier copy may have committed on a shard that then
        // restarted and no longer knows it: such a shard refuses every
        // copy sent before it started, unjudged (kUnavailable), and that
        // refusal proves nothing. A conflict is a judgement: the shard,
        // up since before the first copy, remembers each copy it judged
        // (for longer than copies are resent) and answers the same.
        ++unknown_outcomes_;
        return commit->done(UnknownOutcome("a resent one-phase commit was refused unjudged: " +
                                           std::string(error.message())));
      }
      if (error.code() == StatusCode::kConflict) ++conflicts_;
      return commit->done(std::move(error));
    }
    const Timestamp commit_ts = committed->commit_timestamp;
    ++commits_, ++one_phase_commits_;
    RememberCommit(*commit, commit_ts);
    AfterCommitWait(commit_ts, [commit, commit_ts] { commit->done(commit_ts); });
  });
}

void Coordinator::CommitTwoPhase(std::shared_ptr<CommitInFlight> commit) {
  commit->waiting = commit->parts.size();
  const std::vector<ShardId> participants = commit->shards();
  for (const auto& [shard, request] : commit->parts) {
    ShardPrepare prepare{request, {}};
    // The record lists them, so the primary can finish the resolution
    // itself if this node dies after committing.
    if (shard == commit->primary) prepare.participants = participants;
    peers_->Call(shard, std::move(prepare), [this, commit, shard = shard](const PeerReply* reply) {
      if (commit->decided) return;
      const auto* prepared = ReplyAs<PrepareReply>(reply);
      if (prepared == nullptr) {
        return AbortTwoPhase(commit,
                             CallFailure(reply, "shard " + std::to_string(shard) +
                                                    " did not answer the prepare in time; the "
                                                    "transaction was aborted"));
      }
      commit->max_prepare = std::max(commit->max_prepare, prepared->prepare_timestamp);
      if (--commit->waiting == 0) DecideTwoPhase(commit);
    });
  }
  timers_->After(options_.heartbeat_interval,
                 [this, weak = std::weak_ptr<CommitInFlight>(commit)] { Heartbeat(weak); });
}

void Coordinator::Heartbeat(std::weak_ptr<CommitInFlight> weak) {
  std::shared_ptr<CommitInFlight> commit = weak.lock();
  if (!commit || commit->finished) return;
  peers_->Call(commit->primary, RecordCall{RecordOp::kHeartbeat, commit->txn, {}},
               [](const PeerReply*) {});
  timers_->After(options_.heartbeat_interval, [this, weak] { Heartbeat(weak); });
}

void Coordinator::DecideTwoPhase(std::shared_ptr<CommitInFlight> commit) {
  commit->decided = true;
  // At or above every prepare timestamp: no participant can have served a
  // read at or above C without seeing the intent.
  const Timestamp commit_ts = commit->max_prepare;
  clock_->Observe(commit_ts);
  peers_->Call(
      commit->primary, RecordCall{RecordOp::kCommit, commit->txn, commit_ts},
      [this, commit](const PeerReply* reply) {
        commit->finished = true;
        const auto* record = ReplyAs<RecordReply>(reply);
        if (record == nullptr || !record->status) {
          // Nobody knows here whether the record committed; the
          // participants will find out from it.
          ++unknown_outcomes_;
          return commit->done(UnknownOutcome("the primary did not answer the record's commit"));
        }
        if (*record->status == TxnStatus::kCommitted) {
          const Timestamp recorded = record->commit_timestamp;
          ++commits_, ++two_phase_commits_;
          RememberCommit(*commit, recorded);
          ResolveEverywhere(*commit, TxnStatus::kCommitted, recorded);
          return AfterCommitWait(recorded, [commit, recorded] { commit->done(recorded); });
        }
        ++conflicts_;
        ResolveEverywhere(*commit, TxnStatus::kAborted, Timestamp());
        commit->done(Status(StatusCode::kConflict,
                            "its transaction record was aborted by a shard that found its "
                            "intents stalled (no heartbeat within --heartbeat-timeout-ms)"));
      });
}

void Coordinator::AbortTwoPhase(std::shared_ptr<CommitInFlight> commit, Status error) {
  commit->decided = commit->finished = true;
  if (error.code() == StatusCode::kConflict) ++conflicts_;
  peers_->Call(commit->primary, RecordCall{RecordOp::kAbort, commit->txn, {}},
               [](const PeerReply*) {});
  ResolveEverywhere(*commit, TxnStatus::kAborted, Timestamp());
  commit->done(std::move(error));
}

void Coordinator::ResolveEverywhere(const CommitInFlight& commit, TxnStatus outcome,
                                    Timestamp commit_timestamp) {
  // Once every participant has resolved, nobody will ask the record again.
  ResolveOn(
      peers_, commit.txn, commit.shards(), outcome, commit_timestamp,
      [this, txn = commit.txn, primary = commit.primary](bool all_resolved) {
        // If not, the record stays; its primary finishes the job.
        if (!all_resolved) return;
        peers_->Call(primary, RecordCall{RecordOp::kForget, txn, {}}, [](const PeerReply*) {});
      });
}

uint64_t Coordinator::WallMicros() const {
  return options_.wall_micros ? options_.wall_micros() : HybridLogicalClock::SystemMicros();
}

Timestamp Coordinator::ReadTimestamp() {
  const uint64_t wall = WallMicros() / 1000;
  const auto offset = static_cast<uint64_t>(options_.max_clock_offset.count());
  if (wall <= offset + 1) return FreshTimestamp();  // a clock at the epoch: no past to read
  return Timestamp(HybridLogicalClock::Make(wall - offset, 0).value() - 1);
}

void Coordinator::AfterCommitWait(Timestamp timestamp, std::function<void()> reply) {
  // To the microsecond: timestamps are milliseconds, so the wait ends at
  // the next millisecond boundary, not a whole millisecond after the read.
  const uint64_t wall_us = WallMicros();
  // Past C by two offsets here is past C by one on every clock, which is
  // what ReadTimestamp() relies on.
  const auto offset = static_cast<uint64_t>(options_.max_clock_offset.count());
  const uint64_t past = HybridLogicalClock::PhysicalMillis(timestamp) + 2 * offset;
  if (wall_us / 1000 > past) return reply();
  // Timestamps come from clocks within the offset of ours (the receive rule
  // refuses others); the cap only keeps a broken peer's from overflowing
  // the timer.
  const uint64_t wait_us =
      std::min<uint64_t>((past + 1) * 1000 - wall_us, (2 * offset + 1000) * 1000);
  // Timers count from the loop turn's start, which may be before the wall
  // clock was read (a busy turn): the timer can fire early, so it looks at
  // the wall clock again rather than trusting the delay.
  timers_->After(std::chrono::microseconds(wait_us),
                 [this, timestamp, reply = std::move(reply)]() mutable {
                   AfterCommitWait(timestamp, std::move(reply));
                 });
}

std::optional<Timestamp> Coordinator::OldestSnapshot() const {
  if (active_snapshots_.empty()) return std::nullopt;
  return Timestamp(*active_snapshots_.begin());
}

CoordinatorStats Coordinator::Stats() const {
  CoordinatorStats stats;
  stats.active_txns = txns_.size();
  stats.commits = commits_;
  stats.conflicts = conflicts_;
  stats.one_phase_commits = one_phase_commits_;
  stats.two_phase_commits = two_phase_commits_;
  stats.expired_txns = expired_txns_;
  stats.unknown_outcomes = unknown_outcomes_;
  stats.oldest_snapshot = OldestSnapshot();
  for (const auto& [id, open] : txns_) {
    (void)open;
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::milliseconds(HybridLogicalClock::SystemMillis()) -
        std::chrono::milliseconds(HybridLogicalClock::PhysicalMillis(Timestamp(id))));
    if (!stats.oldest_txn_age || age > *stats.oldest_txn_age) stats.oldest_txn_age = age;
  }
  return stats;
}

}  // namespace strata::cluster
