#include "replication/member_id.h"

#include <cstdio>
#include <filesystem>

#include "storage/file_util.h"

namespace strata::replication {

namespace {

constexpr const char* kFileName = "member-id";
// Where a strata before membership changes kept its list of names.
constexpr const char* kNamesFileName = "members";

std::string Hex(uint64_t id) {
  char text[17];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(id));
  return text;
}

}  // namespace

Status KeepMemberId(const std::string& dir, uint64_t id) {
  const std::string path = storage::JoinPath(dir, kFileName);
  const std::string wanted = Hex(id) + "\n";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    Result<std::string> kept = storage::ReadWholeFile(path);
    if (!kept.ok()) return kept.status();
    if (*kept == wanted) return Status::Ok();
    std::string kept_id = *kept;
    if (!kept_id.empty() && kept_id.back() == '\n') kept_id.pop_back();
    return Status::InvalidArgument(
        "this member first started as member " + kept_id + " (kept in " + path +
        "), now its flags make it member " + Hex(id) +
        ": a member's peer URL and --initial-cluster-token cannot change (docs/REPLICATION.md)");
  }
  if (std::filesystem::exists(storage::JoinPath(dir, kNamesFileName), ec)) {
    return Status::InvalidArgument(
        dir +
        " was made by a strata that numbered a replicated cluster's members by name; this "
        "one numbers them by their etcd member id: start the cluster from empty data "
        "directories (docs/REPLICATION.md)");
  }
  return storage::ReplaceFileDurably(dir, kFileName, wanted);
}

}  // namespace strata::replication
