#include "protocol/peer_codec.h"

#include <array>
#include <utility>

#include "protocol/cluster_codec.h"
#include "protocol/json_writer.h"
#include "protocol/limits.h"

namespace strata::protocol {

using cluster::PeerReply;
using cluster::PeerRequest;
using cluster::RecordOp;

static_assert(kMaxNodeMessageBytes == cluster::kMaxPeerMessageBytes,
              "a peer message must fit one input line of its receiver");
static_assert(kMaxClusterTxnWriteBytes == cluster::kMaxTxnWriteBytes);

namespace {

constexpr std::array<std::pair<RecordOp, std::string_view>, 5> kRecordTypes = {{
    {RecordOp::kCommit, "record_commit"},
    {RecordOp::kAbort, "record_abort"},
    {RecordOp::kPush, "record_push"},
    {RecordOp::kHeartbeat, "record_heartbeat"},
    {RecordOp::kForget, "record_forget"},
}};
constexpr std::array<std::string_view, 5> kRecordReplyTypes = {
    "record_commit_ok", "record_abort_ok", "record_push_ok", "record_heartbeat_ok",
    "record_forget_ok"};

std::string_view RecordType(RecordOp op) { return kRecordTypes[static_cast<size_t>(op)].second; }

static_assert(cluster::kMaxRawLimit == kMaxLimit);
static_assert(cluster::kMaxShardReadLimit == 2 * kMaxLimit + kMaxTxnOps * 10);

std::optional<cluster::TxnStatus> StatusNamed(std::string_view name) {
  if (name == "committed") return cluster::TxnStatus::kCommitted;
  if (name == "aborted") return cluster::TxnStatus::kAborted;
  if (name == "pending") return cluster::TxnStatus::kPending;
  return std::nullopt;
}

void WritePrepare(JsonWriter* w, const cluster::PrepareRequest& request) {
  WriteTxnId(w, "txn", request.txn);
  w->FieldUint("start", request.start.value())
      .Field("isolation",
             request.isolation == Isolation::kSerializable ? "serializable" : "snapshot")
      .FieldUint("primary", request.primary);
  WriteWrites(w, "writes", request.writes);
  if (!request.read_keys.empty()) WriteHexKeys(w, "read_keys", request.read_keys);
  if (!request.read_ranges.empty()) WriteRanges(w, "read_ranges", request.read_ranges);
  if (request.blind) w->Key("blind").Bool(true);
}

// "items": [{k, v, t, val}], "more"
void WriteScan(JsonWriter* w, const ScanResult& scan) {
  w->Key("items").BeginArray();
  for (const ScanItem& item : scan.items) {
    w->BeginObject().Key("k");
    WriteHexKey(w, item.key);
    w->FieldUint("v", item.version).FieldUint("t", item.timestamp.value());
    w->Key("val").Raw(item.value).EndObject();
  }
  w->EndArray().Key("more").Bool(scan.more);
}

// "changes": [{k, v, t, val} or {k, v, t, del: true}], "more"
void WriteChanges(JsonWriter* w, const ChangesResult& changes) {
  w->Key("changes").BeginArray();
  for (const Change& change : changes.changes) {
    w->BeginObject().Key("k");
    WriteHexKey(w, change.key);
    w->FieldUint("v", change.version).FieldUint("t", change.timestamp.value());
    change.deleted ? w->Key("del").Bool(true) : w->Key("val").Raw(change.value);
    w->EndObject();
  }
  w->EndArray().Key("more").Bool(changes.more);
}

void WriteRangeField(JsonWriter* w, const KeyRange& range) {
  w->Key("range");
  WriteRange(w, range);
}

struct RequestWriter {
  JsonWriter* w;
  void operator()(const cluster::ShardRead& read) const {
    w->FieldUint("ts", read.snapshot.value());
    if (read.at_closed) w->Key("at_closed").Bool(true);
    if (!read.keys.empty()) WriteHexKeys(w, "keys", read.keys);
    if (read.range) {
      w->Key("scan").BeginObject().Key("start");
      WriteHexKey(w, read.range->start);
      if (read.range->end) {
        w->Key("end");
        WriteHexKey(w, *read.range->end);
      }
      w->FieldUint("limit", read.limit).EndObject();
    }
  }
  void operator()(const cluster::ShardPrepare& prepare) const {
    WritePrepare(w, prepare.request);
    if (!prepare.participants.empty()) WriteShardIds(w, "participants", prepare.participants);
  }
  void operator()(const cluster::ShardCommit& commit) const { WritePrepare(w, commit.request); }
  void operator()(const cluster::ShardResolve& resolve) const {
    WriteTxnId(w, "txn", resolve.txn);
    w->Field("status", cluster::TxnStatusName(resolve.outcome))
        .FieldUint("commit_ts", resolve.commit_timestamp.value());
  }
  void operator()(const cluster::RecordCall& call) const {
    WriteTxnId(w, "txn", call.txn);
    if (call.op == RecordOp::kCommit) w->FieldUint("commit_ts", call.commit_timestamp.value());
  }
  void operator()(const cluster::Forward& forward) const {
    if (forward.id != 0) w->FieldUint("forward_id", forward.id);
    w->Key("request").Raw(forward.request);
  }
  void operator()(const cluster::LowWaterMarkReport& report) const {
    w->FieldUint("oldest_snapshot", report.oldest_snapshot.value());
  }
  void operator()(const cluster::RawScan& scan) const {
    WriteRangeField(w, scan.range);
    w->FieldUint("at", scan.at.value()).FieldUint("limit", scan.limit);
  }
  void operator()(const cluster::RawChanges& changes) const {
    WriteRangeField(w, changes.range);
    w->FieldUint("since", changes.since.value()).FieldUint("limit", changes.limit);
  }
  void operator()(const cluster::RawCompact& compact) const {
    w->FieldUint("horizon", compact.horizon.value());
  }
  void operator()(const cluster::ShardWatch& watch) const {
    WriteRangeField(w, watch.range);
    w->FieldUint("after", watch.after.value())
        .FieldUint("cursor", watch.cursor)
        .FieldUint("limit", watch.limit);
    if (watch.with_previous) w->Key("with_previous").Bool(true);
    if (watch.park_ms > 0) w->FieldUint("park_ms", watch.park_ms);
    if (watch.close_to.value() > 0) w->FieldUint("close_to", watch.close_to.value());
  }
};

struct ReplyWriter {
  JsonWriter* w;
  void operator()(const cluster::ShardReadReply& reply) const {
    w->Key("reads").BeginArray();
    for (const ReadResult& read : reply.reads) WriteReadResult(w, read);
    w->EndArray();
    if (reply.scan) WriteScan(w, *reply.scan);
    w->FieldUint("ts", reply.snapshot.value());
  }
  void operator()(const cluster::PrepareReply& reply) const {
    w->FieldUint("prepare_ts", reply.prepare_timestamp.value());
  }
  void operator()(const cluster::CommitReply& reply) const {
    w->FieldUint("commit_ts", reply.commit_timestamp.value());
  }
  void operator()(const cluster::ResolveReply&) const {}
  void operator()(const cluster::RecordReply& reply) const {
    if (!reply.status) return;
    w->Field("status", cluster::TxnStatusName(*reply.status));
    if (*reply.status == cluster::TxnStatus::kCommitted) {
      w->FieldUint("commit_ts", reply.commit_timestamp.value());
    }
  }
  void operator()(const cluster::ForwardReply& reply) const { w->Key("reply").Raw(reply.reply); }
  void operator()(const cluster::RawScanReply& reply) const { WriteScan(w, reply.scan); }
  void operator()(const cluster::RawChangesReply& reply) const { WriteChanges(w, reply.changes); }
  void operator()(const cluster::RawCompactReply& reply) const {
    w->FieldUint("horizon", reply.compacted.horizon.value())
        .FieldUint("versions_removed", reply.compacted.versions_removed)
        .FieldUint("bytes_reclaimed", reply.compacted.bytes_reclaimed);
  }
  void operator()(const cluster::ShardWatchReply& reply) const {
    WriteChanges(w, ChangesResult{reply.changes, false});
    w->FieldUint("resolved", reply.resolved.value()).FieldUint("cursor", reply.cursor);
    if (!reply.previous.empty()) {
      // One per change: null, or the previous version as a change.
      w->Key("previous").BeginArray();
      for (const std::optional<Change>& previous : reply.previous) {
        if (!previous) {
          w->Null();
          continue;
        }
        w->BeginObject().Key("k");
        WriteHexKey(w, previous->key);
        w->FieldUint("v", previous->version).FieldUint("t", previous->timestamp.value());
        w->Key("val").Raw(previous->value).EndObject();
      }
      w->EndArray();
    }
  }
  void operator()(const cluster::PeerError& error) const {
    const ErrorReply wire = ErrorFromStatus(error.status);
    w->FieldUint("code", static_cast<uint64_t>(wire.code)).Field("text", wire.text);
    if (error.leader) w->Field("leader", *error.leader);
  }
};

MaybeError ReadPrepare(const Body& body, cluster::PrepareRequest* out) {
  uint64_t primary = 0;
  std::optional<bool> blind;
  MaybeError err = ReadTxnId(body, "txn", &out->txn);
  if (!err) err = body.RequiredTimestamp("start", &out->start);
  if (!err) err = ParseIsolation(body, Isolation::kSerializable, &out->isolation);
  if (!err) err = body.RequiredUint("primary", &primary);
  if (!err && primary > UINT32_MAX) err = Malformed("field 'primary' names no shard");
  if (!err) err = ReadWrites(body, "writes", &out->writes);
  if (!err) err = ReadHexKeys(body, "read_keys", &out->read_keys);
  if (!err) err = ReadRanges(body, "read_ranges", &out->read_ranges);
  if (!err) err = body.OptionalBool("blind", &blind);
  out->primary = static_cast<uint32_t>(primary);
  out->blind = blind.value_or(false);
  return err;
}

MaybeError ReadShardRead(const Body& body, cluster::ShardRead* out) {
  if (auto err = body.RequiredTimestamp("ts", &out->snapshot)) return err;
  std::optional<bool> at_closed;
  if (auto err = body.OptionalBool("at_closed", &at_closed)) return err;
  out->at_closed = at_closed.value_or(false);
  if (auto err = ReadHexKeys(body, "keys", &out->keys)) return err;
  if (auto scan = body.Find("scan")) {
    out->range.emplace();
    if (auto err = ReadRange(*scan, &*out->range)) return err;
    uint64_t limit = 0;
    if ((*scan)["limit"].get_uint64().get(limit) || limit == 0 ||
        limit > cluster::kMaxShardReadLimit) {
      return Malformed("scan.limit is out of range");
    }
    out->limit = limit;
  }
  return std::nullopt;
}

MaybeError ReadEmbeddedObject(const Body& body, std::string_view name, std::string* out) {
  auto inner = body.Find(name);
  simdjson::dom::object object;
  std::string_view type;
  if (!inner || inner->get_object().get(object) || object["type"].get_string().get(type)) {
    return Malformed(std::string(name == "request" ? "forward" : "forward_ok") + " needs a '" +
                     std::string(name) + "' object with a type");
  }
  *out = simdjson::minify(*inner);
  return std::nullopt;
}

MaybeError ReadScan(const Body& body, ScanResult* out) {
  simdjson::dom::array list;
  auto items = body.Find("items");
  auto more = body.Find("more");
  if (!items || items->get_array().get(list) || !more || more->get_bool().get(out->more)) {
    return Malformed("'items' and 'more' must come together");
  }
  for (simdjson::dom::element e : list) {
    ScanItem item;
    std::string_view hex;
    ReadResult read;
    if (e["k"].get_string().get(hex) || !ParseHexKey(hex, &item.key) || ReadReadResult(e, &read) ||
        !read.found || read.deleted) {
      return Malformed("a scan item is not {k, v, t, val}");
    }
    item.value = std::move(read.value);
    item.version = read.version;
    item.timestamp = read.timestamp;
    out->items.push_back(std::move(item));
  }
  return std::nullopt;
}

MaybeError ReadChanges(const Body& body, ChangesResult* out) {
  simdjson::dom::array list;
  auto changes = body.Find("changes");
  auto more = body.Find("more");
  if (!changes || changes->get_array().get(list) || !more || more->get_bool().get(out->more)) {
    return Malformed("'changes' and 'more' must come together");
  }
  for (simdjson::dom::element e : list) {
    Change change;
    std::string_view hex;
    ReadResult read;
    if (e["k"].get_string().get(hex) || !ParseHexKey(hex, &change.key) ||
        ReadReadResult(e, &read) || !read.found) {
      return Malformed("a change is not {k, v, t, val} or {k, v, t, del}");
    }
    change.value = std::move(read.value);
    change.version = read.version;
    change.timestamp = read.timestamp;
    change.deleted = read.deleted;
    out->changes.push_back(std::move(change));
  }
  return std::nullopt;
}

// "previous": [null or {k, v, t, val}], one per change (absent: none asked).
MaybeError ReadPrevious(const Body& body, size_t changes, std::vector<std::optional<Change>>* out) {
  auto previous = body.Find("previous");
  if (!previous) return std::nullopt;
  simdjson::dom::array list;
  if (previous->get_array().get(list) || list.size() != changes) {
    return Malformed("'previous' must hold one entry per change");
  }
  for (simdjson::dom::element e : list) {
    if (e.is_null()) {
      out->push_back(std::nullopt);
      continue;
    }
    Change change;
    std::string_view hex;
    ReadResult read;
    if (e["k"].get_string().get(hex) || !ParseHexKey(hex, &change.key) ||
        ReadReadResult(e, &read) || !read.found || read.deleted) {
      return Malformed("a previous version is not null or {k, v, t, val}");
    }
    change.value = std::move(read.value);
    change.version = read.version;
    change.timestamp = read.timestamp;
    out->push_back(std::move(change));
  }
  return std::nullopt;
}

// A range field {start, end?}.
MaybeError ReadRangeField(const Body& body, KeyRange* out) {
  auto range = body.Find("range");
  if (!range) return Malformed("field 'range' is required");
  return ReadRange(*range, out);
}

// 1..kMaxLimit.
MaybeError ReadLimit(const Body& body, size_t* out) {
  uint64_t limit = 0;
  if (auto err = body.RequiredUint("limit", &limit)) return err;
  if (limit < kMinLimit || limit > kMaxLimit) return Malformed("field 'limit' is out of range");
  *out = limit;
  return std::nullopt;
}

// A reply that does not decode, as the failure its call gets.
cluster::PeerReply Unreadable(std::string_view type, const ErrorReply& why) {
  return cluster::PeerError{
      Status::IoError("a node sent an unreadable " + std::string(type) + ": " + why.text)};
}

}  // namespace

std::string_view PeerRequestType(const PeerRequest& request) {
  struct Namer {
    std::string_view operator()(const cluster::ShardRead&) const { return "shard_read"; }
    std::string_view operator()(const cluster::ShardPrepare&) const { return "shard_prepare"; }
    std::string_view operator()(const cluster::ShardCommit&) const { return "shard_commit"; }
    std::string_view operator()(const cluster::ShardResolve&) const { return "shard_resolve"; }
    std::string_view operator()(const cluster::RecordCall& call) const {
      return RecordType(call.op);
    }
    std::string_view operator()(const cluster::Forward&) const { return "forward"; }
    std::string_view operator()(const cluster::LowWaterMarkReport&) const { return "lwm_report"; }
    std::string_view operator()(const cluster::RawScan&) const { return "raw_scan"; }
    std::string_view operator()(const cluster::RawChanges&) const { return "raw_changes"; }
    std::string_view operator()(const cluster::RawCompact&) const { return "raw_compact"; }
    std::string_view operator()(const cluster::ShardWatch&) const { return "shard_watch"; }
  };
  return std::visit(Namer{}, request);
}

std::string_view PeerReplyType(const PeerReply& reply) {
  struct Namer {
    std::string_view operator()(const cluster::ShardReadReply&) const { return "shard_read_ok"; }
    std::string_view operator()(const cluster::PrepareReply&) const { return "shard_prepare_ok"; }
    std::string_view operator()(const cluster::CommitReply&) const { return "shard_commit_ok"; }
    std::string_view operator()(const cluster::ResolveReply&) const { return "shard_resolve_ok"; }
    std::string_view operator()(const cluster::RecordReply& reply) const {
      return kRecordReplyTypes[static_cast<size_t>(reply.op)];
    }
    std::string_view operator()(const cluster::ForwardReply&) const { return "forward_ok"; }
    std::string_view operator()(const cluster::RawScanReply&) const { return "raw_scan_ok"; }
    std::string_view operator()(const cluster::RawChangesReply&) const { return "raw_changes_ok"; }
    std::string_view operator()(const cluster::RawCompactReply&) const { return "raw_compact_ok"; }
    std::string_view operator()(const cluster::ShardWatchReply&) const { return "shard_watch_ok"; }
    std::string_view operator()(const cluster::PeerError&) const { return "error"; }
  };
  return std::visit(Namer{}, reply);
}

std::string PeerRequestFields(const PeerRequest& request, Timestamp hlc,
                              std::optional<cluster::ShardId> shard) {
  std::string fields;
  JsonWriter w = JsonWriter::ContinuingObject(&fields);
  std::visit(RequestWriter{&w}, request);
  w.FieldUint("hlc", hlc.value());
  if (shard) w.FieldUint("shard", *shard);
  return fields;
}

std::string PeerReplyFields(const PeerReply& reply, Timestamp hlc) {
  std::string fields;
  JsonWriter w = JsonWriter::ContinuingObject(&fields);
  std::visit(ReplyWriter{&w}, reply);
  w.FieldUint("hlc", hlc.value());
  return fields;
}

bool IsPeerRequestType(std::string_view type) {
  return type == "shard_read" || type == "shard_prepare" || type == "shard_commit" ||
         type == "shard_resolve" || type == "shard_watch" || type.starts_with("record_") ||
         type == "forward" || type.starts_with("raw_") || IsOneWayType(type);
}

bool IsOneWayType(std::string_view type) { return type == "lwm_report"; }

MaybeError ReadPeerRequest(const Envelope& message, PeerRequest* out) {
  const Body& body = message.body;
  const std::string_view type = message.type;
  if (type == "shard_read") {
    cluster::ShardRead read;
    if (auto err = ReadShardRead(body, &read)) return err;
    *out = std::move(read);
    return std::nullopt;
  }
  if (type == "shard_prepare" || type == "shard_commit") {
    cluster::PrepareRequest request;
    if (auto err = ReadPrepare(body, &request)) return err;
    if (type == "shard_commit") {
      *out = cluster::ShardCommit{std::move(request)};
      return std::nullopt;
    }
    if (request.blind) {
      return Malformed("field 'blind' is for one-phase commits (shard_commit) only");
    }
    cluster::ShardPrepare prepare{std::move(request), {}};
    if (auto err = ReadShardIds(body, "participants", cluster::HybridLogicalClock::kMaxNodes,
                                &prepare.participants)) {
      return err;
    }
    *out = std::move(prepare);
    return std::nullopt;
  }
  if (type == "shard_resolve") {
    cluster::ShardResolve resolve;
    std::optional<std::string_view> name;
    MaybeError err = ReadTxnId(body, "txn", &resolve.txn);
    if (!err) err = body.OptionalString("status", &name);
    if (!err) err = body.RequiredTimestamp("commit_ts", &resolve.commit_timestamp);
    if (err) return err;
    const std::optional<cluster::TxnStatus> status = name ? StatusNamed(*name) : std::nullopt;
    if (!status || *status == cluster::TxnStatus::kPending) {
      return Malformed("field 'status' must be \"committed\" or \"aborted\"");
    }
    resolve.outcome = *status;
    *out = std::move(resolve);
    return std::nullopt;
  }
  if (type == "forward") {
    cluster::Forward forward;
    if (auto err = ReadEmbeddedObject(body, "request", &forward.request)) return err;
    if (body.Find("forward_id")) {
      if (auto err = body.RequiredUint("forward_id", &forward.id)) return err;
    }
    *out = std::move(forward);
    return std::nullopt;
  }
  if (type == "lwm_report") {
    cluster::LowWaterMarkReport report;
    if (auto err = body.RequiredTimestamp("oldest_snapshot", &report.oldest_snapshot)) return err;
    *out = report;
    return std::nullopt;
  }
  if (type == "raw_scan") {
    cluster::RawScan scan;
    MaybeError err = ReadRangeField(body, &scan.range);
    if (!err) err = body.RequiredTimestamp("at", &scan.at);
    if (!err) err = ReadLimit(body, &scan.limit);
    if (err) return err;
    *out = std::move(scan);
    return std::nullopt;
  }
  if (type == "raw_changes") {
    cluster::RawChanges changes;
    MaybeError err = ReadRangeField(body, &changes.range);
    if (!err) err = body.RequiredTimestamp("since", &changes.since);
    if (!err) err = ReadLimit(body, &changes.limit);
    if (err) return err;
    *out = std::move(changes);
    return std::nullopt;
  }
  if (type == "shard_watch") {
    cluster::ShardWatch watch;
    MaybeError err = ReadRangeField(body, &watch.range);
    if (!err) err = body.RequiredTimestamp("after", &watch.after);
    if (!err) err = body.RequiredUint("cursor", &watch.cursor);
    if (!err) err = ReadLimit(body, &watch.limit);
    std::optional<bool> with_previous;
    if (!err) err = body.OptionalBool("with_previous", &with_previous);
    uint64_t park_ms = 0;
    if (!err && body.Find("park_ms")) err = body.RequiredUint("park_ms", &park_ms);
    if (!err && body.Find("close_to")) err = body.RequiredTimestamp("close_to", &watch.close_to);
    if (err) return err;
    watch.with_previous = with_previous.value_or(false);
    // Longer than a shard holds a read is a long poll of its longest.
    watch.park_ms = static_cast<uint32_t>(std::min<uint64_t>(park_ms, cluster::kMaxWatchParkMs));
    *out = std::move(watch);
    return std::nullopt;
  }
  if (type == "raw_compact") {
    cluster::RawCompact compact;
    if (auto err = body.RequiredTimestamp("horizon", &compact.horizon)) return err;
    *out = compact;
    return std::nullopt;
  }
  for (const auto& [op, name] : kRecordTypes) {
    if (type != name) continue;
    cluster::RecordCall call;
    call.op = op;
    if (auto err = ReadTxnId(body, "txn", &call.txn)) return err;
    if (op == RecordOp::kCommit) {
      if (auto err = body.RequiredTimestamp("commit_ts", &call.commit_timestamp)) return err;
    }
    *out = call;
    return std::nullopt;
  }
  return ErrorReply{ErrorCode::kNotSupported, "unknown message type '" + Abbreviate(type) + "'"};
}

PeerReply ReadPeerReply(const Envelope& message) {
  const Body& body = message.body;
  const std::string_view type = message.type;
  if (type == "error") {
    uint64_t code = 0;
    std::optional<std::string_view> text, leader;
    if (auto err = body.RequiredUint("code", &code)) return Unreadable(type, *err);
    if (auto err = body.OptionalString("text", &text)) return Unreadable(type, *err);
    if (auto err = body.OptionalString("leader", &leader)) return Unreadable(type, *err);
    cluster::PeerError error{
        StatusFromError(ErrorReply{static_cast<ErrorCode>(code), std::string(text.value_or(""))})};
    if (leader) error.leader = std::string(*leader);
    return error;
  }
  if (type == "shard_read_ok") {
    cluster::ShardReadReply reply;
    simdjson::dom::array list;
    if (auto reads = body.Find("reads")) {
      if (reads->get_array().get(list)) return Unreadable(type, Malformed("'reads' is no array"));
      for (simdjson::dom::element e : list) {
        if (auto err = ReadReadResult(e, &reply.reads.emplace_back())) {
          return Unreadable(type, *err);
        }
      }
    }
    if (body.Find("items")) {
      if (auto err = ReadScan(body, &reply.scan.emplace())) return Unreadable(type, *err);
    }
    std::optional<Timestamp> snapshot;
    if (auto err = body.OptionalTimestamp("ts", &snapshot)) return Unreadable(type, *err);
    reply.snapshot = snapshot.value_or(Timestamp());
    return reply;
  }
  if (type == "shard_prepare_ok") {
    cluster::PrepareReply reply;
    if (auto err = body.RequiredTimestamp("prepare_ts", &reply.prepare_timestamp)) {
      return Unreadable(type, *err);
    }
    return reply;
  }
  if (type == "shard_commit_ok") {
    cluster::CommitReply reply;
    if (auto err = body.RequiredTimestamp("commit_ts", &reply.commit_timestamp)) {
      return Unreadable(type, *err);
    }
    return reply;
  }
  if (type == "shard_resolve_ok") return cluster::ResolveReply{};
  if (type == "raw_scan_ok") {
    cluster::RawScanReply reply;
    if (auto err = ReadScan(body, &reply.scan)) return Unreadable(type, *err);
    return reply;
  }
  if (type == "raw_changes_ok") {
    cluster::RawChangesReply reply;
    if (auto err = ReadChanges(body, &reply.changes)) return Unreadable(type, *err);
    return reply;
  }
  if (type == "shard_watch_ok") {
    cluster::ShardWatchReply reply;
    ChangesResult changes;
    MaybeError err = ReadChanges(body, &changes);
    if (!err) err = body.RequiredTimestamp("resolved", &reply.resolved);
    if (!err) err = body.RequiredUint("cursor", &reply.cursor);
    if (!err) err = ReadPrevious(body, changes.changes.size(), &reply.previous);
    if (err) return Unreadable(type, *err);
    reply.changes = std::move(changes.changes);
    return reply;
  }
  if (type == "raw_compact_ok") {
    cluster::RawCompactReply reply;
    Timestamp horizon;
    uint64_t removed = 0, reclaimed = 0;
    MaybeError err = body.RequiredTimestamp("horizon", &horizon);
    if (!err) err = body.RequiredUint("versions_removed", &removed);
    if (!err) err = body.RequiredUint("bytes_reclaimed", &reclaimed);
    if (err) return Unreadable(type, *err);
    reply.compacted.horizon = horizon;
    reply.compacted.versions_removed = removed;
    reply.compacted.bytes_reclaimed = reclaimed;
    return reply;
  }
  if (type == "forward_ok") {
    cluster::ForwardReply reply;
    if (auto err = ReadEmbeddedObject(body, "reply", &reply.reply)) return Unreadable(type, *err);
    return reply;
  }
  for (size_t i = 0; i < kRecordReplyTypes.size(); ++i) {
    if (type != kRecordReplyTypes[i]) continue;
    cluster::RecordReply reply;
    reply.op = kRecordTypes[i].first;
    std::optional<std::string_view> name;
    if (auto err = body.OptionalString("status", &name)) return Unreadable(type, *err);
    if (!name) return reply;
    reply.status = StatusNamed(*name);
    if (!reply.status) return Unreadable(type, Malformed("unknown record status"));
    if (*reply.status == cluster::TxnStatus::kCommitted) {
      if (auto err = body.RequiredTimestamp("commit_ts", &reply.commit_timestamp)) {
        return Unreadable(type, *err);
      }
    }
    return reply;
  }
  return Unreadable(type, Malformed("no such reply type"));
}

MaybeError ReadSenderClock(const Envelope& message, std::optional<Timestamp>* out) {
  return message.body.OptionalTimestamp("hlc", out);
}

MaybeError ReadTargetShard(const Envelope& message, std::optional<cluster::ShardId>* out) {
  out->reset();
  if (!message.body.Find("shard")) return std::nullopt;
  uint64_t shard = 0;
  if (auto err = message.body.RequiredUint("shard", &shard)) return err;
  if (shard > UINT32_MAX) return Malformed("field 'shard' names no shard");
  *out = static_cast<cluster::ShardId>(shard);
  return std::nullopt;
}

}  // namespace strata::protocol
