// ClusterNode: message intake, the raw API through the router, stats.
// See cluster_node.h.
#include "node/cluster_node.h"

#include <algorithm>

#include "cluster/durable_state.h"
#include "protocol/body.h"
#include "protocol/cluster_codec.h"
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

std::string DescribeKey(std::string_view key) {
  return protocol::Abbreviate(protocol::KeyText(key));
}

}  // namespace

Result<std::unique_ptr<ClusterNode>> ClusterNode::Create(std::string node_id,
                                                         const std::vector<std::string>& node_ids,
                                                         ClusterOptions options, MvccStore* store,
                                                         TxnStore* db, const Store* durable,
                                                         Transport* transport,
                                                         LocalHandler local_handler) {
  std::unique_ptr<ClusterNode> node(
      new ClusterNode(options, store, durable, transport, std::move(local_handler)));
  cluster::MemberOptions member;
  member.coordinator = cluster::CoordinatorOptions{.isolation = options.isolation,
                                                   .txn_timeout = options.txn_timeout,
                                                   .max_active_txns = options.max_active_txns,
                                                   .heartbeat_interval = options.heartbeat_interval,
                                                   .max_clock_offset = options.max_clock_offset};
  member.shard_server = cluster::ShardServerOptions{
      .heartbeat_timeout = options.heartbeat_timeout,
      .push_after = options.push_after,
      .read_wait = options.read_wait,
      .outcome_retention = 2 * options.rpc_timeout + options.txn_timeout,
      .rpc_timeout = options.rpc_timeout,
      .describe_key = DescribeKey};
  member.rpc_timeout = options.rpc_timeout;
  member.low_water_mark_interval = options.low_water_mark_interval;
  ClusterNode* self = node.get();
  if (options.replication_factor > 1) {
    cluster::ShardGroupsOptions groups;
    groups.self = node_id;
    groups.node_ids = node_ids;
    groups.replication_factor = options.replication_factor;
    groups.raft_dir = options.raft_dir;
    groups.tick = options.raft_tick;
    groups.election_ticks = options.election_ticks;
    groups.proposal_timeout = options.rpc_timeout;
    groups.shard_server = member.shard_server;
    groups.log = options.log;
    // A batch travels as hex in one line: twice its bytes, under the
    // line's bound with room for the envelope.
    groups.max_batch_bytes = protocol::kMaxNodeMessageBytes / 2 - 4096;
    groups.send_batch = [self](const std::string& to, std::string batch, uint64_t incarnation) {
      std::string fields;
      JsonWriter w = JsonWriter::ContinuingObject(&fields);
      w.Key("batch");
      protocol::WriteHexKey(&w, batch);
      w.FieldUint("inc", incarnation);
      self->transport_->Send(to, "raft_batch", fields);
    };
    groups.send_refusal = [self](const std::string& to, const std::string& why) {
      std::string fields;
      JsonWriter::ContinuingObject(&fields).Field("why", why);
      self->transport_->Send(to, "raft_refused", fields);
    };
    groups.send_report = [self](const std::string& to, std::string report) {
      std::string fields;
      JsonWriter w = JsonWriter::ContinuingObject(&fields);
      w.Key("report");
      protocol::WriteHexKey(&w, report);
      self->transport_->Send(to, "shard_group_report", fields);
    };
    // On the node's thread, as the groups are: the member serves what
    // moved here.
    cluster::ServeMovedReplicasOn(&node->member_, &groups);
    Result<std::unique_ptr<cluster::ShardGroups>> opened =
        cluster::ShardGroups::Open(std::move(groups));
    if (!opened.ok()) return opened.status();
    node->shard_groups_ = std::move(*opened);
    member.replication_factor = options.replication_factor;
    member.shard_cores = node->shard_groups_->CoreFactory();
    member.replicas_here = node->shard_groups_->ShardsHere();
  }
  Result<std::unique_ptr<cluster::Member>> created = cluster::Member::Create(
      std::move(node_id), node_ids, member, store, /*persist=*/durable != nullptr,
      db->oracle().Last(), &node->peer_transport_,
      [self](const std::string& request, cluster::ShardServer::Respond respond) {
        if (request.starts_with(kPlaceShardPrefix)) {
          return self->ServePlaceShard(request, std::move(respond));
        }
        respond(self->ServeForward(request));
      },
      [db](Timestamp horizon) { return db->Compact(horizon); }, Clock::now());
  if (!created.ok()) return created.status();
  node->member_ = std::move(*created);
  node->coordinator_ = &node->member_->coordinator();
  return node;
}

ClusterNode::ClusterNode(ClusterOptions options, MvccStore* store, const Store* durable,
                         Transport* transport, LocalHandler local_handler)
    : options_(options),
      store_(store),
      durable_(durable),
      transport_(transport),
      peer_transport_(transport),
      local_handler_(std::move(local_handler)) {}

ClusterNode::~ClusterNode() = default;

void ClusterNode::ReplyError(const ReplyAddress& to, const ErrorReply& error) {
  if (!member_->IsPeer(to.dest)) return transport_->ReplyError(to, error);
  // To a node it carries this node's clock like any other node message (a
  // refusal names timestamps the receiver must move past). Written here
  // rather than as a PeerError: a refusal of what a peer sent keeps its
  // exact code (10 for an unknown type has no Status).
  std::string fields;
  JsonWriter::ContinuingObject(&fields)
      .FieldUint("code", static_cast<uint64_t>(error.code))
      .Field("text", error.text)
      .FieldUint("hlc", member_->LastTimestamp().value());
  transport_->Reply(to, "error", fields);
}

ClusterNode::Clock::time_point ClusterNode::RunTimers(Clock::time_point now) {
  Clock::time_point next = member_->RunTimers(now);
  if (!shard_groups_) return next;
  if (now >= next_raft_tick_) {
    shard_groups_->Tick(now);
    next_raft_tick_ = std::max(next_raft_tick_ + options_.raft_tick, now);
  }
  // What the messages and timers since the last call proposed, received
  // and acknowledged: one round, one sync.
  shard_groups_->Run();
  return std::min(next, next_raft_tick_);
}

void ClusterNode::HandleRaftMessage(const protocol::Envelope& message) {
  if (!shard_groups_) return;
  if (message.type == "raft_refused") {
    std::optional<std::string_view> why;
    if (!message.body.OptionalString("why", &why) && why) {
      shard_groups_->Refused(std::string(*why));
    }
    return;
  }
  std::optional<std::string_view> hex;
  if (message.type == "shard_group_report") {
    std::string report;
    if (!message.body.OptionalString("report", &hex) && hex &&
        protocol::ParseHexKey(*hex, &report)) {
      shard_groups_->ReceiveReport(std::string(message.src), report);
    }
    return;  // damaged: the next comes a second later
  }
  std::string batch;
  uint64_t incarnation = 0;
  if (message.body.OptionalString("batch", &hex) || !hex || !protocol::ParseHexKey(*hex, &batch) ||
      message.body.RequiredUint("inc", &incarnation)) {
    return;  // damaged: a lost message to Raft
  }
  shard_groups_->Receive(std::string(message.src), batch, incarnation);
}

void ClusterNode::HandleMessage(const protocol::Envelope& message, Clock::time_point now) {
  member_->SetNow(now);
  ReplyAddress from{std::string(message.src), message.msg_id_json, message.has_msg_id};
  if (!member_->IsPeer(message.src)) return HandleClientRequest(message, from);
  if (message.type == "raft_batch" || message.type == "raft_refused" ||
      message.type == "shard_group_report") {
    return HandleRaftMessage(message);
  }
  std::optional<Timestamp> hlc;
  if (auto err = protocol::ReadSenderClock(message, &hlc)) return ReplyError(from, *err);
  if (message.body.Find("in_reply_to") || message.type == "error") {
    // A reply is never answered, whatever it holds: two nodes (or a node
    // and itself) must not trade errors about each other's replies forever.
    uint64_t in_reply_to = 0;
    if (!message.body.RequiredUint("in_reply_to", &in_reply_to)) {
      member_->OnReply(hlc, in_reply_to, protocol::ReadPeerReply(message));
    }
    return;
  }
  if (!protocol::IsPeerRequestType(message.type)) {
    // A client request relayed by a node, or a node with a newer protocol.
    return HandleClientRequest(message, from);
  }
  cluster::PeerRequest request;
  std::optional<cluster::ShardId> shard;
  protocol::MaybeError err = protocol::ReadPeerRequest(message, &request);
  if (!err) err = protocol::ReadTargetShard(message, &shard);
  if (err) {
    if (!protocol::IsOneWayType(message.type)) ReplyError(from, *err);
    return;
  }
  cluster::ShardServer::Respond respond = [](cluster::PeerReply) {};
  if (!protocol::IsOneWayType(message.type)) {
    respond = [this, from](cluster::PeerReply reply) {
      peer_transport_.Reply(from, reply, member_->LastTimestamp());
    };
  }
  member_->OnRequest(message.src, hlc, shard, std::move(request), std::move(respond));
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
  if (shard_groups_ && type.starts_with("mvcc_") && type != "mvcc_stats") {
    return ReplyError(from, ErrorReply{ErrorCode::kNotSupported,
                                       "the raw API ('" + protocol::Abbreviate(type) +
                                           "') is not served with replicated shards: it runs on "
                                           "a node's own store, which holds none"});
  }
  if (type == "mvcc_put" || type == "mvcc_get" || type == "mvcc_delete" || type == "mvcc_history") {
    return RouteToOwner(request, from);
  }
  if (type == "mvcc_scan") return HandleScan(body, from);
  if (type == "mvcc_changes") return HandleChanges(body, from);
  if (type == "mvcc_compact") return HandleCompact(body, from);
  if (type == "mvcc_stats") return HandleStats(from);
  if (type == "shard_place") return HandleShardPlace(body, from);
  ReplyError(from, ErrorReply{ErrorCode::kNotSupported,
                              "unknown message type '" + protocol::Abbreviate(type) + "'"});
}

// --- raw API ---------------------------------------------------------------

void ClusterNode::RouteToOwner(const protocol::Envelope& request, const ReplyAddress& from) {
  std::string key;
  if (auto err = request.body.RequiredKey("key", &key)) return ReplyError(from, *err);
  member_->router().Forward(key, RequestJson(request), [this, from](Result<std::string> reply) {
    if (!reply.ok()) return ReplyError(from, protocol::ErrorFromStatus(reply.status()));
    simdjson::dom::parser parser;
    simdjson::dom::object inner;
    std::string_view type;
    if (parser.parse(*reply).get_object().get(inner) || inner["type"].get_string().get(type)) {
      return ReplyError(from, ErrorReply{ErrorCode::kCrash, "the owner's forward_ok had no reply"});
    }
    std::string out;
    JsonWriter w = JsonWriter::ContinuingObject(&out);
    CopyMembers(inner, &w);
    transport_->Reply(from, type, out);
  });
}

cluster::PeerReply ClusterNode::ServeForward(const std::string& request_json) {
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
  std::string_view reply_type;
  protocol::MaybeError error;
  {
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
        "the reply to " + std::string(type) + " on shard " + std::to_string(member_->home_shard()) +
        " exceeds " + std::to_string(protocol::kMaxNodeMessageBytes) +
        " bytes, more than one node message carries; ask for a smaller limit")};
  }
  return cluster::ForwardReply{std::move(reply_body)};
}

template <typename T>
std::function<void(Result<T>)> ClusterNode::ReplyWith(const ReplyAddress& from,
                                                      std::string_view reply_type) {
  return [this, from, reply_type](Result<T> result) {
    if (!result.ok()) return ReplyError(from, protocol::ErrorFromStatus(result.status()));
    std::string out;
    JsonWriter w = JsonWriter::ContinuingObject(&out);
    protocol::WriteReply(*result, &w);
    transport_->Reply(from, reply_type, out);
  };
}

void ClusterNode::HandleScan(const Body& body, const ReplyAddress& from) {
  protocol::MvccScanRequest req;
  if (auto err = protocol::ParseRequest(body, &req)) return ReplyError(from, *err);
  member_->router().Scan(req.range, req.read_timestamp.value_or(Timestamp::Max()), req.limit,
                         ReplyWith<ScanResult>(from, "mvcc_scan_ok"));
}

void ClusterNode::HandleChanges(const Body& body, const ReplyAddress& from) {
  protocol::MvccChangesRequest req;
  if (auto err = protocol::ParseRequest(body, &req)) return ReplyError(from, *err);
  member_->router().Changes(req.since_timestamp, req.range, req.limit,
                            ReplyWith<ChangesResult>(from, "mvcc_changes_ok"));
}

void ClusterNode::HandleCompact(const Body& body, const ReplyAddress& from) {
  protocol::MvccCompactRequest req;
  if (auto err = protocol::ParseRequest(body, &req)) return ReplyError(from, *err);
  member_->router().Compact(req.timestamp, ReplyWith<CompactResult>(from, "mvcc_compact_ok"));
}

// --- moving replicas -----------------------------------------------------------

void ClusterNode::HandleShardPlace(const Body& body, const ReplyAddress& from) {
  if (!shard_groups_) {
    return ReplyError(from,
                      ErrorReply{ErrorCode::kNotSupported,
                                 "shard_place needs replicated shards (--replication-factor)"});
  }
  uint64_t shard = 0;
  if (auto err = body.RequiredUint("shard", &shard)) return ReplyError(from, *err);
  if (shard >= member_->map().shards().size()) {
    return ReplyError(from, protocol::Malformed("no shard " + std::to_string(shard)));
  }
  // The request again, as the shard's leader takes it (a Forward carries
  // JSON): what it holds is checked there.
  std::optional<simdjson::dom::element> nodes = body.Find("nodes");
  simdjson::dom::array list;
  if (!nodes || nodes->get_array().get(list) || list.size() > cluster::kMaxPlacedNodes) {
    return ReplyError(from,
                      protocol::Malformed("'nodes' must be an array of at most " +
                                          std::to_string(cluster::kMaxPlacedNodes) + " node ids"));
  }
  std::string request(kPlaceShardPrefix);
  JsonWriter w = JsonWriter::ContinuingObject(&request);
  w.FieldUint("shard", shard).Key("nodes").BeginArray();
  for (simdjson::dom::element node : list) {
    std::string_view name;
    if (node.get_string().get(name)) {
      return ReplyError(from, protocol::Malformed("'nodes' must hold node ids"));
    }
    w.String(name);
  }
  w.EndArray();
  request.push_back('}');
  member_->router().ForwardToShard(static_cast<cluster::ShardId>(shard), std::move(request),
                                   [this, from](Result<std::string> placed) {
                                     if (!placed.ok()) {
                                       return ReplyError(
                                           from, protocol::ErrorFromStatus(placed.status()));
                                     }
                                     transport_->Reply(from, "shard_place_ok", "");
                                   });
}

void ClusterNode::ServePlaceShard(const std::string& request,
                                  cluster::ShardServer::Respond respond) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  simdjson::dom::array list;
  uint64_t shard = 0;
  std::vector<std::string> nodes;
  bool ok = !parser.parse(request).get_object().get(object) &&
            !object["shard"].get_uint64().get(shard) && shard <= UINT32_MAX &&
            !object["nodes"].get_array().get(list);
  if (ok) {
    for (simdjson::dom::element node : list) {
      std::string_view name;
      ok = ok && !node.get_string().get(name);
      if (ok) nodes.emplace_back(name);
    }
  }
  if (!ok) {
    return respond(cluster::PeerError{Status::InvalidArgument("a placement that does not decode")});
  }
  if (!shard_groups_) {  // a node whose shards are not replicated
    return respond(
        cluster::PeerError{Status::PreconditionFailed("this node's shards are not replicated")});
  }
  shard_groups_->Place(static_cast<cluster::ShardId>(shard), nodes,
                       [respond = std::move(respond)](Status placed) {
                         if (!placed.ok()) return respond(cluster::PeerError{placed});
                         respond(cluster::ForwardReply{R"({"type":"shard_place_ok"})"});
                       });
}

// --- stats -------------------------------------------------------------------

void ClusterNode::HandleStats(const ReplyAddress& from) {
  std::string out;
  JsonWriter w = JsonWriter::ContinuingObject(&out);
  protocol::WriteStats(store_->GetStats(), &w);
  const cluster::CoordinatorStats coordinated = coordinator_->Stats();
  TxnStats txn;
  txn.active_txns = coordinated.active_txns;
  txn.commits = coordinated.commits;
  txn.conflicts = coordinated.conflicts;
  txn.min_active_snapshot = coordinated.oldest_snapshot;
  txn.oldest_txn_age = coordinated.oldest_txn_age;
  protocol::WriteTxnStats(txn, coordinated.expired_txns, &w);
  if (durable_ != nullptr) protocol::WriteDurabilityStats(durable_->GetDurabilityStats(), &w);
  // Its own shard's (nothing while its replica is elsewhere).
  const cluster::ShardServer* own = member_->shard_server();
  const cluster::ShardServerStats shard = own ? own->Stats() : cluster::ShardServerStats{};
  const cluster::IntentStats& intents = shard.intents;
  w.FieldUint("shard", member_->home_shard()).FieldUint("shards", member_->map().shards().size());
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
  if (auto lwm = member_->LowWaterMark()) mark = lwm->value();
  w.FieldUintOrNull("cluster_low_water_mark", mark);
  w.FieldStringOrNull("low_water_mark_holder", member_->LowWaterMarkHolder());
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
  const cluster::PeerRpc& rpc = member_->rpc();
  w.FieldUint("rpc_in_flight", rpc.in_flight())
      .FieldUint("rpc_resends", rpc.resends())
      .FieldUint("rpc_gave_up", rpc.gave_up());
  transport_->Reply(from, "mvcc_stats_ok", out);
}

}  // namespace strata::node
