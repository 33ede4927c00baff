// ClusterNode, client requests: the Maelstrom transaction API (txn_*) and
// workloads (read, write, cas, txn) over cluster::Coordinator, which runs
// them across the shards. See cluster/coordinator.h for how.
#include <algorithm>

#include "node/cluster_node.h"
#include "protocol/key_codec.h"
#include "protocol/limits.h"
#include "protocol/mvcc_messages.h"
#include "protocol/txn_messages.h"
#include "protocol/workload_messages.h"

namespace strata::node {

using cluster::Coordinator;
using protocol::Body;
using protocol::ErrorCode;
using protocol::ErrorReply;
using protocol::JsonWriter;

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

}  // namespace

void ClusterNode::ReplyFailure(const ReplyAddress& from, const Status& commit_failure) {
  if (!IsUnknownOutcome(commit_failure)) ReplyError(from, ErrorOf(commit_failure));
}

// --- transactions ------------------------------------------------------------

void ClusterNode::HandleTxnBegin(const Body& body, const ReplyAddress& from) {
  protocol::TxnBeginRequest req;
  if (auto err = ParseRequest(body, options_.isolation, &req)) return ReplyError(from, *err);
  Result<Coordinator::Begun> begun =
      coordinator_->Begin(req.isolation, req.read_only, req.read_timestamp);
  if (!begun.ok()) return ReplyError(from, ErrorOf(begun.status()));
  std::string out;
  JsonWriter::ContinuingObject(&out)
      .FieldUint("txn_id", begun->id)
      .FieldUint("start_timestamp", begun->start.value());
  transport_->Reply(from, "txn_begin_ok", out);
}

std::optional<uint64_t> ClusterNode::OpenTxnId(const Body& body, const ReplyAddress& from) {
  uint64_t id = 0;
  if (auto err = protocol::ParseTxnId(body, &id)) {
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
  protocol::TxnGetRequest req;
  if (auto err = ParseRequest(body, &req)) return ReplyError(from, *err);
  coordinator_->Get(*id, std::move(req.key), [this, from](Result<ReadResult> read) {
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
  protocol::TxnWriteRequest req;
  if (auto err = ParseRequest(body, is_delete, &req)) return ReplyError(from, *err);
  if (Status s = coordinator_->Write(*id, std::move(req.key), std::move(req.value)); !s.ok()) {
    return ReplyError(from, ErrorOf(s));
  }
  transport_->Reply(from, is_delete ? "txn_delete_ok" : "txn_put_ok", "");
}

void ClusterNode::HandleTxnScan(const Body& body, const ReplyAddress& from) {
  const std::optional<uint64_t> id = OpenTxnId(body, from);
  if (!id) return;
  protocol::MvccScanRequest req;
  if (auto err = protocol::ParseTxnScan(body, &req)) return ReplyError(from, *err);
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
  protocol::KvReadRequest req;
  if (auto err = ParseRequest(body, &req)) return ReplyError(from, *err);
  const Timestamp snapshot = coordinator_->HoldSnapshot();
  coordinator_->ReadKeys(
      {req.key}, snapshot,
      [this, from, key = req.key, snapshot](Result<std::vector<ReadResult>> read) {
        coordinator_->ReleaseSnapshot(snapshot);
        if (!read.ok()) return ReplyError(from, ErrorOf(read.status()));
        const std::vector<ReadResult>& reads = *read;
        // A value (or a delete) that only a commit not yet acknowledged
        // may have made visible: shown once that commit could be.
        if (!reads[0].found || reads[0].deleted) {
          return coordinator_->AfterCommitWait(
              Coordinator::NewestSeen(reads),
              [this, from, missing = protocol::KeyMissing(key)] { ReplyError(from, missing); });
        }
        std::string out;
        JsonWriter::ContinuingObject(&out).Key("value").Raw(reads[0].value);
        coordinator_->AfterCommitWait(Coordinator::NewestSeen(reads), [this, from, out] {
          transport_->Reply(from, "read_ok", out);
        });
      });
}

void ClusterNode::HandleKvWrite(const Body& body, const ReplyAddress& from) {
  protocol::KvWriteRequest req;
  if (auto err = ParseRequest(body, &req)) return ReplyError(from, *err);
  // A blind write read nothing, so the shard checks it against its own
  // present, not this snapshot: concurrent writes do not fail each other.
  // A copy of it delayed or resent is answered from the shard's finished
  // outcomes, or, if the shard restarted since it was sent, refused.
  coordinator_->CommitWrites(coordinator_->FreshTimestamp(), Isolation::kSnapshot,
                             {{std::move(req.key), std::move(req.value)}}, {}, {}, /*blind=*/true,
                             [this, from](Result<Timestamp> committed) {
                               if (!committed.ok()) return ReplyFailure(from, committed.status());
                               transport_->Reply(from, "write_ok", "");
                             });
}

void ClusterNode::HandleKvCas(const Body& body, const ReplyAddress& from) {
  protocol::KvCasRequest req;
  if (auto err = ParseRequest(body, &req)) return ReplyError(from, *err);
  const Timestamp snapshot = coordinator_->HoldSnapshot();
  auto finish = [this, snapshot, from](const ErrorReply* error) {
    coordinator_->ReleaseSnapshot(snapshot);
    if (error) return ReplyError(from, *error);
    transport_->Reply(from, "cas_ok", "");
  };
  const std::string key = req.key;
  coordinator_->ReadKeys(
      {key}, snapshot,
      [this, finish, from, snapshot, req = std::move(req)](Result<std::vector<ReadResult>> read) {
        if (!read.ok()) {
          const ErrorReply error = ErrorOf(read.status());
          return finish(&error);
        }
        const std::vector<ReadResult>& reads = *read;
        protocol::StoredValue current;
        if (reads[0].found && !reads[0].deleted) current = reads[0].value;
        if (auto refusal = protocol::CasRefusal(req, current)) {
          // The refusal reveals the value read: shown no earlier than a read.
          return coordinator_->AfterCommitWait(
              Coordinator::NewestSeen(reads),
              [finish, refusal = *refusal]() mutable { finish(&refusal); });
        }
        // Serializable whatever the node's level: the value compared
        // must still be the newest when the new one lands.
        coordinator_->CommitWrites(
            snapshot, Isolation::kSerializable, {{req.key, req.to}}, {req.key}, {},
            /*blind=*/false, [this, finish, snapshot](Result<Timestamp> committed) {
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
  protocol::TxnOpsRequest req;
  if (auto err = ParseRequest(body, &req)) return ReplyError(from, *err);
  const Timestamp snapshot = coordinator_->HoldSnapshot();
  const Isolation isolation = options_.isolation;
  auto release = [this, snapshot] { coordinator_->ReleaseSnapshot(snapshot); };
  std::vector<std::string> to_read = req.keys_to_read;
  coordinator_->ReadKeys(
      std::move(to_read), snapshot,
      [=, this, req = std::move(req)](Result<std::vector<ReadResult>> read) {
        if (!read.ok()) {
          release();
          return ReplyError(from, ErrorOf(read.status()));
        }
        std::vector<ReadResult>& reads = *read;
        std::map<std::string, protocol::StoredValue> at_snapshot;
        for (size_t i = 0; i < req.keys_to_read.size(); ++i) {
          protocol::StoredValue& value = at_snapshot[req.keys_to_read[i]];
          if (reads[i].found && !reads[i].deleted) value = std::move(reads[i].value);
        }
        protocol::TxnOpsOutcome outcome;
        if (auto err = protocol::RunTxnOps(
                req, [&](const std::string& key) { return Result(at_snapshot[key]); }, &outcome)) {
          release();
          return ReplyError(from, *err);
        }
        std::string reply;
        JsonWriter::ContinuingObject(&reply).Key("txn").Raw(outcome.completed);
        coordinator_->CommitWrites(
            snapshot, isolation, std::move(outcome.writes),
            isolation == Isolation::kSerializable ? std::move(outcome.observed)
                                                  : std::set<std::string>{},
            {}, /*blind=*/false,
            [this, from, reply, release,
             newest_seen = Coordinator::NewestSeen(reads)](Result<Timestamp> committed) {
              release();
              if (!committed.ok()) return ReplyFailure(from, committed.status());
              // Read-only lists commit at once: they wait like reads.
              coordinator_->AfterCommitWait(
                  newest_seen, [this, from, reply] { transport_->Reply(from, "txn_ok", reply); });
            });
      });
}

}  // namespace strata::node
