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
// before the registry existed) is the inner state's alone.
constexpr std::string_view kSnapshotMagic = "strata-incarnations-1\n";

}  // namespace

Result<uint64_t> KeepIncarnation(const std::string& dir) {
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
  std::random_device random;
  uint64_t incarnation = 0;
  while (incarnation == 0) incarnation = (uint64_t{random()} << 32) | random();
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

std::optional<uint64_t> RegisteredState::incarnation(raft::NodeId node) const {
  auto it = known_.find(node);
  if (it == known_.end()) return std::nullopt;
  return it->second;
}

std::string RegisteredState::Apply(raft::Index index, std::string_view command) {
  if (command.empty() || command.front() != kRegisterByte) return inner_->Apply(index, command);
  storage::Decoder in(command.substr(1));
  uint64_t node = 0, incarnation = 0;
  // Every replica reads the same bytes alike: one that does not decode is
  // ignored everywhere.
  if (in.Varint(&node) && in.Varint(&incarnation) && in.done() && incarnation != 0) {
    known_.emplace(node, incarnation);
  }
  return "";
}

std::string RegisteredState::SavedRegistry() const {
  std::string out(kSnapshotMagic);
  storage::PutVarint(&out, known_.size());
  for (const auto& [node, incarnation] : known_) {
    storage::PutVarint(&out, node);
    storage::PutVarint(&out, incarnation);
  }
  return out;
}

std::string RegisteredState::Save() const { return SavedRegistry() + inner_->Save(); }

std::function<std::string()> RegisteredState::SaveLater() {
  return [registry = SavedRegistry(), inner = inner_->SaveLater()] { return registry + inner(); };
}

Status RegisteredState::Restore(std::string_view snapshot) {
  std::map<raft::NodeId, uint64_t> known;
  if (snapshot.substr(0, kSnapshotMagic.size()) == kSnapshotMagic) {
    storage::Decoder in(snapshot.substr(kSnapshotMagic.size()));
    uint64_t count = 0;
    if (!in.Varint(&count)) return Status::InvalidArgument("a snapshot's incarnations are cut");
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t node = 0, incarnation = 0;
      if (!in.Varint(&node) || !in.Varint(&incarnation)) {
        return Status::InvalidArgument("a snapshot's incarnations are cut");
      }
      known.emplace(node, incarnation);
    }
    snapshot = in.rest();
  }
  if (Status restored = inner_->Restore(snapshot); !restored.ok()) return restored;
  known_ = std::move(known);
  return Status::Ok();
}

}  // namespace strata::replication
