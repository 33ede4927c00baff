#include "service/kv_replica.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "service/snapshot.h"
#include "storage/coding.h"

namespace strata::service {

namespace {

constexpr char kWrite = 'W';
constexpr char kCompact = 'C';
// A compaction's reply: kDone and the header's revision, or kFailed, the
// error's code and its text.
constexpr char kDone = '+';
constexpr char kFailed = '-';

ServiceError NotACommand() {
  return {ErrorCode::kInternal, "strata: a replicated command this replica cannot read"};
}

std::string EncodeCompactReply(const Reply<CompactionResponse>& reply) {
  std::string out;
  if (reply.ok()) {
    out.push_back(kDone);
    storage::PutVarint(&out, static_cast<uint64_t>(reply.value().header.revision));
  } else {
    out.push_back(kFailed);
    storage::PutVarint(&out, static_cast<uint64_t>(reply.error().code));
    storage::PutBytes(&out, reply.error().message);
  }
  return out;
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
  kv_ = std::make_unique<KvService>(store_.get(), pipeline_.get(), nullptr, options);
}

std::string KvReplica::WriteCommand(const KvWriteCodec& codec, const KvWrite& write) {
  return kWrite + codec.EncodeWrite(write);
}

std::string KvReplica::CompactCommand(int64_t revision) {
  std::string out(1, kCompact);
  storage::PutVarint(&out, static_cast<uint64_t>(revision));
  return out;
}

std::string KvReplica::Apply(std::string_view command) {
  if (command.empty()) return codec_->EncodeReply(NotACommand());
  const char kind = command.front();
  command.remove_prefix(1);
  if (kind == kCompact) {
    storage::Decoder in(command);
    uint64_t revision = 0;
    if (!in.Varint(&revision) || !in.done()) return EncodeCompactReply(NotACommand());
    std::optional<Reply<CompactionResponse>> reply;
    kv_->Compact(CompactionRequest{static_cast<int64_t>(revision), false},
                 [&](Reply<CompactionResponse> r) { reply = std::move(r); });
    return EncodeCompactReply(*reply);
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
  storage::Decoder in(reply.empty() ? reply : reply.substr(1));
  if (!reply.empty() && reply.front() == kDone) {
    uint64_t revision = 0;
    if (in.Varint(&revision) && in.done()) {
      CompactionResponse response;
      response.header.revision = static_cast<int64_t>(revision);
      return response;
    }
  } else if (!reply.empty() && reply.front() == kFailed) {
    uint64_t code = 0;
    std::string_view message;
    if (in.Varint(&code) && in.Bytes(&message) && in.done()) {
      return ServiceError{static_cast<ErrorCode>(code), std::string(message)};
    }
  }
  return NotACommand();
}

std::string KvReplica::Save() const {
  SnapshotWriter writer(store_.get(), {}, "", kv_->current_revision(),
                        [kv = kv_.get()] { return kv->compact_revision(); });
  std::string out;
  for (std::string piece = writer.Next(size_t{1} << 20); !piece.empty();
       piece = writer.Next(size_t{1} << 20)) {
    out += piece;
  }
  return out;
}

Status KvReplica::Restore(std::string_view snapshot) {
  auto store = std::make_unique<MvccStore>();
  if (!snapshot.empty()) {
    Result<RestoreReport> restored = RestoreNodeSnapshot(snapshot, store.get(), nullptr);
    if (!restored.ok()) return restored.status();
  }
  Reset(std::move(store));
  return Status::Ok();
}

}  // namespace strata::service
