// ClusterNode, coordinator role: the client's transactions and the
// Maelstrom workloads across shards. See cluster_node.h.
//
// Snapshot: a transaction's start timestamp S comes from this node's
// clock, and every shard serves its reads at S (cluster/shard_server.h
// makes them wait for intents at or below S, so none misses a commit).
// Writes are buffered here until commit:
//  - one participant shard: `shard_commit` checks and applies in one round;
//  - several: `shard_prepare` on each (intents + read locks; the primary's
//    also creates the PENDING record), then `record_commit` at
//    C = max(prepare timestamps) on the primary, then the client's answer,
//    then `shard_resolve` everywhere, asynchronously. Any failure before
//    record_commit is sent aborts (and the coordinator never sends it after
//    that); a transaction whose coordinator dies is aborted by the first
//    participant that pushes its stale record.
// Commit wait: the answer waits until every node's wall clock is past C,
// so a transaction that starts anywhere after the answer has S > C
// (strict serializability, for clocks within --max-clock-offset-ms).
#include <algorithm>

#include "cluster/resolution.h"
#include "node/cluster_node.h"
#include "node/txn_handlers.h"
#include "protocol/canonical_json.h"
#include "protocol/key_codec.h"
#include "protocol/limits.h"
#include "protocol/mvcc_messages.h"

namespace strata::node {

using protocol::Body;
using protocol::ErrorCode;
using protocol::ErrorReply;
using protocol::JsonWriter;
using protocol::ParseIsolation;

namespace {

// A commit whose reply never came: the outcome is unknown, so the client
// gets no answer (a timeout is Maelstrom's "indefinite"). Never sent.
bool IsUnknownOutcome(const ErrorReply& error) { return error.code == ErrorCode::kCrash; }
ErrorReply UnknownOutcome(std::string text) {
  return ErrorReply{ErrorCode::kCrash, std::move(text)};
}

// The client error a call to a shard ended with: the shard's refusal, or
// `gave_up` when none came in time.
ErrorReply FailureOf(const cluster::PeerReply* reply, ErrorReply gave_up) {
  if (reply == nullptr) return gave_up;
  if (const auto* error = std::get_if<cluster::PeerError>(reply)) {
    return protocol::ErrorFromStatus(error->status);
  }
  return ErrorReply{ErrorCode::kCrash, "a shard answered with a reply of the wrong kind"};
}

// A serializable transaction remembers what it read, for validation at
// commit: bounded, so one client cannot grow a node's memory without end.
constexpr size_t kMaxReadsPerTxn = 100000;

Status ReadRoom(const ClusterNode::CoordinatedTxn& txn) {
  if (txn.read_keys.size() + txn.read_ranges.size() < kMaxReadsPerTxn) return Status::Ok();
  return Status::InvalidArgument("transaction " + std::to_string(txn.id.stamp) + " already read " +
                                 std::to_string(kMaxReadsPerTxn) +
                                 " keys and ranges, the most a serializable transaction may "
                                 "validate; commit it and continue in a new one");
}

ErrorReply TooMuchWritten(uint64_t id) {
  return protocol::Malformed(
      "transaction " + std::to_string(id) + " would write more than " +
      std::to_string(protocol::kMaxClusterTxnWriteBytes >> 20) +
      " MiB of keys and values, the most one transaction carries between the nodes of a "
      "cluster; split it");
}

ErrorReply TxnNotFound(uint64_t id) {
  return ErrorReply{ErrorCode::kAbort,
                    "transaction " + std::to_string(id) +
                        " does not exist on this node: it committed, aborted, expired after being "
                        "idle longer than --txn-timeout-ms, or was begun on another node"};
}

// The newest version among `reads`: a reply showing it waits until every
// clock is past it (see AfterCommitWait), like the commit that wrote it.
Timestamp NewestSeen(const std::vector<ReadResult>& reads) {
  Timestamp newest;
  for (const ReadResult& read : reads) {
    if (read.found && !read.own_write) newest = std::max(newest, read.timestamp);
  }
  return newest;
}

std::string KeyText(std::string_view engine_key) {
  std::string text;
  JsonWriter w(&text);
  protocol::WriteKey(&w, engine_key);
  return protocol::Abbreviate(text);
}

}  // namespace

// --- transactions ------------------------------------------------------------

cluster::TxnId ClusterNode::NewTxnId(Timestamp* stamp) {
  Result<Timestamp> next = clock_.Next();
  *stamp = next.ok() ? *next : clock_.Last();
  return cluster::TxnId{stamp->value(), node_index_};
}

void ClusterNode::HandleTxnBegin(const Body& body, const ReplyAddress& from) {
  auto txn = std::make_unique<CoordinatedTxn>();
  if (auto err = ParseIsolation(body, options_.isolation, &txn->isolation)) {
    return ReplyError(from, *err);
  }
  std::optional<bool> read_only;
  std::optional<Timestamp> read_timestamp;
  if (auto err = body.OptionalBool("read_only", &read_only)) return ReplyError(from, *err);
  if (auto err = body.OptionalTimestamp("read_timestamp", &read_timestamp)) {
    return ReplyError(from, *err);
  }
  txn->read_only = read_only.value_or(false);
  if (read_timestamp && !txn->read_only) {
    return ReplyError(from,
                      protocol::Malformed("field 'read_timestamp' needs 'read_only': true (only a "
                                          "read-only transaction may read the past)"));
  }
  if (txns_.size() >= options_.max_active_txns) {
    return ReplyError(from,
                      ErrorReply{ErrorCode::kTemporarilyUnavailable,
                                 "this node has " + std::to_string(txns_.size()) +
                                     " open transactions, the limit; commit or abort some first"});
  }
  Timestamp stamp;
  txn->id = NewTxnId(&stamp);
  txn->start = read_timestamp.value_or(stamp);
  if (read_timestamp && *read_timestamp > stamp) {
    // Reading ahead of the clocks would drag every shard's time forward
    // (and every commit's wait with it).
    return ReplyError(
        from,
        protocol::Malformed("field 'read_timestamp' (" + std::to_string(read_timestamp->value()) +
                            ") is ahead of this node's clock (" + std::to_string(stamp.value()) +
                            "): a read-only transaction in a cluster reads the past"));
  }
  if (read_timestamp && *read_timestamp < store_->compaction_horizon()) {
    return ReplyError(from, ErrorReply{ErrorCode::kCompacted,
                                       "read_timestamp " + std::to_string(read_timestamp->value()) +
                                           " is below the compaction horizon " +
                                           std::to_string(store_->compaction_horizon().value())});
  }
  txn->last_used = now();
  std::string out;
  JsonWriter::ContinuingObject(&out)
      .FieldUint("txn_id", txn->id.stamp)
      .FieldUint("start_timestamp", txn->start.value());
  active_snapshots_.insert(txn->start.value());
  txns_.emplace(txn->id.stamp, std::move(txn));
  transport_->Reply(from, "txn_begin_ok", out);
}

ClusterNode::CoordinatedTxn* ClusterNode::FindTxn(const Body& body, const ReplyAddress& from) {
  uint64_t id = 0;
  if (auto err = body.RequiredUint("txn_id", &id)) {
    ReplyError(from, *err);
    return nullptr;
  }
  auto it = txns_.find(id);
  if (it == txns_.end()) {
    ReplyError(from, TxnNotFound(id));
    return nullptr;
  }
  it->second->last_used = now();
  return it->second.get();
}

void ClusterNode::HandleTxnGet(const Body& body, const ReplyAddress& from) {
  CoordinatedTxn* txn = FindTxn(body, from);
  if (txn == nullptr) return;
  std::string key;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  if (auto own = txn->writes.find(key); own != txn->writes.end()) {
    ReadResult result;
    result.found = result.own_write = true;
    result.deleted = !own->second;
    if (own->second) result.value = *own->second;
    std::string out;
    JsonWriter w = JsonWriter::ContinuingObject(&out);
    protocol::WriteReply(result, &w);
    return transport_->Reply(from, "txn_get_ok", out);
  }
  const uint64_t id = txn->id.stamp;
  ReadKeys({key}, txn->start,
           [this, from, id, key](const ErrorReply* error, std::vector<ReadResult> results) {
             if (error) return ReplyError(from, *error);
             auto it = txns_.find(id);
             if (it == txns_.end()) return ReplyError(from, TxnNotFound(id));
             if (it->second->validates_reads()) {
               if (Status room = ReadRoom(*it->second); !room.ok()) {
                 return ReplyError(from, protocol::ErrorFromStatus(room));
               }
               it->second->read_keys.insert(key);
             }
             std::string out;
             JsonWriter w = JsonWriter::ContinuingObject(&out);
             protocol::WriteReply(results[0], &w);
             AfterCommitWait(NewestSeen(results),
                             [this, from, out] { transport_->Reply(from, "txn_get_ok", out); });
           });
}

void ClusterNode::HandleTxnWrite(const Body& body, bool is_delete, const ReplyAddress& from) {
  CoordinatedTxn* txn = FindTxn(body, from);
  if (txn == nullptr) return;
  std::string key, value;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  if (!is_delete) {
    if (auto err = body.RequiredValue("value", &value)) return ReplyError(from, *err);
  }
  if (txn->read_only) {
    return ReplyError(from, protocol::Malformed("transaction " + std::to_string(txn->id.stamp) +
                                                " is read-only: it cannot write"));
  }
  const std::string_view value_view(value);
  if (Status s = store_->CheckWrite(key, is_delete ? nullptr : &value_view); !s.ok()) {
    return ReplyError(from, protocol::ErrorFromStatus(s));
  }
  if (!txn->writes.count(key) && txn->writes.size() >= protocol::kMaxTxnOps * 10) {
    return ReplyError(
        from,
        protocol::Malformed("transaction " + std::to_string(txn->id.stamp) + " already writes " +
                            std::to_string(txn->writes.size()) + " keys, the limit in a cluster"));
  }
  size_t bytes_after = txn->write_bytes + key.size() + value.size();
  if (auto old = txn->writes.find(key); old != txn->writes.end()) {
    bytes_after -= key.size() + (old->second ? old->second->size() : 0);
  }
  if (bytes_after > protocol::kMaxClusterTxnWriteBytes) {
    return ReplyError(from, TooMuchWritten(txn->id.stamp));
  }
  txn->write_bytes = bytes_after;
  if (is_delete) {
    txn->writes[key].reset();
  } else {
    txn->writes[key] = std::move(value);
  }
  transport_->Reply(from, is_delete ? "txn_delete_ok" : "txn_put_ok", "");
}

void ClusterNode::HandleTxnScan(const Body& body, const ReplyAddress& from) {
  CoordinatedTxn* txn = FindTxn(body, from);
  if (txn == nullptr) return;
  protocol::MvccScanRequest req;
  if (auto err = protocol::ParseRequest(body, &req)) return ReplyError(from, *err);
  if (req.read_timestamp) {
    return ReplyError(from,
                      protocol::Malformed("field 'read_timestamp' is not allowed in txn_scan: a "
                                          "transaction reads at its start timestamp"));
  }
  struct Gather {
    size_t waiting = 0;
    std::optional<ErrorReply> error;
    std::vector<ScanItem> items;
    std::optional<std::string> bound;  // merge nothing past this key
  };
  auto gather = std::make_shared<Gather>();
  gather->waiting = map_.shards().size();
  auto own_begin = txn->writes.lower_bound(req.range.start);
  auto own_end = req.range.end ? txn->writes.lower_bound(*req.range.end) : txn->writes.end();
  const size_t own_count = static_cast<size_t>(std::distance(own_begin, own_end));
  const cluster::ShardRead read{txn->start, {}, req.range, req.limit + own_count};
  const uint64_t id = txn->id.stamp;
  const size_t limit = req.limit;
  const KeyRange range = req.range;
  for (const cluster::Shard& shard : map_.shards()) {
    Call(shard.id, read, [=, this](const cluster::PeerReply* reply) {
      const auto* read_reply = cluster::ReplyAs<cluster::ShardReadReply>(reply);
      if (read_reply == nullptr) {
        gather->error = FailureOf(reply, ErrorReply{ErrorCode::kTemporarilyUnavailable,
                                                    "a shard did not answer the scan in time; "
                                                    "try again"});
      } else if (!read_reply->scan) {
        gather->error = ErrorReply{ErrorCode::kCrash, "a shard's scan reply had no items"};
      } else {
        const ScanResult& scan = *read_reply->scan;
        for (const ScanItem& item : scan.items) gather->items.push_back(item);
        // Cut short: past its last item, that shard may hold items not seen.
        const std::string last = scan.items.empty() ? std::string() : scan.items.back().key;
        if (scan.more && (!gather->bound || last < *gather->bound)) gather->bound = last;
      }
      if (--gather->waiting > 0) return;
      if (gather->error) return ReplyError(from, *gather->error);
      auto it = txns_.find(id);
      if (it == txns_.end()) return ReplyError(from, TxnNotFound(id));
      CoordinatedTxn& open = *it->second;
      // Stored items, overlaid with the transaction's own writes.
      std::map<std::string, ScanItem> merged;
      for (ScanItem& item : gather->items) {
        if (!gather->bound || item.key <= *gather->bound) merged[item.key] = std::move(item);
      }
      bool more = gather->bound.has_value();
      auto own = open.writes.lower_bound(range.start);
      for (; own != open.writes.end() && range.Contains(own->first); ++own) {
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
      if (open.validates_reads()) {
        if (Status room = ReadRoom(open); !room.ok()) {
          return ReplyError(from, protocol::ErrorFromStatus(room));
        }
        open.read_ranges.push_back(range);
      }
      Timestamp newest;
      for (const ScanItem& item : result.items) newest = std::max(newest, item.timestamp);
      std::string out;
      JsonWriter reply_fields = JsonWriter::ContinuingObject(&out);
      protocol::WriteReply(result, &reply_fields);
      AfterCommitWait(newest, [this, from, out] { transport_->Reply(from, "txn_scan_ok", out); });
    });
  }
}

void ClusterNode::HandleTxnCommit(const Body& body, const ReplyAddress& from) {
  CoordinatedTxn* found = FindTxn(body, from);
  if (found == nullptr) return;
  std::unique_ptr<CoordinatedTxn> txn = std::move(txns_[found->id.stamp]);
  txns_.erase(txn->id.stamp);
  const Timestamp start = txn->start;
  const uint64_t id = txn->id.stamp;
  CommitWrites(start, txn->isolation, std::move(txn->writes), std::move(txn->read_keys),
               std::move(txn->read_ranges), /*blind=*/false,
               [this, from, start, id](const ErrorReply* error, Timestamp commit_ts) {
                 active_snapshots_.erase(active_snapshots_.find(start.value()));
                 if (error) {
                   if (IsUnknownOutcome(*error)) return;
                   ErrorReply named = *error;
                   if (named.code == ErrorCode::kTxnConflict) {
                     named.text = "transaction " + std::to_string(id) + " aborted: " + named.text;
                   }
                   return ReplyError(from, named);
                 }
                 std::string out;
                 JsonWriter::ContinuingObject(&out).FieldUint("commit_timestamp",
                                                              commit_ts.value());
                 transport_->Reply(from, "txn_commit_ok", out);
               });
}

void ClusterNode::HandleTxnAbort(const Body& body, const ReplyAddress& from) {
  CoordinatedTxn* txn = FindTxn(body, from);
  if (txn == nullptr) return;
  active_snapshots_.erase(active_snapshots_.find(txn->start.value()));
  txns_.erase(txn->id.stamp);  // nothing was sent to any shard yet
  transport_->Reply(from, "txn_abort_ok", "");
}

void ClusterNode::ExpireIdleTxns(Clock::time_point now) {
  for (auto it = txns_.begin(); it != txns_.end();) {
    if (it->second->last_used + options_.txn_timeout <= now) {
      active_snapshots_.erase(active_snapshots_.find(it->second->start.value()));
      it = txns_.erase(it);
      ++expired_txns_;
    } else {
      ++it;
    }
  }
}

// --- reads -------------------------------------------------------------------

void ClusterNode::ReadKeys(std::vector<std::string> keys, Timestamp snapshot,
                           std::function<void(const ErrorReply*, std::vector<ReadResult>)> done) {
  struct Gather {
    size_t waiting = 0;
    bool failed = false;
    std::vector<ReadResult> results;
    std::function<void(const ErrorReply*, std::vector<ReadResult>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->results.resize(keys.size());
  gather->done = std::move(done);
  std::map<cluster::ShardId, std::vector<size_t>> by_shard;  // indexes into keys
  for (size_t i = 0; i < keys.size(); ++i) by_shard[ShardOfKey(keys[i])].push_back(i);
  gather->waiting = by_shard.size();
  if (by_shard.empty()) return gather->done(nullptr, {});
  for (auto& [shard, indexes] : by_shard) {
    std::vector<std::string> shard_keys;
    for (size_t i : indexes) shard_keys.push_back(keys[i]);
    Call(shard, cluster::ShardRead{snapshot, std::move(shard_keys), std::nullopt, 0},
         [gather, indexes = indexes](const cluster::PeerReply* reply) {
           if (gather->failed) return;
           const auto* read = cluster::ReplyAs<cluster::ShardReadReply>(reply);
           if (read != nullptr && read->reads.size() == indexes.size()) {
             for (size_t i = 0; i < indexes.size(); ++i) {
               gather->results[indexes[i]] = read->reads[i];
             }
             if (--gather->waiting == 0) gather->done(nullptr, std::move(gather->results));
             return;
           }
           ErrorReply error =
               read != nullptr
                   ? ErrorReply{ErrorCode::kCrash, "a shard's read reply was unreadable"}
                   : FailureOf(reply,
                               ErrorReply{ErrorCode::kTemporarilyUnavailable,
                                          "the shard holding a key did not answer the read in "
                                          "time"});
           gather->failed = true;
           gather->done(&error, {});
         });
  }
}

// --- commit ------------------------------------------------------------------

void ClusterNode::CommitWrites(Timestamp start, Isolation isolation,
                               std::map<std::string, std::optional<std::string>> writes,
                               std::set<std::string> read_keys, std::vector<KeyRange> read_ranges,
                               bool blind, std::function<void(const ErrorReply*, Timestamp)> done) {
  if (writes.empty()) {
    // Read-only: its reads were one consistent snapshot; nothing to check.
    ++commits_;
    return done(nullptr, start);
  }
  auto commit = std::make_shared<Commit>();
  Timestamp stamp;
  const cluster::TxnId txn = NewTxnId(&stamp);
  commit->txn = txn;
  commit->start = start;
  commit->done = std::move(done);
  auto part = [&](cluster::ShardId shard) -> cluster::PrepareRequest& {
    cluster::PrepareRequest& request = commit->parts[shard];
    request.txn = txn;
    request.start = start;
    request.isolation = isolation;
    request.blind = blind;
    return request;
  };
  for (auto& [key, value] : writes) {
    part(ShardOfKey(key)).writes.push_back(BatchWrite{key, std::move(value)});
  }
  // The primary holds the record: this node's own shard if it is written
  // (record calls are then local), else the first written shard.
  commit->primary = commit->parts.count(shard_) ? shard_ : commit->parts.begin()->first;
  if (isolation == Isolation::kSerializable) {
    for (const std::string& key : read_keys) part(ShardOfKey(key)).read_keys.push_back(key);
    if (!read_ranges.empty()) {
      // A range spans every shard (keys are placed by hash).
      for (const cluster::Shard& shard : map_.shards()) part(shard.id).read_ranges = read_ranges;
    }
  }
  for (auto& [shard, request] : commit->parts) request.primary = commit->primary;
  if (commit->parts.size() == 1) return CommitOnePhase(std::move(commit));
  CommitTwoPhase(std::move(commit));
}

void ClusterNode::CommitOnePhase(std::shared_ptr<Commit> commit) {
  const auto& [shard, request] = *commit->parts.begin();
  Call(shard, cluster::ShardCommit{request}, [this, commit](const cluster::PeerReply* reply) {
    if (reply == nullptr) {
      ++unknown_outcomes_;
      ErrorReply unknown = UnknownOutcome("the shard did not answer the commit");
      return commit->done(&unknown, Timestamp());
    }
    const auto* committed = cluster::ReplyAs<cluster::CommitReply>(reply);
    if (committed == nullptr) {
      if (peers_.rpc().copies_sent() > 1) {
        // An earlier copy may have committed on a shard that then
        // restarted and no longer knows it: the refusal proves nothing.
        ++unknown_outcomes_;
        ErrorReply unknown = UnknownOutcome("a resent one-phase commit was refused");
        return commit->done(&unknown, Timestamp());
      }
      ErrorReply error = FailureOf(reply, {});
      if (error.code == ErrorCode::kTxnConflict) ++conflicts_;
      return commit->done(&error, Timestamp());
    }
    const Timestamp commit_ts = committed->commit_timestamp;
    ++commits_, ++one_phase_commits_;
    AfterCommitWait(commit_ts, [commit, commit_ts] { commit->done(nullptr, commit_ts); });
  });
}

void ClusterNode::CommitTwoPhase(std::shared_ptr<Commit> commit) {
  commit->waiting = commit->parts.size();
  const std::vector<cluster::ShardId> participants = commit->shards();
  for (const auto& [shard, request] : commit->parts) {
    cluster::ShardPrepare prepare{request, {}};
    // The record lists them, so the primary can finish the resolution
    // itself if this node dies after committing.
    if (shard == commit->primary) prepare.participants = participants;
    Call(shard, std::move(prepare), [this, commit, shard = shard](const cluster::PeerReply* reply) {
      if (commit->decided) return;
      const auto* prepared = cluster::ReplyAs<cluster::PrepareReply>(reply);
      if (prepared == nullptr) {
        return AbortTwoPhase(commit,
                             FailureOf(reply, ErrorReply{ErrorCode::kTemporarilyUnavailable,
                                                         "shard " + std::to_string(shard) +
                                                             " did not answer the prepare in time; "
                                                             "the transaction was aborted"}));
      }
      commit->max_prepare = std::max(commit->max_prepare, prepared->prepare_timestamp);
      if (--commit->waiting == 0) DecideTwoPhase(commit);
    });
  }
  timers_.After(options_.heartbeat_interval,
                [this, weak = std::weak_ptr<Commit>(commit)] { Heartbeat(weak); });
}

void ClusterNode::Heartbeat(std::weak_ptr<Commit> weak) {
  std::shared_ptr<Commit> commit = weak.lock();
  if (!commit || commit->finished) return;
  Call(commit->primary, cluster::RecordCall{cluster::RecordOp::kHeartbeat, commit->txn, {}},
       [](const cluster::PeerReply*) {});
  timers_.After(options_.heartbeat_interval, [this, weak] { Heartbeat(weak); });
}

void ClusterNode::DecideTwoPhase(std::shared_ptr<Commit> commit) {
  commit->decided = true;
  // At or above every prepare timestamp: no participant can have served a
  // read at or above C without seeing the intent.
  const Timestamp commit_ts = commit->max_prepare;
  clock_.Observe(commit_ts);
  Call(commit->primary, cluster::RecordCall{cluster::RecordOp::kCommit, commit->txn, commit_ts},
       [this, commit](const cluster::PeerReply* reply) {
         commit->finished = true;
         const auto* record = cluster::ReplyAs<cluster::RecordReply>(reply);
         if (record == nullptr || !record->status) {
           // Nobody knows here whether the record committed; the
           // participants will find out from it.
           ++unknown_outcomes_;
           ErrorReply unknown = UnknownOutcome("the primary did not answer record_commit");
           return commit->done(&unknown, Timestamp());
         }
         if (*record->status == cluster::TxnStatus::kCommitted) {
           const Timestamp recorded = record->commit_timestamp;
           ++commits_, ++two_phase_commits_;
           ResolveEverywhere(*commit, cluster::TxnStatus::kCommitted, recorded);
           return AfterCommitWait(recorded,
                                  [commit, recorded] { commit->done(nullptr, recorded); });
         }
         ++conflicts_;
         ResolveEverywhere(*commit, cluster::TxnStatus::kAborted, Timestamp());
         ErrorReply aborted{ErrorCode::kTxnConflict,
                            "its transaction record was aborted by a shard that found its intents "
                            "stalled (no heartbeat within --heartbeat-timeout-ms)"};
         commit->done(&aborted, Timestamp());
       });
}

void ClusterNode::AbortTwoPhase(std::shared_ptr<Commit> commit, ErrorReply error) {
  commit->decided = commit->finished = true;
  if (error.code == ErrorCode::kTxnConflict) ++conflicts_;
  Call(commit->primary, cluster::RecordCall{cluster::RecordOp::kAbort, commit->txn, {}},
       [](const cluster::PeerReply*) {});
  ResolveEverywhere(*commit, cluster::TxnStatus::kAborted, Timestamp());
  commit->done(&error, Timestamp());
}

void ClusterNode::ResolveEverywhere(const Commit& commit, cluster::TxnStatus outcome,
                                    Timestamp commit_ts) {
  // Once every participant has resolved, nobody will ask the record again.
  cluster::ResolveOn(&peers_, commit.txn, commit.shards(), outcome, commit_ts,
                     [this, txn = commit.txn, primary = commit.primary](bool all_resolved) {
                       // If not, the record stays; its primary finishes the job.
                       if (!all_resolved) return;
                       Call(primary, cluster::RecordCall{cluster::RecordOp::kForget, txn, {}},
                            [](const cluster::PeerReply*) {});
                     });
}

void ClusterNode::AfterCommitWait(Timestamp commit_ts, std::function<void()> reply) {
  const uint64_t wall = cluster::HybridLogicalClock::SystemMillis();
  const uint64_t past = cluster::HybridLogicalClock::PhysicalMillis(commit_ts) +
                        static_cast<uint64_t>(options_.max_clock_offset.count());
  if (wall > past) return reply();
  // Timestamps come from clocks within the offset of ours (the receive rule
  // refuses others); the cap only keeps a broken peer's from overflowing
  // the timer.
  const uint64_t wait_ms = std::min<uint64_t>(
      past - wall + 1, static_cast<uint64_t>(options_.max_clock_offset.count()) + 1000);
  timers_.After(std::chrono::milliseconds(wait_ms), std::move(reply));
}

// --- Maelstrom workloads -------------------------------------------------------

void ClusterNode::HandleKvRead(const Body& body, const ReplyAddress& from) {
  std::string key;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  Timestamp snapshot;
  NewTxnId(&snapshot);
  active_snapshots_.insert(snapshot.value());
  ReadKeys({key}, snapshot,
           [this, from, key, snapshot](const ErrorReply* error, std::vector<ReadResult> reads) {
             active_snapshots_.erase(active_snapshots_.find(snapshot.value()));
             if (error) return ReplyError(from, *error);
             // A value (or a delete) that only a commit not yet acknowledged
             // may have made visible: shown once that commit could be.
             if (!reads[0].found || reads[0].deleted) {
               ErrorReply missing{ErrorCode::kKeyDoesNotExist,
                                  "key " + KeyText(key) + " does not exist"};
               return AfterCommitWait(NewestSeen(reads),
                                      [this, from, missing] { ReplyError(from, missing); });
             }
             std::string out;
             JsonWriter::ContinuingObject(&out).Key("value").Raw(reads[0].value);
             AfterCommitWait(NewestSeen(reads),
                             [this, from, out] { transport_->Reply(from, "read_ok", out); });
           });
}

void ClusterNode::HandleKvWrite(const Body& body, const ReplyAddress& from) {
  std::string key, value;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  if (auto err = body.RequiredValue("value", &value)) return ReplyError(from, *err);
  // A blind write read nothing, so the shard checks it against its own
  // present, not this snapshot: concurrent writes do not fail each other.
  // A copy of it delayed or resent is answered from the shard's finished
  // outcomes, or, if the shard restarted since it was sent, refused.
  Timestamp snapshot;
  NewTxnId(&snapshot);
  CommitWrites(snapshot, Isolation::kSnapshot, {{key, std::move(value)}}, {}, {}, /*blind=*/true,
               [this, from](const ErrorReply* error, Timestamp) {
                 if (error) {
                   if (!IsUnknownOutcome(*error)) ReplyError(from, *error);
                   return;
                 }
                 transport_->Reply(from, "write_ok", "");
               });
}

void ClusterNode::HandleKvCas(const Body& body, const ReplyAddress& from) {
  std::string key, expected, replacement;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  if (auto err = body.RequiredValue("from", &expected)) return ReplyError(from, *err);
  if (auto err = body.RequiredValue("to", &replacement)) return ReplyError(from, *err);
  std::optional<bool> create;
  if (auto err = body.OptionalBool("create_if_not_exists", &create)) {
    return ReplyError(from, *err);
  }
  Timestamp snapshot;
  NewTxnId(&snapshot);
  active_snapshots_.insert(snapshot.value());
  auto finish = [this, snapshot, from](const ErrorReply* error) {
    active_snapshots_.erase(active_snapshots_.find(snapshot.value()));
    if (error) {
      if (!IsUnknownOutcome(*error)) ReplyError(from, *error);
      return;
    }
    transport_->Reply(from, "cas_ok", "");
  };
  ReadKeys(
      {key}, snapshot,
      [=, this, create = create.value_or(false)](const ErrorReply* error,
                                                 std::vector<ReadResult> reads) mutable {
        if (error) return finish(error);
        const bool exists = reads[0].found && !reads[0].deleted;
        ErrorReply refusal;
        if (!exists && !create) {
          refusal = {ErrorCode::kKeyDoesNotExist, "key " + KeyText(key) + " does not exist"};
        } else if (exists && reads[0].value != expected) {
          refusal = {ErrorCode::kPreconditionFailed,
                     "cas on key " + KeyText(key) + " expected " + protocol::Abbreviate(expected) +
                         " but found " + protocol::Abbreviate(reads[0].value)};
        }
        if (!refusal.text.empty()) {
          // The refusal reveals the value read: shown no earlier than a read.
          return AfterCommitWait(NewestSeen(reads),
                                 [finish, refusal]() mutable { finish(&refusal); });
        }
        // Serializable whatever the node's level: the value compared
        // must still be the newest when the new one lands.
        CommitWrites(snapshot, Isolation::kSerializable, {{key, std::move(replacement)}}, {key}, {},
                     /*blind=*/false,
                     [finish](const ErrorReply* commit_error, Timestamp) { finish(commit_error); });
      });
}

void ClusterNode::HandleTxnOps(const Body& body, const ReplyAddress& from) {
  auto ops_element = body.Find("txn");
  simdjson::dom::array ops;
  if (!ops_element || ops_element->get_array().get(ops)) {
    return ReplyError(
        from, protocol::Malformed(
                  "field 'txn' is required and must be an array of [f, key, value] operations"));
  }
  if (ops.size() > protocol::kMaxTxnOps) {
    return ReplyError(from, protocol::Malformed("field 'txn' has " + std::to_string(ops.size()) +
                                                " operations; the limit is " +
                                                std::to_string(protocol::kMaxTxnOps)));
  }
  struct Op {
    char f;                // 'r', 'w' or 'a'
    std::string key;       // engine bytes
    std::string key_json;  // as the client wrote it
    std::string arg_json;  // canonical
  };
  std::vector<Op> parsed;
  std::vector<std::string> to_read;
  std::set<std::string> seen;
  for (simdjson::dom::element op : ops) {
    simdjson::dom::array parts;
    std::string_view f;
    if (op.get_array().get(parts) || parts.size() != 3 || parts.at(0).get_string().get(f)) {
      return ReplyError(
          from,
          protocol::Malformed("each operation in 'txn' must be [f, key, value] with f a string"));
    }
    Op parsed_op;
    if (f == "r") {
      parsed_op.f = 'r';
    } else if (f == "w") {
      parsed_op.f = 'w';
    } else if (f == "append") {
      parsed_op.f = 'a';
    } else {
      return ReplyError(from, protocol::Malformed("unknown operation '" + protocol::Abbreviate(f) +
                                                  "' in 'txn' (expected r, w or append)"));
    }
    simdjson::dom::element key_element = parts.at(1).value_unsafe();
    if (auto err = protocol::EncodeKeyElement(key_element, "txn key", &parsed_op.key)) {
      return ReplyError(from, *err);
    }
    parsed_op.key_json = simdjson::minify(key_element);
    protocol::AppendCanonicalJson(parts.at(2).value_unsafe(), &parsed_op.arg_json);
    if (parsed_op.arg_json.size() > protocol::kMaxValueBytes) {
      return ReplyError(from,
                        protocol::Malformed("a value in 'txn' exceeds " +
                                            std::to_string(protocol::kMaxValueBytes) + " bytes"));
    }
    if (parsed_op.f != 'w' && seen.insert(parsed_op.key).second) to_read.push_back(parsed_op.key);
    parsed.push_back(std::move(parsed_op));
  }
  Timestamp snapshot;
  NewTxnId(&snapshot);
  active_snapshots_.insert(snapshot.value());
  const Isolation isolation = options_.isolation;
  auto release = [this, snapshot] {
    active_snapshots_.erase(active_snapshots_.find(snapshot.value()));
  };
  ReadKeys(to_read, snapshot,
           [=, this, parsed = std::move(parsed)](const ErrorReply* error,
                                                 std::vector<ReadResult> reads) {
             if (error) {
               release();
               return ReplyError(from, *error);
             }
             std::map<std::string, std::optional<std::string>> snapshot_values;
             for (size_t i = 0; i < to_read.size(); ++i) {
               if (reads[i].found && !reads[i].deleted) {
                 snapshot_values[to_read[i]] = std::move(reads[i].value);
               } else {
                 snapshot_values[to_read[i]] = std::nullopt;
               }
             }
             std::map<std::string, std::optional<std::string>> writes;
             std::set<std::string> observed;  // keys whose snapshot value was used
             auto current = [&](const std::string& key) -> std::optional<std::string> {
               if (auto own = writes.find(key); own != writes.end()) return own->second;
               observed.insert(key);
               return snapshot_values[key];
             };
             std::string completed;
             JsonWriter out(&completed);
             out.BeginArray();
             for (const Op& op : parsed) {
               out.BeginArray().String(op.f == 'r' ? "r" : op.f == 'w' ? "w" : "append");
               out.Raw(op.key_json);
               if (op.f == 'r') {
                 std::optional<std::string> value = current(op.key);
                 value ? out.Raw(*value) : out.Null();
               } else if (op.f == 'w') {
                 writes[op.key] = op.arg_json;
                 out.Raw(op.arg_json);
               } else {
                 std::optional<std::string> list = current(op.key);
                 if (list && list->front() != '[') {
                   release();
                   return ReplyError(from, ErrorReply{ErrorCode::kPreconditionFailed,
                                                      "cannot append to key " + op.key_json +
                                                          ": its value is not a list"});
                 }
                 std::string appended = !list || *list == "[]" ? "[" + op.arg_json + "]"
                                                               : list->substr(0, list->size() - 1) +
                                                                     "," + op.arg_json + "]";
                 writes[op.key] = std::move(appended);
                 out.Raw(op.arg_json);
               }
               out.EndArray();
             }
             out.EndArray();
             size_t write_bytes = 0;
             for (const auto& [key, value] : writes) {
               write_bytes += key.size() + (value ? value->size() : 0);
             }
             if (write_bytes > protocol::kMaxClusterTxnWriteBytes) {
               release();
               return ReplyError(from, TooMuchWritten(snapshot.value()));
             }
             CommitWrites(
                 snapshot, isolation, std::move(writes),
                 isolation == Isolation::kSerializable ? observed : std::set<std::string>{}, {},
                 /*blind=*/false,
                 [this, from, completed, release, newest_seen = NewestSeen(reads)](
                     const ErrorReply* commit_error, Timestamp) {
                   release();
                   if (commit_error) {
                     if (!IsUnknownOutcome(*commit_error)) {
                       ReplyError(from, *commit_error);
                     }
                     return;
                   }
                   std::string reply;
                   JsonWriter::ContinuingObject(&reply).Key("txn").Raw(completed);
                   // Read-only lists commit at once: they wait like reads.
                   AfterCommitWait(newest_seen, [this, from, reply] {
                     transport_->Reply(from, "txn_ok", reply);
                   });
                 });
           });
}

}  // namespace strata::node
