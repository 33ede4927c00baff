#include "node/node.h"

#include <algorithm>
#include <exception>

#include "node/gc_scheduler.h"
#include "node/mvcc_handlers.h"
#include "node/txn_handlers.h"
#include "node/workload_handlers.h"

namespace strata::node {

using protocol::Body;
using protocol::ErrorCode;
using protocol::ErrorReply;
using protocol::JsonWriter;
using protocol::MaybeError;

namespace {

struct Route {
  std::string_view type;
  std::string_view reply_type;
  MaybeError (*handler)(Services&, const Body&, JsonWriter*);
};

constexpr Route kRoutes[] = {
    {"mvcc_put", "mvcc_put_ok", &HandleMvccPut},
    {"mvcc_get", "mvcc_get_ok", &HandleMvccGet},
    {"mvcc_delete", "mvcc_delete_ok", &HandleMvccDelete},
    {"mvcc_scan", "mvcc_scan_ok", &HandleMvccScan},
    {"mvcc_history", "mvcc_history_ok", &HandleMvccHistory},
    {"mvcc_changes", "mvcc_changes_ok", &HandleMvccChanges},
    {"mvcc_compact", "mvcc_compact_ok", &HandleMvccCompact},
    {"mvcc_stats", "mvcc_stats_ok", &HandleMvccStats},
    {"txn_begin", "txn_begin_ok", &HandleTxnBegin},
    {"txn_get", "txn_get_ok", &HandleTxnGet},
    {"txn_put", "txn_put_ok", &HandleTxnPut},
    {"txn_delete", "txn_delete_ok", &HandleTxnDelete},
    {"txn_scan", "txn_scan_ok", &HandleTxnScan},
    {"txn_commit", "txn_commit_ok", &HandleTxnCommit},
    {"txn_abort", "txn_abort_ok", &HandleTxnAbort},
    // Maelstrom workloads: lin-kv, txn-rw-register, txn-list-append.
    {"read", "read_ok", &HandleKvRead},
    {"write", "write_ok", &HandleKvWrite},
    {"cas", "cas_ok", &HandleKvCas},
    {"txn", "txn_ok", &HandleTxnOps},
};

const Route* FindRoute(std::string_view type) {
  for (const Route& route : kRoutes) {
    if (route.type == type) return &route;
  }
  return nullptr;
}

}  // namespace

Node::Node(NodeOptions options)
    : options_(options),
      store_(std::make_unique<MvccStore>()),
      db_(std::make_unique<TxnStore>(store_.get(),
                                     TxnStoreOptions{.max_active_txns = options.max_active_txns})),
      txns_(options.txn_timeout) {
  if (options_.gc_retention) {
    gc_ = std::make_unique<GcScheduler>(db_.get(), *options_.gc_retention, options_.gc_interval,
                                        options_.gc_keys_per_step);
  }
}

Node::~Node() = default;

void Node::HandleLine(std::string_view line, std::string* out, std::string* log) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;  // blank line
  ErrorReply error;
  switch (parser_.Parse(line, &request_, &error)) {
    case protocol::ParseOutcome::kUnanswerable:
      log->append("strata-node: skipped a line: ").append(error.text).push_back('\n');
      return;
    case protocol::ParseOutcome::kMalformed:
      WriteError(request_, error, out);
      return;
    case protocol::ParseOutcome::kOk:
      break;
  }
  std::string_view reply_type;
  MaybeError result;
  try {
    result = Dispatch(request_, &reply_type);
  } catch (const std::exception& e) {
    // Must never happen; if it does, the client is told instead of the
    // node dying with every other client's state.
    result = ErrorReply{ErrorCode::kCrash, std::string("internal error: ") + e.what()};
    log->append("strata-node: internal error: ").append(e.what()).push_back('\n');
  }
  if (result) {
    WriteError(request_, *result, out);
  } else {
    WriteReply(request_, reply_type, reply_fields_, out);
  }
}

MaybeError Node::Dispatch(const protocol::Envelope& request, std::string_view* reply_type) {
  reply_fields_.clear();
  if (request.type == "init") {
    *reply_type = "init_ok";
    return HandleInit(request.body);
  }
  if (node_id_.empty()) {
    return ErrorReply{ErrorCode::kTemporarilyUnavailable,
                      "the node has not received 'init' yet; send init first"};
  }
  const Route* route = FindRoute(request.type);
  if (route == nullptr) {
    return ErrorReply{ErrorCode::kNotSupported,
                      "unknown message type '" + protocol::Abbreviate(request.type) + "'"};
  }
  *reply_type = route->reply_type;
  // The fields continue the body object the reply envelope opens.
  JsonWriter fields = JsonWriter::ContinuingObject(&reply_fields_);
  Services services{store_.get(), db_.get(), &txns_, options_.isolation, Clock::now()};
  MaybeError error = route->handler(services, request.body, &fields);
  if (error) reply_fields_.clear();
  return error;
}

MaybeError Node::HandleInit(const Body& body) {
  std::optional<std::string_view> node_id;
  if (auto err = body.OptionalString("node_id", &node_id)) return err;
  if (!node_id || node_id->empty()) {
    return protocol::Malformed("field 'node_id' is required and must be a non-empty string");
  }
  auto ids = body.Find("node_ids");
  simdjson::dom::array id_array;
  if (!ids || ids->get_array().get(id_array)) {
    return protocol::Malformed("field 'node_ids' is required and must be an array of strings");
  }
  std::vector<std::string> node_ids;
  for (simdjson::dom::element id : id_array) {
    if (!id.is_string()) {
      return protocol::Malformed("field 'node_ids' must contain only strings");
    }
    node_ids.emplace_back(std::string_view(id));
  }
  if (!node_id_.empty() && node_id_ != *node_id) {
    return protocol::Malformed("the node is already initialized as '" + node_id_ + "'");
  }
  node_id_ = std::string(*node_id);
  node_ids_ = std::move(node_ids);
  return std::nullopt;
}

void Node::WriteReply(const protocol::Envelope& request, std::string_view type,
                      std::string_view fields, std::string* out) {
  if (!request.has_msg_id) return;  // processed, but not answered
  JsonWriter w(out);
  // Before init the node's id is unknown; the request's dest names it.
  std::string_view self = node_id_.empty() ? request.dest : std::string_view(node_id_);
  w.BeginObject().Field("src", self).Field("dest", request.src).Key("body").BeginObject();
  w.Field("type", type)
      .Key("in_reply_to")
      .Raw(request.msg_id_json)
      .FieldUint("msg_id", next_msg_id_++);
  out->append(fields);
  w.EndObject().EndObject();
  out->push_back('\n');
}

void Node::WriteError(const protocol::Envelope& request, const ErrorReply& error,
                      std::string* out) {
  reply_fields_.clear();
  JsonWriter fields = JsonWriter::ContinuingObject(&reply_fields_);
  fields.FieldUint("code", static_cast<uint64_t>(error.code)).Field("text", error.text);
  WriteReply(request, "error", reply_fields_, out);
}

std::optional<Node::Clock::time_point> Node::RunTimers(Clock::time_point now) {
  Clock::time_point next = txns_.ExpireIdle(now);
  if (gc_) next = std::min(next, gc_->RunIfDue(now));
  return next;
}

}  // namespace strata::node
