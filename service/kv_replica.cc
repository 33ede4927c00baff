#include "service/kv_replica.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "service/snapshot.h"
#include "storage/coding.h"

namespace strata::service {

namespace {

constexpr char kWrite = 'W';
constexpr char kCompact = 'C';
constexpr char kGrant = 'G';
constexpr char kRevoke = 'R';
// The reply of a compaction, grant or revocation: kDone and its numbers
// (a revision; a lease's id, TTL and revision), or kFailed, the error's
// code and its text.
constexpr char kDone = '+';
constexpr char kFailed = '-';

ServiceError NotACommand() {
  return {ErrorCode::kInternal, "strata: a replicated command this replica cannot read"};
}

std::string EncodeNumbersReply(const Reply<std::vector<int64_t>>& reply) {
  std::string out;
  if (reply.ok()) {
    out.push_back(kDone);
    for (int64_t n : reply.value()) storage::PutVarint(&out, static_cast<uint64_t>(n));
  } else {
    out.push_back(kFailed);
    storage::PutVarint(&out, static_cast<uint64_t>(reply.error().code));
    storage::PutBytes(&out, reply.error().message);
  }
  return out;
}

// A command that is a kind and one or two numbers.
std::string NumbersCommand(char kind, std::initializer_list<int64_t> numbers) {
  std::string out(1, kind);
  for (int64_t n : numbers) storage::PutVarint(&out, static_cast<uint64_t>(n));
  return out;
}

// Exactly `count` numbers (a command's after its kind, a reply's after
// kDone); nullopt if `body` is anything else.
std::optional<std::vector<int64_t>> ReadNumbers(std::string_view body, size_t count) {
  storage::Decoder in(body);
  std::vector<int64_t> numbers(count);
  for (int64_t& n : numbers) {
    uint64_t v = 0;
    if (!in.Varint(&v)) return std::nullopt;
    n = static_cast<int64_t>(v);
  }
  if (!in.done()) return std::nullopt;
  return numbers;
}

// Reads a reply of `count` numbers (or the error it carries).
Reply<std::vector<int64_t>> DecodeNumbersReply(std::string_view reply, size_t count) {
  if (!reply.empty() && reply.front() == kDone) {
    if (auto numbers = ReadNumbers(reply.substr(1), count)) return *numbers;
  } else if (!reply.empty() && reply.front() == kFailed) {
    storage::Decoder in(reply.substr(1));
    uint64_t code = 0;
    std::string_view message;
    if (in.Varint(&code) && in.Bytes(&message) && in.done()) {
      return ServiceError{static_cast<ErrorCode>(code), std::string(message)};
    }
  }
  return NotACommand();
}

}  // namespace

KvReplica::KvReplica(const KvWriteCodec* codec, size_t max_txn_ops, WatchHub* hub)
    : codec_(codec), max_txn_ops_(max_txn_ops), hub_(hub) {
  Reset(std::make_unique<MvccStore>());
}

KvReplica::~KvReplica() = default;

void KvReplica::Reset(std::unique_ptr<MvccStore> store) {
  kv_.reset();
  pipeline_.reset();
  store_ = std::move(store);
  const auto max_ts = store_->max_timestamp();
  const int64_t revision = std::max<int64_t>(KvService::kFirstRevision,
                                             max_ts ? static_cast<int64_t>(max_ts->value()) : 0);
  // In memory: a revision is visible once applied (Raft made it durable).
  pipeline_ = std::make_unique<CommitPipeline>(std::nullopt, revision);
  if (hub_ != nullptr) {
    hub_->Rebase(store_, revision);
    pipeline_->SetEventSink([hub = hub_](int64_t applied, std::vector<Event>&& events) {
      hub->Publish(applied, std::move(events));
    });
  }
  KvServiceOptions options;
  options.max_txn_ops = max_txn_ops_;
  // A save under way holds the sweep (SaveLater); a new engine has none.
  save_floor_ = INT64_MAX;
  options.compaction_floor = [this] { return save_floor_; };
  kv_ = std::make_unique<KvService>(store_.get(), pipeline_.get(), &leases_, options);
}

std::string KvReplica::WriteCommand(const KvWriteCodec& codec, const KvWrite& write) {
  return kWrite + codec.EncodeWrite(write);
}

std::string KvReplica::CompactCommand(int64_t revision) {
  return NumbersCommand(kCompact, {revision});
}

std::string KvReplica::GrantCommand(int64_t id, int64_t ttl) {
  return NumbersCommand(kGrant, {id, ttl});
}

std::string KvReplica::RevokeCommand(int64_t id) { return NumbersCommand(kRevoke, {id}); }

std::string KvReplica::Apply(std::string_view command) {
  if (command.empty()) return codec_->EncodeReply(NotACommand());
  const char kind = command.front();
  command.remove_prefix(1);
  if (kind == kCompact || kind == kGrant || kind == kRevoke) {
    const auto numbers = ReadNumbers(command, kind == kGrant ? 2 : 1);
    if (!numbers) return EncodeNumbersReply(NotACommand());
    // The pipeline is in memory: every Done below runs before it returns.
    std::optional<Reply<std::vector<int64_t>>> reply;
    if (kind == kCompact) {
      kv_->Compact(CompactionRequest{(*numbers)[0], false}, [&](Reply<CompactionResponse> r) {
        reply = r.ok() ? Reply<std::vector<int64_t>>(std::vector{r.value().header.revision})
                       : Reply<std::vector<int64_t>>(r.error());
      });
    } else if (kind == kGrant) {
      const int64_t id = (*numbers)[0], ttl = (*numbers)[1];
      reply = id == 0 || !leases_.Grant(id, ttl)
                  ? Reply<std::vector<int64_t>>(etcd_errors::LeaseExist())
                  : Reply<std::vector<int64_t>>(std::vector{id, ttl, kv_->current_revision()});
    } else {
      kv_->RevokeLease((*numbers)[0], [&](Reply<int64_t> r) {
        reply = r.ok() ? Reply<std::vector<int64_t>>(std::vector{r.value()})
                       : Reply<std::vector<int64_t>>(r.error());
      });
    }
    return EncodeNumbersReply(*reply);
  }
  std::optional<KvWrite> write;
  if (kind == kWrite) write = codec_->DecodeWrite(command);
  if (!write) return codec_->EncodeReply(NotACommand());
  // The pipeline is in memory: every Done below runs before it returns.
  std::optional<Reply<KvWriteReply>> reply;
  const auto keep = [&](auto r) {
    reply = r.ok() ? Reply<KvWriteReply>(KvWriteReply(std::move(r.value())))
                   : Reply<KvWriteReply>(r.error());
  };
  std::visit(
      [&](const auto& request) {
        using T = std::decay_t<decltype(request)>;
        if constexpr (std::is_same_v<T, PutRequest>) {
          kv_->Put(request, [&](Reply<PutResponse> r) { keep(std::move(r)); });
        } else if constexpr (std::is_same_v<T, DeleteRangeRequest>) {
          kv_->DeleteRange(request, [&](Reply<DeleteRangeResponse> r) { keep(std::move(r)); });
        } else {
          kv_->Txn(request, [&](Reply<TxnResponse> r) { keep(std::move(r)); });
        }
      },
      *write);
  return codec_->EncodeReply(*reply);
}

Reply<KvWriteReply> KvReplica::DecodeWriteReply(std::string_view reply) const {
  return codec_->DecodeReply(reply);
}

Reply<CompactionResponse> KvReplica::DecodeCompactReply(std::string_view reply) {
  auto numbers = DecodeNumbersReply(reply, 1);
  if (!numbers.ok()) return numbers.error();
  CompactionResponse response;
  response.header.revision = numbers.value()[0];
  return response;
}

Reply<LeaseGrantResult> KvReplica::DecodeGrantReply(std::string_view reply) {
  auto numbers = DecodeNumbersReply(reply, 3);
  if (!numbers.ok()) return numbers.error();
  return LeaseGrantResult{numbers.value()[0], numbers.value()[1], numbers.value()[2]};
}

Reply<int64_t> KvReplica::DecodeRevokeReply(std::string_view reply) {
  auto numbers = DecodeNumbersReply(reply, 1);
  if (!numbers.ok()) return numbers.error();
  return numbers.value()[0];
}

namespace {

// The node snapshot stream of `store` at `revision`, whole.
std::string SnapshotBytes(const MvccStore& store, std::vector<std::pair<int64_t, int64_t>> leases,
                          int64_t revision, int64_t compacted) {
  SnapshotWriter writer(&store, std::move(leases), "", revision, [compacted] { return compacted; });
  std::string out;
  for (std::string piece = writer.Next(size_t{1} << 20); !piece.empty();
       piece = writer.Next(size_t{1} << 20)) {
    out += piece;
  }
  return out;
}

}  // namespace

std::string KvReplica::Save() const {
  return SnapshotBytes(*store_, leases_.Granted(), kv_->current_revision(),
                       kv_->compact_revision());
}

std::function<std::string()> KvReplica::SaveLater() {
  const int64_t compacted = kv_->compact_revision();
  save_floor_ = compacted;
  return [store = std::shared_ptr<const MvccStore>(store_), leases = leases_.Granted(),
          revision = kv_->current_revision(),
          compacted] { return SnapshotBytes(*store, leases, revision, compacted); };
}

void KvReplica::SaveFinished() {
  save_floor_ = INT64_MAX;
  kv_->ApplyDeferredCompaction();
}

Status KvReplica::Restore(std::string_view snapshot) {
  auto store = std::make_unique<MvccStore>();
  std::vector<std::pair<int64_t, int64_t>> leases;
  if (!snapshot.empty()) {
    Result<RestoreReport> restored = RestoreNodeSnapshot(snapshot, store.get(), &leases);
    if (!restored.ok()) return restored.status();
  }
  Reset(std::move(store));
  // The leases, then their keys (from each key's own lease field).
  leases_.Load(leases);
  kv_->ForEachLeasedKey(
      [&](const std::string& key, int64_t lease) { leases_.Move(key, 0, lease); });
  return Status::Ok();
}

}  // namespace strata::service
