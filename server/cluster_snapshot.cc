#include "server/cluster_snapshot.h"

#include <string>
#include <utility>

#include "server/server_state.h"
#include "service/snapshot.h"

namespace strata::server {
namespace {

namespace pb = etcdserverpb;
using service::Reply;

// Keys read a message: a page of small keys is a few tens of kilobytes; a
// page of large values is cut by the shards to what one peer message carries.
constexpr size_t kKeysPerPage = 512;

// One stream. Never more than one thing under way: the snapshot being
// held or a page being read (the member's loop answers), or a message
// being written (gRPC answers), so its state needs no lock. It finishes
// only when neither the loop nor gRPC still owes it an answer.
class ClusterSnapshotReactor final : public grpc::ServerWriteReactor<pb::SnapshotResponse> {
 public:
  explicit ClusterSnapshotReactor(EtcdServer::Impl* s)
      : meter_(s->grpc_metrics->Find("/etcdserverpb.Maintenance/Snapshot",
                                     GrpcMetrics::Type::kServerStream)),
        s_(s),
        // A hint only (remaining_bytes): this member's share times the members.
        estimate_(s->store->GetStats().bytes * s->cluster->Members().size()) {
    s_->cluster->HoldSnapshot([this](Reply<int64_t> held) {
      if (!held.ok()) return Fail(ToGrpc(held.error()));
      revision_ = held.value();
      held_ = true;
      Send(encoder_.Header(service::kClusterSnapshotFormat, revision_, {},
                           s_->auth->EncodedState()));
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Fail(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream closed"));
    meter_.Sent();
    if (last_sent_) {
      meter_.Finished(grpc::StatusCode::OK);
      return Finish(grpc::Status::OK);
    }
    ReadPage();
  }

  void OnDone() override {
    if (held_) s_->cluster->ReleaseSnapshot(revision_);
    delete this;
  }

 private:
  void ReadPage() {
    s_->cluster->SnapshotPage(revision_, cursor_, kKeysPerPage, [this](Reply<ScanResult> page) {
      if (!page.ok()) return Fail(ToGrpc(page.error()));
      const ScanResult& read = page.value();
      if (read.items.empty() && read.more) {
        return Fail(grpc::Status(grpc::StatusCode::INTERNAL,
                                 "strata: a page of the cluster's snapshot came back empty"));
      }
      std::string chunk;
      for (const ScanItem& item : read.items) {
        const ExportedVersion version{item.timestamp.value(), item.version, false, item.value};
        chunk += encoder_.Key(item.key, {&version, 1}, revision_);
      }
      if (!read.items.empty()) cursor_ = read.items.back().key;
      if (!read.more) {
        // Nothing below the snapshot was read: restored members start
        // compacted at it.
        chunk += encoder_.End(revision_);
        last_sent_ = true;
      }
      Send(std::move(chunk));
    });
  }

  void Send(std::string chunk) {
    response_.Clear();
    s_->Header(revision_, response_.mutable_header());
    const uint64_t sent = encoder_.bytes();
    response_.set_remaining_bytes(last_sent_ || estimate_ <= sent ? 0 : estimate_ - sent);
    response_.set_blob(std::move(chunk));
    StartWrite(&response_);
  }

  void Fail(const grpc::Status& status) {
    meter_.Finished(status.error_code());
    Finish(status);
  }

  CallMeter meter_;
  EtcdServer::Impl* s_;
  const uint64_t estimate_;
  service::SnapshotEncoder encoder_;
  int64_t revision_ = 0;
  bool held_ = false;
  std::string cursor_;  // the last key sent
  bool last_sent_ = false;
  pb::SnapshotResponse response_;
};

}  // namespace

grpc::ServerWriteReactor<pb::SnapshotResponse>* StartClusterSnapshot(EtcdServer::Impl* s) {
  return new ClusterSnapshotReactor(s);
}

}  // namespace strata::server
