#include "storage/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace strata::storage {

Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  return Status::Unavailable(std::string(what) + " " + path + ": " + std::strerror(err));
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string path = dir;
  if (!path.empty() && path.back() != '/') path.push_back('/');
  path.append(name);
  return path;
}

std::string NumberedFileName(std::string_view prefix, uint64_t number, std::string_view suffix) {
  std::string digits = std::to_string(number);
  std::string name(prefix);
  name.append(20 - digits.size(), '0').append(digits).append(suffix);
  return name;
}

std::optional<uint64_t> ParseNumberedFileName(std::string_view name, std::string_view prefix,
                                              std::string_view suffix) {
  if (name.size() != prefix.size() + 20 + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  uint64_t number = 0;
  for (char c : name.substr(prefix.size(), 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    if (number > (UINT64_MAX - 9) / 10) return std::nullopt;  // not one we wrote
    number = number * 10 + static_cast<uint64_t>(c - '0');
  }
  return number;
}

Status CreateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus("cannot stat", dir, errno);
    if (!S_ISDIR(st.st_mode)) return Status::Unavailable(dir + " exists and is not a directory");
    return Status::Ok();
  }
  return ErrnoStatus("cannot create directory", dir, errno);
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("cannot list directory", dir, errno);
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(d)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  return names;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir, errno);
  File file(fd);
  if (::fsync(fd) != 0) return ErrnoStatus("fsync of directory", dir, errno);
  return Status::Ok();
}

Result<File> OpenFile(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  return File(fd);
}

Status WriteAt(const File& file, const std::string& path, std::string_view data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(file.fd(), data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write to", path, errno);
    }
    if (n == 0) return ErrnoStatus("write to", path, EIO);
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Result<std::string> ReadAt(const File& file, const std::string& path, uint64_t offset,
                           size_t length) {
  std::string data(length, '\0');
  size_t done = 0;
  while (done < length) {
    ssize_t n =
        ::pread(file.fd(), data.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", path, errno);
    }
    if (n == 0) break;  // the end
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

Status DataSync(const File& file, const std::string& path) {
  if (::fdatasync(file.fd()) != 0) return ErrnoStatus("fdatasync of", path, errno);
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  Result<File> file = OpenFile(path, O_RDONLY);
  if (!file.ok()) return file.status();
  struct stat st;
  if (::fstat(file->fd(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  return ReadAt(*file, path, 0, static_cast<size_t>(st.st_size));  // less if it shrank meanwhile
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoStatus("cannot remove", path, errno);
  return Status::Ok();
}

Status TruncateFile(const std::string& path, uint64_t size) {
  Result<File> file = OpenFile(path, O_WRONLY);
  if (!file.ok()) return file.status();
  if (::ftruncate(file->fd(), static_cast<off_t>(size)) != 0) {
    return ErrnoStatus("cannot truncate", path, errno);
  }
  return DataSync(*file, path);
}

Result<DirLock> DirLock::Acquire(const std::string& dir) {
  const std::string path = JoinPath(dir, "LOCK");
  Result<File> file = OpenFile(path, O_RDWR | O_CREAT);
  if (!file.ok()) return file.status();
  if (::flock(file->fd(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Unavailable("the data directory " + dir +
                                 " is in use by another process (it holds " + path + ")");
    }
    return ErrnoStatus("cannot lock", path, errno);
  }
  return DirLock(std::move(*file));
}

Status ReplaceFileDurably(const std::string& dir, std::string_view name,
                          std::string_view contents) {
  return ReplaceFileDurably(dir, name, {contents});
}

namespace {

Status WriteWhole(const std::string& path, std::initializer_list<std::string_view> pieces,
                  bool sync) {
  Result<File> file = OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC);
  if (!file.ok()) return file.status();
  uint64_t offset = 0;
  for (std::string_view piece : pieces) {
    if (Status written = WriteAt(*file, path, piece, offset); !written.ok()) return written;
    offset += piece.size();
  }
  return sync ? DataSync(*file, path) : Status::Ok();
}

}  // namespace

Status ReplaceFileDurably(const std::string& dir, std::string_view name,
                          std::initializer_list<std::string_view> pieces, bool sync) {
  const std::string path = JoinPath(dir, name);
  const std::string temporary = path + std::string(kReplacingSuffix);
  if (Status written = WriteWhole(temporary, pieces, sync); !written.ok()) {
    (void)RemoveFile(temporary);  // a full disk gets its space back
    return written;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return ErrnoStatus("cannot rename", temporary, errno);
  }
  return sync ? SyncDir(dir) : Status::Ok();
}

}  // namespace strata::storage
