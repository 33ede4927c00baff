// ClusterNode, client requests: the Maelstrom transaction API (txn_*) and
// workloads (read, write, cas, txn) over cluster::Coordinator, which runs
// them across the shards. See cluster/coordinator.h for how.
#include <algorithm>

#include "node/cluster_node.h"
#include "protocol/canonical_json.h"
#include "protocol/key_codec.h"
#include "protocol/limits.h"
#include "protocol/mvcc_messages.h"

namespace strata::node {

using cluster::Coordinator;
using protocol::Body;
using protocol::ErrorCode;
using protocol::ErrorReply;
using protocol::JsonWriter;
using protocol::ParseIsolation;

static_assert(cluster::kMaxTxnWriteKeys == protocol::kMaxTxnOps * 10);

namespace {

// The client error for a coordinator's Status: kNotFound is the one that
// says the transaction is gone (error 14).
ErrorReply ErrorOf(const Status& status) {
  if (status.code() == StatusCode::kNotFound)
    return ErrorReply{ErrorCode::kAbort, status.message()};
  return protocol::ErrorFromStatus(status);
}

// A commit whose outcome is unknown gets no answer (a timeout is
// Maelstrom's "indefinite").
bool IsUnknownOutcome(const Status& status) { return status.code() == StatusCode::kIoError; }

std::string KeyText(std::string_view engine_key) {
  return protocol::Abbreviate(protocol::KeyText(engine_key));
}

}  // namespace

void ClusterNode::ReplyFailure(const ReplyAddress& from, const Status& commit_failure) {
  if (!IsUnknownOutcome(commit_failure)) ReplyError(from, ErrorOf(commit_failure));
}

// --- transactions ------------------------------------------------------------

void ClusterNode::HandleTxnBegin(const Body& body, const ReplyAddress& from) {
  Isolation isolation = options_.isolation;
  std::optional<bool> read_only;
  std::optional<Timestamp> read_timestamp;
  if (auto err = ParseIsolation(body, options_.isolation, &isolation)) {
    return ReplyError(from, *err);
  }
  if (auto err = body.OptionalBool("read_only", &read_only)) return ReplyError(from, *err);
  if (auto err = body.OptionalTimestamp("read_timestamp", &read_timestamp)) {
    return ReplyError(from, *err);
  }
  Result<Coordinator::Begun> begun =
      coordinator_->Begin(isolation, read_only.value_or(false), read_timestamp);
  if (!begun.ok()) return ReplyError(from, ErrorOf(begun.status()));
  std::string out;
  JsonWriter::ContinuingObject(&out)
      .FieldUint("txn_id", begun->id)
      .FieldUint("start_timestamp", begun->start.value());
  transport_->Reply(from, "txn_begin_ok", out);
}

std::optional<uint64_t> ClusterNode::OpenTxnId(const Body& body, const ReplyAddress& from) {
  uint64_t id = 0;
  if (auto err = body.RequiredUint("txn_id", &id)) {
    ReplyError(from, *err);
    return std::nullopt;
  }
  if (Status open = coordinator_->CheckOpen(id); !open.ok()) {
    ReplyError(from, ErrorOf(open));
    return std::nullopt;
  }
  return id;
}

void ClusterNode::HandleTxnGet(const Body& body, const ReplyAddress& from) {
  const std::optional<uint64_t> id = OpenTxnId(body, from);
  if (!id) return;
  std::string key;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  coordinator_->Get(*id, std::move(key), [this, from](Result<ReadResult> read) {
    if (!read.ok()) return ReplyError(from, ErrorOf(read.status()));
    std::string out;
    JsonWriter w = JsonWriter::ContinuingObject(&out);
    protocol::WriteReply(*read, &w);
    transport_->Reply(from, "txn_get_ok", out);
  });
}

void ClusterNode::HandleTxnWrite(const Body& body, bool is_delete, const ReplyAddress& from) {
  const std::optional<uint64_t> id = OpenTxnId(body, from);
  if (!id) return;
  std::string key, value;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  if (!is_delete) {
    if (auto err = body.RequiredValue("value", &value)) return ReplyError(from, *err);
  }
  std::optional<std::string> written;
  if (!is_delete) written = std::move(value);
  if (Status s = coordinator_->Write(*id, std::move(key), std::move(written)); !s.ok()) {
    return ReplyError(from, ErrorOf(s));
  }
  transport_->Reply(from, is_delete ? "txn_delete_ok" : "txn_put_ok", "");
}

void ClusterNode::HandleTxnScan(const Body& body, const ReplyAddress& from) {
  const std::optional<uint64_t> id = OpenTxnId(body, from);
  if (!id) return;
  protocol::MvccScanRequest req;
  if (auto err = protocol::ParseRequest(body, &req)) return ReplyError(from, *err);
  if (req.read_timestamp) {
    return ReplyError(from,
                      protocol::Malformed("field 'read_timestamp' is not allowed in txn_scan: a "
                                          "transaction reads at its start timestamp"));
  }
  coordinator_->Scan(*id, req.range, req.limit, [this, from](Result<ScanResult> scan) {
    if (!scan.ok()) return ReplyError(from, ErrorOf(scan.status()));
    std::string out;
    JsonWriter w = JsonWriter::ContinuingObject(&out);
    protocol::WriteReply(*scan, &w);
    transport_->Reply(from, "txn_scan_ok", out);
  });
}

void ClusterNode::HandleTxnCommit(const Body& body, const ReplyAddress& from) {
  const std::optional<uint64_t> id = OpenTxnId(body, from);
  if (!id) return;
  coordinator_->Commit(*id, [this, from](Result<Timestamp> committed) {
    if (!committed.ok()) return ReplyFailure(from, committed.status());
    std::string out;
    JsonWriter::ContinuingObject(&out).FieldUint("commit_timestamp", committed->value());
    transport_->Reply(from, "txn_commit_ok", out);
  });
}

void ClusterNode::HandleTxnAbort(const Body& body, const ReplyAddress& from) {
  const std::optional<uint64_t> id = OpenTxnId(body, from);
  if (!id) return;
  if (Status s = coordinator_->Abort(*id); !s.ok()) return ReplyError(from, ErrorOf(s));
  transport_->Reply(from, "txn_abort_ok", "");
}

// --- Maelstrom workloads -------------------------------------------------------

void ClusterNode::HandleKvRead(const Body& body, const ReplyAddress& from) {
  std::string key;
  if (auto err = body.RequiredKey("key", &key)) return ReplyError(from, *err);
  const Timestamp snapshot = coordinator_->HoldSnapshot();
  coordinator_->ReadKeys(
      {key}, snapshot, [this, from, key, snapshot](Result<std::vector<ReadResult>> read) {
        coordinator_->ReleaseSnapshot(snapshot);
        if (!read.ok()) return ReplyError(from, ErrorOf(read.status()));
        const std::vector<ReadResult>& reads = *read;
        // A value (or a delete) that only a commit not yet acknowledged
        // may have made visible: shown once that commit could be.
        if (!reads[0].found || reads[0].deleted) {
          ErrorReply missing{ErrorCode::kKeyDoesNotExist,
                             "key " + KeyText(key) + " does not exist"};
          return coordinator_->AfterCommitWait(
              Coordinator::NewestSeen(reads), [this, from, missing] { ReplyError(from, missing); });
        }
        std::string out;
        JsonWriter::ContinuingObject(&out).Key("value").Raw(reads[0].value);
        coordinator_->AfterCommitWait(Coordinator::NewestSeen(reads), [this, from, out] {
          transport_->Reply(from, "read_ok", out);
        });
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
  coordinator_->CommitWrites(coordinator_->FreshTimestamp(), Isolation::kSnapshot,
                             {{key, std::move(value)}}, {}, {}, /*blind=*/true,
                             [this, from](Result<Timestamp> committed) {
                               if (!committed.ok()) return ReplyFailure(from, committed.status());
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
  const Timestamp snapshot = coordinator_->HoldSnapshot();
  auto finish = [this, snapshot, from](const ErrorReply* error) {
    coordinator_->ReleaseSnapshot(snapshot);
    if (error) return ReplyError(from, *error);
    transport_->Reply(from, "cas_ok", "");
  };
  coordinator_->ReadKeys(
      {key}, snapshot,
      [=, this, create = create.value_or(false)](Result<std::vector<ReadResult>> read) mutable {
        if (!read.ok()) {
          const ErrorReply error = ErrorOf(read.status());
          return finish(&error);
        }
        const std::vector<ReadResult>& reads = *read;
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
          return coordinator_->AfterCommitWait(Coordinator::NewestSeen(reads),
                                               [finish, refusal]() mutable { finish(&refusal); });
        }
        // Serializable whatever the node's level: the value compared
        // must still be the newest when the new one lands.
        coordinator_->CommitWrites(
            snapshot, Isolation::kSerializable, {{key, std::move(replacement)}}, {key}, {},
            /*blind=*/false, [this, finish, from, snapshot](Result<Timestamp> committed) {
              if (committed.ok()) return finish(nullptr);
              if (IsUnknownOutcome(committed.status())) {
                return coordinator_->ReleaseSnapshot(snapshot);  // no answer
              }
              const ErrorReply error = ErrorOf(committed.status());
              finish(&error);
            });
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
  const Timestamp snapshot = coordinator_->HoldSnapshot();
  const Isolation isolation = options_.isolation;
  auto release = [this, snapshot] { coordinator_->ReleaseSnapshot(snapshot); };
  coordinator_->ReadKeys(
      to_read, snapshot,
      [=, this, parsed = std::move(parsed)](Result<std::vector<ReadResult>> read) {
        if (!read.ok()) {
          release();
          return ReplyError(from, ErrorOf(read.status()));
        }
        std::vector<ReadResult>& reads = *read;
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
        coordinator_->CommitWrites(
            snapshot, isolation, std::move(writes),
            isolation == Isolation::kSerializable ? observed : std::set<std::string>{}, {},
            /*blind=*/false,
            [this, from, completed, release,
             newest_seen = Coordinator::NewestSeen(reads)](Result<Timestamp> committed) {
              release();
              if (!committed.ok()) return ReplyFailure(from, committed.status());
              std::string reply;
              JsonWriter::ContinuingObject(&reply).Key("txn").Raw(completed);
              // Read-only lists commit at once: they wait like reads.
              coordinator_->AfterCommitWait(
                  newest_seen, [this, from, reply] { transport_->Reply(from, "txn_ok", reply); });
            });
      });
}

}  // namespace strata::node
