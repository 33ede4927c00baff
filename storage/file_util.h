// Thin POSIX helpers for the storage layer: every failure becomes a Status
// whose message names the file and the system's reason.
//
// Written on raw POSIX calls rather than std::filesystem/fstream because the
// log needs what those hide: fdatasync, fallocate, pwrite at an offset,
// fsync of a directory, and the errno of each failure.
#ifndef STRATA_STORAGE_FILE_UTIL_H_
#define STRATA_STORAGE_FILE_UTIL_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/status.h"

namespace strata::storage {

// "<what> <path>: <strerror(err)>" as kUnavailable.
Status ErrnoStatus(std::string_view what, const std::string& path, int err);

// An owned file descriptor, closed on destruction.
class File final {
 public:
  File() = default;
  explicit File(int fd) : fd_(fd) {}
  ~File();
  File(File&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string JoinPath(const std::string& dir, std::string_view name);
// "<prefix><number, 20 digits><suffix>", the names of the log's segments
// and checkpoints (zero-padded, so names sort as their numbers do), and the
// number back from such a name (nullopt for any other name).
std::string NumberedFileName(std::string_view prefix, uint64_t number, std::string_view suffix);
std::optional<uint64_t> ParseNumberedFileName(std::string_view name, std::string_view prefix,
                                              std::string_view suffix);

// Creates `dir` (one level) if it does not exist.
Status CreateDir(const std::string& dir);
Result<std::vector<std::string>> ListDir(const std::string& dir);
// Makes the directory's entries (created, renamed, removed files) durable.
Status SyncDir(const std::string& dir);
Result<File> OpenFile(const std::string& path, int flags, int mode = 0644);
// Writes all of `data` at `offset` (retrying short writes).
Status WriteAt(const File& file, const std::string& path, std::string_view data, uint64_t offset);
// Up to `length` bytes from `offset` (fewer only at the file's end).
Result<std::string> ReadAt(const File& file, const std::string& path, uint64_t offset,
                           size_t length);
Status DataSync(const File& file, const std::string& path);
Result<std::string> ReadWholeFile(const std::string& path);
Status RemoveFile(const std::string& path);
// Cuts the file to `size` bytes, durably.
Status TruncateFile(const std::string& path, uint64_t size);
// Makes <dir>/<name> hold `contents`, durably: written whole under another
// name (<name> + kReplacingSuffix, removed if the write fails), synced, then
// renamed over it, so a crash leaves the old contents or the new, never a
// mix.
inline constexpr std::string_view kReplacingSuffix = ".new";
Status ReplaceFileDurably(const std::string& dir, std::string_view name, std::string_view contents);
// The same with the contents in pieces, written one after the other (a
// header and a large body, without joining them); without `sync`, nothing
// is synced (tests that never crash the machine).
Status ReplaceFileDurably(const std::string& dir, std::string_view name,
                          std::initializer_list<std::string_view> pieces, bool sync = true);

// An exclusive lock on <dir>/LOCK for as long as it lives, so two processes
// never write one store.
class DirLock final {
 public:
  static Result<DirLock> Acquire(const std::string& dir);

 private:
  explicit DirLock(File file) : file_(std::move(file)) {}
  File file_;
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_FILE_UTIL_H_
