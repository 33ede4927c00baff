#include "server/strata_service.h"

#include <limits>

#include "server/server_state.h"
#include "service/kv_service.h"
#include "strata.grpc.pb.h"

namespace strata::server {
namespace {

namespace v1 = ::strata::v1;
using service::Reply;

constexpr int64_t kDefaultLimit = 1000;
constexpr int64_t kMaxLimit = 10000;

void ToVersion(const service::KeyValue& kv, v1::Version* out) {
  out->set_key(kv.key);
  out->set_revision(kv.mod_revision);
  out->set_value(kv.value);
  out->set_create_revision(kv.create_revision);
  out->set_version(kv.version);
  out->set_lease(kv.lease);
}

// One stored version (history and changes read the engine directly: they
// show deletes too, which the etcd API's Range never does).
bool ToVersion(std::string_view key, Timestamp ts, bool deleted, std::string_view bytes,
               v1::Version* out) {
  out->set_key(std::string(key));
  out->set_revision(static_cast<int64_t>(ts.value()));
  if (deleted) {
    out->set_deleted(true);
    return true;
  }
  auto kv = service::StoredToKeyValue(key, ts, bytes);
  if (!kv) return false;
  ToVersion(*kv, out);
  return true;
}

int64_t Limit(int64_t asked) {
  if (asked <= 0) return kDefaultLimit;
  return std::min(asked, kMaxLimit);
}

class StrataImpl final : public v1::Strata::CallbackService {
 public:
  explicit StrataImpl(EtcdServer::Impl* s) : s_(s) {}

  // Every call that touches keys is checked against the caller's
  // permissions, as the etcd API's are (server/request_auth.h).
  grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* ctx, const v1::BeginRequest* req,
                                  v1::BeginResponse* resp) override {
    if (auto denied = s_->request_auth->Authenticated(*ctx)) {
      return Fail(s_->Reactor("/strata.v1.Strata/Begin"), *denied);
    }
    // With authentication on, the transaction is its user's alone. (Read
    // again, not assumed: the token may have lapsed since the check.)
    std::string owner;
    if (s_->request_auth->enabled()) {
      auto who = s_->request_auth->User(*ctx);
      if (!who.ok()) return Fail(s_->Reactor("/strata.v1.Strata/Begin"), who.error());
      owner = who.value();
    }
    const auto isolation = req->isolation() == v1::SNAPSHOT ? service::TxnIsolation::kSnapshot
                                                            : service::TxnIsolation::kSerializable;
    auto fill = [resp](const service::TxnBegun& b) {
      resp->set_txn_id(b.id);
      resp->set_read_revision(b.read_revision);
    };
    const service::FollowerRead follower{req->follower_read(), req->min_read_revision()};
    if (s_->cluster) {
      return Later<service::TxnBegun>("/strata.v1.Strata/Begin", fill, [&](auto done) {
        s_->cluster->TxnBegin(isolation, req->read_revision(), follower, done);
      });
    }
    auto r = s_->txns->Begin(isolation, req->read_revision(), owner, follower);
    return Answer(s_->Reactor("/strata.v1.Strata/Begin"), r, fill);
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::TxnGetRequest* req,
                                v1::TxnGetResponse* resp) override {
    if (auto denied =
            Denied(ctx, req->txn_id(), TouchedKeys{service::Access::kRead, req->key(), ""})) {
      return Fail(s_->Reactor("/strata.v1.Strata/Get"), *denied);
    }
    auto fill = [resp](const service::TxnRead& read) {
      resp->set_found(read.kv.has_value());
      resp->set_own_write(read.own_write);
      if (read.kv) ToVersion(*read.kv, resp->mutable_kv());
    };
    if (s_->cluster) {
      return Later<service::TxnRead>("/strata.v1.Strata/Get", fill, [&](auto done) {
        s_->cluster->TxnGet(req->txn_id(), req->key(), done);
      });
    }
    return Answer(s_->Reactor("/strata.v1.Strata/Get"), s_->txns->Get(req->txn_id(), req->key()),
                  fill);
  }

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx, const v1::TxnRangeRequest* req,
                                  v1::TxnRangeResponse* resp) override {
    if (auto denied = Denied(ctx, req->txn_id(),
                             TouchedKeys{service::Access::kRead, req->key(), req->range_end()})) {
      return Fail(s_->Reactor("/strata.v1.Strata/Range"), *denied);
    }
    auto fill = [resp](const service::RangeResponse& range) {
      for (const auto& kv : range.kvs) ToVersion(kv, resp->add_kvs());
      resp->set_more(range.more);
    };
    const service::KeySpan span{req->key(), req->range_end()};
    if (s_->cluster) {
      return Later<service::RangeResponse>("/strata.v1.Strata/Range", fill, [&](auto done) {
        s_->cluster->TxnRange(req->txn_id(), span, Limit(req->limit()), done);
      });
    }
    return Answer(s_->Reactor("/strata.v1.Strata/Range"),
                  s_->txns->Range(req->txn_id(), span, Limit(req->limit())), fill);
  }

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const v1::TxnPutRequest* req,
                                v1::TxnPutResponse*) override {
    if (s_->TooLarge(*req))
      return Fail(s_->Reactor("/strata.v1.Strata/Put"), service::etcd_errors::RequestTooLarge());
    if (auto denied =
            Denied(ctx, req->txn_id(), TouchedKeys{service::Access::kWrite, req->key(), ""})) {
      return Fail(s_->Reactor("/strata.v1.Strata/Put"), *denied);
    }
    if (s_->cluster) {
      return Later<service::ClusterTxns::Empty>(
          "/strata.v1.Strata/Put", [](const auto&) {},
          [&](auto done) { s_->cluster->TxnWrite(req->txn_id(), req->key(), req->value(), done); });
    }
    auto r = s_->txns->Put(req->txn_id(), req->key(), req->value());
    return Answer(s_->Reactor("/strata.v1.Strata/Put"), r, [](const auto&) {});
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::TxnDeleteRequest* req,
                                   v1::TxnDeleteResponse*) override {
    if (auto denied =
            Denied(ctx, req->txn_id(), TouchedKeys{service::Access::kWrite, req->key(), ""})) {
      return Fail(s_->Reactor("/strata.v1.Strata/Delete"), *denied);
    }
    if (s_->cluster) {
      return Later<service::ClusterTxns::Empty>(
          "/strata.v1.Strata/Delete", [](const auto&) {},
          [&](auto done) { s_->cluster->TxnWrite(req->txn_id(), req->key(), std::nullopt, done); });
    }
    auto r = s_->txns->Delete(req->txn_id(), req->key());
    return Answer(s_->Reactor("/strata.v1.Strata/Delete"), r, [](const auto&) {});
  }

  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* ctx, const v1::CommitRequest* req,
                                   v1::CommitResponse* resp) override {
    auto* reactor = s_->Reactor("/strata.v1.Strata/Commit");
    if (auto denied = Denied(ctx, req->txn_id())) return Fail(reactor, *denied);
    if (s_->quota->alarmed()) {
      reactor->Finish(ToGrpc(service::etcd_errors::NoSpace()));
      return reactor;
    }
    auto done = [reactor, resp](Reply<int64_t> r) {
      if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
      resp->set_revision(r.value());
      reactor->Finish(grpc::Status::OK);
    };
    if (s_->cluster) {
      s_->cluster->TxnCommit(req->txn_id(), std::move(done));
    } else {
      s_->txns->Commit(req->txn_id(), std::move(done));
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* ctx, const v1::AbortRequest* req,
                                  v1::AbortResponse*) override {
    if (auto denied = Denied(ctx, req->txn_id())) {
      return Fail(s_->Reactor("/strata.v1.Strata/Abort"), *denied);
    }
    if (s_->cluster) {
      return Later<service::ClusterTxns::Empty>(
          "/strata.v1.Strata/Abort", [](const auto&) {},
          [&](auto done) { s_->cluster->TxnAbort(req->txn_id(), done); });
    }
    auto r = s_->txns->Abort(req->txn_id());
    return Answer(s_->Reactor("/strata.v1.Strata/Abort"), r, [](const auto&) {});
  }

  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext* ctx, const v1::HistoryRequest* req,
                                    v1::HistoryResponse* resp) override {
    // One reactor for every way out: the call is counted once, timed from here.
    auto* reactor = s_->Reactor("/strata.v1.Strata/History");
    if (auto denied = s_->request_auth->Keys(*ctx, service::Access::kRead, req->key(), "")) {
      return Fail(reactor, *denied);
    }
    if (req->key().empty()) return Fail(reactor, service::etcd_errors::EmptyKey());
    if (s_->cluster) {
      if (req->from_revision() > s_->cluster->current_revision()) {
        return Fail(reactor, service::etcd_errors::FutureRev());
      }
      // Read where the key lives (ClusterFront::History).
      s_->cluster->History(req->SerializeAsString(), [reactor, resp](Reply<std::string> r) {
        if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
        if (!resp->ParseFromString(r.value())) {
          return reactor->Finish(ToGrpc(
              {service::ErrorCode::kInternal, "strata: the owner's history did not decode"}));
        }
        reactor->Finish(grpc::Status::OK);
      });
      return reactor;
    }
    const int64_t current = s_->kv->current_revision();
    if (req->from_revision() > current) return Fail(reactor, service::etcd_errors::FutureRev());
    // Never past what is durable (the engine may hold a newer, unpromised one).
    if (auto e = ReadHistory(*s_->store, req->key(), *req, current, resp)) return Fail(reactor, *e);
    resp->set_compact_revision(std::max<int64_t>(0, s_->kv->compact_revision()));
    return Ok(reactor);
  }

  grpc::ServerUnaryReactor* Changes(grpc::CallbackServerContext* ctx, const v1::ChangesRequest* req,
                                    v1::ChangesResponse* resp) override {
    // One reactor for every way out: the call is counted once, timed from here.
    auto* reactor = s_->Reactor("/strata.v1.Strata/Changes");
    // No key: every key, which only a user who may read them all may ask for.
    const bool all = req->key().empty();
    if (auto denied = s_->request_auth->Keys(*ctx, service::Access::kRead, all ? "" : req->key(),
                                             all ? std::string(1, '\0') : req->range_end())) {
      return Fail(reactor, *denied);
    }
    if (s_->cluster) {
      // What every shard has settled (ClusterFront::Changes).
      s_->cluster->Changes(
          req->since_revision(), {req->key(), req->range_end()},
          static_cast<size_t>(Limit(req->limit())), [reactor, resp](Reply<ChangesResult> c) {
            if (!c.ok()) return reactor->Finish(ToGrpc(c.error()));
            for (const auto& ch : c.value().changes) {
              if (!ToVersion(ch.key, ch.timestamp, ch.deleted, ch.value, resp->add_changes())) {
                return reactor->Finish(
                    ToGrpc({service::ErrorCode::kInternal, "strata: a damaged stored version"}));
              }
            }
            resp->set_more(c.value().more);
            reactor->Finish(grpc::Status::OK);
          });
      return reactor;
    }
    const int64_t current = s_->kv->current_revision();
    if (req->since_revision() > current) return Fail(reactor, service::etcd_errors::FutureRev());
    KeyRange range = KeyRange::All();
    if (!req->key().empty()) {
      auto r = service::SpanToKeyRange({req->key(), req->range_end()});
      if (!r) return Ok(reactor);  // an inverted range holds nothing
      range = *r;
    }
    auto c = s_->store->Changes(
        Timestamp(static_cast<uint64_t>(std::max<int64_t>(0, req->since_revision()))), range,
        static_cast<size_t>(Limit(req->limit())));
    if (!c.ok()) return Fail(reactor, service::etcd_errors::Compacted());
    bool cut = c.value().more;
    for (const auto& ch : c.value().changes) {
      if (static_cast<int64_t>(ch.timestamp.value()) > current) {
        cut = false;  // what is not durable yet is not shown, nor counted as more
        break;
      }
      if (!ToVersion(ch.key, ch.timestamp, ch.deleted, ch.value, resp->add_changes())) {
        return Fail(reactor, {service::ErrorCode::kInternal, "strata: a damaged stored version"});
      }
    }
    resp->set_more(cut);
    return Ok(reactor);
  }

  grpc::ServerUnaryReactor* Shards(grpc::CallbackServerContext*, const v1::ShardsRequest*,
                                   v1::ShardsResponse* resp) override {
    if (!s_->cluster) {
      return Fail(s_->Reactor("/strata.v1.Strata/Shards"), NotACluster());
    }
    return Later<std::vector<cluster::ShardGroupView>>(
        "/strata.v1.Strata/Shards",
        [resp](const std::vector<cluster::ShardGroupView>& views) {
          for (const cluster::ShardGroupView& view : views) {
            v1::ShardsResponse::Shard* shard = resp->add_shards();
            shard->set_id(view.shard);
            shard->set_leader(view.leader);
            for (const std::string& node : view.voters) shard->add_voters(node);
            for (const std::string& node : view.learners) shard->add_learners(node);
            for (const std::string& node : view.placement) shard->add_placement(node);
          }
        },
        [&](auto done) { s_->cluster->Shards(done); });
  }

  grpc::ServerUnaryReactor* PlaceShard(grpc::CallbackServerContext* ctx,
                                       const v1::PlaceShardRequest* req,
                                       v1::PlaceShardResponse*) override {
    if (auto denied = s_->request_auth->Admin(*ctx)) {
      return Fail(s_->Reactor("/strata.v1.Strata/PlaceShard"), *denied);
    }
    if (!s_->cluster) {
      return Fail(s_->Reactor("/strata.v1.Strata/PlaceShard"), NotACluster());
    }
    return Later<service::ClusterTxns::Empty>(
        "/strata.v1.Strata/PlaceShard", [](const service::ClusterTxns::Empty&) {},
        [&](auto done) {
          s_->cluster->PlaceShard(req->shard(), {req->members().begin(), req->members().end()},
                                  done);
        });
  }

  static service::ServiceError NotACluster() {
    return {service::ErrorCode::kFailedPrecondition,
            "strata: this server is not a member of a cluster: its keys are not sharded"};
  }

  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext*, const v1::StatsRequest*,
                                  v1::StatsResponse* resp) override {
    if (s_->cluster) {
      // Over a cluster: this member's shard and the transactions open here.
      return Later<ClusterFront::TxnFigures>(
          "/strata.v1.Strata/Stats",
          [this, resp](const ClusterFront::TxnFigures& f) {
            FillStore(resp);
            FillTxns(f.txns, resp);
            resp->set_revision(s_->cluster->current_revision());
            resp->set_compact_revision(f.compact_revision);
            resp->set_watchers(f.watchers);
          },
          [&](auto done) { s_->cluster->Figures(done); });
    }
    FillStore(resp);
    FillTxns(s_->txns->Stats(), resp);
    resp->set_revision(s_->kv->current_revision());
    resp->set_compact_revision(std::max<int64_t>(0, s_->kv->compact_revision()));
    resp->set_watchers(s_->serving_hub->watchers());
    const auto floor = s_->serving_hub->ProtectedFloor(s_->options.watch_max_lag);
    if (floor.revision < s_->kv->compact_revision()) {
      resp->set_gc_held_by_watch_id(floor.watch_id);
      resp->set_gc_held_by_watcher_lag(floor.lag);
    }
    resp->set_leases(s_->leases->size());
    return Ok(s_->Reactor("/strata.v1.Strata/Stats"));
  }

 private:
  // The store's figures (over a cluster: this member's shard) and its log's.
  void FillStore(v1::StatsResponse* resp) const {
    const auto st = s_->store->GetStats();
    resp->set_keys(st.keys);
    resp->set_versions(st.versions);
    resp->set_tombstones(st.tombstones);
    resp->set_bytes(st.bytes);
    resp->set_memory_bytes(st.memory_bytes);
    resp->set_gc_versions_removed(st.gc_versions_removed);
    resp->set_gc_bytes_reclaimed(st.gc_bytes_reclaimed);
    resp->set_compaction_horizon(static_cast<int64_t>(s_->store->compaction_horizon().value()));
    if (s_->durable) {
      const auto d = s_->durable->GetDurabilityStats();
      resp->set_wal_durable_lsn(d.durable_lsn);
      resp->set_wal_syncs(d.syncs);
      resp->set_checkpoints(d.checkpoints);
    }
  }
  static void FillTxns(const service::TxnStats& txns, v1::StatsResponse* resp) {
    resp->set_active_txns(txns.active);
    resp->set_min_active_snapshot(txns.min_active_snapshot.value_or(0));
    resp->set_oldest_txn_id(txns.oldest_txn_id);
    resp->set_oldest_txn_age_ms(txns.oldest_txn_age.count());
    resp->set_txn_commits(txns.commits);
    resp->set_txn_conflicts(txns.conflicts);
    resp->set_txn_expired(txns.expired);
  }

  // With authentication on: the refusal if transaction `id` is not the
  // caller's (or the caller's token is bad); with `keys`, also if the caller
  // may not touch them. The token is looked up once for both.
  struct TouchedKeys {
    service::Access access;
    const std::string& key;
    const std::string& range_end;
  };
  std::optional<service::ServiceError> Denied(grpc::CallbackServerContext* ctx, uint64_t id,
                                              std::optional<TouchedKeys> keys = std::nullopt) {
    return s_->request_auth->AsUser(
        *ctx, [&](const std::string& user) -> std::optional<service::ServiceError> {
          if (keys) {
            if (auto denied =
                    s_->request_auth->Keys(user, keys->access, keys->key, keys->range_end)) {
              return denied;
            }
          }
          auto owned = s_->txns->CheckOwner(id, user);
          if (!owned.ok()) return owned.error();
          return std::nullopt;
        });
  }

  // Over a cluster (`method`: the call's full name, a literal): `start` is
  // handed a callback that fills the answer with
  // `fill` (or fails it) and finishes the call.
  template <typename T, typename Fill, typename Start>
  grpc::ServerUnaryReactor* Later(const char* method, Fill fill, Start start) {
    auto* reactor = s_->Reactor(method);
    start([reactor, fill](Reply<T> r) {
      if (!r.ok()) return reactor->Finish(ToGrpc(r.error()));
      fill(r.value());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  // Each takes the call's MeteredReactor (so the call is counted under its
  // method) and finishes it.
  template <typename T, typename Fill>
  grpc::ServerUnaryReactor* Answer(MeteredReactor* reactor, const Reply<T>& r, Fill fill) {
    if (!r.ok()) return Fail(reactor, r.error());
    fill(r.value());
    return Ok(reactor);
  }
  grpc::ServerUnaryReactor* Fail(MeteredReactor* reactor, const service::ServiceError& e) {
    reactor->Finish(ToGrpc(e));
    return reactor;
  }
  grpc::ServerUnaryReactor* Ok(MeteredReactor* reactor) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  EtcdServer::Impl* s_;
};

}  // namespace

std::optional<service::ServiceError> ReadHistory(const MvccStore& store,
                                                 std::string_view engine_key,
                                                 const v1::HistoryRequest& request, int64_t newest,
                                                 v1::HistoryResponse* resp) {
  std::optional<Timestamp> from;
  if (request.from_revision() > 0) {
    from = Timestamp(static_cast<uint64_t>(request.from_revision()));
  }
  const int64_t upto = request.to_revision() > 0 ? std::min(request.to_revision(), newest) : newest;
  auto h =
      store.History(engine_key, from, Timestamp(static_cast<uint64_t>(std::max<int64_t>(0, upto))),
                    static_cast<size_t>(Limit(request.limit())));
  if (!h.ok()) return service::etcd_errors::Compacted();
  for (const auto& v : h.value().versions) {
    if (!ToVersion(request.key(), v.timestamp, v.deleted, v.value, resp->add_versions())) {
      return service::ServiceError{service::ErrorCode::kInternal,
                                   "strata: a damaged stored version"};
    }
  }
  resp->set_more(h.value().more);
  return std::nullopt;
}

std::unique_ptr<grpc::Service> MakeStrataService(EtcdServer::Impl* server) {
  return std::make_unique<StrataImpl>(server);
}

}  // namespace strata::server
