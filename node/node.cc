#include "node/node.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

// An eventfd the log's flusher thread signals when replies may be released.
class Node::WakeSignal {
 public:
  WakeSignal() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~WakeSignal() {
    if (fd_ >= 0) ::close(fd_);
  }
  WakeSignal(const WakeSignal&) = delete;
  WakeSignal& operator=(const WakeSignal&) = delete;

  int fd() const { return fd_; }
  void Notify() const {
    const uint64_t one = 1;
    // A full counter still reads as readable: nothing is lost if it fails.
    (void)!::write(fd_, &one, sizeof(one));
  }
  void Clear() const {
    uint64_t count;
    (void)!::read(fd_, &count, sizeof(count));
  }

 private:
  int fd_;
};

Node::Node(NodeOptions options) : Node(std::move(options), nullptr, nullptr) {}

Node::Node(NodeOptions options, std::unique_ptr<Store> durable, std::shared_ptr<WakeSignal> wake)
    : options_(std::move(options)),
      wake_(std::move(wake)),
      durable_(std::move(durable)),
      txns_(options_.txn_timeout) {
  if (durable_ != nullptr) {
    store_ = &durable_->mvcc();
    db_ = &durable_->db();
  } else {
    in_memory_store_ = std::make_unique<MvccStore>();
    in_memory_db_ = std::make_unique<TxnStore>(
        in_memory_store_.get(), TxnStoreOptions{.max_active_txns = options_.max_active_txns});
    store_ = in_memory_store_.get();
    db_ = in_memory_db_.get();
  }
  if (options_.gc_retention) {
    gc_ = std::make_unique<GcScheduler>(db_, *options_.gc_retention, options_.gc_interval,
                                        options_.gc_keys_per_step);
  }
}

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options) {
  if (!options.data_dir) return std::make_unique<Node>(std::move(options));
  auto wake = std::make_shared<WakeSignal>();
  if (wake->fd() < 0) {
    return Status::Unavailable(std::string("cannot create an eventfd: ") + std::strerror(errno));
  }
  StoreOpenOptions open;
  open.txn.max_active_txns = options.max_active_txns;
  open.durability = options.durability;
  open.durability.wait_for_durability = false;  // replies are held instead
  open.durability.on_durable = [wake] { wake->Notify(); };
  Result<std::unique_ptr<Store>> store = Store::Open(*options.data_dir, std::move(open));
  if (!store.ok()) return store.status();
  return std::unique_ptr<Node>(new Node(std::move(options), std::move(*store), std::move(wake)));
}

Node::~Node() = default;

int Node::wake_fd() const { return wake_ ? wake_->fd() : -1; }

void Node::HandleLine(std::string_view line, std::string* out, std::string* log) {
  out_ = out;
  ProcessLine(line, log);
  DrainSelfMessages(log);
  out_ = nullptr;
}

void Node::HandleOverlongLine(std::string_view start, std::string* out, std::string* log) {
  ErrorReply error;
  if (parser_.ParseOverlong(start, &request_, &error) == protocol::ParseOutcome::kMalformed) {
    WriteError(request_, error, out);
  } else {
    log->append("strata-node: skipped a line: ").append(error.text).push_back('\n');
  }
}

void Node::DrainSelfMessages(std::string* log) {
  if (draining_self_messages_) return;  // the outer loop gets to them
  draining_self_messages_ = true;
  while (!self_messages_.empty()) {
    std::string line = std::move(self_messages_.front());
    self_messages_.pop_front();
    ProcessLine(line, log);
  }
  draining_self_messages_ = false;
}

void Node::ProcessLine(std::string_view line, std::string* log) {
  std::string* out = out_;
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
  bool answered = false;
  try {
    result = Dispatch(request_, &reply_type, &answered);
  } catch (const std::exception& e) {
    // Must never happen; if it does, the client is told instead of the
    // node dying with every other client's state.
    result = ErrorReply{ErrorCode::kCrash, std::string("internal error: ") + e.what()};
    log->append("strata-node: internal error: ").append(e.what()).push_back('\n');
  }
  if (result) {
    WriteError(request_, *result, out);
  } else if (!answered) {
    WriteReply(request_, reply_type, reply_fields_, out);
  }
}

MaybeError Node::Dispatch(const protocol::Envelope& request, std::string_view* reply_type,
                          bool* answered) {
  reply_fields_.clear();
  if (request.type == "init") {
    *reply_type = "init_ok";
    return HandleInit(request.body);
  }
  if (node_id_.empty()) {
    return ErrorReply{ErrorCode::kTemporarilyUnavailable,
                      "the node has not received 'init' yet; send init first"};
  }
  if (durable_ != nullptr && request.type != "mvcc_stats") {
    // After a failed log write or fsync, memory may hold changes the disk
    // does not: serving them could show a client state that a restart takes
    // back. Only a restart (recovering from the disk) is safe.
    if (Status health = durable_->health(); !health.ok()) {
      return ErrorReply{ErrorCode::kTemporarilyUnavailable,
                        health.message() +
                            "; this node serves no reads or writes until it is "
                            "restarted (it then recovers from its data directory)"};
    }
  }
  if (cluster_ != nullptr) {
    *answered = true;
    cluster_->HandleMessage(request, Clock::now());
    return std::nullopt;
  }
  // The fields continue the body object the reply envelope opens.
  JsonWriter fields = JsonWriter::ContinuingObject(&reply_fields_);
  MaybeError error = RunLocal(request.type, request.body, &fields, reply_type);
  if (error) reply_fields_.clear();
  return error;
}

MaybeError Node::RunLocal(std::string_view type, const Body& body, JsonWriter* fields,
                          std::string_view* reply_type) {
  const Route* route = FindRoute(type);
  if (route == nullptr) {
    return ErrorReply{ErrorCode::kNotSupported,
                      "unknown message type '" + protocol::Abbreviate(type) + "'"};
  }
  *reply_type = route->reply_type;
  Services services{store_, db_, &txns_, durable_.get(), options_.isolation, Clock::now()};
  return route->handler(services, body, fields);
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
  if (node_id_.empty() && node_ids.size() > 1) {
    ClusterOptions cluster = options_.cluster;
    cluster.isolation = options_.isolation;
    cluster.txn_timeout = options_.txn_timeout;
    cluster.max_active_txns = options_.max_active_txns;
    Result<std::unique_ptr<ClusterNode>> created = ClusterNode::Create(
        std::string(*node_id), node_ids, cluster, store_, db_, durable_.get(), this,
        [this](std::string_view type, const Body& request, JsonWriter* fields,
               std::string_view* reply_type) {
          return RunLocal(type, request, fields, reply_type);
        });
    if (!created.ok()) return protocol::Malformed(created.status().message());
    cluster_ = std::move(*created);
    if (gc_) gc_->SetCeiling([this] { return cluster_->LowWaterMark(); });
  }
  node_id_ = std::string(*node_id);
  node_ids_ = std::move(node_ids);
  return std::nullopt;
}

void Node::AppendReplyLine(std::string_view src, std::string_view dest,
                           std::string_view in_reply_to_json, uint64_t msg_id,
                           std::string_view type, std::string_view fields, std::string* out) const {
  JsonWriter w(out);
  w.BeginObject().Field("src", src).Field("dest", dest).Key("body").BeginObject();
  w.Field("type", type).Key("in_reply_to").Raw(in_reply_to_json).FieldUint("msg_id", msg_id);
  out->append(fields);
  w.EndObject().EndObject();
  out->push_back('\n');
}

void Node::WriteReply(const protocol::Envelope& request, std::string_view type,
                      std::string_view fields, std::string* out) {
  if (node_id_.empty()) {
    // Before init the node's id is unknown; the request's dest names it.
    if (!request.has_msg_id) return;
    AppendReplyLine(request.dest, request.src, request.msg_id_json, next_msg_id_++, type, fields,
                    out);
    return;
  }
  WriteReplyTo(request.src, request.msg_id_json, request.has_msg_id, type, fields, out);
}

uint64_t Node::Send(std::string_view dest, std::string_view type, std::string_view fields) {
  const bool to_self = dest == node_id_;
  const uint64_t msg_id = to_self ? next_self_msg_id_++ : next_msg_id_++;
  std::string line;
  JsonWriter w(&line);
  w.BeginObject().Field("src", node_id_).Field("dest", dest).Key("body").BeginObject();
  w.Field("type", type).FieldUint("msg_id", msg_id);
  line.append(fields);
  w.EndObject().EndObject();
  EmitNodeMessage(std::move(line), to_self, out_);
  return msg_id;
}

std::optional<uint64_t> Node::LsnToWaitFor() const {
  if (durable_ == nullptr) return std::nullopt;
  const uint64_t required = durable_->appended_lsn();
  // Nothing overtakes a line already held.
  if (held_.empty() && required <= durable_->durable_lsn()) return std::nullopt;
  return required;
}

void Node::EmitNodeMessage(std::string line, bool to_self, std::string* out) {
  if (std::optional<uint64_t> required = LsnToWaitFor()) {
    // After a log failure it would never go: the sender's call times out.
    if (!durable_->health().ok()) return;
    if (!to_self) line.push_back('\n');
    HeldReply held{*required,
                   std::move(line),
                   std::string(),
                   std::string(),
                   0,
                   to_self ? HeldReply::Kind::kSelfMessage : HeldReply::Kind::kNodeMessage};
    held_bytes_ += held.line.size();
    held_.push_back(std::move(held));
    return;
  }
  if (to_self) {
    self_messages_.push_back(std::move(line));
  } else {
    out->append(line).push_back('\n');
  }
}

void Node::Reply(const ReplyAddress& to, std::string_view type, std::string_view fields) {
  WriteReplyTo(to.dest, to.in_reply_to_json, to.wanted, type, fields, out_);
}

void Node::WriteReplyTo(std::string_view dest, std::string_view in_reply_to_json, bool wanted,
                        std::string_view type, std::string_view fields, std::string* out) {
  if (!wanted) return;  // processed, but not answered
  if (dest == node_id_ && cluster_ != nullptr) {
    // A reply to this node's own request: processed after the current event.
    // (A single node has no requests of its own: a client that calls
    // itself by the node's name is answered on stdout like any other.)
    std::string line;
    AppendReplyLine(node_id_, dest, in_reply_to_json, next_self_msg_id_++, type, fields, &line);
    line.pop_back();
    EmitNodeMessage(std::move(line), /*to_self=*/true, out);
    return;
  }
  const uint64_t msg_id = next_msg_id_++;
  if (durable_ == nullptr) {
    AppendReplyLine(node_id_, dest, in_reply_to_json, msg_id, type, fields, out);
    return;
  }
  // The reply may describe anything appended so far (its own writes, or a
  // read of someone else's): it waits until all of that is durable.
  const std::optional<uint64_t> required = LsnToWaitFor();
  if (!required) {
    AppendReplyLine(node_id_, dest, in_reply_to_json, msg_id, type, fields, out);
    return;
  }
  if (Status health = durable_->health(); !health.ok()) {
    // The log will never be durable past `required`. Errors (the refusals
    // Dispatch now gives) and stats claim nothing about the data: they go
    // out at once, after what was held. Any other reply would acknowledge
    // something whose durability is unknown: error 13 instead.
    ReleaseHeld(out);
    if (type == "error" || type == "mvcc_stats_ok") {
      AppendReplyLine(node_id_, dest, in_reply_to_json, msg_id, type, fields, out);
    } else {
      AppendReplyLine(node_id_, dest, in_reply_to_json, msg_id, "error",
                      UnknownOutcomeFields(health), out);
    }
    return;
  }
  HeldReply held{*required, std::string(), std::string(dest), std::string(in_reply_to_json),
                 msg_id};
  AppendReplyLine(node_id_, dest, in_reply_to_json, msg_id, type, fields, &held.line);
  held_bytes_ += held.line.size();
  held_.push_back(std::move(held));
}

void Node::InputDrained() {
  if (durable_ != nullptr && !held_.empty()) durable_->Flush();
}

std::string Node::UnknownOutcomeFields(const Status& log_failure) {
  // Maelstrom's error 13 is indefinite: a write may or may not have reached
  // the disk before the log failed.
  std::string fields;
  JsonWriter w = JsonWriter::ContinuingObject(&fields);
  w.FieldUint("code", static_cast<uint64_t>(ErrorCode::kCrash))
      .Field("text",
             "the write-ahead log failed before this request's changes were durable, so they may "
             "or may not survive a restart: " +
                 log_failure.message());
  return fields;
}

void Node::ReleaseReplies(std::string* out) {
  if (wake_ == nullptr) return;
  wake_->Clear();
  ReleaseHeld(out);
  if (!self_messages_.empty() && !draining_self_messages_) {
    // Released messages to itself are processed now (they may send more).
    std::string* previous_out = out_;
    out_ = out;
    std::string log;  // messages to itself are well-formed: nothing to log
    DrainSelfMessages(&log);
    out_ = previous_out;
  }
}

void Node::ReleaseHeld(std::string* out) {
  if (held_.empty()) return;
  const uint64_t durable = durable_->durable_lsn();
  while (!held_.empty() && held_.front().required_lsn <= durable) {
    HeldReply& held = held_.front();
    held_bytes_ -= held.line.size();
    if (held.kind == HeldReply::Kind::kSelfMessage) {
      self_messages_.push_back(std::move(held.line));
    } else {
      out->append(held.line);
    }
    held_.pop_front();
  }
  if (!held_.empty()) {
    if (Status health = durable_->health(); !health.ok()) {
      // These will never be durable: a reply's outcome is unknown; a node
      // message is dropped (its sender's call times out).
      const std::string fields = UnknownOutcomeFields(health);
      for (const HeldReply& held : held_) {
        if (held.kind != HeldReply::Kind::kReply) continue;
        AppendReplyLine(node_id_, held.dest, held.in_reply_to_json, held.msg_id, "error", fields,
                        out);
      }
      held_.clear();
      held_bytes_ = 0;
    }
  }
}

void Node::WriteError(const protocol::Envelope& request, const ErrorReply& error,
                      std::string* out) {
  reply_fields_.clear();
  JsonWriter fields = JsonWriter::ContinuingObject(&reply_fields_);
  fields.FieldUint("code", static_cast<uint64_t>(error.code)).Field("text", error.text);
  WriteReply(request, "error", reply_fields_, out);
}

std::optional<Node::Clock::time_point> Node::RunTimers(Clock::time_point now, std::string* out) {
  Clock::time_point next = txns_.ExpireIdle(now);
  if (gc_) next = std::min(next, gc_->RunIfDue(now));
  if (cluster_ != nullptr) {
    out_ = out;
    next = std::min(next, cluster_->RunTimers(now));
    std::string log;  // messages to itself are well-formed: nothing to log
    DrainSelfMessages(&log);
    out_ = nullptr;
  }
  return next;
}

}  // namespace strata::node
