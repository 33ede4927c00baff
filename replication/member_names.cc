#include "replication/member_names.h"

#include <filesystem>

#include "storage/file_util.h"

namespace strata::replication {

namespace {

constexpr const char* kFileName = "members";

std::string Joined(const std::vector<std::string>& names, const char* separator) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += separator;
    out += name;
  }
  return out;
}

}  // namespace

Status KeepMemberNames(const std::string& dir, const std::vector<std::string>& names) {
  const std::string path = storage::JoinPath(dir, kFileName);
  const std::string wanted = Joined(names, "\n") + "\n";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    Result<std::string> kept = storage::ReadWholeFile(path);
    if (!kept.ok()) return kept.status();
    if (*kept == wanted) return Status::Ok();
    std::string kept_list = *kept;
    for (char& c : kept_list) {
      if (c == '\n') c = ',';
    }
    if (!kept_list.empty() && kept_list.back() == ',') kept_list.pop_back();
    return Status::InvalidArgument(
        "this member first started with the members " + kept_list + " (kept in " + path +
        "), now with " + Joined(names, ",") +
        ": a replicated cluster's members cannot change yet (docs/REPLICATION.md)");
  }
  return storage::ReplaceFileDurably(dir, kFileName, wanted);
}

}  // namespace strata::replication
