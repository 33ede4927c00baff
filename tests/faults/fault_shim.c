// strata_fault_shim: an LD_PRELOAD library that makes chosen file-system
// calls fail, so that tests can watch strata-node meet a full disk, a failed
// fsync or a read-only file system through the real binary.
//
// Configuration (environment, read once when the library is loaded):
//   STRATA_FAULT_PATH   substring of the path a file must have been opened
//                       with for its calls to be eligible (e.g. "wal-").
//                       Relative paths are resolved first, so the data
//                       directory's name also works. Unset: nothing fails.
//   STRATA_FAULT_OP     the call(s) to fail, comma-separated: open, pwrite,
//                       write, fdatasync, fsync, fallocate, ftruncate, rename,
//                       unlink. One counter is shared by the listed calls.
//   STRATA_FAULT_AFTER  let this many eligible calls succeed first (default 0).
//   STRATA_FAULT_COUNT  fail this many calls, then succeed again (default:
//                       fail forever).
//   STRATA_FAULT_ERRNO  EIO (default), ENOSPC, EROFS, EACCES, EDQUOT, EPERM,
//                       or a number.
//   STRATA_FAULT_ARMED_IF  a path: faults apply (and eligible calls are
//                       counted) only while this file exists. Lets a test do
//                       some work with the fault disarmed, then arm it at a
//                       moment it chooses, without knowing how many calls the
//                       node made while starting.
//
// Only descriptors opened (open/openat/creat) on a matching path are
// eligible, so the node's stdin, stdout and stderr are never affected. Each
// injected failure is reported on stderr ("strata-fault-shim: injected ..."),
// which lets a test prove that the fault it set up actually happened.
//
// Not seen: descriptors made by dup/dup2/fcntl(F_DUPFD) and files opened
// through stdio (fopen opens inside libc, past any interposer); the storage
// layer uses neither.
//
// By hand, e.g. a node whose log fsync fails from the second call on:
//   STRATA_FAULT_PATH=wal- STRATA_FAULT_OP=fdatasync STRATA_FAULT_AFTER=1
//   LD_PRELOAD=build/release/tests/faults/libstrata_fault_shim.so
//   build/release/strata-node --data-dir /tmp/d       (one command line)
//
// The library is lock-free (atomics only, no malloc after loading), because
// the log's flusher is its own thread and a descriptor may be closed on one
// thread while another writes.
#undef _FORTIFY_SOURCE  // fortified open() is an inline wrapper we could not redefine
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

// ---- configuration ----------------------------------------------------------

enum Op {
  kOpOpen = 1 << 0,
  kOpPwrite = 1 << 1,
  kOpWrite = 1 << 2,
  kOpFdatasync = 1 << 3,
  kOpFsync = 1 << 4,
  kOpFallocate = 1 << 5,
  kOpFtruncate = 1 << 6,
  kOpRename = 1 << 7,
  kOpUnlink = 1 << 8,
};

static const struct {
  const char* name;
  int op;
} kOpNames[] = {
    {"open", kOpOpen},           {"pwrite", kOpPwrite}, {"write", kOpWrite},
    {"fdatasync", kOpFdatasync}, {"fsync", kOpFsync},   {"fallocate", kOpFallocate},
    {"ftruncate", kOpFtruncate}, {"rename", kOpRename}, {"unlink", kOpUnlink},
};

static const struct {
  const char* name;
  int value;
} kErrnoNames[] = {
    {"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EROFS", EROFS},
    {"EACCES", EACCES}, {"EDQUOT", EDQUOT}, {"EPERM", EPERM},
};

// Written once by LoadConfig (before any other thread can exist, or under
// g_init_state), read-only afterwards.
static char g_path[PATH_MAX];
static char g_armed_if[PATH_MAX];
static int g_ops;
static long g_after;
static long g_count = -1;  // -1: forever
static int g_errno = EIO;

// 0: not loaded, 1: loading, 2: ready.
static atomic_int g_init_state;

// Eligible calls seen (while armed) and failures injected so far.
static atomic_long g_calls;
static atomic_long g_injected;

// Which descriptors were opened on a matching path. Descriptors beyond the
// table are never eligible (the node uses a handful).
#define kMaxFds 65536
static atomic_uchar g_tracked[kMaxFds];

static void CopyEnv(const char* name, char* out, size_t size) {
  const char* value = getenv(name);
  if (value == NULL) return;
  size_t n = strlen(value);
  if (n >= size) n = size - 1;
  memcpy(out, value, n);
  out[n] = '\0';
}

static long EnvLong(const char* name, long fallback) {
  const char* value = getenv(name);
  if (value == NULL || *value == '\0') return fallback;
  return strtol(value, NULL, 10);
}

static int ParseErrno(const char* text) {
  if (text == NULL || *text == '\0') return EIO;
  for (size_t i = 0; i < sizeof kErrnoNames / sizeof kErrnoNames[0]; ++i) {
    if (strcmp(text, kErrnoNames[i].name) == 0) return kErrnoNames[i].value;
  }
  int number = atoi(text);
  return number > 0 ? number : EIO;
}

static int ParseOps(const char* text) {
  int ops = 0;
  if (text == NULL) return 0;
  while (*text != '\0') {
    size_t len = strcspn(text, ",");
    for (size_t i = 0; i < sizeof kOpNames / sizeof kOpNames[0]; ++i) {
      if (strlen(kOpNames[i].name) == len && strncmp(text, kOpNames[i].name, len) == 0) {
        ops |= kOpNames[i].op;
      }
    }
    text += len;
    if (*text == ',') ++text;
  }
  return ops;
}

static void LoadConfig(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&g_init_state, &expected, 1)) {
    // Another thread is loading it; it takes microseconds.
    while (atomic_load(&g_init_state) != 2) {
    }
    return;
  }
  CopyEnv("STRATA_FAULT_PATH", g_path, sizeof g_path);
  CopyEnv("STRATA_FAULT_ARMED_IF", g_armed_if, sizeof g_armed_if);
  g_ops = ParseOps(getenv("STRATA_FAULT_OP"));
  g_after = EnvLong("STRATA_FAULT_AFTER", 0);
  g_count = EnvLong("STRATA_FAULT_COUNT", -1);
  g_errno = ParseErrno(getenv("STRATA_FAULT_ERRNO"));
  atomic_store(&g_init_state, 2);
}

static inline void EnsureConfig(void) {
  if (atomic_load_explicit(&g_init_state, memory_order_acquire) != 2) LoadConfig();
}

__attribute__((constructor)) static void ShimInit(void) { EnsureConfig(); }

// ---- the real functions -----------------------------------------------------

// Resolves the next definition of `name` (libc's, or a sanitizer's) once.
#define REAL(type, name)                                                                 \
  static _Atomic(type) real_##name;                                                      \
  __typeof__(type) fn_##name = atomic_load_explicit(&real_##name, memory_order_acquire); \
  if (fn_##name == NULL) {                                                               \
    fn_##name = (type)dlsym(RTLD_NEXT, #name);                                           \
    atomic_store_explicit(&real_##name, fn_##name, memory_order_release);                \
  }

// ---- reporting (no stdio: write(2) straight to stderr) -----------------------

static size_t AppendText(char* out, size_t at, size_t size, const char* text) {
  while (*text != '\0' && at + 1 < size) out[at++] = *text++;
  return at;
}

static size_t AppendLong(char* out, size_t at, size_t size, long value) {
  char digits[24];
  size_t n = 0;
  unsigned long magnitude = value < 0 ? 0UL - (unsigned long)value : (unsigned long)value;
  do {
    digits[n++] = (char)('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0);
  if (value < 0 && at + 1 < size) out[at++] = '-';
  while (n > 0 && at + 1 < size) out[at++] = digits[--n];
  return at;
}

static const char* ErrnoName(int value) {
  for (size_t i = 0; i < sizeof kErrnoNames / sizeof kErrnoNames[0]; ++i) {
    if (kErrnoNames[i].value == value) return kErrnoNames[i].name;
  }
  return "errno";
}

// "strata-fault-shim: injected EIO into fdatasync (fd 7)" or "... (path)".
static void Report(const char* call, int fd, const char* path) {
  // Bounded, so a fault that lasts forever cannot flood stderr.
  long nth = atomic_fetch_add(&g_injected, 1);
  if (nth >= 50) return;
  char line[PATH_MAX + 128];
  size_t at = 0;
  at = AppendText(line, at, sizeof line, "strata-fault-shim: injected ");
  at = AppendText(line, at, sizeof line, ErrnoName(g_errno));
  at = AppendText(line, at, sizeof line, " into ");
  at = AppendText(line, at, sizeof line, call);
  at = AppendText(line, at, sizeof line, " (");
  if (path != NULL) {
    at = AppendText(line, at, sizeof line, path);
  } else {
    at = AppendText(line, at, sizeof line, "fd ");
    at = AppendLong(line, at, sizeof line, fd);
  }
  at = AppendText(line, at, sizeof line, ")\n");
  // The raw system call: a write to fd 2 through our own write() would be
  // harmless, but this keeps the report out of any interposer chain.
  ssize_t ignored = syscall(SYS_write, 2, line, at);
  (void)ignored;
}

// ---- matching ---------------------------------------------------------------

static bool Armed(void) {
  if (g_armed_if[0] == '\0') return true;
  struct stat st;
  return syscall(SYS_newfstatat, AT_FDCWD, g_armed_if, &st, 0) == 0;
}

// Decides whether this eligible call of `op` fails; counts it if armed.
static bool ShouldFail(int op) {
  if ((g_ops & op) == 0 || !Armed()) return false;
  long nth = atomic_fetch_add(&g_calls, 1);
  if (nth < g_after) return false;
  return g_count < 0 || nth - g_after < g_count;
}

// The absolute form of `path` as seen from `dirfd`, so that a substring of
// the data directory matches files opened relative to it.
static void Resolve(int dirfd, const char* path, char* out, size_t size) {
  out[0] = '\0';
  size_t at = 0;
  if (path[0] != '/') {
    if (dirfd == AT_FDCWD) {
      if (getcwd(out, size) == NULL) out[0] = '\0';
    } else {
      char link[64];
      size_t n = AppendText(link, 0, sizeof link, "/proc/self/fd/");
      n = AppendLong(link, n, sizeof link, dirfd);
      link[n] = '\0';
      ssize_t len = readlink(link, out, size - 1);
      out[len > 0 ? len : 0] = '\0';
    }
    at = strlen(out);
    if (at > 0) at = AppendText(out, at, size, "/");
  }
  at = AppendText(out, at, size, path);
  out[at] = '\0';
}

static bool PathMatches(int dirfd, const char* path) {
  EnsureConfig();
  if (g_path[0] == '\0' || path == NULL) return false;
  char full[2 * PATH_MAX];
  Resolve(dirfd, path, full, sizeof full);
  return strstr(full, g_path) != NULL;
}

static inline bool FdTracked(int fd) {
  return fd >= 0 && fd < kMaxFds && atomic_load_explicit(&g_tracked[fd], memory_order_relaxed);
}

static void Track(int fd, bool matches) {
  if (fd >= 0 && fd < kMaxFds) atomic_store(&g_tracked[fd], matches ? 1 : 0);
}

// The common shape of a descriptor call: fail it, or pass it on.
#define FD_CALL(op, call_name, fd, failure, real_call) \
  do {                                                 \
    if (FdTracked(fd) && ShouldFail(op)) {             \
      Report(call_name, fd, NULL);                     \
      errno = g_errno;                                 \
      return failure;                                  \
    }                                                  \
    return real_call;                                  \
  } while (0)

// ---- open, openat, creat ----------------------------------------------------

static int OpenCommon(const char* call, int dirfd, const char* path, int flags, mode_t mode,
                      int (*real)(int, const char*, int, ...)) {
  bool matches = PathMatches(dirfd, path);
  if (matches && ShouldFail(kOpOpen)) {
    Report(call, -1, path);
    errno = g_errno;
    return -1;
  }
  int fd = real(dirfd, path, flags, mode);
  if (fd >= 0) Track(fd, matches);
  return fd;
}

static mode_t ModeArg(int flags, va_list args) {
  return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(args, mode_t) : 0;
}

typedef int (*OpenatFn)(int, const char*, int, ...);

static OpenatFn RealOpenat(void) {
  REAL(OpenatFn, openat);
  return fn_openat;
}

static OpenatFn RealOpenat64(void) {
  REAL(OpenatFn, openat64);
  return fn_openat64;
}

// open(path) is openat(AT_FDCWD, path) for the kernel; routing it through the
// real openat keeps one code path.
EXPORT int open(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  mode_t mode = ModeArg(flags, args);
  va_end(args);
  return OpenCommon("open", AT_FDCWD, path, flags, mode, RealOpenat());
}

EXPORT int open64(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  mode_t mode = ModeArg(flags, args);
  va_end(args);
  return OpenCommon("open64", AT_FDCWD, path, flags, mode, RealOpenat64());
}

EXPORT int openat(int dirfd, const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  mode_t mode = ModeArg(flags, args);
  va_end(args);
  return OpenCommon("openat", dirfd, path, flags, mode, RealOpenat());
}

EXPORT int openat64(int dirfd, const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  mode_t mode = ModeArg(flags, args);
  va_end(args);
  return OpenCommon("openat64", dirfd, path, flags, mode, RealOpenat64());
}

// What _FORTIFY_SOURCE builds call for open() without a mode argument.
EXPORT int __open_2(const char* path, int flags) {
  return OpenCommon("open", AT_FDCWD, path, flags, 0, RealOpenat());
}
EXPORT int __open64_2(const char* path, int flags) {
  return OpenCommon("open64", AT_FDCWD, path, flags, 0, RealOpenat64());
}
EXPORT int __openat_2(int dirfd, const char* path, int flags) {
  return OpenCommon("openat", dirfd, path, flags, 0, RealOpenat());
}
EXPORT int __openat64_2(int dirfd, const char* path, int flags) {
  return OpenCommon("openat64", dirfd, path, flags, 0, RealOpenat64());
}

EXPORT int creat(const char* path, mode_t mode) {
  return OpenCommon("creat", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, RealOpenat());
}
EXPORT int creat64(const char* path, mode_t mode) {
  return OpenCommon("creat64", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, RealOpenat64());
}

EXPORT int close(int fd) {
  REAL(int (*)(int), close);
  // Untrack first: once the real close returns, another thread may be given
  // the same number for an unrelated file.
  Track(fd, false);
  return fn_close(fd);
}

// ---- writes -----------------------------------------------------------------

EXPORT ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  REAL(ssize_t(*)(int, const void*, size_t, off_t), pwrite);
  FD_CALL(kOpPwrite, "pwrite", fd, -1, fn_pwrite(fd, buf, count, offset));
}

EXPORT ssize_t pwrite64(int fd, const void* buf, size_t count, off64_t offset) {
  REAL(ssize_t(*)(int, const void*, size_t, off64_t), pwrite64);
  FD_CALL(kOpPwrite, "pwrite64", fd, -1, fn_pwrite64(fd, buf, count, offset));
}

EXPORT ssize_t pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) {
  REAL(ssize_t(*)(int, const struct iovec*, int, off_t), pwritev);
  FD_CALL(kOpPwrite, "pwritev", fd, -1, fn_pwritev(fd, iov, iovcnt, offset));
}

EXPORT ssize_t pwritev64(int fd, const struct iovec* iov, int iovcnt, off64_t offset) {
  REAL(ssize_t(*)(int, const struct iovec*, int, off64_t), pwritev64);
  FD_CALL(kOpPwrite, "pwritev64", fd, -1, fn_pwritev64(fd, iov, iovcnt, offset));
}

EXPORT ssize_t pwritev2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) {
  REAL(ssize_t(*)(int, const struct iovec*, int, off_t, int), pwritev2);
  FD_CALL(kOpPwrite, "pwritev2", fd, -1, fn_pwritev2(fd, iov, iovcnt, offset, flags));
}

EXPORT ssize_t write(int fd, const void* buf, size_t count) {
  REAL(ssize_t(*)(int, const void*, size_t), write);
  FD_CALL(kOpWrite, "write", fd, -1, fn_write(fd, buf, count));
}

EXPORT ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  REAL(ssize_t(*)(int, const struct iovec*, int), writev);
  FD_CALL(kOpWrite, "writev", fd, -1, fn_writev(fd, iov, iovcnt));
}

// ---- syncs, space, size -----------------------------------------------------

EXPORT int fdatasync(int fd) {
  REAL(int (*)(int), fdatasync);
  FD_CALL(kOpFdatasync, "fdatasync", fd, -1, fn_fdatasync(fd));
}

EXPORT int fsync(int fd) {
  REAL(int (*)(int), fsync);
  FD_CALL(kOpFsync, "fsync", fd, -1, fn_fsync(fd));
}

EXPORT int fallocate(int fd, int mode, off_t offset, off_t len) {
  REAL(int (*)(int, int, off_t, off_t), fallocate);
  FD_CALL(kOpFallocate, "fallocate", fd, -1, fn_fallocate(fd, mode, offset, len));
}

EXPORT int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
  REAL(int (*)(int, int, off64_t, off64_t), fallocate64);
  FD_CALL(kOpFallocate, "fallocate64", fd, -1, fn_fallocate64(fd, mode, offset, len));
}

// posix_fallocate returns the error number instead of setting errno.
EXPORT int posix_fallocate(int fd, off_t offset, off_t len) {
  REAL(int (*)(int, off_t, off_t), posix_fallocate);
  FD_CALL(kOpFallocate, "posix_fallocate", fd, g_errno, fn_posix_fallocate(fd, offset, len));
}

EXPORT int posix_fallocate64(int fd, off64_t offset, off64_t len) {
  REAL(int (*)(int, off64_t, off64_t), posix_fallocate64);
  FD_CALL(kOpFallocate, "posix_fallocate64", fd, g_errno, fn_posix_fallocate64(fd, offset, len));
}

EXPORT int ftruncate(int fd, off_t length) {
  REAL(int (*)(int, off_t), ftruncate);
  FD_CALL(kOpFtruncate, "ftruncate", fd, -1, fn_ftruncate(fd, length));
}

EXPORT int ftruncate64(int fd, off64_t length) {
  REAL(int (*)(int, off64_t), ftruncate64);
  FD_CALL(kOpFtruncate, "ftruncate64", fd, -1, fn_ftruncate64(fd, length));
}

// ---- names ------------------------------------------------------------------

// A rename is eligible if either name matches (checkpoint-N.ckpt.tmp ->
// checkpoint-N.ckpt matches "checkpoint" both ways).
static bool RenameFails(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) {
  return (PathMatches(olddirfd, oldpath) || PathMatches(newdirfd, newpath)) &&
         ShouldFail(kOpRename);
}

EXPORT int rename(const char* oldpath, const char* newpath) {
  REAL(int (*)(const char*, const char*), rename);
  if (RenameFails(AT_FDCWD, oldpath, AT_FDCWD, newpath)) {
    Report("rename", -1, oldpath);
    errno = g_errno;
    return -1;
  }
  return fn_rename(oldpath, newpath);
}

EXPORT int renameat(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) {
  REAL(int (*)(int, const char*, int, const char*), renameat);
  if (RenameFails(olddirfd, oldpath, newdirfd, newpath)) {
    Report("renameat", -1, oldpath);
    errno = g_errno;
    return -1;
  }
  return fn_renameat(olddirfd, oldpath, newdirfd, newpath);
}

EXPORT int renameat2(int olddirfd, const char* oldpath, int newdirfd, const char* newpath,
                     unsigned int flags) {
  REAL(int (*)(int, const char*, int, const char*, unsigned int), renameat2);
  if (RenameFails(olddirfd, oldpath, newdirfd, newpath)) {
    Report("renameat2", -1, oldpath);
    errno = g_errno;
    return -1;
  }
  return fn_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

EXPORT int unlink(const char* path) {
  REAL(int (*)(const char*), unlink);
  if (PathMatches(AT_FDCWD, path) && ShouldFail(kOpUnlink)) {
    Report("unlink", -1, path);
    errno = g_errno;
    return -1;
  }
  return fn_unlink(path);
}

EXPORT int unlinkat(int dirfd, const char* path, int flags) {
  REAL(int (*)(int, const char*, int), unlinkat);
  if (PathMatches(dirfd, path) && ShouldFail(kOpUnlink)) {
    Report("unlinkat", -1, path);
    errno = g_errno;
    return -1;
  }
  return fn_unlinkat(dirfd, path, flags);
}
