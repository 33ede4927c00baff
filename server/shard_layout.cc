#include "server/shard_layout.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>

#include "server/member_files.h"

namespace strata::server {

namespace {

std::string RecordPath(const std::string& data_dir) { return data_dir + "/replication-factor"; }

// The recorded factor: one decimal number and a newline.
Result<std::optional<uint32_t>> ReadRecord(const std::string& data_dir) {
  const std::string path = RecordPath(data_dir);
  Result<std::optional<std::string>> bytes = ReadFileIfAny(path);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<uint32_t>();
  const std::string& text = **bytes;
  uint32_t factor = 0;
  const char* end = text.data() + text.size();
  auto [at, error] = std::from_chars(text.data(), end, factor);
  if (error != std::errc() || factor < 1 || factor > 16 || at + 1 != end || *at != '\n') {
    return Status::IoError(path + " does not hold a replication factor (a number from 1 to 16 " +
                           "and a newline): mend or remove it, and start with the factor the " +
                           "member was started with");
  }
  return std::optional<uint32_t>(factor);
}

std::string Factor(uint32_t factor) {
  return factor == 1 ? std::string("1 replica a shard (each shard on its member alone)")
                     : std::to_string(factor) + " replicas a shard";
}

}  // namespace

std::string ShardRaftDir(const std::string& data_dir) { return data_dir + "/shard-raft"; }

Result<ShardLayout> ChooseShardLayout(const ShardLayoutInputs& in) {
  const auto capped = [&](uint32_t factor) {
    return static_cast<uint32_t>(std::clamp<size_t>(factor, 1, std::max<size_t>(in.members, 1)));
  };
  std::optional<uint32_t> recorded;
  bool holds_raft_log = false;
  if (!in.data_dir.empty()) {
    Result<std::optional<uint32_t>> record = ReadRecord(in.data_dir);
    if (!record.ok()) return record.status();
    recorded = *record;
    std::error_code ec;
    holds_raft_log = std::filesystem::exists(ShardRaftDir(in.data_dir), ec);
  }

  ShardLayout layout;
  if (recorded) {
    if (in.flag != 0 && capped(in.flag) != *recorded) {
      return Status::InvalidArgument(
          "--replication-factor " + std::to_string(in.flag) + ": the data directory " +
          in.data_dir + " is a member's of a cluster with " + Factor(*recorded) + " (" +
          RecordPath(in.data_dir) +
          "), which cannot change yet: give that factor, or leave the flag out");
    }
    layout = {*recorded, Factor(*recorded) + ", as " + RecordPath(in.data_dir) + " records"};
  } else if (in.flag != 0) {
    layout = {capped(in.flag),
              Factor(capped(in.flag)) + " (--replication-factor " + std::to_string(in.flag) + ")"};
  } else if (in.holds_own_keys && !holds_raft_log) {
    layout = {1, Factor(1) +
                     ": the data directory holds keys kept so, from before the factor "
                     "was recorded"};
  } else {
    const uint32_t factor = capped(kDefaultReplicationFactor);
    layout = {factor, Factor(factor) +
                          " (the default: " + std::to_string(kDefaultReplicationFactor) +
                          ", or as many as there are members if fewer)"};
  }

  // What the data directory holds must be what the factor serves.
  if (layout.replication_factor > 1 && in.holds_own_keys) {
    return Status::InvalidArgument(
        "--replication-factor " + std::to_string(layout.replication_factor) +
        ": the data directory " + in.data_dir +
        " holds keys of a cluster whose shards are not replicated (factor 1), which its "
        "shards' Raft groups would not serve; keep the factor it was started with, or move the "
        "keys over with etcdctl snapshot save and --restore into a new cluster");
  }
  if (layout.replication_factor == 1 && holds_raft_log) {
    return Status::InvalidArgument(
        "the data directory " + in.data_dir +
        " holds replicated shards' Raft logs, which a member without replicas would not "
        "serve: give the --replication-factor it was started with");
  }
  return layout;
}

Status RecordShardLayout(const std::string& data_dir, uint32_t factor) {
  Result<std::optional<uint32_t>> record = ReadRecord(data_dir);
  if (!record.ok()) return record.status();  // damage is not written over
  if (record->has_value()) return Status::Ok();
  return WriteFileDurably(RecordPath(data_dir), std::to_string(factor) + "\n");
}

}  // namespace strata::server
