#include "service/cluster_kv.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "cluster/peer_messages.h"
#include "cluster/shard_map.h"
#include "service/cluster_leases.h"
#include "service/cluster_record.h"
#include "service/stored_value.h"

namespace strata::service {
namespace {

// The response to each write request.
template <typename Request>
struct ResponseOf;
template <>
struct ResponseOf<PutRequest> {
  using type = PutResponse;
};
template <>
struct ResponseOf<DeleteRangeRequest> {
  using type = DeleteRangeResponse;
};
template <>
struct ResponseOf<TxnRequest> {
  using type = TxnResponse;
};

// etcd's keys are the cluster's string keys (protocol/key_codec.h's tags,
// repeated here: service/ does not use the Maelstrom protocol).
constexpr char kEtcdKeyTag = '\x01';
constexpr char kAfterEtcdKeys = '\x02';

// How many keys one page of a scan asks of each shard.
constexpr size_t kPageKeys = cluster::kMaxRawLimit;

ServiceError NotGathered(std::string_view what) {
  return {ErrorCode::kInternal,
          "strata: the cluster did not gather " + std::string(what) + " for this request"};
}

}  // namespace

ServiceError ClusterError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kCompacted:
      return etcd_errors::Compacted();
    case StatusCode::kInvalidArgument:
      return {ErrorCode::kInvalidArgument, "strata: " + std::string(s.message())};
    case StatusCode::kConflict:
      return etcd_errors::TooManyRequests();
    case StatusCode::kUnavailable:
    case StatusCode::kIoError:
    case StatusCode::kNotFound:
      // A shard or the transaction's record did not answer in time: the
      // outcome of a write is unknown, as after etcd's timeout, and
      // clients treat it the same way (retry what is idempotent).
      return {ErrorCode::kUnavailable, "etcdserver: request timed out"};
    default:
      return {ErrorCode::kInternal, "strata: " + std::string(s.message())};
  }
}

std::string ClusterKv::EngineKey(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 1);
  out.push_back(kEtcdKeyTag);
  out.append(key);
  return out;
}

std::optional<std::string> ClusterKv::EtcdKeyOf(std::string_view engine_key) {
  if (engine_key.empty() || engine_key[0] != kEtcdKeyTag) return std::nullopt;
  return std::string(engine_key.substr(1));
}

namespace {

RestoreOptions::ClusterLayout Layout() {
  return RestoreOptions::ClusterLayout{
      ClusterKv::EngineKey,     ClusterLeases::RecordKey, ClusterLeases::AttachmentKey,
      ClusterRecord::AuthKey(), ClusterKv::EtcdKeyOf,     ClusterLeases::LeaseOfRecordKey};
}

}  // namespace

void ClusterKv::RestoreAsNode(RestoreOptions* options) { options->cluster_layout = Layout(); }

Status ClusterKv::RestoreAsMember(std::vector<std::string> members, const std::string& name,
                                  RestoreOptions* options) {
  std::sort(members.begin(), members.end());
  auto map = cluster::ShardMap::OnePerNode(members);
  if (!map.ok()) return Status::InvalidArgument("--initial-cluster: " + map.status().message());
  const std::optional<cluster::ShardId> shard = map->ShardServedBy(name);
  if (!shard) {
    return Status::InvalidArgument("--initial-cluster does not name this member (--name " + name +
                                   ")");
  }
  return RestoreAsShard(std::move(members), *shard, options);
}

Status ClusterKv::RestoreAsShard(std::vector<std::string> members, cluster::ShardId shard,
                                 RestoreOptions* options) {
  std::sort(members.begin(), members.end());
  auto map = cluster::ShardMap::OnePerNode(members);
  if (!map.ok()) return Status::InvalidArgument("--initial-cluster: " + map.status().message());
  if (shard >= map->shards().size()) {
    return Status::InvalidArgument("no shard " + std::to_string(shard) + " in a cluster of " +
                                   std::to_string(members.size()));
  }
  options->keep = [map = std::move(*map), shard](std::string_view key) {
    return map.ShardFor(key).id == shard;
  };
  options->cluster_layout = Layout();
  return Status::Ok();
}

std::optional<KeyRange> ClusterKv::EngineRange(const KeySpan& span) {
  auto r = SpanToKeyRange(span);
  if (!r) return std::nullopt;
  r->start = EngineKey(r->start);
  r->end = r->end ? EngineKey(*r->end) : std::string(1, kAfterEtcdKeys);
  return r;
}

// What a write request read from the shards at its snapshot: the KvView
// the rules run over. Asked for anything not gathered (which the
// footprint rules out), it refuses rather than guess.
class ClusterKv::GatheredView final : public KvView {
 public:
  struct Past {
    KeySpan span;
    int64_t revision = 0;
    Reply<std::vector<KeyValue>> kvs = std::vector<KeyValue>();
  };

  GatheredView(int64_t base, int64_t compacted) : base_(base), compacted_(compacted) {}

  std::map<std::string, std::optional<KeyValue>> keys;
  std::vector<std::pair<KeySpan, std::vector<KeyValue>>> spans;
  std::vector<Past> past;

  Reply<std::optional<KeyValue>> Get(const std::string& key) const override {
    if (auto it = keys.find(key); it != keys.end()) return it->second;
    for (const auto& [span, kvs] : spans) {
      if (!SpanContains(span, key)) continue;
      auto it =
          std::lower_bound(kvs.begin(), kvs.end(), key,
                           [](const KeyValue& kv, const std::string& k) { return kv.key < k; });
      if (it != kvs.end() && it->key == key) return std::optional<KeyValue>(*it);
      return std::optional<KeyValue>();
    }
    return NotGathered("key '" + key + "'");
  }

  Reply<std::vector<KeyValue>> Scan(const KeySpan& span) const override {
    if (span.range_end.empty()) {
      auto kv = Get(span.key);
      if (!kv.ok()) return kv.error();
      std::vector<KeyValue> out;
      if (kv.value()) out.push_back(std::move(*kv.value()));
      return out;
    }
    for (const auto& [s, kvs] : spans) {
      if (s.key == span.key && s.range_end == span.range_end) return kvs;
    }
    return NotGathered("the range from '" + span.key + "'");
  }

  Reply<RangeResponse> RangeAt(const RangeRequest& request, int64_t revision,
                               int64_t current) const override {
    Reply<std::vector<KeyValue>> kvs = NotGathered("the range from '" + request.span.key + "'");
    if (revision == base_) {
      kvs = Scan(request.span);
    } else {
      for (const Past& p : past) {
        if (p.revision == revision && p.span.key == request.span.key &&
            p.span.range_end == request.span.range_end) {
          kvs = p.kvs;
        }
      }
    }
    if (!kvs.ok()) return kvs.error();
    const auto count = static_cast<int64_t>(kvs.value().size());
    return ShapeRange(request, std::move(kvs.value()), count, current);
  }

  // A lease exists if its record was read (ClusterLeases::RecordKey).
  bool LeaseExists(int64_t lease) const override {
    auto it = leases.find(lease);
    return it != leases.end() && it->second;
  }
  std::map<int64_t, bool> leases;
  int64_t compact_revision() const override { return compacted_; }

 private:
  const int64_t base_;
  const int64_t compacted_;
};

// One gather in flight: every read answers into the view; the last one
// (or the first failure) finishes.
struct ClusterKv::Gather {
  size_t waiting = 1;  // the setup itself, released once every read is sent
  std::optional<ServiceError> error;
  std::shared_ptr<GatheredView> view;
  std::function<void(Reply<std::shared_ptr<GatheredView>>)> done;

  void Release() {
    if (--waiting > 0) return;
    if (error) return done(*error);
    done(view);
  }
};

ClusterKv::ClusterKv(cluster::Coordinator* coordinator, cluster::Router* router,
                     ClusterKvOptions options)
    : coordinator_(coordinator),
      router_(router),
      options_(options),
      locks_(
          &lanes_, coordinator->local_shard(),
          [router](const std::string& engine_key, std::string request,
                   std::function<void(Result<std::string>)> done) {
            router->Forward(engine_key, std::move(request), std::move(done));
          },
          [router](cluster::ShardId shard) { return router->LastHeardFrom(shard); },
          options.timers) {}

ClusterKv::~ClusterKv() { *alive_ = false; }

int64_t ClusterKv::current_revision() {
  return static_cast<int64_t>(coordinator_->FreshTimestamp().value());
}

ClusterKv::FollowerReadPoint ClusterKv::FollowerReadAt(int64_t min_revision) {
  const Timestamp newest = coordinator_->ReadTimestamp();
  const Timestamp token = AtRevision(min_revision);
  std::optional<Timestamp> here;
  if (options_.resolved_here) here = options_.resolved_here();
  // Replicas far behind (a member catching up) may be below what this
  // member has collected: the leaders' way then.
  if (!here || *here < coordinator_->CompactionHorizon()) {
    return FollowerReadPoint{std::max(newest, token), std::nullopt};
  }
  return FollowerReadPoint{std::max(std::min(newest, *here), token), *here};
}

void ClusterKv::ScanAll(uint64_t txn, KeySpan span, size_t keep, bool values, Done<Scanned> done) {
  auto range = EngineRange(span);
  if (!range) return done(Scanned{});
  struct Paging {
    KeyRange range;
    Scanned scanned;
    size_t kept_bytes = 0;
    Done<Scanned> done;
  };
  auto paging = std::make_shared<Paging>(Paging{std::move(*range), {}, 0, std::move(done)});
  auto next = std::make_shared<std::function<void()>>();
  // The loop holds itself only through the callback it hands out, so it
  // ends (and is freed) with the last page.
  *next = [this, txn, keep, values, paging, weak = std::weak_ptr<std::function<void()>>(next),
           alive = alive_] {
    coordinator_->Scan(
        txn, paging->range, kPageKeys,
        [this, keep, values, paging, self = weak.lock(), alive](Result<ScanResult> page) {
          if (!*alive) return;
          if (!page.ok()) return paging->done(ClusterError(page.status()));
          Scanned& scanned = paging->scanned;
          for (const ScanItem& item : page->items) {
            ++scanned.count;
            if (scanned.kvs.size() >= keep) continue;  // counted only
            const std::string_view key = std::string_view(item.key).substr(1);
            auto kv = StoredToKeyValue(key, item.timestamp, item.value);
            if (!kv) return paging->done(DamagedValue(key));
            if (!values) kv->value.clear();
            paging->kept_bytes += kv->key.size() + kv->value.size();
            scanned.kvs.push_back(std::move(*kv));
          }
          if (scanned.kvs.size() > options_.max_range_keys ||
              paging->kept_bytes > options_.max_range_bytes) {
            return paging->done(ServiceError{
                ErrorCode::kResourceExhausted,
                "strata: the range holds more than " + std::to_string(options_.max_range_keys) +
                    " keys or " + std::to_string(options_.max_range_bytes >> 20) +
                    " MiB, the most one request reads over a cluster; narrow it or give a "
                    "limit"});
          }
          if (!page->more || page->items.empty()) return paging->done(std::move(scanned));
          paging->range.start = page->items.back().key + std::string(1, '\0');
          (*self)();
        });
  };
  (*next)();
}

void ClusterKv::Range(const RangeRequest& request, Done<RangeResponse> done) {
  if (request.span.key.empty()) return done(etcd_errors::EmptyKey());
  const int64_t now = current_revision();
  if (request.revision > now) return done(etcd_errors::FutureRev());
  if (request.revision > 0 && request.revision < compact_revision_) {
    return done(etcd_errors::Compacted());
  }
  if (request.serializable && request.min_revision > now) return done(etcd_errors::FutureRev());
  // Without a revision: the newest snapshot that needs no commit wait, or
  // for a serializable Range where FollowerReadAt says (at least the
  // client's min revision).
  const FollowerReadPoint point = request.serializable
                                      ? FollowerReadAt(request.min_revision)
                                      : FollowerReadPoint{coordinator_->ReadTimestamp(), {}};
  const Timestamp current = point.at;
  // Resolved by every shard already when from the replicas here.
  const Timestamp resolved = point.resolved.value_or(Timestamp());
  auto begun = coordinator_->Begin(std::nullopt, /*read_only=*/true,
                                   request.revision > 0 ? AtRevision(request.revision) : current);
  if (!begun.ok()) return done(ClusterError(begun.status()));
  const uint64_t id = begun->id;
  if (point.here()) (void)coordinator_->ReadHereFirst(id);
  // The answer's revision: the snapshot read, or for a read of the past the
  // newest snapshot (at or above the revision asked: every revision a
  // client holds is at or below it).
  const int64_t header =
      std::max(static_cast<int64_t>(current.value()), static_cast<int64_t>(begun->start.value()));
  // The answer waits for both the read and every shard's resolving of the
  // header (asked at once, in parallel with the read).
  struct Pending {
    int waiting = 2;
    std::optional<Reply<Scanned>> scanned;
  };
  auto pending = std::make_shared<Pending>();
  auto finish = [this, id, header, request, pending, alive = alive_, done = std::move(done)] {
    if (!*alive || --pending->waiting > 0) return;
    (void)coordinator_->Abort(id);
    Reply<Scanned>& scanned = *pending->scanned;
    if (!scanned.ok()) return done(scanned.error());
    auto resp = std::make_shared<RangeResponse>(
        ShapeRange(request, std::move(scanned.value().kvs), scanned.value().count, header));
    coordinator_->AfterCommitWait(AtRevision(header), [resp, done] { done(*resp); });
  };
  // A header at or below `here` every shard has resolved already.
  if (options_.frontier != nullptr && !(point.here() && AtRevision(header) <= resolved)) {
    // A shard that cannot resolve it in time (a two-phase commit left
    // pending) is not waited for longer: the answer is still a
    // linearizable read of the range, complete for the range read.
    options_.frontier->WaitFor(AtRevision(header), [finish](Status) { finish(); });
  } else {
    finish();
  }
  auto answer = [pending, finish](Reply<Scanned> scanned) {
    pending->scanned.emplace(std::move(scanned));
    finish();
  };
  // One key is read from its shard alone; a range from every shard.
  if (request.span.range_end.empty()) {
    return ReadKey(id, request.span.key, [answer](Reply<std::vector<KeyValue>> kvs) {
      if (!kvs.ok()) return answer(kvs.error());
      const auto count = static_cast<int64_t>(kvs.value().size());
      answer(Scanned{std::move(kvs.value()), count});
    });
  }
  // Without filters or a sort, the first limit + 1 keys decide the answer
  // (the one past the limit says there are more); the rest are counted.
  size_t keep = SIZE_MAX;
  if (request.count_only) {
    keep = 0;
  } else if (request.limit > 0 && !RangeNeedsAll(request)) {
    keep = static_cast<size_t>(request.limit) + 1;
  }
  const bool values = !request.keys_only || request.sort_target == SortTarget::kValue;
  ScanAll(id, request.span, keep, values, std::move(answer));
}

void ClusterKv::ReadKey(uint64_t txn, const std::string& key, Done<std::vector<KeyValue>> done) {
  coordinator_->Get(txn, EngineKey(key), [key, done = std::move(done)](Result<ReadResult> r) {
    if (!r.ok()) return done(ClusterError(r.status()));
    std::vector<KeyValue> out;
    if (r->found && !r->deleted) {
      auto kv = StoredToKeyValue(key, r->timestamp, r->value);
      if (!kv) return done(DamagedValue(key));
      out.push_back(std::move(*kv));
    }
    done(std::move(out));
  });
}

void ClusterKv::Put(const PutRequest& request, Done<PutResponse> done) {
  Write(request, std::move(done), /*here=*/false);
}

void ClusterKv::DeleteRange(const DeleteRangeRequest& request, Done<DeleteRangeResponse> done) {
  Write(request, std::move(done), /*here=*/false);
}

void ClusterKv::Txn(const TxnRequest& request, Done<TxnResponse> done) {
  Write(request, std::move(done), /*here=*/false);
}

void ClusterKv::Write(const PutRequest& request, Done<PutResponse> done, bool here) {
  if (auto e = CheckPut(request)) return done(*e);
  TxnFootprint footprint;
  footprint.keys.push_back(request.key);
  if (request.lease != 0) footprint.leases.push_back(request.lease);
  if (!here && ForwardToOwner(footprint, request, done)) return;
  StartWrite<PutResponse>(
      std::move(footprint),
      [request](TxnOverlay& txn) -> Reply<PutResponse> {
        if (request.lease != 0 && !txn.view().LeaseExists(request.lease)) {
          return etcd_errors::LeaseNotFound();
        }
        return RunPut(request, txn);
      },
      std::move(done));
}

void ClusterKv::Write(const DeleteRangeRequest& request, Done<DeleteRangeResponse> done,
                      bool here) {
  if (request.span.key.empty()) return done(etcd_errors::EmptyKey());
  TxnFootprint footprint;
  if (request.span.range_end.empty()) {
    footprint.keys.push_back(request.span.key);
  } else {
    footprint.spans.push_back(request.span);
  }
  if (!here && ForwardToOwner(footprint, request, done)) return;
  StartWrite<DeleteRangeResponse>(
      std::move(footprint), [request](TxnOverlay& txn) { return RunDeleteRange(request, txn); },
      std::move(done));
}

void ClusterKv::Write(const TxnRequest& request, Done<TxnResponse> done, bool here) {
  if (auto e = CheckTxnRequest(request, options_.max_txn_ops)) return done(*e);
  TxnFootprint footprint = FootprintOf(request);
  if (!here && ForwardToOwner(footprint, request, done)) return;
  StartWrite<TxnResponse>(
      std::move(footprint), [request](TxnOverlay& txn) { return RunTxn(request, txn); },
      std::move(done));
}

template <typename T>
bool ClusterKv::ForwardToOwner(const TxnFootprint& footprint, const KvWrite& write,
                               const Done<T>& done) {
  const KvWriteCodec* codec = options_.forward_codec;
  // A span or a past revision reads every shard: it runs here.
  if (codec == nullptr || footprint.keys.empty() || !footprint.spans.empty() ||
      !footprint.past_ranges.empty()) {
    return false;
  }
  std::vector<std::string> keys;
  for (const std::string& key : footprint.keys) keys.push_back(EngineKey(key));
  for (int64_t lease : footprint.leases) keys.push_back(ClusterLeases::RecordKey(lease));
  const cluster::ShardId owner = router_->OwnerOf(keys.front());
  if (owner == coordinator_->local_shard()) return false;
  for (const std::string& key : keys) {
    if (router_->OwnerOf(key) != owner) return false;
  }
  router_->Forward(keys.front(), std::string(kForwardTag) + codec->EncodeWrite(write),
                   [codec, done, alive = alive_](Result<std::string> forwarded) {
                     if (!*alive) return;
                     // Unanswered: the write may or may not have run there.
                     if (!forwarded.ok()) return done(ClusterError(forwarded.status()));
                     Reply<KvWriteReply> reply = codec->DecodeReply(*forwarded);
                     if (!reply.ok()) return done(reply.error());
                     if (T* answer = std::get_if<T>(&reply.value()))
                       return done(std::move(*answer));
                     done(ServiceError{ErrorCode::kInternal,
                                       "strata: the member owning the keys answered a forwarded "
                                       "write with a reply of another kind"});
                   });
  return true;
}

void ClusterKv::ServeForward(std::string_view request,
                             std::function<void(cluster::PeerReply)> respond) {
  const KvWriteCodec* codec = options_.forward_codec;
  std::optional<KvWrite> write;
  if (codec != nullptr && request.starts_with(kForwardTag)) {
    write = codec->DecodeWrite(request.substr(kForwardTag.size()));
  }
  if (!write) {
    return respond(
        cluster::PeerError{Status::InvalidArgument("a forwarded write this member cannot read")});
  }
  std::visit(
      [this, codec, &respond](const auto& typed) {
        using Response = typename ResponseOf<std::decay_t<decltype(typed)>>::type;
        Write(
            typed,
            [codec, respond](Reply<Response> reply) {
              const Reply<KvWriteReply> any =
                  reply.ok() ? Reply<KvWriteReply>(KvWriteReply(std::move(reply.value())))
                             : Reply<KvWriteReply>(reply.error());
              respond(cluster::ForwardReply{codec->EncodeReply(any)});
            },
            /*here=*/true);
      },
      *write);
}

void ClusterKv::ServeLanes(std::string_view request,
                           std::function<void(cluster::PeerReply)> respond) {
  locks_.Serve(request, [respond = std::move(respond)](std::string answer) {
    respond(cluster::ForwardReply{std::move(answer)});
  });
}

void ClusterKv::Compact(const CompactionRequest& request, Done<CompactionResponse> done) {
  const int64_t now = current_revision();
  if (request.revision > now) return done(etcd_errors::FutureRev());
  if (request.revision <= compact_revision_) return done(etcd_errors::Compacted());
  router_->Compact(AtRevision(request.revision), [this, request, now, alive = alive_,
                                                  done = std::move(done)](Result<CompactResult> r) {
    if (!*alive) return;
    if (!r.ok()) return done(ClusterError(r.status()));
    compact_revision_ = std::max(compact_revision_, request.revision);
    CompactionResponse resp;
    resp.header.revision = now;
    done(resp);
  });
}

template <typename T>
void ClusterKv::StartWrite(TxnFootprint footprint, std::function<Reply<T>(TxnOverlay&)> body,
                           Done<T> done) {
  // A range or a past read may meet any key: such a write takes no lane.
  if (footprint.keys.empty() || !footprint.spans.empty() || !footprint.past_ranges.empty()) {
    return RunWrite<T>(std::move(footprint), std::move(body), std::move(done), 0, WriteLanes{});
  }
  // Without forwarding, other members serve no lanes: this member's only.
  // (One key has one owner: a put does not look for others.)
  LanesByOwner by_owner;
  if (footprint.keys.size() > 1 && options_.forward_codec != nullptr) {
    for (const std::string& key : footprint.keys) {
      std::string engine_key = EngineKey(key);
      ShardLocks::OwnedKeys& owned = by_owner[router_->OwnerOf(engine_key)];
      if (owned.keys.empty()) owned.engine_key = std::move(engine_key);
      owned.keys.push_back(key);
    }
  }
  if (by_owner.size() > 1) {
    auto lanes = std::make_shared<const LanesByOwner>(std::move(by_owner));
    if (!locks_.AnyHot(footprint.keys)) {
      return RunWrite<T>(std::move(footprint), std::move(body), std::move(done), 0,
                         WriteLanes{false, std::move(lanes)});
    }
    return TakeLanesAndRun<T>(std::move(lanes), std::move(footprint), std::move(body),
                              std::move(done), 0);
  }
  std::vector<std::string> keys = footprint.keys;
  lanes_.Enter(keys, [this, keys, footprint = std::move(footprint), body = std::move(body),
                      done = std::move(done), alive = alive_]() mutable {
    if (!*alive) return;
    RunWrite<T>(
        std::move(footprint), std::move(body),
        [this, keys, done = std::move(done), alive](Reply<T> reply) {
          if (*alive) lanes_.Leave(keys);
          done(std::move(reply));
        },
        0, WriteLanes{true, nullptr});
  });
}

template <typename T>
void ClusterKv::TakeLanesAndRun(std::shared_ptr<const LanesByOwner> lanes, TxnFootprint footprint,
                                std::function<Reply<T>(TxnOverlay&)> body, Done<T> done,
                                int attempt) {
  const uint64_t id = coordinator_->FreshTimestamp().value();
  locks_.Acquire(id, *lanes,
                 [this, lanes, footprint = std::move(footprint), body = std::move(body),
                  done = std::move(done), attempt,
                  alive = alive_](ShardLocks::Release release, bool held) mutable {
                   if (!*alive) return;
                   RunWrite<T>(
                       std::move(footprint), std::move(body),
                       [release = std::move(release), done = std::move(done)](Reply<T> reply) {
                         release();
                         done(std::move(reply));
                       },
                       // Given up on, they are taken again after a lost
                       // conflict (an owner silent of late is passed over).
                       attempt, WriteLanes{held, lanes});
                 });
}

template <typename T>
void ClusterKv::RunWrite(TxnFootprint footprint, std::function<Reply<T>(TxnOverlay&)> body,
                         Done<T> done, int attempt, WriteLanes lanes, bool at_start) {
  auto begun = coordinator_->Begin(Isolation::kSerializable, /*read_only=*/false, std::nullopt);
  if (!begun.ok()) return done(ClusterError(begun.status()));
  std::function<void()> again_at_start;
  if (options_.writes_at_shard_clocks && !at_start && !footprint.keys.empty() &&
      footprint.spans.empty() && footprint.past_ranges.empty() &&
      // A lost conflict reads again at the leaders', the newest.
      coordinator_->StartAtShardClocks(begun->id, attempt > 0 || lanes.losses_in_lanes > 0).ok()) {
    again_at_start = [=, this, alive = alive_] {
      if (!*alive) return;
      ++writes_read_afresh_;
      RunWrite<T>(footprint, body, done, attempt, lanes, /*at_start=*/true);
    };
  }
  // A lost conflict runs the request again from a new snapshot: a write of
  // keys several members own first marks them hot and, unless it holds
  // them, takes their lanes; any other after a random wait that doubles
  // with each attempt (in lanes too: what it lost to does not wait in them,
  // and may come again at once). A write in the lanes of its keys loses
  // only to writes outside them (first attempts over several members of
  // keys not yet hot on theirs, writes that gave up on lanes, writes that
  // name ranges), each of which tries a bounded number of times: its
  // losses draw on a budget of their own, four times max_attempts, so that
  // a crowd of those cannot use up its attempts.
  auto on_conflict = [=, this](const Status& conflict) {
    WriteLanes next = lanes;
    int next_attempt = attempt + 1;
    if (lanes.several_owners) locks_.MarkHot(footprint.keys);
    if (lanes.held) {
      if (++next.losses_in_lanes < 4 * options_.max_attempts) next_attempt = attempt;
    }
    if (next_attempt >= options_.max_attempts) return done(ClusterError(conflict));
    if (!lanes.held && lanes.several_owners) {
      return TakeLanesAndRun<T>(lanes.several_owners, footprint, body, done, next_attempt);
    }
    if (options_.timers == nullptr) {
      return RunWrite<T>(footprint, body, done, next_attempt, next, at_start);
    }
    const int tries = std::min(attempt + next.losses_in_lanes, 20);
    const int64_t ceiling =
        std::min<int64_t>(options_.first_backoff.count() << tries, options_.max_backoff.count());
    const auto wait = std::chrono::milliseconds(backoff_random_() % (ceiling + 1));
    options_.timers->After(wait, [=, this, alive = alive_] {
      if (*alive) RunWrite<T>(footprint, body, done, next_attempt, next, at_start);
    });
  };
  RunIn<T>(begun->id, static_cast<int64_t>(begun->start.value()), std::move(footprint),
           std::move(body), std::move(done), std::move(on_conflict), std::move(again_at_start));
}

void ClusterKv::CommitWrites(uint64_t txn, int64_t snapshot,
                             const std::map<std::string, std::optional<std::string>>& writes,
                             Done<int64_t> done) {
  // The writes as one etcd Txn of puts and deletes, so their versions
  // follow etcd's rules exactly as a one-shot Txn's would.
  TxnRequest request;
  for (const auto& [key, value] : writes) {
    RequestOp& op = request.success.emplace_back();
    if (value) {
      PutRequest& put = op.op.emplace<PutRequest>();
      put.key = key;
      put.value = *value;
    } else {
      op.op.emplace<DeleteRangeRequest>().span.key = key;
    }
  }
  RunIn<TxnResponse>(
      txn, snapshot, FootprintOf(request), [request](TxnOverlay& t) { return RunTxn(request, t); },
      [done](Reply<TxnResponse> r) {
        if (!r.ok()) return done(r.error());
        done(r.value().header.revision);
      },
      [done](const Status& conflict) {
        done(ServiceError{ErrorCode::kAborted,
                          "strata: transaction conflict: " + std::string(conflict.message())});
      });
}

template <typename T>
void ClusterKv::RunIn(uint64_t id, int64_t base, TxnFootprint footprint,
                      std::function<Reply<T>(TxnOverlay&)> body, Done<T> done,
                      std::function<void(const Status&)> on_conflict,
                      std::function<void()> again_at_start) {
  // Read at its shards' clocks, what it read is current from the newest of
  // them up to its commit, which the commit checks: its reads' revision is
  // the one just before the commit's, stamped once that is known.
  if (again_at_start) base = kPendingBaseRevision;
  auto gather = std::make_shared<Gather>();
  gather->view = std::make_shared<GatheredView>(base, compact_revision_);
  gather->done = [this, id, base, body, done, on_conflict, again_at_start,
                  alive = alive_](Reply<std::shared_ptr<GatheredView>> view) {
    if (!*alive) return;
    if (!view.ok()) {
      (void)coordinator_->Abort(id);
      return done(view.error());
    }
    TxnOverlay txn(*view.value(), base, kPendingRevision);
    auto reply = std::make_shared<Reply<T>>(body(txn));
    // What it read is checked only by a commit: an answer without one is
    // given from a fresh snapshot.
    if (again_at_start && (!reply->ok() || !txn.changed())) {
      (void)coordinator_->Abort(id);
      return again_at_start();
    }
    if (!reply->ok()) {
      (void)coordinator_->Abort(id);
      return done(std::move(*reply));
    }
    for (BatchWrite& w : txn.TakeWrites()) {
      // A key put with a lease is attached to it in the same commit, so the
      // lease's end finds it (cluster_leases.h).
      std::optional<std::string> attachment;
      if (w.value) {
        auto sv = DecodeStoredValue(*w.value);
        if (sv && sv->lease != 0) attachment = ClusterLeases::AttachmentKey(sv->lease, w.key);
      }
      Status s = coordinator_->Write(id, EngineKey(w.key), std::move(w.value));
      if (s.ok() && attachment) s = coordinator_->Write(id, *attachment, std::string());
      if (!s.ok()) {
        (void)coordinator_->Abort(id);
        return done(ClusterError(s));
      }
    }
    // The commit waits until every clock is past its timestamp; a request
    // that wrote nothing answers at its snapshot, after the same wait.
    const bool changed = txn.changed();
    coordinator_->Commit(id, [=, this](Result<Timestamp> committed) {
      if (!*alive) return;
      if (!committed.ok()) {
        if (committed.status().code() == StatusCode::kConflict) {
          return on_conflict(committed.status());
        }
        // Read below what a shard has collected since: not the client's doing.
        if (again_at_start && committed.status().code() == StatusCode::kCompacted) {
          return again_at_start();
        }
        return done(ClusterError(committed.status()));
      }
      if (changed) {
        const auto revision = static_cast<int64_t>(committed->value());
        StampRevision(revision, &reply->value());
        StampRevision(revision - 1, &reply->value(), kPendingBaseRevision);
        return done(std::move(*reply));
      }
      coordinator_->AfterCommitWait(AtRevision(base), [reply, done] { done(std::move(*reply)); });
    });
  };

  GatheredView& v = *gather->view;
  auto fail = [gather](ServiceError e) {
    if (!gather->error) gather->error = std::move(e);
  };
  std::set<std::string> keys(footprint.keys.begin(), footprint.keys.end());
  for (const std::string& key : keys) {
    ++gather->waiting;
    ReadKey(id, key, [gather, key, fail](Reply<std::vector<KeyValue>> kvs) {
      if (!kvs.ok()) {
        fail(kvs.error());
      } else if (kvs.value().empty()) {
        gather->view->keys[key] = std::nullopt;
      } else {
        gather->view->keys[key] = std::move(kvs.value().front());
      }
      gather->Release();
    });
  }
  for (int64_t lease : std::set<int64_t>(footprint.leases.begin(), footprint.leases.end())) {
    ++gather->waiting;
    coordinator_->Get(id, ClusterLeases::RecordKey(lease),
                      [gather, lease, fail](Result<ReadResult> r) {
                        if (!r.ok()) {
                          fail(ClusterError(r.status()));
                        } else {
                          gather->view->leases[lease] = r->found && !r->deleted;
                        }
                        gather->Release();
                      });
  }
  std::set<std::pair<std::string, std::string>> spans;
  for (const KeySpan& span : footprint.spans) {
    if (!spans.insert({span.key, span.range_end}).second) continue;
    ++gather->waiting;
    ScanAll(id, span, SIZE_MAX, true, [gather, span, fail](Reply<Scanned> scanned) {
      if (scanned.ok()) {
        gather->view->spans.emplace_back(span, std::move(scanned.value().kvs));
      } else {
        fail(scanned.error());
      }
      gather->Release();
    });
  }
  // Range ops at a revision of their own read the past in a read-only
  // transaction each; one the rules will refuse (ahead of the snapshot,
  // below the compaction) is not read.
  for (const RangeRequest& r : footprint.past_ranges) {
    if (r.revision > base || r.revision < compact_revision_) continue;
    v.past.push_back({r.span, r.revision});
    const size_t index = v.past.size() - 1;
    auto past = coordinator_->Begin(std::nullopt, /*read_only=*/true, AtRevision(r.revision));
    if (!past.ok()) {
      v.past[index].kvs = ClusterError(past.status());
      continue;
    }
    ++gather->waiting;
    const uint64_t past_id = past->id;
    ScanAll(past_id, r.span, SIZE_MAX, true,
            [this, gather, index, past_id, alive = alive_](Reply<Scanned> scanned) {
              if (*alive) (void)coordinator_->Abort(past_id);
              if (scanned.ok()) {
                gather->view->past[index].kvs = std::move(scanned.value().kvs);
              } else {
                gather->view->past[index].kvs = scanned.error();
              }
              gather->Release();
            });
  }
  gather->Release();
}

}  // namespace strata::service
