#include "server/etcd_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <utility>

#include "base/mutex.h"
#include "rpc.grpc.pb.h"
#include "server/auth_service.h"
#include "server/cluster_snapshot.h"
#include "server/dashboard.h"
#include "server/etcd_ids.h"
#include "server/proto_convert.h"
#include "server/refusal_log.h"
#include "server/server_metrics.h"
#include "server/server_state.h"
#include "server/shard_layout.h"
#include "server/shard_restore.h"
#include "server/strata_service.h"
#include "service/commit_pipeline.h"
#include "service/data_dir.h"
#include "service/kv_service.h"
#include "service/lease_journal.h"
#include "service/lease_table.h"
#include "service/snapshot.h"
#include "service/watch_hub.h"
#include "strata/mvcc_store.h"

namespace strata::server {

namespace pb = etcdserverpb;
using service::Reply;

namespace {

// The host of a "host:port" address, bare: an IPv6 host comes bracketed
// ("[::1]:2381"), sockets and certificates want it without.
std::string HostOf(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

// What a member's links to the other members present and serve, and the
// faults a test puts on them: peer TLS from its files, or made at start
// (--peer-auto-tls), or plain text; both cluster modes link alike.
struct PeerLinks {
  std::shared_ptr<grpc::ServerCredentials> served;      // null: plain text
  std::shared_ptr<grpc::ChannelCredentials> presented;  // null: plain text
  std::shared_ptr<PeerFaults> faults;                   // null: none
};

Result<PeerLinks> MakePeerLinks(const ServerOptions& options) {
  PeerLinks links;
  if (options.peer_tls.configured()) {
    auto served = MakeClientTlsCredentials(options.peer_tls);
    if (!served.ok()) return served.status();
    auto presented = MakePeerChannelCredentials(options.peer_tls);
    if (!presented.ok()) return presented.status();
    links.served = std::move(*served);
    links.presented = std::move(*presented);
  } else if (options.peer_auto_tls) {
    // The host other members reach this one at (its listen address; a
    // wildcard names nothing).
    std::string host = HostOf(options.listen_peer);
    if (host == "0.0.0.0" || host == "::") host.clear();
    auto made = MakePeerAutoTlsCredentials(options.name, host);
    if (!made.ok()) return made.status();
    links.served = std::move(made->served);
    links.presented = std::move(made->presented);
  }
  if (!options.peer_faults.empty()) {
    auto faults =
        PeerFaults::Parse(options.peer_faults, [log = options.log](std::string_view line) {
          if (log) log->Write(ops::LogLevel::kWarn, "peer-faults", line);
        });
    if (!faults.ok()) return faults.status();
    links.faults = std::move(*faults);
  }
  return links;
}

// One bidirectional stream's outgoing queue, drained one write at a time
// (gRPC allows one outstanding write per stream). Start* is never called
// with a lock held that a reaction takes.
template <typename Response>
class WriteQueue {
 public:
  enum class Pushed { kRefused, kQueued, kStartWrite };
  // Queues `r` (kQueued), or hands it back in *next when no write is in
  // flight (kStartWrite: the caller starts it). A `bounded` push is refused
  // when `max_count` responses or `max_bytes` bytes already wait. One lock
  // for the check and the push: the stream's writer and gRPC's completion
  // threads meet here, and each extra hold is a chance to sleep on it.
  Pushed Push(Response r, size_t bytes, bool bounded, size_t max_count, size_t max_bytes,
              Response* next) {
    MutexLock lock(mu_);
    if (!writing_) {
      writing_ = true;
      *next = std::move(r);
      return Pushed::kStartWrite;
    }
    if (bounded && (queue_.size() >= max_count || queued_bytes_ + bytes > max_bytes)) {
      return Pushed::kRefused;
    }
    queue_.push_back({std::move(r), bytes});
    queued_bytes_ += bytes;
    return Pushed::kQueued;
  }
  // After a write completed: true with *next if another must be written.
  bool Next(Response* next) {
    MutexLock lock(mu_);
    if (queue_.empty()) {
      writing_ = false;
      return false;
    }
    *next = std::move(queue_.front().response);
    queued_bytes_ -= queue_.front().bytes;
    queue_.pop_front();
    return true;
  }
  bool idle() const {
    MutexLock lock(mu_);
    return !writing_ && queue_.empty();
  }
  size_t queued() const {
    MutexLock lock(mu_);
    return queue_.size();
  }

 private:
  struct Queued {
    Response response;
    size_t bytes;
  };
  mutable Mutex mu_;
  bool writing_ STRATA_GUARDED_BY(mu_) = false;
  std::deque<Queued> queue_ STRATA_GUARDED_BY(mu_);
  size_t queued_bytes_ STRATA_GUARDED_BY(mu_) = 0;
};

}  // namespace

namespace {

using Impl = EtcdServer::Impl;

// The strata-min-revision metadata of a Range (service::RangeRequest::
// min_revision): 0 if absent.
Reply<int64_t> MinRevision(const grpc::CallbackServerContext& ctx) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find("strata-min-revision");
  if (it == metadata.end()) return int64_t{0};
  const std::string_view text(it->second.data(), it->second.size());
  int64_t revision = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), revision);
  if (error != std::errc() || end != text.data() + text.size() || revision < 0) {
    return service::ServiceError{
        service::ErrorCode::kInvalidArgument,
        "strata: strata-min-revision must be a revision (a number from 0)"};
  }
  return revision;
}

class KvImpl final : public pb::KV::CallbackService {
 public:
  explicit KvImpl(Impl* s) : s_(s) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx, const pb::RangeRequest* req,
                                  pb::RangeResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.KV/Range");
    if (!req->serializable() && s_->RefuseOnLearner(reactor)) return reactor;
    if (auto denied = s_->request_auth->Range(*ctx, *req)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    if (s_->kv_front) {
      service::RangeRequest request = FromProto(*req);
      Reply<int64_t> min_revision = MinRevision(*ctx);
      if (!min_revision.ok()) {
        reactor->Finish(ToGrpc(min_revision.error()));
        return reactor;
      }
      request.min_revision = min_revision.value();
      s_->kv_front->Range(
          std::move(request),
          [this, reactor, resp](Reply<service::RangeResponse> r) { Finish(reactor, r, resp); });
      return reactor;
    }
    auto r = s_->kv->Range(FromProto(*req));
    if (!r.ok()) {
      reactor->Finish(ToGrpc(r.error()));
      return reactor;
    }
    ToProto(r.value(), resp);
    s_->FillIdentity(resp);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const pb::PutRequest* req,
                                pb::PutResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.KV/Put");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (s_->TooLarge(*req)) {
      reactor->Finish(ToGrpc(service::etcd_errors::RequestTooLarge()));
      return reactor;
    }
    RequestAuth::LeaseCheck leases;
    if (auto denied = s_->request_auth->Put(*ctx, *req, &leases)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    AfterLeaseChecks<service::PutResponse>(
        std::move(leases), reactor, resp, [this, req](auto done) {
          if (s_->kv_front) return s_->kv_front->Put(FromProto(*req), std::move(done));
          s_->kv->Put(FromProto(*req), std::move(done));
        });
    return reactor;
  }

  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const pb::DeleteRangeRequest* req,
                                        pb::DeleteRangeResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.KV/DeleteRange");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (auto denied = s_->request_auth->DeleteRange(*ctx, *req)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    auto done = [this, reactor, resp](Reply<service::DeleteRangeResponse> r) {
      Finish(reactor, r, resp);
    };
    if (s_->kv_front) {
      s_->kv_front->DeleteRange(FromProto(*req), std::move(done));
    } else {
      s_->kv->DeleteRange(FromProto(*req), std::move(done));
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx, const pb::TxnRequest* req,
                                pb::TxnResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.KV/Txn");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (s_->TooLarge(*req)) {
      reactor->Finish(ToGrpc(service::etcd_errors::RequestTooLarge()));
      return reactor;
    }
    RequestAuth::LeaseCheck leases;
    if (auto denied = s_->request_auth->Txn(*ctx, *req, &leases)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    AfterLeaseChecks<service::TxnResponse>(
        std::move(leases), reactor, resp, [this, req](auto done) {
          if (s_->kv_front) return s_->kv_front->Txn(FromProto(*req), std::move(done));
          s_->kv->Txn(FromProto(*req), std::move(done));
        });
    return reactor;
  }

  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const pb::CompactionRequest* req,
                                    pb::CompactionResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.KV/Compact");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (auto denied = s_->request_auth->Authenticated(*ctx)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    auto done = [this, reactor, resp](Reply<service::CompactionResponse> r) {
      if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
      s_->Header(r.value().header.revision, resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    };
    if (s_->kv_front) {
      s_->kv_front->Compact({req->revision(), req->physical()}, std::move(done));
    } else {
      s_->kv->Compact({req->revision(), req->physical()}, std::move(done));
    }
    return reactor;
  }

 private:
  // Once the keys of the leases a write attaches to are allowed (at once
  // when there are none), runs the write (`run` given its answer's
  // handler) and answers with what it did.
  template <typename T, typename P, typename Run>
  void AfterLeaseChecks(RequestAuth::LeaseCheck leases, MeteredReactor* reactor, P* resp, Run run) {
    s_->CheckLeaseKeys(std::move(leases), [this, reactor, resp, run](RequestAuth::Denied denied) {
      if (denied) return reactor->Finish(ToGrpc(*denied));
      run(std::function<void(Reply<T>)>(
          [this, reactor, resp](Reply<T> r) { Finish(reactor, r, resp); }));
    });
  }
  template <typename T, typename P>
  void Finish(MeteredReactor* reactor, Reply<T>& r, P* resp) {
    if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
    ToProto(r.value(), resp);
    s_->FillIdentity(resp);
    reactor->Finish(grpc::Status::OK);
  }
  Impl* s_;
};

// A bidirectional stream refused before its first message (a learner's).
template <typename Request, typename Response>
class RefusedBidiReactor final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedBidiReactor(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// A bidirectional stream whose replies go out through a bounded queue, one
// write at a time; it finishes once the client stopped sending and every
// queued reply was written (or the client went away).
template <typename Request, typename Response>
class QueuedBidiReactor : public grpc::ServerBidiReactor<Request, Response> {
 public:
  // Replies queued for a client that does not read them, at most (by
  // count and by bytes; a bounded send past either is refused).
  static constexpr size_t kMaxQueued = 1024;
  static constexpr size_t kMaxQueuedBytes = 4 << 20;
  // Requests are not read while this many replies wait. Some replies are
  // queued past the bound above (created, canceled, progress: the client
  // must see them), so a client that sends requests and never reads would
  // grow the queue without end; HTTP/2 flow control holds it back instead.
  static constexpr size_t kPauseReadingAt = 4 * kMaxQueued;

 protected:
  explicit QueuedBidiReactor(GrpcMetrics::Method* method) : meter_(method) {}
  // Called by the derived class once it is fully built.
  void Begin() { this->StartRead(&request_); }
  // Queues `r` unless `bounded` and the queue is full (then false).
  bool Send(Response r, bool bounded, size_t bytes = 0) {
    using Pushed = typename WriteQueue<Response>::Pushed;
    switch (queue_.Push(std::move(r), bytes, bounded, kMaxQueued, kMaxQueuedBytes, &writing_)) {
      case Pushed::kRefused:
        return false;
      case Pushed::kStartWrite:
        this->StartWrite(&writing_);
        return true;
      case Pushed::kQueued:
        return true;
    }
    return true;
  }
  // An answer to be sent later, from another thread: the stream does not
  // finish (and the reactor is not deleted) while one is held.
  void Hold() {
    MutexLock lock(mu_);
    ++held_;
  }
  void Release() {
    MutexLock lock(mu_);
    --held_;
    MaybeFinishLocked();
  }
  virtual void OnRequest(const Request& request) = 0;
  // The client will send nothing more (or is gone).
  virtual void OnClientDone() {}
  // Everything queued was written.
  virtual void OnDrained() {}

 private:
  void OnReadDone(bool ok) final {
    if (!ok) {
      OnClientDone();
      MutexLock lock(mu_);
      reading_done_ = true;
      MaybeFinishLocked();
      return;
    }
    meter_.Received();
    OnRequest(request_);
    {
      MutexLock lock(mu_);
      if (queue_.queued() >= kPauseReadingAt) {
        read_paused_ = true;  // OnWriteDone reads on once the queue drains
        return;
      }
    }
    this->StartRead(&request_);
  }
  void MaybeResumeReading() {
    {
      MutexLock lock(mu_);
      if (!read_paused_ || reading_done_ || queue_.queued() > kMaxQueued / 2) return;
      read_paused_ = false;
    }
    this->StartRead(&request_);
  }
  // The client went away. A read in flight fails and OnReadDone says so;
  // while reading is paused there is none, so it is said here.
  void OnCancel() final {
    {
      MutexLock lock(mu_);
      if (!read_paused_ || reading_done_) return;
      reading_done_ = true;
    }
    OnClientDone();
    MutexLock lock(mu_);
    MaybeFinishLocked();
  }
  void OnWriteDone(bool ok) final {
    if (ok) meter_.Sent();
    if (ok) MaybeResumeReading();
    if (ok && queue_.Next(&writing_)) {
      this->StartWrite(&writing_);
      return;
    }
    if (ok) OnDrained();
    if (!ok) {
      while (queue_.Next(&writing_)) {  // the client is gone: drop what waits
      }
    }
    MutexLock lock(mu_);
    MaybeFinishLocked();
  }
  void OnDone() final { delete this; }
  void MaybeFinishLocked() STRATA_REQUIRES(mu_) {
    if (reading_done_ && !finished_ && held_ == 0 && queue_.idle()) {
      finished_ = true;
      meter_.Finished(grpc::StatusCode::OK);
      this->Finish(grpc::Status::OK);
    }
  }

  CallMeter meter_;
  Request request_;
  Response writing_;
  WriteQueue<Response> queue_;
  Mutex mu_;
  bool reading_done_ STRATA_GUARDED_BY(mu_) = false;
  bool read_paused_ STRATA_GUARDED_BY(mu_) = false;  // no read outstanding until the queue drains
  bool finished_ STRATA_GUARDED_BY(mu_) = false;
  int held_ STRATA_GUARDED_BY(mu_) = 0;  // answers still to come (Hold)
};

// One Watch stream: requests go to the hub, the hub's responses come back
// through the bounded queue (past it the hub stops offering events and the
// watchers catch up from history once it drains).
class WatchReactor final : public QueuedBidiReactor<pb::WatchRequest, pb::WatchResponse>,
                           public service::WatchSink {
 public:
  // The stream's user is read once, at its start (as etcd does).
  WatchReactor(Impl* s, const grpc::CallbackServerContext& ctx)
      : QueuedBidiReactor(
            s->grpc_metrics->Find("/etcdserverpb.Watch/Watch", GrpcMetrics::Type::kBidiStream)),
        s_(s),
        user_(s->request_auth->User(ctx)) {
    Begin();
  }

  bool Offer(service::WatchResponse r, bool must) override {
    if (r.canceled && r.created && r.cancel_reason.rfind("strata: too many watchers", 0) == 0) {
      Warn("watch-limit", "refused a watch (\"" + r.cancel_reason +
                              "\"): at most 10,000 watchers a stream and 100,000 in all; "
                              "watch a prefix or range instead of many single keys");
    }
    pb::WatchResponse p;
    ToProto(s_->identity, r, &p);
    const size_t bytes = p.ByteSizeLong();
    if (Send(std::move(p), /*bounded=*/!must, bytes)) return true;
    if (!refused_.exchange(true)) {
      Warn("watch-slow-reader",
           "a Watch client reads its events more slowly than they come: its stream's queue is "
           "full, so its watchers pause and catch up from history once it drains (nothing is "
           "lost unless compaction passes them); check that client's load and network");
    }
    return false;
  }

 private:
  void OnRequest(const pb::WatchRequest& request) override {
    switch (request.request_union_case()) {
      case pb::WatchRequest::kCreateRequest:
        if (auto denied = Denied(request.create_request())) {
          Refuse(*denied);
          break;
        }
        s_->watches->Create(this, FromProto(request.create_request()));
        break;
      case pb::WatchRequest::kCancelRequest:
        s_->watches->Cancel(this, request.cancel_request().watch_id());
        break;
      case pb::WatchRequest::kProgressRequest:
        s_->watches->RequestProgress(this);
        break;
      default:
        break;
    }
  }
  void OnClientDone() override { s_->watches->RemoveStream(this); }

  std::optional<service::ServiceError> Denied(const pb::WatchCreateRequest& create) const {
    if (!s_->request_auth->enabled()) return std::nullopt;
    if (!user_.ok()) return user_.error();
    return s_->request_auth->Keys(user_.value(), service::Access::kRead, create.key(),
                                  create.range_end());
  }
  // etcd's answer to a watch it will not create: created and canceled at
  // once, id -1, the reason the refusal as Go prints a gRPC error.
  void Refuse(const service::ServiceError& why) {
    pb::WatchResponse r;
    s_->Header(s_->CurrentRevision(), r.mutable_header());
    r.set_watch_id(-1);
    r.set_created(true);
    r.set_canceled(true);
    r.set_cancel_reason(GoGrpcErrorText(why));
    Send(std::move(r), /*bounded=*/false);
  }
  // Watchers held back by a full queue go on now, not at the hub's next tick.
  void OnDrained() override {
    if (refused_.exchange(false)) s_->watches->Nudge(this);
  }

  void Warn(const char* kind, const std::string& line) const {
    if (s_->options.log) s_->options.log->Throttled(ops::LogLevel::kWarn, "watch", kind, line);
  }

  Impl* s_;
  const Reply<std::string> user_;
  std::atomic<bool> refused_{false};
};

class WatchImpl final : public pb::Watch::CallbackService {
 public:
  explicit WatchImpl(Impl* s) : s_(s) {}
  grpc::ServerBidiReactor<pb::WatchRequest, pb::WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx) override {
    if (s_->IsLearner()) {
      return new RefusedBidiReactor<pb::WatchRequest, pb::WatchResponse>(
          ToGrpc(service::etcd_errors::NotSupportedForLearner()));
    }
    return new WatchReactor(s_, *ctx);
  }

 private:
  Impl* s_;
};

class KeepAliveReactor final
    : public QueuedBidiReactor<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse> {
 public:
  explicit KeepAliveReactor(Impl* s)
      : QueuedBidiReactor(s->grpc_metrics->Find("/etcdserverpb.Lease/LeaseKeepAlive",
                                                GrpcMetrics::Type::kBidiStream)),
        s_(s) {
    Begin();
  }

 private:
  void OnRequest(const pb::LeaseKeepAliveRequest& request) override {
    if (s_->lease_front) {
      // Answered once the lease's home (or the leader) renewed it.
      const int64_t id = request.id();
      Hold();
      s_->lease_front->LeaseKeepAlive(id, [this, id](Reply<int64_t> ttl) {
        // The lease's home did not answer: no answer, rather than TTL 0,
        // which a client takes as "expired"; it asks again.
        if (ttl.ok()) Answer(id, ttl.value());
        Release();
      });
      return;
    }
    // etcd answers an unknown lease with TTL 0, not an error.
    Answer(request.id(), s_->leases->KeepAlive(request.id()).value_or(0));
  }
  void Answer(int64_t id, int64_t ttl) {
    pb::LeaseKeepAliveResponse r;
    r.set_id(id);
    r.set_ttl(ttl);
    s_->Header(s_->CurrentRevision(), r.mutable_header());
    // A client that sends keep-alives without reading the answers gets no
    // more answers past the bound (its leases are renewed all the same).
    Send(std::move(r), /*bounded=*/true);
  }

  Impl* s_;
};

class LeaseImpl final : public pb::Lease::CallbackService {
 public:
  explicit LeaseImpl(Impl* s) : s_(s) {}

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext*,
                                       const pb::LeaseGrantRequest* req,
                                       pb::LeaseGrantResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Lease/LeaseGrant");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (s_->quota->alarmed()) {
      reactor->Finish(ToGrpc(service::etcd_errors::NoSpace()));
      return reactor;
    }
    auto done = [this, reactor, resp](Reply<service::LeaseGrantResult> r) {
      if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
      resp->set_id(r.value().id);
      resp->set_ttl(r.value().ttl);
      s_->Header(r.value().revision, resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    };
    if (s_->lease_front) {
      s_->lease_front->LeaseGrant(req->id(), req->ttl(), std::move(done));
    } else {
      s_->leases->Grant(req->id(), req->ttl(), std::move(done));
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const pb::LeaseRevokeRequest* req,
                                        pb::LeaseRevokeResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Lease/LeaseRevoke");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    RequestAuth::LeaseCheck leases;
    if (auto denied = s_->request_auth->LeaseRevoke(*ctx, req->id(), &leases)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    s_->CheckLeaseKeys(std::move(leases), [this, reactor, req, resp](RequestAuth::Denied denied) {
      if (denied) return reactor->Finish(ToGrpc(*denied));
      auto done = [this, reactor, resp](Reply<int64_t> r) {
        if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
        s_->Header(r.value(), resp->mutable_header());
        reactor->Finish(grpc::Status::OK);
      };
      if (s_->lease_front) {
        s_->lease_front->LeaseRevoke(req->id(), std::move(done));
      } else {
        s_->leases->Revoke(req->id(), std::move(done));
      }
    });
    return reactor;
  }

  grpc::ServerBidiReactor<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>* LeaseKeepAlive(
      grpc::CallbackServerContext*) override {
    if (s_->IsLearner()) {
      return new RefusedBidiReactor<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>(
          ToGrpc(service::etcd_errors::NotSupportedForLearner()));
    }
    return new KeepAliveReactor(s_);
  }

  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext*,
                                            const pb::LeaseTimeToLiveRequest* req,
                                            pb::LeaseTimeToLiveResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Lease/LeaseTimeToLive");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    auto answer = [this, reactor, resp](Reply<service::LeaseTimeToLiveResult> r) {
      if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
      auto& t = r.value();
      resp->set_id(t.id);
      resp->set_ttl(t.ttl);
      resp->set_grantedttl(t.granted_ttl);
      for (auto& k : t.keys) resp->add_keys(std::move(k));
      s_->Header(s_->CurrentRevision(), resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    };
    if (s_->lease_front) {
      s_->lease_front->LeaseTimeToLive(req->id(), req->keys(), std::move(answer));
    } else {
      answer(s_->leases->TimeToLive(req->id(), req->keys()));
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext*, const pb::LeaseLeasesRequest*,
                                        pb::LeaseLeasesResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Lease/LeaseLeases");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    auto answer = [this, reactor, resp](Reply<std::vector<int64_t>> r) {
      if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
      for (int64_t id : r.value()) resp->add_leases()->set_id(id);
      s_->Header(s_->CurrentRevision(), resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    };
    if (s_->lease_front) {
      s_->lease_front->LeaseLeases(std::move(answer));
      return reactor;
    }
    // (Not through `answer`: GCC 12 then warns of an uninitialized Reply.)
    for (int64_t id : s_->leases->Leases()) resp->add_leases()->set_id(id);
    s_->Header(s_->CurrentRevision(), resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Impl* s_;
};

// Maintenance.Snapshot: the store at the current revision, a chunk per
// write (the next chunk is produced when the client took the last one, so a
// slow reader holds one chunk, not the store). One node's store, or a
// replicated member's own copy (taken on its loop, so Start may come
// later, from another thread).
class SnapshotReactor final : public grpc::ServerWriteReactor<pb::SnapshotResponse> {
 public:
  static constexpr size_t kChunkBytes = 1 << 20;

  explicit SnapshotReactor(Impl* s)
      : meter_(s->grpc_metrics->Find("/etcdserverpb.Maintenance/Snapshot",
                                     GrpcMetrics::Type::kServerStream)),
        s_(s) {}

  // One node's store, with its users and roles.
  void StartOneNode() {
    writer_.emplace(s_->store, s_->leases->Granted(), s_->auth->EncodedState(),
                    s_->kv->current_revision(),
                    [kv = s_->kv.get()] { return kv->compact_revision(); });
    estimate_ = s_->store->GetStats().bytes;
    WriteNext();
  }
  // A replicated member's copy (its engine kept alive by the stream).
  void StartReplica(Reply<ReplicatedFront::SnapshotSource> source) {
    if (!source.ok()) {
      meter_.Finished(grpc::StatusCode::UNAVAILABLE);
      return Finish(ToGrpc(source.error()));
    }
    engine_ = std::move(source.value().store);
    // Users and roles as this member applied them.
    writer_.emplace(engine_.get(), std::move(source.value().leases), s_->auth->EncodedState(),
                    source.value().revision,
                    [front = s_->replicated.get()] { return front->compact_revision(); });
    estimate_ = engine_->GetStats().bytes;
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      meter_.Finished(grpc::StatusCode::CANCELLED);
      return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream closed"));
    }
    meter_.Sent();
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    std::string chunk = writer_->Next(kChunkBytes);
    if (chunk.empty()) {
      meter_.Finished(grpc::StatusCode::OK);
      return Finish(grpc::Status::OK);
    }
    response_.Clear();
    s_->Header(writer_->revision(), response_.mutable_header());
    const uint64_t sent = writer_->bytes_written();
    response_.set_remaining_bytes(estimate_ > sent ? estimate_ - sent : 0);
    response_.set_blob(std::move(chunk));
    StartWrite(&response_);
  }
  CallMeter meter_;
  Impl* s_;
  std::shared_ptr<const MvccStore> engine_;  // a replica's, alive while streamed
  std::optional<service::SnapshotWriter> writer_;
  uint64_t estimate_ = 0;  // the store's bytes: remaining_bytes is a hint only
  pb::SnapshotResponse response_;
};

// A server stream refused before its first message.
template <typename Response>
class RefusedWriteReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWriteReactor(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

class MaintenanceImpl final : public pb::Maintenance::CallbackService {
 public:
  explicit MaintenanceImpl(Impl* s) : s_(s) {}

  // etcd: Snapshot, Hash, HashKV and Defragment are for admins.
  grpc::ServerWriteReactor<pb::SnapshotResponse>* Snapshot(grpc::CallbackServerContext* ctx,
                                                           const pb::SnapshotRequest*) override {
    if (auto denied = s_->request_auth->Admin(*ctx)) {
      return new RefusedWriteReactor<pb::SnapshotResponse>(ToGrpc(*denied));
    }
    if (s_->IsLearner()) {
      return new RefusedWriteReactor<pb::SnapshotResponse>(
          ToGrpc(service::etcd_errors::NotSupportedForLearner()));
    }
    if (s_->cluster) return StartClusterSnapshot(s_);
    auto* reactor = new SnapshotReactor(s_);
    if (s_->replicated) {
      s_->replicated->Snapshot(
          [reactor](auto source) { reactor->StartReplica(std::move(source)); });
    } else {
      reactor->StartOneNode();
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext*, const pb::StatusRequest*,
                                   pb::StatusResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Maintenance/Status");
    const auto stats = s_->replicated ? s_->replicated->Figures().store : s_->store->GetStats();
    const int64_t revision = s_->CurrentRevision();
    s_->Header(revision, resp->mutable_header());
    resp->set_version(s_->options.etcd_version);
    resp->set_dbsize(static_cast<int64_t>(stats.memory_bytes));
    resp->set_dbsizeinuse(static_cast<int64_t>(stats.bytes));
    if (s_->replicated) {
      // Raft's own figures: the leader (0 if none is known), the term and
      // the index applied here.
      const auto raft = s_->replicated->Stats();
      resp->set_leader(raft.leader);
      resp->set_islearner(raft.learner);
      resp->set_raftindex(raft.applied);
      resp->set_raftterm(raft.term);
      resp->set_raftappliedindex(raft.applied);
      if (const std::string why = s_->replicated->Unhealthy(); !why.empty()) resp->add_errors(why);
    } else {
      resp->set_leader(s_->identity.member_id);
      resp->set_raftindex(static_cast<uint64_t>(revision));
      resp->set_raftterm(s_->identity.raft_term);
      resp->set_raftappliedindex(static_cast<uint64_t>(revision));
    }
    if (s_->durable) {
      auto health = s_->durable->health();
      if (!health.ok()) resp->add_errors(std::string(health.message()));
    }
    if (s_->quota->alarmed()) {
      resp->add_errors("memberID:" + std::to_string(s_->identity.member_id) + " alarm:NOSPACE ");
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Only NOSPACE exists on one node (CORRUPT needs peers to compare with).
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext*, const pb::AlarmRequest* req,
                                  pb::AlarmResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Maintenance/Alarm");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    const bool ours = req->memberid() == 0 || req->memberid() == s_->identity.member_id;
    const bool nospace = req->alarm() == pb::NONE || req->alarm() == pb::NOSPACE;
    // As etcd: GET lists the raised alarms, ACTIVATE the one raised,
    // DEACTIVATE the ones it cleared.
    bool listed = false;
    switch (req->action()) {
      case pb::AlarmRequest::ACTIVATE:
        if (ours && req->alarm() == pb::NOSPACE) {
          s_->quota->Raise();
          listed = true;
        }
        break;
      case pb::AlarmRequest::DEACTIVATE:
        if (ours && nospace && s_->quota->alarmed()) {
          s_->quota->Disarm();
          listed = true;
        }
        break;
      default:
        listed = s_->quota->alarmed();
        break;
    }
    if (listed) {
      auto* a = resp->add_alarms();
      a->set_memberid(s_->identity.member_id);
      a->set_alarm(pb::NOSPACE);
    }
    s_->Header(s_->CurrentRevision(), resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* ctx, const pb::HashKVRequest* req,
                                   pb::HashKVResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Maintenance/HashKV");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (auto denied = s_->request_auth->Admin(*ctx)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    if (s_->cluster) {
      s_->cluster->HashKV(req->revision(),
                          [this, reactor, resp](Reply<ClusterFront::HashResult> h) {
                            if (!h.ok()) return reactor->Finish(ToGrpc(h.error()));
                            s_->Header(h.value().revision, resp->mutable_header());
                            resp->set_hash(h.value().hash);
                            resp->set_compact_revision(h.value().compact_revision);
                            reactor->Finish(grpc::Status::OK);
                          });
      return reactor;
    }
    if (s_->replicated) {
      auto h = s_->replicated->HashKV(req->revision());
      if (!h.ok()) {
        reactor->Finish(ToGrpc(h.error()));
        return reactor;
      }
      s_->Header(h.value().revision, resp->mutable_header());
      resp->set_hash(h.value().hash);
      resp->set_compact_revision(h.value().compact_revision);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    auto h = s_->kv->HashKV(req->revision());
    if (!h.ok()) {
      reactor->Finish(ToGrpc(h.error()));
      return reactor;
    }
    s_->Header(s_->CurrentRevision(), resp->mutable_header());
    resp->set_hash(h.value());
    resp->set_compact_revision(std::max<int64_t>(0, s_->kv->compact_revision()));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* ctx, const pb::HashRequest*,
                                 pb::HashResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Maintenance/Hash");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (auto denied = s_->request_auth->Admin(*ctx)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    if (s_->cluster) {
      s_->cluster->HashKV(0, [this, reactor, resp](Reply<ClusterFront::HashResult> h) {
        if (!h.ok()) return reactor->Finish(ToGrpc(h.error()));
        s_->Header(h.value().revision, resp->mutable_header());
        resp->set_hash(h.value().hash);
        reactor->Finish(grpc::Status::OK);
      });
      return reactor;
    }
    if (s_->replicated) {
      auto h = s_->replicated->HashKV(0);
      if (!h.ok()) {
        reactor->Finish(ToGrpc(h.error()));
        return reactor;
      }
      s_->Header(h.value().revision, resp->mutable_header());
      resp->set_hash(h.value().hash);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    auto h = s_->kv->HashKV(0);
    if (!h.ok()) {
      reactor->Finish(ToGrpc(h.error()));
      return reactor;
    }
    s_->Header(s_->CurrentRevision(), resp->mutable_header());
    resp->set_hash(h.value());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Only a replicated cluster has a leader to move (as etcd: sent to the
  // leader, answered once the target leads).
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* ctx,
                                       const pb::MoveLeaderRequest* req,
                                       pb::MoveLeaderResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Maintenance/MoveLeader");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (auto denied = s_->request_auth->Admin(*ctx)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    if (!s_->replicated) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                   "strata: /etcdserverpb.Maintenance/MoveLeader needs a "
                                   "replicated cluster (--cluster-mode replicated)"));
      return reactor;
    }
    s_->replicated->MoveLeader(req->targetid(),
                               [this, reactor, resp](std::optional<service::ServiceError> error) {
                                 if (error) return reactor->Finish(ToGrpc(*error));
                                 s_->Header(s_->CurrentRevision(), resp->mutable_header());
                                 reactor->Finish(grpc::Status::OK);
                               });
    return reactor;
  }

  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* ctx,
                                       const pb::DefragmentRequest*,
                                       pb::DefragmentResponse* resp) override {
    // Nothing to defragment: the engine frees space as it compacts.
    auto* reactor = s_->Reactor("/etcdserverpb.Maintenance/Defragment");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (auto denied = s_->request_auth->Admin(*ctx)) {
      reactor->Finish(ToGrpc(*denied));
      return reactor;
    }
    s_->Header(s_->CurrentRevision(), resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Impl* s_;
};

class ClusterImpl final : public pb::Cluster::CallbackService {
 public:
  explicit ClusterImpl(Impl* s) : s_(s) {}

  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext*, const pb::MemberListRequest*,
                                       pb::MemberListResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Cluster/MemberList");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (s_->replicated) {
      s_->replicated->Members(Listed(reactor, resp->mutable_header(), resp->mutable_members()));
      return reactor;
    }
    s_->Header(s_->CurrentRevision(), resp->mutable_header());
    if (s_->cluster) {
      // A sharded cluster's members (server/cluster_nodes.h): ids as etcd
      // derives them, client URLs as each last told this one (none yet:
      // shown as etcd shows a member that has not published them).
      for (const MemberInfo& member : s_->cluster->Members()) Fill(member, resp->add_members());
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    auto* m = resp->add_members();
    m->set_id(s_->identity.member_id);
    m->set_name(s_->options.name);
    for (const auto& u : s_->options.peer_urls) m->add_peerurls(u);
    for (const auto& u : s_->options.advertise_client_urls) m->add_clienturls(u);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Membership changes: a replicated cluster's, through Raft (one member
  // at a time, as etcd); a sharded cluster's with replicated shards,
  // through its member list (server/cluster_nodes.h): a member added holds
  // nothing until replicas move onto it, and leaves once it holds none.
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* ctx,
                                      const pb::MemberAddRequest* req,
                                      pb::MemberAddResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Cluster/MemberAdd");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (!Changeable(ctx, reactor, /*sharded_too=*/true)) return reactor;
    if (req->peerurls_size() != 1) {
      reactor->Finish(ToGrpc(service::ServiceError{
          service::ErrorCode::kInvalidArgument,
          req->peerurls_size() == 0
              ? "etcdserver: given member URLs are invalid"
              : "strata: a member has one peer URL (its id derives from it)"}));
      return reactor;
    }
    MemberChange change;
    change.kind = req->islearner() ? MemberChange::Kind::kAddLearner : MemberChange::Kind::kAdd;
    change.peer_url = req->peerurls(0);
    const std::string url = change.peer_url;
    auto added = [this, reactor, resp, url](service::Reply<std::vector<MemberInfo>> listed) {
      if (!listed.ok()) return reactor->Finish(ToGrpc(listed.error()));
      for (const auto& member : listed.value()) {
        if (member.peer_url == url) Fill(member, resp->mutable_member());
        Fill(member, resp->add_members());
      }
      s_->Header(s_->CurrentRevision(), resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    };
    if (s_->cluster) {
      s_->cluster->AddMember(url, req->islearner(), std::move(added));
      return reactor;
    }
    s_->replicated->ChangeMembers(std::move(change), std::move(added));
    return reactor;
  }

  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* ctx,
                                         const pb::MemberRemoveRequest* req,
                                         pb::MemberRemoveResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Cluster/MemberRemove");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (!Changeable(ctx, reactor, /*sharded_too=*/true)) return reactor;
    auto listed = Listed(reactor, resp->mutable_header(), resp->mutable_members());
    if (s_->cluster) {
      s_->cluster->RemoveMember(req->id(), std::move(listed));
      return reactor;
    }
    s_->replicated->ChangeMembers({MemberChange::Kind::kRemove, req->id(), ""}, std::move(listed));
    return reactor;
  }

  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* ctx,
                                          const pb::MemberPromoteRequest* req,
                                          pb::MemberPromoteResponse* resp) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Cluster/MemberPromote");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    if (!Changeable(ctx, reactor, /*sharded_too=*/false)) return reactor;
    s_->replicated->ChangeMembers({MemberChange::Kind::kPromote, req->id(), ""},
                                  Listed(reactor, resp->mutable_header(), resp->mutable_members()));
    return reactor;
  }

  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext*,
                                         const pb::MemberUpdateRequest*,
                                         pb::MemberUpdateResponse*) override {
    auto* reactor = s_->Reactor("/etcdserverpb.Cluster/MemberUpdate");
    if (s_->RefuseOnLearner(reactor)) return reactor;
    reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                 "strata: a member's peer URL cannot change (its member id derives "
                                 "from it): remove the member and add it with the new URL"));
    return reactor;
  }

 private:
  // Whether a membership change may go on; if not, `reactor` is answered.
  // A sharded cluster takes MemberAdd and MemberRemove (`sharded_too`).
  bool Changeable(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                  bool sharded_too) {
    if (auto denied = s_->request_auth->Admin(*ctx)) {
      reactor->Finish(ToGrpc(*denied));
      return false;
    }
    if (s_->replicated || (s_->cluster && sharded_too)) return true;
    reactor->Finish(grpc::Status(
        grpc::StatusCode::UNIMPLEMENTED,
        s_->cluster ? "strata: a sharded cluster's members hold no learners to promote (a member "
                      "added holds replicas once they move onto it: strata-ctl shard balance)"
                    : "strata: membership changes need a cluster (--initial-cluster); one "
                      "node's member is fixed"));
    return false;
  }

  static void Fill(const MemberInfo& member, pb::Member* out) {
    out->set_id(member.id);
    out->set_name(member.name);
    if (!member.peer_url.empty()) out->add_peerurls(member.peer_url);
    for (const auto& url : member.client_urls) out->add_clienturls(url);
    out->set_islearner(member.learner);
  }

  // Answers `reactor` with the members listed, or the error.
  ReplicatedFront::MembersDone Listed(grpc::ServerUnaryReactor* reactor, pb::ResponseHeader* header,
                                      google::protobuf::RepeatedPtrField<pb::Member>* out) {
    return [this, reactor, header, out](service::Reply<std::vector<MemberInfo>> listed) {
      if (!listed.ok()) return reactor->Finish(ToGrpc(listed.error()));
      for (const auto& member : listed.value()) Fill(member, out->Add());
      s_->Header(s_->CurrentRevision(), header);
      reactor->Finish(grpc::Status::OK);
    };
  }

  Impl* s_;
};

// Whether a sharded member's own store holds etcd's keys (tag 0x01): its
// shard's, kept without replicas.
bool HoldsOwnKeys(const MvccStore& store) {
  Result<ScanResult> held =
      store.Scan(KeyRange::WithPrefix(std::string(1, '\x01')), Timestamp::Max(), 1);
  return held.ok() && !held->items.empty();
}

// Raft's election timeout in its ticks (one a heartbeat interval), as
// etcd's flags give them; both Raft modes use it.
int ElectionTicks(const ServerOptions& options) {
  return static_cast<int>(options.election_timeout_ms / options.heartbeat_interval_ms);
}

// The Raft modes' lines for the operator, at `level` (null without a log).
std::function<void(const std::string&)> RaftLog(const ServerOptions& options, ops::LogLevel level) {
  if (!options.log) return nullptr;
  return [log = options.log, level](const std::string& line) { log->Write(level, "raft", line); };
}

}  // namespace

Result<std::unique_ptr<EtcdServer>> EtcdServer::Start(const ServerOptions& options) {
  // TLS first: a wrong flag stops the server before it touches the data.
  std::shared_ptr<grpc::ServerCredentials> tls;
  for (const auto& l : options.listen) {
    if (!l.tls || tls) continue;
    auto made = MakeClientTlsCredentials(options.client_tls);
    if (!made.ok()) return made.status();
    tls = std::move(made.value());
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  Impl* s = impl.get();

  StoreOptions engine;
  // etcd bounds keys only by the request size.
  engine.max_key_bytes = options.max_request_bytes;
  engine.max_value_bytes = options.max_request_bytes;
  std::optional<service::DurabilitySource> log;
  if (options.in_memory) {
    impl->ephemeral = std::make_unique<MvccStore>(engine);
    impl->store = impl->ephemeral.get();
  } else {
    if (options.data_dir.empty()) {
      return Status::InvalidArgument("a --data-dir is needed unless --in-memory");
    }
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) {
      return Status::Unavailable("cannot create " + options.data_dir + ": " + ec.message());
    }
    StoreOpenOptions open;
    open.engine = engine;
    open.durability.sync = options.sync;
    open.durability.batch_delay = std::chrono::microseconds(options.sync_delay_us);
    open.durability.wait_for_durability = false;
    open.durability.checkpoint_after_log_bytes = options.checkpoint_log_bytes;
    // Recovery and checkpoints say what they do (a long replay at start
    // would otherwise look like a hang).
    if (options.log) {
      open.durability.progress = [log = options.log](std::string_view line) {
        log->Info("storage", line);
      };
    }
    open.durability.on_durable = [s] {
      if (auto* p = s->wake_target.load()) p->Wake();
      if (auto* c = s->cluster_wake.load()) c->NotifyDurable();
    };
    auto store = Store::Open(service::KvStoreDir(options.data_dir), open);
    if (!store.ok()) return store.status();
    impl->durable = std::move(store.value());
    impl->store = &impl->durable->mvcc();
    Store* d = impl->durable.get();
    log = service::DurabilitySource{[d] { return d->durable_lsn(); },
                                    [d]() -> std::optional<std::string> {
                                      auto h = d->health();
                                      if (h.ok()) return std::nullopt;
                                      return std::string(h.message());
                                    }};
    StoreOpenOptions lease_open;
    lease_open.durability.sync = options.sync;
    lease_open.durability.progress = open.durability.progress;
    lease_open.durability.checkpoint_after_log_bytes = uint64_t{16} << 20;
    auto journal =
        service::StoreLeaseJournal::Open(service::LeaseStoreDir(options.data_dir), lease_open);
    if (!journal.ok()) return journal.status();
    impl->lease_journal = std::move(journal.value());
    StoreOpenOptions auth_open;
    auth_open.durability.progress = open.durability.progress;
    auto auth_journal =
        service::StoreAuthJournal::Open(service::AuthStoreDir(options.data_dir), auth_open);
    if (!auth_journal.ok()) return auth_journal.status();
    impl->auth_journal = std::move(auth_journal.value());
  }
  // A member of a cluster keeps its users and roles in the cluster, with a
  // copy in data/auth (server/cluster_auth.h).
  service::AuthJournal* auth_journal = impl->auth_journal.get();
  if (!options.cluster_members.empty()) {
    impl->cluster_auth_journal = std::make_unique<ClusterAuthJournal>(impl->auth_journal.get());
    auth_journal = impl->cluster_auth_journal.get();
  }
  auto auth = service::AuthStore::Open(auth_journal);
  if (!auth.ok()) return auth.status();
  impl->auth = std::move(auth.value());

  // A member of a cluster serves its clients from the cluster; the one-node
  // services are built over an empty store of their own (see Impl).
  if (!options.cluster_members.empty()) impl->unserved = std::make_unique<MvccStore>(engine);
  MvccStore* one_node_store = impl->unserved ? impl->unserved.get() : impl->store;
  const auto max_ts = one_node_store->max_timestamp();
  const int64_t recovered = std::max<int64_t>(service::KvService::kFirstRevision,
                                              max_ts ? static_cast<int64_t>(max_ts->value()) : 0);
  impl->pipeline = std::make_unique<service::CommitPipeline>(log, recovered);
  impl->wake_target = impl->pipeline.get();
  impl->leases = std::make_unique<service::LeaseTable>(impl->lease_journal.get());
  impl->quota = std::make_unique<service::SpaceQuota>(one_node_store, options.quota_backend_bytes);
  service::KvServiceOptions kv_options;
  kv_options.max_txn_ops = options.max_txn_ops;
  kv_options.quota = impl->quota.get();
  // Read at each compaction, once serving (the hub exists by then).
  kv_options.compaction_floor = [s, max_lag = options.watch_max_lag] {
    return s->hub ? s->hub->ProtectedFloor(max_lag).revision : INT64_MAX;
  };
  impl->kv = std::make_unique<service::KvService>(one_node_store, impl->pipeline.get(),
                                                  impl->leases.get(), kv_options);
  service::WatchHubOptions hub_options;
  hub_options.fragment_bytes = options.max_request_bytes;
  hub_options.progress_interval =
      std::chrono::milliseconds(options.watch_progress_notify_interval_ms);
  service::InteractiveTxnOptions txn_options;
  txn_options.idle_timeout = std::chrono::milliseconds(options.txn_timeout_ms);
  impl->txns = std::make_unique<service::InteractiveTxns>(impl->kv.get(), txn_options);
  service::KvService* kv = impl->kv.get();
  impl->hub = std::make_unique<service::WatchHub>(
      one_node_store, [kv] { return kv->compact_revision(); }, recovered, hub_options);
  service::WatchHub* hub = impl->hub.get();
  impl->revision_times = std::make_unique<service::RevisionTimes>(recovered);
  service::RevisionTimes* times = impl->revision_times.get();
  impl->pipeline->SetEventSink(
      [hub, times](int64_t revision, std::vector<service::Event>&& events) {
        times->Note(revision);
        hub->Publish(revision, std::move(events));
      });
  impl->leases->Start(impl->kv.get());
  impl->request_auth =
      std::make_unique<RequestAuth>(impl->auth.get(), options.client_tls.client_cert_auth);
  std::string compaction_error;
  auto compaction = service::ParseAutoCompaction(
      options.auto_compaction_mode, options.auto_compaction_retention, &compaction_error);
  if (!compaction) return Status::InvalidArgument(compaction_error);
  impl->compactor = std::make_unique<service::AutoCompactor>(impl->kv.get(), *compaction);

  impl->identity.member_id = EtcdMemberId(options.peer_urls, options.initial_cluster_token);
  std::vector<uint64_t> member_ids = {impl->identity.member_id};
  for (const auto& other : options.cluster_members) {
    if (other.name != options.name) {
      member_ids.push_back(EtcdMemberId({other.peer_url}, options.initial_cluster_token));
    }
  }
  impl->identity.cluster_id = EtcdClusterId(std::move(member_ids));
  impl->identity.raft_term = 2;  // what a fresh single-member etcd reports

  if (!options.cluster_members.empty() && options.replicated) {
    ReplicatedFrontOptions replicated;
    replicated.self = options.name;
    replicated.members = options.cluster_members;
    replicated.token = options.initial_cluster_token;
    replicated.join_existing = options.join_existing;
    replicated.initial_state = options.replicated_initial_state;
    replicated.client_urls = options.advertise_client_urls;
    replicated.listen_peer = options.listen_peer;
    replicated.raft_dir = options.data_dir + "/raft";
    replicated.max_txn_ops = options.max_txn_ops;
    replicated.max_request_bytes = options.max_request_bytes;
    replicated.sync = options.sync != SyncMode::kNone;
    replicated.watches = hub_options;
    if (options.snapshot_count > 0) replicated.snapshot_count = options.snapshot_count;
    replicated.tick = std::chrono::milliseconds(options.heartbeat_interval_ms);
    replicated.election_ticks = ElectionTicks(options);
    replicated.log = RaftLog(options, ops::LogLevel::kInfo);
    auto links = MakePeerLinks(options);
    if (!links.ok()) return links.status();
    replicated.peer_server_credentials = std::move(links->served);
    replicated.peer_channel_credentials = std::move(links->presented);
    replicated.peer_faults = std::move(links->faults);
    // Users and roles are the group's (server/replicated_auth.h): each
    // state it applies goes to this member's AuthStore and its copy in
    // data/auth, each token to the store.
    replicated.auth_adopted = [auth = impl->auth.get(), journal = impl->cluster_auth_journal.get()](
                                  const std::string& state) {
      (void)auth->Adopt(state);
      journal->KeepCopy(state);
    };
    replicated.token_adopted = [auth = impl->auth.get()](const std::string& token,
                                                         const std::string& user) {
      auth->AdoptToken(token, user);
    };
    auto front = ReplicatedFront::Start(std::move(replicated));
    if (!front.ok()) return front.status();
    impl->replicated = std::move(*front);
    impl->cluster_auth_journal->Attach(impl->replicated.get());
    std::string().swap(impl->options.replicated_initial_state);  // in the Raft log now
    // Its number in the group, which derives from its --initial-cluster
    // entry (etcd requires that to be its advertised peer URL).
    impl->identity.member_id = impl->replicated->self_id();
    impl->kv_front = impl->replicated.get();
    impl->lease_front = impl->replicated.get();
    impl->not_served = MakeNotServedReplicatedService();
  } else if (!options.cluster_members.empty()) {
    ClusterFrontOptions cluster;
    cluster.self = options.name;
    cluster.members = options.cluster_members;
    cluster.listen_peer = options.listen_peer;
    cluster.client_urls = options.advertise_client_urls;
    cluster.kv.max_txn_ops = options.max_txn_ops;
    cluster.watches.fragment_bytes = options.max_request_bytes;
    ShardLayoutInputs layout_inputs;
    layout_inputs.data_dir = options.data_dir;
    layout_inputs.flag = options.shard_replicas;
    layout_inputs.members = options.cluster_members.size();
    layout_inputs.holds_own_keys = HoldsOwnKeys(*impl->store);
    Result<ShardLayout> layout = ChooseShardLayout(layout_inputs);
    if (!layout.ok()) return layout.status();
    if (options.log) options.log->Write(ops::LogLevel::kInfo, "cluster", layout->why);
    if (!options.data_dir.empty()) {
      if (Status s = RecordShardLayout(options.data_dir, layout->replication_factor); !s.ok()) {
        return s;
      }
    }
    cluster.member.replication_factor = layout->replication_factor;
    if (!options.shard_restore_file.empty()) {
      if (layout->replication_factor == 1) {
        return Status::InvalidArgument(
            "a restore into replicated shards with one replica a shard (restore such a member "
            "into its data directory before it starts)");
      }
      ShardRestoreInputs restore;
      restore.snapshot_file = options.shard_restore_file;
      restore.as_of_revision = options.shard_restore_revision;
      for (const auto& m : options.cluster_members) restore.members.push_back(m.name);
      restore.self = options.name;
      restore.replication_factor = layout->replication_factor;
      if (options.log) {
        restore.log = [log = options.log](const std::string& line) {
          log->Write(ops::LogLevel::kInfo, "cluster", line);
        };
      }
      Result<RestoredShards> restored = RestoreShards(restore);
      if (!restored.ok()) return restored.status();
      if (!restored->auth_state.empty()) {
        // Enforced from the start, as a member adopts the cluster's record
        // (which the restored shards hold), with its copy kept.
        impl->auth->Adopt(restored->auth_state);
        impl->cluster_auth_journal->KeepCopy(restored->auth_state);
      }
      for (auto& [shard, state] : restored->states) {
        cluster.shard_initial_states[shard] = std::move(state);
      }
    }
    if (cluster.member.replication_factor > 1) {
      // In memory (no data directory): the groups' log too.
      if (!options.data_dir.empty()) cluster.raft_dir = ShardRaftDir(options.data_dir);
      cluster.raft_tick = std::chrono::milliseconds(options.heartbeat_interval_ms);
      cluster.election_ticks = ElectionTicks(options);
      if (options.snapshot_count > 0) cluster.snapshot_count = options.snapshot_count;
      cluster.log = RaftLog(options, ops::LogLevel::kWarn);
    } else if (options.log) {
      cluster.log = [log = options.log](const std::string& line) {
        log->Write(ops::LogLevel::kWarn, "cluster", line);
      };
    }
    auto links = MakePeerLinks(options);
    if (!links.ok()) return links.status();
    cluster.peer_server_credentials = std::move(links->served);
    cluster.peer_channel_credentials = std::move(links->presented);
    cluster.peer_faults = std::move(links->faults);
    cluster.auth = impl->auth.get();
    cluster.auth_adopted = [journal = impl->cluster_auth_journal.get()](const std::string& state) {
      journal->KeepCopy(state);
    };
    cluster.join_existing = options.join_existing;
    cluster.stop = options.stop_member;
    cluster.cluster_token = options.initial_cluster_token;
    if (!options.data_dir.empty()) cluster.node_list_copy = options.data_dir + "/members";
    auto front = ClusterFront::Start(std::move(cluster), impl->store, impl->durable.get());
    if (!front.ok()) return front.status();
    impl->cluster = std::move(*front);
    // The cluster's id is its first members' (a member added later does
    // not change it, as with etcd), whatever this member's flags list.
    impl->identity.cluster_id = impl->cluster->ClusterId();
    impl->kv_front = impl->cluster.get();
    impl->lease_front = impl->cluster.get();
    impl->cluster_auth_journal->Attach(impl->cluster.get());
    impl->cluster_wake = impl->cluster.get();
    impl->not_served = MakeNotServedOverClusterService();
  }
  impl->watches = impl->cluster      ? &impl->cluster->watches()
                  : impl->replicated ? &impl->replicated->watches()
                                     : impl->hub.get();
  impl->serving_hub = impl->replicated ? &impl->replicated->hub() : impl->hub.get();

  impl->kv_service = std::make_unique<KvImpl>(s);
  impl->watch_service = std::make_unique<WatchImpl>(s);
  impl->lease_service = std::make_unique<LeaseImpl>(s);
  impl->maintenance_service = std::make_unique<MaintenanceImpl>(s);
  impl->cluster_service = std::make_unique<ClusterImpl>(s);
  impl->auth_service = MakeAuthService(s);
  impl->strata_service = MakeStrataService(s);

  // The operator's ports first: one in use stops the start before clients
  // are served.
  for (const std::string& address : options.metrics_listen) {
    const size_t colon = address.rfind(':');
    auto http = std::make_unique<ops::HttpListener>();
    http->Get("/metrics", [s] {
      return ops::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", RenderMetrics(*s)};
    });
    http->Get("/health", [s] { return Health(*s); });
    http->Get("/readyz", [s] { return Readyz(*s); });
    http->Get("/livez", [] { return Livez(); });
    http->Get("/dashboard", [] { return DashboardPage(); });
    http->Get("/dashboard/key",
              [s](const ops::HttpListener::Params& q) { return KeyTimeline(*s, q); });
    auto port = http->Start(HostOf(address), std::atoi(address.c_str() + colon + 1));
    if (!port.ok()) return port.status();
    impl->metrics_ports.push_back(port.value());
    impl->http.push_back(std::move(http));
  }

  if (options.log) {
    impl->grpc_metrics->on_error = [log = options.log, s](const GrpcMetrics::Method& m,
                                                          const grpc::Status& status) {
      auto refusal = ClassifyRefusal(status, s->options);
      if (!refusal) return;
      log->Throttled(ops::LogLevel::kWarn, "server", refusal->kind,
                     "refused " + m.service + "/" + m.name + " (\"" + status.error_message() +
                         "\"): " + refusal->advice);
    };
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  impl->ports.assign(options.listen.size(), 0);
  for (size_t i = 0; i < options.listen.size(); ++i) {
    builder.AddListeningPort(options.listen[i].host_port,
                             options.listen[i].tls ? tls : grpc::InsecureServerCredentials(),
                             &impl->ports[i]);
  }
  // etcd's limits: requests up to max-request-bytes (plus gRPC's framing
  // room, as etcd allows), replies of any size (a large Range).
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes + 512 * 1024));
  builder.SetMaxSendMessageSize(-1);
  // etcd clients ping every few seconds, even without calls; gRPC's default
  // policy would answer them with GOAWAY "too_many_pings".
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2 * 60 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.RegisterService(impl->kv_service.get());
  builder.RegisterService(impl->watch_service.get());
  builder.RegisterService(impl->lease_service.get());
  builder.RegisterService(impl->maintenance_service.get());
  builder.RegisterService(impl->cluster_service.get());
  builder.RegisterService(impl->auth_service.get());
  if (!impl->replicated) {
    // A replicated key space serves no strata.v1 yet (docs/REPLICATION.md).
    builder.RegisterService(impl->strata_service.get());
  }
  if (impl->not_served) {
    // What does not run over a cluster answers so, in a sentence.
    builder.RegisterCallbackGenericService(impl->not_served.get());
  }
  impl->grpc_server = builder.BuildAndStart();
  if (!impl->grpc_server) {
    return Status::Unavailable("cannot listen on the client URLs (is the port in use?)");
  }
  for (size_t i = 0; i < impl->ports.size(); ++i) {
    if (impl->ports[i] == 0) {
      return Status::Unavailable("cannot listen on " + options.listen[i].host_port);
    }
  }
  return std::unique_ptr<EtcdServer>(new EtcdServer(std::move(impl)));
}

void EtcdServer::Impl::CheckLeaseKeys(RequestAuth::LeaseCheck check,
                                      std::function<void(RequestAuth::Denied)> then) {
  if (check.leases.empty()) return then(std::nullopt);
  if (!lease_front) {
    std::vector<std::string> keys;
    for (int64_t id : check.leases) {
      auto attached = leases->TimeToLive(id, /*with_keys=*/true).keys;
      keys.insert(keys.end(), attached.begin(), attached.end());
    }
    return then(request_auth->LeaseKeys(check.user, keys));
  }
  // Over a cluster each lease's keys are read from its home member, over a
  // replicated key space from the member's copy; the last answer decides.
  // A lease that is not there has no keys (the write itself then fails on
  // it).
  struct Gathering {
    RequestAuth::LeaseCheck check;
    std::function<void(RequestAuth::Denied)> then;
    Mutex mu;
    size_t waiting STRATA_GUARDED_BY(mu) = 0;
    std::vector<std::string> keys STRATA_GUARDED_BY(mu);
    std::optional<service::ServiceError> failed STRATA_GUARDED_BY(mu);
  };
  auto g = std::make_shared<Gathering>();
  g->then = std::move(then);
  const std::vector<int64_t> ids = check.leases;
  g->check = std::move(check);
  {
    MutexLock lock(g->mu);
    g->waiting = ids.size();
  }
  for (int64_t id : ids) {
    lease_front->LeaseTimeToLive(id, true, [this, g](Reply<service::LeaseTimeToLiveResult> r) {
      RequestAuth::Denied verdict;
      {
        MutexLock lock(g->mu);
        if (r.ok()) {
          g->keys.insert(g->keys.end(), r.value().keys.begin(), r.value().keys.end());
        } else if (r.error().code != service::ErrorCode::kNotFound && !g->failed) {
          g->failed = r.error();
        }
        if (--g->waiting > 0) return;
        verdict = g->failed ? g->failed : request_auth->LeaseKeys(g->check.user, g->keys);
      }
      g->then(std::move(verdict));
    });
  }
}

EtcdServer::EtcdServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EtcdServer::~EtcdServer() {
  // Stop taking requests (waiting briefly for those under way), then the
  // layers from the top: nothing below is used once what is above is gone.
  for (auto& http : impl_->http) http->Stop();
  impl_->grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->grpc_server->Wait();
  // The cluster's member next (its answers need nothing below it), before
  // the store it serves.
  impl_->cluster_wake = nullptr;
  // The Auth calls still queued finish first: over a cluster they save
  // through the member.
  impl_->auth_service.reset();
  if (impl_->cluster_auth_journal) impl_->cluster_auth_journal->Detach();
  impl_->cluster.reset();
  // Its loop hands applied users and roles to the AuthStore below.
  impl_->replicated.reset();
  impl_->compactor.reset();
  impl_->leases.reset();
  impl_->txns.reset();
  impl_->wake_target = nullptr;
  impl_->pipeline.reset();
  impl_->hub.reset();
  impl_->kv.reset();
  impl_->lease_journal.reset();
  impl_->auth.reset();
  impl_->cluster_auth_journal.reset();  // writes the copy still pending
  impl_->auth_journal.reset();
  impl_->durable.reset();
}

const std::vector<int>& EtcdServer::bound_ports() const { return impl_->ports; }
const std::vector<int>& EtcdServer::metrics_ports() const { return impl_->metrics_ports; }
uint64_t EtcdServer::member_id() const { return impl_->identity.member_id; }
uint64_t EtcdServer::cluster_id() const { return impl_->identity.cluster_id; }

void EtcdServer::Wait() {
  UniqueLock lock(impl_->shutdown_mu);
  impl_->shutdown_cv.Wait(lock,
                          [&]() STRATA_REQUIRES(impl_->shutdown_mu) { return impl_->shutdown; });
}

void EtcdServer::Shutdown() {
  {
    MutexLock lock(impl_->shutdown_mu);
    impl_->shutdown = true;
  }
  impl_->shutdown_cv.NotifyAll();
}

}  // namespace strata::server
