// ClusterNode, router role: message intake, routing of the raw API, fan-out
// and merge, stats, the low-water mark and timers. See cluster_node.h.
#include <algorithm>

#include "node/cluster_node.h"
#include "protocol/body.h"
#include "protocol/errors.h"
#include "protocol/key_codec.h"
#include "protocol/limits.h"
#include "protocol/mvcc_messages.h"

namespace strata::node {

using protocol::Body;
using protocol::ErrorCode;
using protocol::ErrorReply;
using protocol::JsonWriter;

static_assert(protocol::kFirstInternalKeyTag == cluster::kInternalKeyTag,
              "client ranges must end where the cluster's own keys begin");

namespace {

// The error a node replied with.
ErrorReply ErrorOf(const protocol::Envelope& reply) {
  uint64_t code = 0;
  std::optional<std::string_view> text;
  if (reply.body.RequiredUint("code", &code) || reply.body.OptionalString("text", &text)) {
    return ErrorReply{ErrorCode::kCrash, "a node sent an unreadable error reply"};
  }
  return ErrorReply{static_cast<ErrorCode>(code), std::string(text.value_or(""))};
}

// Whether `name` is a field name of the protocol's kind (letters, digits,
// '_'): only those are passed on, since JsonWriter writes names unescaped
// and no request or reply has another kind.
bool IsPlainFieldName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Writes every member of `object` except `type` as a member of `w`.
void CopyMembers(simdjson::dom::object object, JsonWriter* w) {
  for (auto [name, value] : object) {
    if (name == "type" || !IsPlainFieldName(name)) continue;
    w->Key(name).Raw(simdjson::minify(value));
  }
}

}  // namespace

// One fanned-out raw request: each shard's answer, merged when all are in.
struct ClusterNode::FanOut {
  std::string type;  // the request's type
  ReplyAddress from;
  size_t limit = 0;
  size_t waiting = 0;
  std::optional<ErrorReply> error;
  std::vector<std::string> replies;  // each shard's reply object, minified
};

Result<std::unique_ptr<ClusterNode>> ClusterNode::Create(std::string node_id,
                                                         const std::vector<std::string>& node_ids,
                                                         ClusterOptions options, MvccStore* store,
                                                         TxnStore* db, const Store* durable,
                                                         Transport* transport,
                                                         LocalHandler local_handler) {
  Result<cluster::ShardMap> map = cluster::ShardMap::OnePerNode(node_ids);
  if (!map.ok()) return map.status();
  if (node_ids.size() > cluster::HybridLogicalClock::kMaxNodes) {
    return Status::InvalidArgument("a cluster has at most " +
                                   std::to_string(cluster::HybridLogicalClock::kMaxNodes) +
                                   " nodes; 'node_ids' names " + std::to_string(node_ids.size()));
  }
  if (!map->ShardServedBy(node_id)) {
    return Status::InvalidArgument("'node_ids' does not contain this node's id '" + node_id + "'");
  }
  std::unique_ptr<ClusterNode> node(new ClusterNode(std::move(node_id), node_ids, std::move(*map),
                                                    options, store, db, durable, transport,
                                                    std::move(local_handler)));
  if (durable != nullptr) {
    // Prepares and records from before a restart come back as they were;
    // pending ones are settled through their records like any other.
    node->durable_state_.emplace(store, &node->clock_);
    Result<cluster::DurableClusterState::Loaded> loaded = node->durable_state_->Load();
    if (!loaded.ok()) return loaded.status();
    const Clock::time_point now = Clock::now();
    for (const auto& [request, prepare_ts] : loaded->prepared) {
      node->participant_.RestorePrepared(request, prepare_ts, now);
    }
    for (const auto& [txn, record] : loaded->records) node->records_.Restore(txn, record, now);
  }
  return node;
}

ClusterNode::ClusterNode(std::string node_id, std::vector<std::string> node_ids,
                         cluster::ShardMap map, ClusterOptions options, MvccStore* store,
                         TxnStore* db, const Store* durable, Transport* transport,
                         LocalHandler local_handler)
    : node_id_(std::move(node_id)),
      node_ids_(std::move(node_ids)),
      node_index_(static_cast<uint32_t>(std::find(node_ids_.begin(), node_ids_.end(), node_id_) -
                                        node_ids_.begin())),
      map_(std::move(map)),
      shard_(*map_.ShardServedBy(node_id_)),
      options_(options),
      store_(store),
      db_(db),
      durable_(durable),
      transport_(transport),
      local_handler_(std::move(local_handler)),
      clock_(cluster::HybridLogicalClock::SystemMillis,
             cluster::HybridClockOptions{.node_index = node_index_}),
      participant_(store, &clock_,
                   cluster::ParticipantOptions{
                       .outcome_retention = 2 * options.rpc_timeout + options.txn_timeout,
                       .describe_key =
                           [](std::string_view key) {
                             std::string text;
                             JsonWriter w(&text);
                             protocol::WriteKey(&w, key);
                             return protocol::Abbreviate(text);
                           }}),
      records_(options.heartbeat_timeout),
      rpc_(transport) {
  boot_ms_ = cluster::HybridLogicalClock::SystemMillis();
  // After a restart, timestamps continue above everything stored.
  if (auto max = store_->max_timestamp()) clock_.Observe(*max);
  clock_.Observe(db_->oracle().Last());
}

ClusterNode::~ClusterNode() = default;

bool ClusterNode::IsPeer(std::string_view id) const {
  return std::find(node_ids_.begin(), node_ids_.end(), id) != node_ids_.end();
}

const std::string& ClusterNode::NodeOfShard(cluster::ShardId shard) const {
  return map_.shards()[shard].leaseholder();
}

cluster::ShardId ClusterNode::ShardOfKey(std::string_view engine_key) const {
  return map_.ShardFor(engine_key).id;
}

std::string ClusterNode::Stamped(std::string_view fields) {
  // Everything this node did so far is at or below Last(): the receiver
  // moves its clock past it.
  std::string stamped(fields);
  JsonWriter::ContinuingObject(&stamped).FieldUint("hlc", clock_.Last().value());
  return stamped;
}

void ClusterNode::Call(cluster::ShardId shard, std::string type, std::string fields,
                       PeerRpc::Callback done) {
  PeerRpc::CallOptions call;
  call.give_up_after = options_.rpc_timeout;
  rpc_.Call(NodeOfShard(shard), std::move(type), Stamped(fields), call, now_, std::move(done));
}

void ClusterNode::ReplyToNode(const ReplyAddress& to, std::string_view type,
                              std::string_view fields) {
  transport_->Reply(to, type, Stamped(fields));
}

void ClusterNode::ReplyError(const ReplyAddress& to, const ErrorReply& error) {
  if (!IsPeer(to.dest)) return transport_->ReplyError(to, error);
  std::string fields;
  JsonWriter::ContinuingObject(&fields)
      .FieldUint("code", static_cast<uint64_t>(error.code))
      .Field("text", error.text);
  ReplyToNode(to, "error", fields);
}

void ClusterNode::HandleMessage(const protocol::Envelope& message, Clock::time_point now) {
  now_ = now;
  ReplyAddress from{std::string(message.src), message.msg_id_json, message.has_msg_id};
  if (!IsPeer(message.src)) {
    HandleClientRequest(message, from);
    return;
  }
  // Every node message carries its sender's clock: receiving it moves ours
  // past it (the HLC receive rule), so causality holds across nodes.
  std::optional<Timestamp> hlc;
  if (auto err = message.body.OptionalTimestamp("hlc", &hlc)) {
    ReplyError(from, *err);
    return;
  }
  if (hlc) {
    if (Status s = clock_.Update(*hlc); !s.ok()) {
      if (!message.body.Find("in_reply_to")) {
        ReplyError(from, protocol::ErrorFromStatus(s));
        return;
      }
      // A reply is still taken in (it answers something we asked); its
      // timestamps are checked where they are used.
    }
  }
  if (message.body.Find("in_reply_to") || message.type == "error") {
    // A reply is never answered, whatever it holds: two nodes (or a node
    // and itself) must not trade errors about each other's replies forever.
    uint64_t in_reply_to = 0;
    if (!message.body.RequiredUint("in_reply_to", &in_reply_to)) {
      rpc_.OnReply(in_reply_to, message);  // a late copy's reply is dropped
    }
    return;
  }
  HandleNodeRequest(message, from);
}

void ClusterNode::HandleClientRequest(const protocol::Envelope& request, const ReplyAddress& from) {
  const std::string_view type = request.type;
  const Body& body = request.body;
  if (type == "txn_begin") return HandleTxnBegin(body, from);
  if (type == "txn_get") return HandleTxnGet(body, from);
  if (type == "txn_put") return HandleTxnWrite(body, false, from);
  if (type == "txn_delete") return HandleTxnWrite(body, true, from);
  if (type == "txn_scan") return HandleTxnScan(body, from);
  if (type == "txn_commit") return HandleTxnCommit(body, from);
  if (type == "txn_abort") return HandleTxnAbort(body, from);
  if (type == "read") return HandleKvRead(body, from);
  if (type == "write") return HandleKvWrite(body, from);
  if (type == "cas") return HandleKvCas(body, from);
  if (type == "txn") return HandleTxnOps(body, from);
  if (type == "mvcc_put" || type == "mvcc_get" || type == "mvcc_delete" || type == "mvcc_history") {
    return RouteToOwner(request, from);
  }
  if (type == "mvcc_scan" || type == "mvcc_changes" || type == "mvcc_compact") {
    return FanOutToShards(request, from);
  }
  if (type == "mvcc_stats") return HandleStats(from);
  ReplyError(from, ErrorReply{ErrorCode::kNotSupported,
                              "unknown message type '" + protocol::Abbreviate(type) + "'"});
}

void ClusterNode::HandleNodeRequest(const protocol::Envelope& request, const ReplyAddress& from) {
  const std::string_view type = request.type;
  if (type == "shard_read") return HandleShardRead(request, from);
  if (type == "shard_prepare") return HandlePrepare(request, from, false);
  if (type == "shard_commit") return HandlePrepare(request, from, true);
  if (type == "shard_resolve") return HandleResolve(request, from);
  if (type.starts_with("record_")) return HandleRecordRequest(request, from);
  if (type == "forward") return HandleForward(request, from);
  if (type == "lwm_report") return HandleLowWaterMarkReport(request);
  // A client request relayed by a node, or a node with a newer protocol.
  HandleClientRequest(request, from);
}

// --- raw API ---------------------------------------------------------------

namespace {

// The request's body as JSON, for forwarding.
std::string RequestJson(const protocol::Envelope& request) {
  std::string json;
  JsonWriter w(&json);
  w.BeginObject();
  for (const auto& [name, value] : request.body.fields()) {
    if (name == "msg_id" || !IsPlainFieldName(name)) continue;
    w.Key(name).Raw(simdjson::minify(value));
  }
  w.EndObject();
  return json;
}

}  // namespace

void ClusterNode::RouteToOwner(const protocol::Envelope& request, const ReplyAddress& from) {
  std::string key;
  if (auto err = request.body.RequiredKey("key", &key)) return ReplyError(from, *err);
  std::string fields;
  JsonWriter::ContinuingObject(&fields).Key("request").Raw(RequestJson(request));
  Call(ShardOfKey(key), "forward", std::move(fields),
       [this, from](const protocol::Envelope* reply) {
         if (reply == nullptr) {
           return ReplyError(from,
                             ErrorReply{ErrorCode::kTemporarilyUnavailable,
                                        "the shard that owns this key did not answer in time"});
         }
         if (reply->type == "error") return ReplyError(from, ErrorOf(*reply));
         simdjson::dom::object inner;
         std::string_view type;
         auto found = reply->body.Find("reply");
         if (!found || found->get_object().get(inner) || inner["type"].get_string().get(type)) {
           return ReplyError(from,
                             ErrorReply{ErrorCode::kCrash, "the owner's forward_ok had no reply"});
         }
         std::string out;
         JsonWriter w = JsonWriter::ContinuingObject(&out);
         CopyMembers(inner, &w);
         transport_->Reply(from, type, out);
       });
}

void ClusterNode::HandleForward(const protocol::Envelope& request, const ReplyAddress& from) {
  auto inner = request.body.Find("request");
  simdjson::dom::object object;
  Body body;
  std::string_view type;
  if (!inner || inner->get_object().get(object) || object["type"].get_string().get(type)) {
    return ReplyError(from, protocol::Malformed("forward needs a 'request' object"));
  }
  if (auto err = body.Load(object)) return ReplyError(from, *err);
  std::string fields, reply_body;
  protocol::MaybeError error;
  std::string_view reply_type;
  if (type == "mvcc_compact") {
    // No shard collects above the cluster's low-water mark.
    protocol::MvccCompactRequest compact;
    error = protocol::ParseRequest(body, &compact);
    if (!error) {
      const Timestamp mark = LowWaterMark().value_or(Timestamp(0));
      JsonWriter w = JsonWriter::ContinuingObject(&fields);
      protocol::WriteReply(db_->Compact(std::min(compact.timestamp, mark)), &w);
      reply_type = "mvcc_compact_ok";
    }
  } else {
    JsonWriter w = JsonWriter::ContinuingObject(&fields);
    error = local_handler_(type, body, &w, &reply_type);
  }
  JsonWriter w(&reply_body);
  w.BeginObject();
  if (error) {
    w.Field("type", "error")
        .FieldUint("code", static_cast<uint64_t>(error->code))
        .Field("text", error->text);
  } else {
    w.Field("type", reply_type);
    reply_body.append(fields);
  }
  w.EndObject();
  if (reply_body.size() > protocol::kMaxNodeMessageBytes) {
    return ReplyError(from,
                      protocol::Malformed("the reply to " + std::string(type) + " on shard " +
                                          std::to_string(shard_) + " exceeds " +
                                          std::to_string(protocol::kMaxNodeMessageBytes) +
                                          " bytes, more than one node message carries; ask for a "
                                          "smaller limit"));
  }
  std::string out;
  JsonWriter::ContinuingObject(&out).Key("reply").Raw(reply_body);
  ReplyToNode(from, "forward_ok", out);
}

void ClusterNode::FanOutToShards(const protocol::Envelope& request, const ReplyAddress& from) {
  size_t limit = 0;
  if (request.type != "mvcc_compact") {
    if (auto err = request.body.Limit(&limit)) return ReplyError(from, *err);
  }
  auto fan_out = std::make_shared<FanOut>();
  fan_out->type = std::string(request.type);
  fan_out->from = from;
  fan_out->limit = limit;
  fan_out->waiting = map_.shards().size();
  std::string fields;
  JsonWriter::ContinuingObject(&fields).Key("request").Raw(RequestJson(request));
  for (const cluster::Shard& shard : map_.shards()) {
    Call(shard.id, "forward", fields, [this, fan_out](const protocol::Envelope* reply) {
      if (reply == nullptr) {
        fan_out->error = ErrorReply{ErrorCode::kTemporarilyUnavailable,
                                    "a shard did not answer in time; try again"};
      } else if (reply->type == "error") {
        fan_out->error = ErrorOf(*reply);
      } else if (auto inner = reply->body.Find("reply")) {
        simdjson::dom::object object;
        std::string_view type;
        if (!inner->get_object().get(object) && !object["type"].get_string().get(type) &&
            type == "error") {
          uint64_t code = 13;
          std::string_view text;
          if (object["code"].get_uint64().get(code)) code = 13;
          if (object["text"].get_string().get(text)) text = "a shard failed";
          fan_out->error = ErrorReply{static_cast<ErrorCode>(code), std::string(text)};
        } else {
          fan_out->replies.push_back(simdjson::minify(*inner));
        }
      }
      if (--fan_out->waiting == 0) FinishFanOut(*fan_out);
    });
  }
}

void ClusterNode::FinishFanOut(FanOut& fan_out) {
  if (fan_out.error) return ReplyError(fan_out.from, *fan_out.error);
  simdjson::dom::parser parser;
  std::string out;
  JsonWriter w = JsonWriter::ContinuingObject(&out);
  auto fail = [&] {
    ReplyError(fan_out.from, ErrorReply{ErrorCode::kCrash, "a shard's reply could not be merged"});
  };
  if (fan_out.type == "mvcc_compact") {
    uint64_t horizon = UINT64_MAX, removed = 0, reclaimed = 0;
    for (const std::string& json : fan_out.replies) {
      simdjson::dom::element e;
      uint64_t h = 0, r = 0, b = 0;
      if (parser.parse(json).get(e) || e["horizon"].get_uint64().get(h) ||
          e["versions_removed"].get_uint64().get(r) || e["bytes_reclaimed"].get_uint64().get(b)) {
        return fail();
      }
      horizon = std::min(horizon, h), removed += r, reclaimed += b;
    }
    w.FieldUint("horizon", horizon)
        .FieldUint("versions_removed", removed)
        .FieldUint("bytes_reclaimed", reclaimed);
    return transport_->Reply(fan_out.from, "mvcc_compact_ok", out);
  }
  // Scans merge in key order, changes in (timestamp, key) order. A shard
  // cut short by the limit stops the merge at its last item: past it, that
  // shard may hold items the merge has not seen.
  const bool changes = fan_out.type == "mvcc_changes";
  const char* list_name = changes ? "changes" : "items";
  struct Item {
    uint64_t timestamp;
    std::string key;  // engine bytes
    std::string json;
  };
  std::vector<Item> items;
  std::optional<std::pair<uint64_t, std::string>> bound;
  for (const std::string& json : fan_out.replies) {
    simdjson::dom::element e;
    simdjson::dom::array list;
    bool more = false;
    if (parser.parse(json).get(e) || e[list_name].get_array().get(list) ||
        e["more"].get_bool().get(more)) {
      return fail();
    }
    std::optional<std::pair<uint64_t, std::string>> last;
    for (simdjson::dom::element item : list) {
      Item parsed;
      simdjson::dom::element key;
      if (item["key"].get(key) || protocol::EncodeKeyElement(key, "key", &parsed.key)) {
        return fail();
      }
      const char* ts_name = changes ? "timestamp" : "as_of_timestamp";
      if (item[ts_name].get_uint64().get(parsed.timestamp)) return fail();
      parsed.json = simdjson::minify(item);
      last = changes ? std::make_pair(parsed.timestamp, parsed.key)
                     : std::make_pair(uint64_t{0}, parsed.key);
      items.push_back(std::move(parsed));
    }
    if (more && last && (!bound || *last < *bound)) bound = last;
  }
  auto order = [changes](const Item& item) {
    return changes ? std::make_pair(item.timestamp, item.key)
                   : std::make_pair(uint64_t{0}, item.key);
  };
  std::sort(items.begin(), items.end(),
            [&](const Item& a, const Item& b) { return order(a) < order(b); });
  bool more = bound.has_value();
  size_t n = 0;
  w.Key(list_name).BeginArray();
  for (const Item& item : items) {
    if (bound && order(item) > *bound) break;
    if (n == fan_out.limit) {
      more = true;
      break;
    }
    w.Raw(item.json);
    ++n;
  }
  w.EndArray().Key("more").Bool(more);
  transport_->Reply(fan_out.from, changes ? "mvcc_changes_ok" : "mvcc_scan_ok", out);
}

// --- stats -------------------------------------------------------------------

void ClusterNode::HandleStats(const ReplyAddress& from) {
  std::string out;
  JsonWriter w = JsonWriter::ContinuingObject(&out);
  protocol::WriteStats(store_->GetStats(), &w);
  TxnStats txn;
  txn.active_txns = txns_.size();
  txn.commits = commits_;
  txn.conflicts = conflicts_;
  if (!active_snapshots_.empty()) txn.min_active_snapshot = Timestamp(*active_snapshots_.begin());
  for (const auto& [id, open] : txns_) {
    (void)open;
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::milliseconds(cluster::HybridLogicalClock::SystemMillis()) -
        std::chrono::milliseconds(cluster::HybridLogicalClock::PhysicalMillis(Timestamp(id))));
    if (!txn.oldest_txn_age || age > *txn.oldest_txn_age) txn.oldest_txn_age = age;
  }
  protocol::WriteTxnStats(txn, expired_txns_, &w);
  if (durable_ != nullptr) protocol::WriteDurabilityStats(durable_->GetDurabilityStats(), &w);
  const cluster::IntentStats intents = participant_.GetIntentStats(now_);
  w.FieldUint("shard", shard_).FieldUint("shards", map_.shards().size());
  w.FieldUint("resolved_timestamp", participant_.SafeTime().value());
  w.FieldUint("intents", intents.intents).FieldUint("prepared_txns", intents.prepared_txns);
  w.Key("intent_age_ms").BeginObject();
  for (size_t i = 0; i < intents.age_histogram.size(); ++i) {
    // Built by append: GCC 12 reports a false -Wrestrict on "<" + std::string.
    std::string bucket(i < cluster::kIntentAgeBoundsMs.size() ? "<" : ">=");
    bucket.append(std::to_string(i < cluster::kIntentAgeBoundsMs.size()
                                     ? cluster::kIntentAgeBoundsMs[i]
                                     : cluster::kIntentAgeBoundsMs.back()));
    w.FieldUint(bucket, intents.age_histogram[i]);
  }
  w.EndObject();
  std::optional<uint64_t> oldest_intent;
  if (intents.oldest_prepare) oldest_intent = intents.oldest_prepare->value();
  w.FieldUintOrNull("oldest_intent_timestamp", oldest_intent);
  std::optional<uint64_t> mark;
  std::optional<std::string> holder;
  if (auto lwm = LowWaterMark()) {
    // Who holds it: this node if one of its own snapshots is the mark, else
    // a node that reported exactly the mark.
    mark = lwm->value();
    if (!active_snapshots_.empty() && OldestActiveSnapshot() == *lwm) {
      holder = node_id_;
    } else {
      for (const auto& [node, snapshot] : reported_snapshots_) {
        if (snapshot == *lwm && (!holder || node < *holder)) holder = node;
      }
      if (!holder) holder = node_id_;
    }
  }
  w.FieldUintOrNull("cluster_low_water_mark", mark);
  w.FieldStringOrNull("low_water_mark_holder", holder);
  w.FieldUint("txn_records", records_.size())
      .FieldUint("pending_txn_records", records_.pending())
      .FieldUint("commits_finished_by_primary", commits_finished_by_primary_);
  w.FieldUint("commits_one_phase", one_phase_commits_)
      .FieldUint("commits_two_phase", two_phase_commits_)
      .FieldUint("unknown_outcomes", unknown_outcomes_);
  w.FieldUint("reads_waited", reads_waited_)
      .FieldUint("reads_waiting", waiting_reads_.size())
      .FieldUint("read_wait_timeouts", read_wait_timeouts_)
      .FieldUint("pushes", pushes_)
      .FieldUint("pushed_aborts", pushed_aborts_);
  w.FieldUint("rpc_in_flight", rpc_.in_flight())
      .FieldUint("rpc_resends", rpc_.resends())
      .FieldUint("rpc_gave_up", rpc_.gave_up());
  transport_->Reply(from, "mvcc_stats_ok", out);
}

// --- low-water mark ------------------------------------------------------------

Timestamp ClusterNode::OldestActiveSnapshot() const {
  // With nothing open, the next snapshot taken here will be above the clock.
  const Timestamp oldest =
      active_snapshots_.empty() ? clock_.Last() : Timestamp(*active_snapshots_.begin());
  // A pending intent here may still commit at or just above its prepare
  // timestamp: no shard may collect past it, or the commit could never be
  // applied here (a write below the horizon is refused).
  return std::min(oldest, participant_.SafeTime());
}

std::optional<Timestamp> ClusterNode::LowWaterMark() const {
  Timestamp mark = OldestActiveSnapshot();
  for (const std::string& node : node_ids_) {
    if (node == node_id_) continue;
    auto it = reported_snapshots_.find(node);
    if (it == reported_snapshots_.end()) return std::nullopt;  // not heard from yet
    mark = std::min(mark, it->second);
  }
  return mark;
}

void ClusterNode::HandleLowWaterMarkReport(const protocol::Envelope& report) {
  Timestamp snapshot;
  if (report.body.RequiredTimestamp("oldest_snapshot", &snapshot)) return;
  reported_snapshots_[std::string(report.src)] = snapshot;
}

void ClusterNode::SendLowWaterMarks() {
  // An idle node's clock only moves when it takes a timestamp: take one, so
  // the oldest snapshot it reports follows time and the mark can rise.
  (void)clock_.Next();
  std::string fields;
  JsonWriter::ContinuingObject(&fields).FieldUint("oldest_snapshot",
                                                  OldestActiveSnapshot().value());
  for (const std::string& node : node_ids_) {
    if (node != node_id_) transport_->Send(node, "lwm_report", Stamped(fields));
  }
}

// --- timers --------------------------------------------------------------------

void ClusterNode::After(std::chrono::milliseconds delay, std::function<void()> task) {
  timers_.emplace(now_ + delay, std::move(task));
}

void ClusterNode::Every(std::chrono::milliseconds interval, std::function<void()> task) {
  After(interval, [this, interval, task = std::move(task)] {
    task();
    Every(interval, task);
  });
}

void ClusterNode::StartPeriodicWork() {
  using std::chrono::milliseconds;
  Every(options_.low_water_mark_interval, [this] { SendLowWaterMarks(); });
  Every(std::max(milliseconds(1), options_.push_after), [this] { CheckWaitingReads(); });
  Every(std::max(milliseconds(1), options_.heartbeat_timeout / 2), [this] {
    PushStaleIntents();
    FinishAbandonedCommits();
  });
  Every(milliseconds(100), [this] { ExpireIdleTxns(now_); });
  Every(milliseconds(1000), [this] {
    const uint64_t now_ms = cluster::HybridLogicalClock::SystemMillis();
    participant_.ForgetOldOutcomes(now_ms);
    // Records are normally forgotten when every participant has resolved
    // (record_forget); an ABORTED one whose coordinator died first goes
    // after this (a COMMITTED one: FinishAbandonedCommits).
    constexpr uint64_t kRecordRetentionMs = 10 * 60 * 1000;
    if (now_ms > kRecordRetentionMs) {
      for (cluster::TxnId txn : records_.ForgetAbortedBefore(
               cluster::HybridLogicalClock::Make(now_ms - kRecordRetentionMs, 0).value())) {
        // Or it would come back at the next restart. A failed log refuses
        // everything after anyway.
        if (durable_state_) (void)durable_state_->EraseRecord(txn);
      }
    }
  });
}

ClusterNode::Clock::time_point ClusterNode::RunTimers(Clock::time_point now) {
  now_ = now;
  if (!started_) {
    started_ = true;
    StartPeriodicWork();
  }
  static_assert(std::is_same_v<Clock, PeerRpc::Clock>);
  Clock::time_point next = rpc_.RunTimers(now);
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto task = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    task();
  }
  if (!timers_.empty()) next = std::min(next, timers_.begin()->first);
  return next;
}

}  // namespace strata::node
