#include "replication/incarnations.h"

#include <filesystem>
#include <random>
#include <utility>

#include "storage/coding.h"
#include "storage/file_util.h"

namespace strata::replication {

namespace {

constexpr const char* kFileName = "incarnation";
// A snapshot of a RegisteredState begins so; one that does not (written
// before the registry existed) is the inner state's alone, one of the
// first version holds incarnations only, and one of the second no
// placement.
constexpr std::string_view kSnapshotMagic = "strata-incarnations-3\n";
constexpr std::string_view kSecondSnapshotMagic = "strata-incarnations-2\n";
constexpr std::string_view kFirstSnapshotMagic = "strata-incarnations-1\n";
static_assert(kSnapshotMagic.size() == kFirstSnapshotMagic.size() &&
              kSnapshotMagic.size() == kSecondSnapshotMagic.size());
// A placement names at most this many members (a cluster's nodes are
// fewer: cluster/shard_groups.h).
constexpr uint64_t kMaxPlacement = 64;

void PutPlacement(std::string* out, const std::vector<raft::NodeId>& placement) {
  storage::PutVarint(out, placement.size());
  for (raft::NodeId node : placement) storage::PutVarint(out, node);
}

// A placement as PutPlacement wrote it; false if cut, empty (`may_be_empty`
// aside), too long, or naming a member twice or kNobody.
bool ReadPlacement(storage::Decoder* in, std::vector<raft::NodeId>* placement, bool may_be_empty) {
  uint64_t count = 0;
  if (!in->Varint(&count) || count > kMaxPlacement || (count == 0 && !may_be_empty)) return false;
  std::set<raft::NodeId> seen;
  placement->clear();
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t node = 0;
    if (!in->Varint(&node) || node == raft::kNobody || !seen.insert(node).second) return false;
    placement->push_back(node);
  }
  return true;
}

void PutAttributes(std::string* out, const std::string& name,
                   const std::vector<std::string>& client_urls) {
  storage::PutBytes(out, name);
  storage::PutVarint(out, client_urls.size());
  for (const std::string& url : client_urls) storage::PutBytes(out, url);
}

bool ReadString(storage::Decoder* in, std::string* out) {
  std::string_view bytes;
  if (!in->Bytes(&bytes)) return false;
  out->assign(bytes);
  return true;
}

// A record's name and client URLs (`with_peer_url`: its peer URL first).
bool ReadRecord(storage::Decoder* in, MemberRecord* record, bool with_peer_url) {
  if (with_peer_url && !ReadString(in, &record->peer_url)) return false;
  uint64_t count = 0;
  if (!ReadString(in, &record->name) || !in->Varint(&count) || count > in->rest().size()) {
    return false;
  }
  record->client_urls.resize(count);
  for (std::string& url : record->client_urls) {
    if (!ReadString(in, &url)) return false;
  }
  return true;
}

uint64_t NewIncarnation() {
  std::random_device random;
  uint64_t incarnation = 0;
  while (incarnation == 0) incarnation = (uint64_t{random()} << 32) | random();
  return incarnation;
}

}  // namespace

bool HasIncarnation(const std::string& dir) {
  if (dir.empty()) return false;  // in memory: new at each start
  std::error_code ec;
  return std::filesystem::exists(storage::JoinPath(dir, kFileName), ec);
}

Result<uint64_t> KeepIncarnation(const std::string& dir) {
  if (dir.empty()) return NewIncarnation();  // in memory: kept nowhere
  const std::string path = storage::JoinPath(dir, kFileName);
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    Result<std::string> kept = storage::ReadWholeFile(path);
    if (!kept.ok()) return kept.status();
    storage::Decoder in(*kept);
    uint64_t incarnation = 0;
    if (!in.Varint(&incarnation) || !in.done() || incarnation == 0) {
      return Status::InvalidArgument(path + " does not hold an incarnation (damaged?)");
    }
    return incarnation;
  }
  const uint64_t incarnation = NewIncarnation();
  std::string bytes;
  storage::PutVarint(&bytes, incarnation);
  if (Status kept = storage::ReplaceFileDurably(dir, kFileName, bytes); !kept.ok()) return kept;
  return incarnation;
}

RegisteredState::RegisteredState(std::unique_ptr<ReplicatedState> inner)
    : inner_(std::move(inner)) {}

std::string RegisteredState::RegisterCommand(raft::NodeId node, uint64_t incarnation) {
  std::string out(1, kRegisterByte);
  storage::PutVarint(&out, node);
  storage::PutVarint(&out, incarnation);
  return out;
}

std::string RegisteredState::AttributesCommand(raft::NodeId node, const std::string& name,
                                               const std::vector<std::string>& client_urls) {
  std::string out(1, kAttributesByte);
  storage::PutVarint(&out, node);
  PutAttributes(&out, name, client_urls);
  return out;
}

std::string RegisteredState::PlacementCommand(const std::vector<raft::NodeId>& placement) {
  std::string out(1, kPlacementByte);
  PutPlacement(&out, placement);
  return out;
}

std::optional<uint64_t> RegisteredState::incarnation(raft::NodeId node) const {
  auto it = known_.find(node);
  if (it == known_.end()) return std::nullopt;
  return it->second;
}

std::string RegisteredState::Apply(raft::Index index, std::string_view command) {
  if (command.empty() || (command.front() != kRegisterByte && command.front() != kAttributesByte &&
                          command.front() != kPlacementByte)) {
    return inner_->Apply(index, command);
  }
  storage::Decoder in(command.substr(1));
  if (command.front() == kPlacementByte) {
    std::vector<raft::NodeId> placement;
    if (ReadPlacement(&in, &placement, /*may_be_empty=*/false) && in.done()) {
      placement_ = std::move(placement);
    }
    return "";
  }
  uint64_t node = 0;
  // Every replica reads the same bytes alike: one that does not decode is
  // ignored everywhere.
  if (!in.Varint(&node) || node == raft::kNobody) return "";
  if (command.front() == kRegisterByte) {
    uint64_t incarnation = 0;
    if (in.Varint(&incarnation) && in.done() && incarnation != 0) known_.emplace(node, incarnation);
    return "";
  }
  MemberRecord attributes;
  if (!ReadRecord(&in, &attributes, /*with_peer_url=*/false) || !in.done() || removed(node)) {
    return "";
  }
  MemberRecord& record = members_[node];
  record.name = std::move(attributes.name);
  record.client_urls = std::move(attributes.client_urls);
  Tell(node);
  return "";
}

void RegisteredState::ApplyConfChange(raft::Index, const raft::ConfChange& change) {
  if (change.kind == raft::ConfChange::Kind::kRemove) {
    known_.erase(change.node);
    members_.erase(change.node);
    removed_.insert(change.node);
    Tell(change.node);
    return;
  }
  removed_.erase(change.node);
  // A promotion carries no context: the learner's record stands.
  if (change.context.empty()) return;
  members_[change.node].peer_url = change.context;
  Tell(change.node);
}

void RegisteredState::Tell(raft::NodeId node) const {
  if (!observer_) return;
  auto it = members_.find(node);
  observer_(node, it == members_.end() ? nullptr : &it->second);
}

std::string RegisteredState::SavedRegistry() const {
  std::string out(kSnapshotMagic);
  storage::PutVarint(&out, known_.size());
  for (const auto& [node, incarnation] : known_) {
    storage::PutVarint(&out, node);
    storage::PutVarint(&out, incarnation);
  }
  storage::PutVarint(&out, members_.size());
  for (const auto& [node, record] : members_) {
    storage::PutVarint(&out, node);
    storage::PutBytes(&out, record.peer_url);
    PutAttributes(&out, record.name, record.client_urls);
  }
  storage::PutVarint(&out, removed_.size());
  for (raft::NodeId node : removed_) storage::PutVarint(&out, node);
  PutPlacement(&out, placement_);
  return out;
}

std::string RegisteredState::Save() const { return SavedRegistry() + inner_->Save(); }

std::function<std::string()> RegisteredState::SaveLater() {
  return [registry = SavedRegistry(), inner = inner_->SaveLater()] { return registry + inner(); };
}

Status RegisteredState::Restore(std::string_view snapshot) {
  std::map<raft::NodeId, uint64_t> known;
  std::map<raft::NodeId, MemberRecord> members;
  std::set<raft::NodeId> removed;
  std::vector<raft::NodeId> placement;
  const std::string_view magic = snapshot.substr(0, kSnapshotMagic.size());
  const bool third = magic == kSnapshotMagic;
  const bool second = third || magic == kSecondSnapshotMagic;
  if (second || magic == kFirstSnapshotMagic) {
    const Status cut = Status::InvalidArgument("a snapshot's registry of members is cut");
    storage::Decoder in(snapshot.substr(kSnapshotMagic.size()));
    uint64_t count = 0;
    if (!in.Varint(&count)) return cut;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t node = 0, incarnation = 0;
      if (!in.Varint(&node) || !in.Varint(&incarnation)) return cut;
      known.emplace(node, incarnation);
    }
    if (second) {
      if (!in.Varint(&count)) return cut;
      for (uint64_t i = 0; i < count; ++i) {
        uint64_t node = 0;
        if (!in.Varint(&node) || !ReadRecord(&in, &members[node], /*with_peer_url=*/true)) {
          return cut;
        }
      }
      if (!in.Varint(&count)) return cut;
      for (uint64_t i = 0; i < count; ++i) {
        uint64_t node = 0;
        if (!in.Varint(&node)) return cut;
        removed.insert(node);
      }
    }
    if (third && !ReadPlacement(&in, &placement, /*may_be_empty=*/true)) return cut;
    snapshot = in.rest();
  }
  if (Status restored = inner_->Restore(snapshot); !restored.ok()) return restored;
  std::set<raft::NodeId> changed = removed;
  for (const auto& [node, record] : members_) changed.insert(node);
  for (const auto& [node, record] : members) changed.insert(node);
  known_ = std::move(known);
  members_ = std::move(members);
  removed_ = std::move(removed);
  placement_ = std::move(placement);
  for (raft::NodeId node : changed) Tell(node);
  return Status::Ok();
}

}  // namespace strata::replication
