// fault_shim_probe: runs a script of file-system calls given on the command
// line and prints one line per call ("pwrite ok", "fdatasync EIO"), so that
// shim_test can check what the preloaded strata_fault_shim did to each.
//
//   open PATH | pwrite | write | fdatasync | fsync | fallocate |
//   posix_fallocate | ftruncate | close          calls on the current file
//   rename FROM TO | unlink PATH | touch PATH    calls on names
//   threads N PER     N threads each pwrite PER times to the current file;
//                     prints "threads failed=K"
//
// Output goes through stdio (write(2) underneath), which doubles as a check
// that the shim leaves descriptors it did not see opened alone.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

void Print(std::string_view op, int result) {
  // strerrorname_np gives "EIO" rather than a localized sentence.
  const char* name = result == 0 ? "ok" : strerrorname_np(result);
  std::printf("%.*s %s\n", static_cast<int>(op.size()), op.data(), name ? name : "?");
}

int ErrnoOf(long result) { return result < 0 ? errno : 0; }

}  // namespace

int main(int argc, char** argv) {
  int fd = -1;
  static const char kByte[1] = {'x'};
  for (int i = 1; i < argc; ++i) {
    std::string_view op = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (op == "open") {
      int opened = open(next(), O_CREAT | O_RDWR, 0644);
      Print(op, ErrnoOf(opened));
      if (opened >= 0) fd = opened;
    } else if (op == "pwrite") {
      Print(op, ErrnoOf(pwrite(fd, kByte, 1, 0)));
    } else if (op == "write") {
      Print(op, ErrnoOf(write(fd, kByte, 1)));
    } else if (op == "fdatasync") {
      Print(op, ErrnoOf(fdatasync(fd)));
    } else if (op == "fsync") {
      Print(op, ErrnoOf(fsync(fd)));
    } else if (op == "fallocate") {
      Print(op, ErrnoOf(fallocate(fd, 0, 0, 4096)));
    } else if (op == "posix_fallocate") {
      Print(op, posix_fallocate(fd, 0, 4096));
    } else if (op == "ftruncate") {
      Print(op, ErrnoOf(ftruncate(fd, 0)));
    } else if (op == "close") {
      Print(op, ErrnoOf(close(fd)));
      fd = -1;
    } else if (op == "rename") {
      const char* from = next();
      Print(op, ErrnoOf(rename(from, next())));
    } else if (op == "unlink") {
      Print(op, ErrnoOf(unlink(next())));
    } else if (op == "touch") {
      int touched = open(next(), O_CREAT | O_WRONLY, 0644);
      Print(op, ErrnoOf(touched));
      if (touched >= 0) close(touched);
    } else if (op == "threads") {
      int threads = std::atoi(next());
      int per_thread = std::atoi(next());
      std::atomic<int> failed{0};
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
          for (int n = 0; n < per_thread; ++n) {
            if (pwrite(fd, kByte, 1, t) < 0) failed.fetch_add(1);
          }
        });
      }
      for (std::thread& worker : workers) worker.join();
      std::printf("threads failed=%d\n", failed.load());
    } else {
      std::fprintf(stderr, "fault_shim_probe: unknown command '%s'\n", argv[i]);
      return 2;
    }
  }
  return 0;
}
