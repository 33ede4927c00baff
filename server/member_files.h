// Small files a cluster member keeps in its data directory beside its
// stores (its copy of the member list, its replication factor): written
// whole or not at all, read whole.
//
// Why not storage/file_util: the server layer does not reach into storage
// (scripts/check-layers.py), and these files need nothing of a log's.
#ifndef STRATA_SERVER_MEMBER_FILES_H_
#define STRATA_SERVER_MEMBER_FILES_H_

#include <optional>
#include <string>

#include "strata/status.h"

namespace strata::server {

// Writes `bytes` to `path` through a temporary file synced and renamed
// over it, then syncs the directory: after a crash the file holds the old
// bytes or the new ones, and once this returns Ok, the new ones.
Status WriteFileDurably(const std::string& path, const std::string& bytes);

// The whole file; nullopt if there is none; an IoError naming the file if
// it cannot be read.
Result<std::optional<std::string>> ReadFileIfAny(const std::string& path);

}  // namespace strata::server

#endif  // STRATA_SERVER_MEMBER_FILES_H_
