#include "server/peer_proto.h"

#include <string>
#include <utility>

#include "cluster/hybrid_clock.h"

namespace strata::server {

using cluster::PeerReply;
using cluster::PeerRequest;

namespace {

// --- typed -> protobuf ----------------------------------------------------------

void ToProto(const KeyRange& range, peerpb::KeyRange* out) {
  out->set_start(range.start);
  if (range.end) out->set_end(*range.end);
}

void ToProto(const cluster::TxnId& txn, peerpb::TxnId* out) {
  out->set_stamp(txn.stamp);
  out->set_coordinator(txn.coordinator);
}

peerpb::TxnStatus ToProto(cluster::TxnStatus status) {
  switch (status) {
    case cluster::TxnStatus::kPending:
      return peerpb::PENDING;
    case cluster::TxnStatus::kCommitted:
      return peerpb::COMMITTED;
    case cluster::TxnStatus::kAborted:
      return peerpb::ABORTED;
  }
  return peerpb::PENDING;
}

peerpb::RecordOp ToProto(cluster::RecordOp op) { return static_cast<peerpb::RecordOp>(op); }

void ToProto(const cluster::PrepareRequest& request, peerpb::Prepare* out) {
  ToProto(request.txn, out->mutable_txn());
  out->set_start(request.start.value());
  out->set_snapshot_isolation(request.isolation == Isolation::kSnapshot);
  out->set_primary(request.primary);
  for (const BatchWrite& write : request.writes) {
    peerpb::Write* w = out->add_writes();
    w->set_key(write.key);
    if (write.value) w->set_value(*write.value);
  }
  for (const std::string& key : request.read_keys) out->add_read_keys(key);
  for (const KeyRange& range : request.read_ranges) ToProto(range, out->add_read_ranges());
  out->set_blind(request.blind);
}

void ToProto(const ScanResult& scan, peerpb::ScanResult* out) {
  for (const ScanItem& item : scan.items) {
    peerpb::ScanItem* p = out->add_items();
    p->set_key(item.key);
    p->set_value(item.value);
    p->set_version(item.version);
    p->set_timestamp(item.timestamp.value());
  }
  out->set_more(scan.more);
}

struct RequestWriter {
  peerpb::Message* m;
  void operator()(const cluster::ShardRead& read) const {
    peerpb::ShardRead* p = m->mutable_shard_read();
    p->set_snapshot(read.snapshot.value());
    for (const std::string& key : read.keys) p->add_keys(key);
    if (read.range) ToProto(*read.range, p->mutable_range());
    p->set_limit(read.limit);
    p->set_at_closed(read.at_closed);
  }
  void operator()(const cluster::ShardPrepare& prepare) const {
    peerpb::ShardPrepare* p = m->mutable_shard_prepare();
    ToProto(prepare.request, p->mutable_request());
    for (cluster::ShardId shard : prepare.participants) p->add_participants(shard);
  }
  void operator()(const cluster::ShardCommit& commit) const {
    ToProto(commit.request, m->mutable_shard_commit()->mutable_request());
  }
  void operator()(const cluster::ShardResolve& resolve) const {
    peerpb::ShardResolve* p = m->mutable_shard_resolve();
    ToProto(resolve.txn, p->mutable_txn());
    p->set_outcome(ToProto(resolve.outcome));
    p->set_commit_timestamp(resolve.commit_timestamp.value());
  }
  void operator()(const cluster::RecordCall& call) const {
    peerpb::RecordCall* p = m->mutable_record_call();
    p->set_op(ToProto(call.op));
    ToProto(call.txn, p->mutable_txn());
    p->set_commit_timestamp(call.commit_timestamp.value());
  }
  void operator()(const cluster::Forward& forward) const {
    m->mutable_forward()->set_request(forward.request);
    m->mutable_forward()->set_id(forward.id);
  }
  void operator()(const cluster::LowWaterMarkReport& report) const {
    m->mutable_low_water_mark_report()->set_oldest_snapshot(report.oldest_snapshot.value());
  }
  void operator()(const cluster::RawScan& scan) const {
    peerpb::RawScan* p = m->mutable_raw_scan();
    ToProto(scan.range, p->mutable_range());
    p->set_at(scan.at.value());
    p->set_limit(scan.limit);
  }
  void operator()(const cluster::RawChanges& changes) const {
    peerpb::RawChanges* p = m->mutable_raw_changes();
    p->set_since(changes.since.value());
    ToProto(changes.range, p->mutable_range());
    p->set_limit(changes.limit);
  }
  void operator()(const cluster::RawCompact& compact) const {
    m->mutable_raw_compact()->set_horizon(compact.horizon.value());
  }
  void operator()(const cluster::ShardWatch& watch) const {
    peerpb::ShardWatch* p = m->mutable_shard_watch();
    ToProto(watch.range, p->mutable_range());
    p->set_after(watch.after.value());
    p->set_cursor(watch.cursor);
    p->set_limit(watch.limit);
    p->set_with_previous(watch.with_previous);
    p->set_park_ms(watch.park_ms);
    p->set_close_to(watch.close_to.value());
  }
};

void ToProto(const Change& change, peerpb::Change* c) {
  c->set_key(change.key);
  c->set_timestamp(change.timestamp.value());
  c->set_version(change.version);
  c->set_deleted(change.deleted);
  c->set_value(change.value);
}

Change FromProto(const peerpb::Change& c) {
  return Change{c.key(), Timestamp(c.timestamp()), c.version(), c.deleted(), c.value()};
}

struct ReplyWriter {
  peerpb::Message* m;
  void operator()(const cluster::ShardReadReply& reply) const {
    peerpb::ShardReadReply* p = m->mutable_shard_read_reply();
    for (const ReadResult& read : reply.reads) {
      peerpb::ReadResult* r = p->add_reads();
      r->set_found(read.found);
      r->set_deleted(read.deleted);
      r->set_version(read.version);
      r->set_timestamp(read.timestamp.value());
      r->set_value(read.value);
    }
    if (reply.scan) ToProto(*reply.scan, p->mutable_scan());
    p->set_snapshot(reply.snapshot.value());
  }
  void operator()(const cluster::PrepareReply& reply) const {
    m->mutable_prepare_reply()->set_prepare_timestamp(reply.prepare_timestamp.value());
  }
  void operator()(const cluster::CommitReply& reply) const {
    m->mutable_commit_reply()->set_commit_timestamp(reply.commit_timestamp.value());
  }
  void operator()(const cluster::ResolveReply&) const { m->mutable_resolve_reply(); }
  void operator()(const cluster::RecordReply& reply) const {
    peerpb::RecordReply* p = m->mutable_record_reply();
    p->set_op(ToProto(reply.op));
    if (reply.status) p->set_status(ToProto(*reply.status));
    p->set_commit_timestamp(reply.commit_timestamp.value());
  }
  void operator()(const cluster::ForwardReply& reply) const {
    m->mutable_forward_reply()->set_reply(reply.reply);
  }
  void operator()(const cluster::RawScanReply& reply) const {
    ToProto(reply.scan, m->mutable_raw_scan_reply()->mutable_scan());
  }
  void operator()(const cluster::RawChangesReply& reply) const {
    peerpb::RawChangesReply* p = m->mutable_raw_changes_reply();
    for (const Change& change : reply.changes.changes) ToProto(change, p->add_changes());
    p->set_more(reply.changes.more);
  }
  void operator()(const cluster::ShardWatchReply& reply) const {
    peerpb::ShardWatchReply* p = m->mutable_shard_watch_reply();
    for (const Change& change : reply.changes) ToProto(change, p->add_changes());
    p->set_resolved(reply.resolved.value());
    p->set_cursor(reply.cursor);
    for (const std::optional<Change>& previous : reply.previous) {
      auto* out = p->add_previous();
      if (previous) ToProto(*previous, out->mutable_change());
    }
  }
  void operator()(const cluster::RawCompactReply& reply) const {
    peerpb::RawCompactReply* p = m->mutable_raw_compact_reply();
    p->set_horizon(reply.compacted.horizon.value());
    p->set_versions_removed(reply.compacted.versions_removed);
    p->set_bytes_reclaimed(reply.compacted.bytes_reclaimed);
  }
  void operator()(const cluster::PeerError& error) const {
    peerpb::PeerError* p = m->mutable_error();
    p->set_code(static_cast<uint32_t>(error.status.code()));
    p->set_message(error.status.message());
    if (error.leader) p->set_leader(*error.leader);
  }
};

// --- protobuf -> typed ----------------------------------------------------------

Status Bad(std::string what) { return Status::InvalidArgument("a peer sent " + std::move(what)); }

KeyRange FromProto(const peerpb::KeyRange& range) {
  KeyRange out;
  out.start = range.start();
  if (range.has_end()) out.end = range.end();
  return out;
}

cluster::TxnId FromProto(const peerpb::TxnId& txn) {
  return cluster::TxnId{txn.stamp(), txn.coordinator()};
}

std::optional<cluster::TxnStatus> FromProto(peerpb::TxnStatus status) {
  switch (status) {
    case peerpb::PENDING:
      return cluster::TxnStatus::kPending;
    case peerpb::COMMITTED:
      return cluster::TxnStatus::kCommitted;
    case peerpb::ABORTED:
      return cluster::TxnStatus::kAborted;
    default:
      return std::nullopt;
  }
}

Status FromProto(const peerpb::Prepare& p, cluster::PrepareRequest* out) {
  if (!p.has_txn()) return Bad("a prepare without a transaction id");
  out->txn = FromProto(p.txn());
  out->start = Timestamp(p.start());
  out->isolation = p.snapshot_isolation() ? Isolation::kSnapshot : Isolation::kSerializable;
  out->primary = p.primary();
  for (const peerpb::Write& write : p.writes()) {
    out->writes.push_back(BatchWrite{
        write.key(), write.has_value() ? std::optional<std::string>(write.value()) : std::nullopt});
  }
  out->read_keys.assign(p.read_keys().begin(), p.read_keys().end());
  for (const peerpb::KeyRange& range : p.read_ranges())
    out->read_ranges.push_back(FromProto(range));
  out->blind = p.blind();
  return Status::Ok();
}

std::optional<cluster::RecordOp> RecordOpFrom(peerpb::RecordOp op) {
  if (op < peerpb::RECORD_COMMIT || op > peerpb::RECORD_FORGET) return std::nullopt;
  return static_cast<cluster::RecordOp>(op);
}

ScanResult FromProto(const peerpb::ScanResult& scan) {
  ScanResult out;
  for (const peerpb::ScanItem& item : scan.items()) {
    out.items.push_back(
        ScanItem{item.key(), item.value(), item.version(), Timestamp(item.timestamp())});
  }
  out.more = scan.more();
  return out;
}

Status RawLimit(uint64_t limit, size_t* out) {
  if (limit == 0 || limit > cluster::kMaxRawLimit) return Bad("a limit out of range");
  *out = limit;
  return Status::Ok();
}

PeerReply Unreadable(std::string what) {
  return cluster::PeerError{Status::IoError("a node sent an unreadable reply: " + std::move(what))};
}

}  // namespace

void RequestToProto(const PeerRequest& request, peerpb::Message* out) {
  std::visit(RequestWriter{out}, request);
}

void ReplyToProto(const PeerReply& reply, peerpb::Message* out) {
  std::visit(ReplyWriter{out}, reply);
}

bool IsReply(const peerpb::Message& message) {
  return message.in_reply_to() != 0 || message.body_case() == peerpb::Message::kError;
}

Status RequestFromProto(const peerpb::Message& m, PeerRequest* out) {
  switch (m.body_case()) {
    case peerpb::Message::kShardRead: {
      const peerpb::ShardRead& p = m.shard_read();
      cluster::ShardRead read{Timestamp(p.snapshot()), {p.keys().begin(), p.keys().end()}, {}, 0};
      read.at_closed = p.at_closed();
      if (p.has_range()) {
        if (p.limit() == 0 || p.limit() > cluster::kMaxShardReadLimit) {
          return Bad("a shard read whose limit is out of range");
        }
        read.range = FromProto(p.range());
        read.limit = p.limit();
      }
      *out = std::move(read);
      return Status::Ok();
    }
    case peerpb::Message::kShardPrepare: {
      cluster::ShardPrepare prepare;
      if (Status s = FromProto(m.shard_prepare().request(), &prepare.request); !s.ok()) return s;
      if (prepare.request.blind) return Bad("a blind prepare (blind is for one-phase commits)");
      if (m.shard_prepare().participants_size() >
          static_cast<int>(cluster::HybridLogicalClock::kMaxNodes)) {
        return Bad("more participants than a cluster has shards");
      }
      prepare.participants.assign(m.shard_prepare().participants().begin(),
                                  m.shard_prepare().participants().end());
      *out = std::move(prepare);
      return Status::Ok();
    }
    case peerpb::Message::kShardCommit: {
      cluster::ShardCommit commit;
      if (Status s = FromProto(m.shard_commit().request(), &commit.request); !s.ok()) return s;
      *out = std::move(commit);
      return Status::Ok();
    }
    case peerpb::Message::kShardResolve: {
      const peerpb::ShardResolve& p = m.shard_resolve();
      const std::optional<cluster::TxnStatus> outcome = FromProto(p.outcome());
      if (!p.has_txn() || !outcome || *outcome == cluster::TxnStatus::kPending) {
        return Bad("a resolution that is neither committed nor aborted");
      }
      *out = cluster::ShardResolve{FromProto(p.txn()), *outcome, Timestamp(p.commit_timestamp())};
      return Status::Ok();
    }
    case peerpb::Message::kRecordCall: {
      const peerpb::RecordCall& p = m.record_call();
      const std::optional<cluster::RecordOp> op = RecordOpFrom(p.op());
      if (!op || !p.has_txn()) return Bad("a record call of no known kind");
      *out = cluster::RecordCall{*op, FromProto(p.txn()), Timestamp(p.commit_timestamp())};
      return Status::Ok();
    }
    case peerpb::Message::kForward:
      *out = cluster::Forward{m.forward().request(), m.forward().id()};
      return Status::Ok();
    case peerpb::Message::kLowWaterMarkReport:
      *out = cluster::LowWaterMarkReport{Timestamp(m.low_water_mark_report().oldest_snapshot())};
      return Status::Ok();
    case peerpb::Message::kRawScan: {
      const peerpb::RawScan& p = m.raw_scan();
      if (!p.has_range()) return Bad("a raw scan without a range");
      cluster::RawScan scan{FromProto(p.range()), Timestamp(p.at()), 0};
      if (Status s = RawLimit(p.limit(), &scan.limit); !s.ok()) return s;
      *out = std::move(scan);
      return Status::Ok();
    }
    case peerpb::Message::kRawChanges: {
      const peerpb::RawChanges& p = m.raw_changes();
      if (!p.has_range()) return Bad("a raw changes request without a range");
      cluster::RawChanges changes{Timestamp(p.since()), FromProto(p.range()), 0};
      if (Status s = RawLimit(p.limit(), &changes.limit); !s.ok()) return s;
      *out = std::move(changes);
      return Status::Ok();
    }
    case peerpb::Message::kRawCompact:
      *out = cluster::RawCompact{Timestamp(m.raw_compact().horizon())};
      return Status::Ok();
    case peerpb::Message::kShardWatch: {
      const peerpb::ShardWatch& p = m.shard_watch();
      if (!p.has_range()) return Bad("a shard watch without a range");
      cluster::ShardWatch watch{
          FromProto(p.range()), Timestamp(p.after()),   p.cursor(), 0, p.with_previous(),
          p.park_ms(),          Timestamp(p.close_to())};
      if (Status s = RawLimit(p.limit(), &watch.limit); !s.ok()) return s;
      *out = std::move(watch);
      return Status::Ok();
    }
    default:
      return Bad("a message that is no request this node knows");
  }
}

PeerReply ReplyFromProto(const peerpb::Message& m) {
  switch (m.body_case()) {
    case peerpb::Message::kShardReadReply: {
      cluster::ShardReadReply reply;
      for (const peerpb::ReadResult& r : m.shard_read_reply().reads()) {
        reply.reads.push_back(ReadResult{r.found(), r.deleted(), r.version(),
                                         Timestamp(r.timestamp()), r.value(), false});
      }
      if (m.shard_read_reply().has_scan()) reply.scan = FromProto(m.shard_read_reply().scan());
      reply.snapshot = Timestamp(m.shard_read_reply().snapshot());
      return reply;
    }
    case peerpb::Message::kPrepareReply:
      return cluster::PrepareReply{Timestamp(m.prepare_reply().prepare_timestamp())};
    case peerpb::Message::kCommitReply:
      return cluster::CommitReply{Timestamp(m.commit_reply().commit_timestamp())};
    case peerpb::Message::kResolveReply:
      return cluster::ResolveReply{};
    case peerpb::Message::kRecordReply: {
      const peerpb::RecordReply& p = m.record_reply();
      const std::optional<cluster::RecordOp> op = RecordOpFrom(p.op());
      std::optional<cluster::TxnStatus> status;
      if (p.has_status()) {
        status = FromProto(p.status());
        if (!status) return Unreadable("a record status of no known kind");
      }
      if (!op) return Unreadable("a record reply of no known kind");
      return cluster::RecordReply{*op, status, Timestamp(p.commit_timestamp())};
    }
    case peerpb::Message::kForwardReply:
      return cluster::ForwardReply{m.forward_reply().reply()};
    case peerpb::Message::kRawScanReply:
      return cluster::RawScanReply{FromProto(m.raw_scan_reply().scan())};
    case peerpb::Message::kRawChangesReply: {
      cluster::RawChangesReply reply;
      for (const peerpb::Change& c : m.raw_changes_reply().changes()) {
        reply.changes.changes.push_back(FromProto(c));
      }
      reply.changes.more = m.raw_changes_reply().more();
      return reply;
    }
    case peerpb::Message::kShardWatchReply: {
      cluster::ShardWatchReply reply;
      for (const peerpb::Change& c : m.shard_watch_reply().changes()) {
        reply.changes.push_back(FromProto(c));
      }
      reply.resolved = Timestamp(m.shard_watch_reply().resolved());
      reply.cursor = m.shard_watch_reply().cursor();
      for (const auto& previous : m.shard_watch_reply().previous()) {
        reply.previous.push_back(previous.has_change() ? std::optional(FromProto(previous.change()))
                                                       : std::nullopt);
      }
      if (!reply.previous.empty() && reply.previous.size() != reply.changes.size()) {
        return cluster::PeerError{Status::InvalidArgument(
            "a shard watch reply's previous versions do not match its changes")};
      }
      return reply;
    }
    case peerpb::Message::kRawCompactReply: {
      const peerpb::RawCompactReply& p = m.raw_compact_reply();
      return cluster::RawCompactReply{
          CompactResult{Timestamp(p.horizon()), p.versions_removed(), p.bytes_reclaimed(), 0}};
    }
    case peerpb::Message::kError: {
      const uint32_t code = m.error().code();
      if (code == 0 || code > static_cast<uint32_t>(StatusCode::kIoError)) {
        return cluster::PeerError{Status::IoError(m.error().message())};
      }
      cluster::PeerError error{Status(static_cast<StatusCode>(code), m.error().message())};
      if (!m.error().leader().empty()) error.leader = m.error().leader();
      return error;
    }
    default:
      return Unreadable("no reply of a known kind");
  }
}

}  // namespace strata::server
