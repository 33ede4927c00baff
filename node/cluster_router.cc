// ClusterNode, router role: message intake, routing of the raw API, fan-out
// and merge, stats, the low-water mark and timers. See cluster_node.h.
#include <algorithm>

#include "cluster/durable_state.h"
#include "node/cluster_node.h"
#include "protocol/body.h"
#include "protocol/errors.h"
#include "protocol/key_codec.h"
#include "protocol/limits.h"
#include "protocol/mvcc_messages.h"
#include "protocol/peer_codec.h"

namespace strata::node {

using protocol::Body;
using protocol::ErrorCode;
using protocol::ErrorReply;
using protocol::JsonWriter;

static_assert(protocol::kFirstInternalKeyTag == cluster::kInternalKeyTag,
              "client ranges must end where the cluster's own keys begin");

namespace {

// The client error a forward ended with: the owner's refusal, or none
// in time.
ErrorReply ForwardFailure(const cluster::PeerReply* reply, std::string gave_up_text) {
  if (reply == nullptr)
    return ErrorReply{ErrorCode::kTemporarilyUnavailable, std::move(gave_up_text)};
  if (const auto* error = std::get_if<cluster::PeerError>(reply)) {
    return protocol::ErrorFromStatus(error->status);
  }
  return ErrorReply{ErrorCode::kCrash, "a shard answered a forward with something else"};
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
  Result<std::unique_ptr<cluster::ShardServer>> server = cluster::ShardServer::Create(
      *node->map_.ShardServedBy(node->node_id_), static_cast<uint32_t>(node->map_.shards().size()),
      store, &node->clock_, &node->peers_, &node->timers_, /*persist=*/durable != nullptr,
      cluster::ShardServerOptions{
          .heartbeat_timeout = options.heartbeat_timeout,
          .push_after = options.push_after,
          .read_wait = options.read_wait,
          .outcome_retention = 2 * options.rpc_timeout + options.txn_timeout,
          .rpc_timeout = options.rpc_timeout,
          .describe_key = [](std::string_view key) {
            std::string text;
            JsonWriter w(&text);
            protocol::WriteKey(&w, key);
            return protocol::Abbreviate(text);
          }});
  if (!server.ok()) return server.status();
  node->shard_server_ = std::move(*server);
  node->coordinator_ = std::make_unique<cluster::Coordinator>(
      node->node_index_, node->shard_, store, &node->clock_, &node->peers_, &node->timers_,
      cluster::CoordinatorOptions{.isolation = options.isolation,
                                  .txn_timeout = options.txn_timeout,
                                  .max_active_txns = options.max_active_txns,
                                  .heartbeat_interval = options.heartbeat_interval,
                                  .max_clock_offset = options.max_clock_offset});
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
      peer_transport_(transport),
      local_handler_(std::move(local_handler)),
      clock_(cluster::HybridLogicalClock::SystemMillis,
             cluster::HybridClockOptions{.node_index = node_index_}),
      peers_(node_id_, node_ids_, &map_, &clock_, &peer_transport_, &timers_, options.rpc_timeout) {
  timers_.SetNow(Clock::now());
  // After a restart, timestamps continue above everything stored.
  if (auto max = store_->max_timestamp()) clock_.Observe(*max);
  clock_.Observe(db_->oracle().Last());
}

ClusterNode::~ClusterNode() = default;

cluster::ShardId ClusterNode::ShardOfKey(std::string_view engine_key) const {
  return map_.ShardFor(engine_key).id;
}

void ClusterNode::ReplyError(const ReplyAddress& to, const ErrorReply& error) {
  if (!IsPeer(to.dest)) return transport_->ReplyError(to, error);
  // Written here rather than as a PeerError: a refusal of what a peer sent
  // keeps its exact code (10 for an unknown type has no Status).
  std::string fields;
  JsonWriter::ContinuingObject(&fields)
      .FieldUint("code", static_cast<uint64_t>(error.code))
      .Field("text", error.text)
      .FieldUint("hlc", clock_.Last().value());
  transport_->Reply(to, "error", fields);
}

void ClusterNode::HandleMessage(const protocol::Envelope& message, Clock::time_point now) {
  timers_.SetNow(now);
  ReplyAddress from{std::string(message.src), message.msg_id_json, message.has_msg_id};
  if (!IsPeer(message.src)) {
    HandleClientRequest(message, from);
    return;
  }
  // Every node message carries its sender's clock: receiving it moves ours
  // past it (the HLC receive rule), so causality holds across nodes.
  std::optional<Timestamp> hlc;
  if (auto err = protocol::ReadSenderClock(message, &hlc)) {
    ReplyError(from, *err);
    return;
  }
  const bool is_reply = message.body.Find("in_reply_to") || message.type == "error";
  if (hlc) {
    if (Status s = clock_.Update(*hlc); !s.ok()) {
      if (!is_reply) {
        ReplyError(from, protocol::ErrorFromStatus(s));
        return;
      }
      // A reply is still taken in (it answers something we asked); its
      // timestamps are checked where they are used.
    }
  }
  if (is_reply) {
    // A reply is never answered, whatever it holds: two nodes (or a node
    // and itself) must not trade errors about each other's replies forever.
    uint64_t in_reply_to = 0;
    if (!message.body.RequiredUint("in_reply_to", &in_reply_to)) {
      peers_.OnReply(in_reply_to, protocol::ReadPeerReply(message));  // a late copy's is dropped
    }
    return;
  }
  if (!protocol::IsPeerRequestType(message.type)) {
    // A client request relayed by a node, or a node with a newer protocol.
    return HandleClientRequest(message, from);
  }
  cluster::PeerRequest request;
  if (auto err = protocol::ReadPeerRequest(message, &request)) {
    if (!protocol::IsOneWayType(message.type)) ReplyError(from, *err);
    return;
  }
  HandlePeerRequest(std::move(request), message.src, hlc.value_or(clock_.Last()), from);
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

void ClusterNode::HandlePeerRequest(cluster::PeerRequest request, std::string_view src,
                                    Timestamp sender_clock, const ReplyAddress& from) {
  auto respond = [this, from](cluster::PeerReply reply) {
    peer_transport_.Reply(from, reply, clock_.Last());
  };
  cluster::ShardServer& shard = *shard_server_;
  if (auto* read = std::get_if<cluster::ShardRead>(&request)) {
    return shard.Read(std::move(*read), respond);
  }
  if (auto* prepare = std::get_if<cluster::ShardPrepare>(&request)) {
    return shard.Prepare(std::move(*prepare), sender_clock, respond);
  }
  if (auto* commit = std::get_if<cluster::ShardCommit>(&request)) {
    return shard.Commit(*commit, sender_clock, respond);
  }
  if (auto* resolve = std::get_if<cluster::ShardResolve>(&request)) {
    return shard.Resolve(*resolve, respond);
  }
  if (auto* call = std::get_if<cluster::RecordCall>(&request)) return shard.Record(*call, respond);
  if (auto* forward = std::get_if<cluster::Forward>(&request)) {
    return respond(HandleForward(forward->request));
  }
  if (auto* report = std::get_if<cluster::LowWaterMarkReport>(&request)) {
    reported_snapshots_[std::string(src)] = report->oldest_snapshot;
  }
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
  Call(ShardOfKey(key), cluster::Forward{RequestJson(request)},
       [this, from](const cluster::PeerReply* reply) {
         const auto* forwarded = cluster::ReplyAs<cluster::ForwardReply>(reply);
         if (forwarded == nullptr) {
           return ReplyError(
               from, ForwardFailure(reply, "the shard that owns this key did not answer in time"));
         }
         simdjson::dom::parser parser;
         simdjson::dom::object inner;
         std::string_view type;
         if (parser.parse(forwarded->reply).get_object().get(inner) ||
             inner["type"].get_string().get(type)) {
           return ReplyError(from,
                             ErrorReply{ErrorCode::kCrash, "the owner's forward_ok had no reply"});
         }
         std::string out;
         JsonWriter w = JsonWriter::ContinuingObject(&out);
         CopyMembers(inner, &w);
         transport_->Reply(from, type, out);
       });
}

cluster::PeerReply ClusterNode::HandleForward(const std::string& request_json) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  Body body;
  std::string_view type;
  if (parser.parse(request_json).get_object().get(object) ||
      object["type"].get_string().get(type)) {
    return cluster::PeerError{Status::InvalidArgument("forward needs a 'request' object")};
  }
  if (auto err = body.Load(object)) return cluster::PeerError{protocol::StatusFromError(*err)};
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
    return cluster::PeerError{Status::InvalidArgument(
        "the reply to " + std::string(type) + " on shard " +
        std::to_string(shard_server_->shard()) + " exceeds " +
        std::to_string(protocol::kMaxNodeMessageBytes) +
        " bytes, more than one node message carries; ask for a smaller limit")};
  }
  return cluster::ForwardReply{std::move(reply_body)};
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
  const cluster::Forward forward{RequestJson(request)};
  for (const cluster::Shard& shard : map_.shards()) {
    Call(shard.id, forward, [this, fan_out](const cluster::PeerReply* reply) {
      const auto* forwarded = cluster::ReplyAs<cluster::ForwardReply>(reply);
      if (forwarded == nullptr) {
        fan_out->error = ForwardFailure(reply, "a shard did not answer in time; try again");
      } else {
        simdjson::dom::parser parser;
        simdjson::dom::element inner;
        std::string_view type;
        if (!parser.parse(forwarded->reply).get(inner) && !inner["type"].get_string().get(type) &&
            type == "error") {
          uint64_t code = 13;
          std::string_view text;
          if (inner["code"].get_uint64().get(code)) code = 13;
          if (inner["text"].get_string().get(text)) text = "a shard failed";
          fan_out->error = ErrorReply{static_cast<ErrorCode>(code), std::string(text)};
        } else {
          fan_out->replies.push_back(forwarded->reply);
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
  const cluster::CoordinatorStats coordinated = coordinator_->Stats();
  txn.active_txns = coordinated.active_txns;
  txn.commits = coordinated.commits;
  txn.conflicts = coordinated.conflicts;
  txn.min_active_snapshot = coordinated.oldest_snapshot;
  txn.oldest_txn_age = coordinated.oldest_txn_age;
  protocol::WriteTxnStats(txn, coordinated.expired_txns, &w);
  if (durable_ != nullptr) protocol::WriteDurabilityStats(durable_->GetDurabilityStats(), &w);
  const cluster::ShardServerStats shard = shard_server_->Stats();
  const cluster::IntentStats& intents = shard.intents;
  w.FieldUint("shard", shard_).FieldUint("shards", map_.shards().size());
  w.FieldUint("resolved_timestamp", shard.resolved_timestamp.value());
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
    if (coordinated.oldest_snapshot && OldestActiveSnapshot() == *lwm) {
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
  w.FieldUint("txn_records", shard.txn_records)
      .FieldUint("pending_txn_records", shard.pending_txn_records)
      .FieldUint("commits_finished_by_primary", shard.commits_finished_by_primary);
  w.FieldUint("commits_one_phase", coordinated.one_phase_commits)
      .FieldUint("commits_two_phase", coordinated.two_phase_commits)
      .FieldUint("unknown_outcomes", coordinated.unknown_outcomes);
  w.FieldUint("reads_waited", shard.reads_waited)
      .FieldUint("reads_waiting", shard.reads_waiting)
      .FieldUint("read_wait_timeouts", shard.read_wait_timeouts)
      .FieldUint("pushes", shard.pushes)
      .FieldUint("pushed_aborts", shard.pushed_aborts);
  const cluster::PeerRpc& rpc = peers_.rpc();
  w.FieldUint("rpc_in_flight", rpc.in_flight())
      .FieldUint("rpc_resends", rpc.resends())
      .FieldUint("rpc_gave_up", rpc.gave_up());
  transport_->Reply(from, "mvcc_stats_ok", out);
}

// --- low-water mark ------------------------------------------------------------

Timestamp ClusterNode::OldestActiveSnapshot() const {
  // With nothing open, the next snapshot taken here will be above the clock.
  const Timestamp oldest = coordinator_->OldestSnapshot().value_or(clock_.Last());
  // A pending intent here may still commit at or just above its prepare
  // timestamp: no shard may collect past it, or the commit could never be
  // applied here (a write below the horizon is refused).
  return std::min(oldest, shard_server_->SafeTime());
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

void ClusterNode::SendLowWaterMarks() {
  // An idle node's clock only moves when it takes a timestamp: take one, so
  // the oldest snapshot it reports follows time and the mark can rise.
  (void)clock_.Next();
  peers_.Broadcast(cluster::LowWaterMarkReport{OldestActiveSnapshot()});
}

// --- timers --------------------------------------------------------------------

void ClusterNode::StartPeriodicWork() {
  timers_.Every(options_.low_water_mark_interval, [this] { SendLowWaterMarks(); });
  timers_.Every(std::chrono::milliseconds(100), [this] { coordinator_->ExpireIdle(); });
  shard_server_->Start();
}

ClusterNode::Clock::time_point ClusterNode::RunTimers(Clock::time_point now) {
  timers_.SetNow(now);
  if (!started_) {
    started_ = true;
    StartPeriodicWork();
  }
  static_assert(std::is_same_v<Clock, cluster::PeerRpc::Clock>);
  const Clock::time_point next = peers_.RunTimers(now);
  return std::min(next, timers_.RunDue(now));
}

}  // namespace strata::node
