// Child processes: the benchmark re-runs itself for measurements that need a
// fresh process (load timing and RSS growth must not inherit the heap of an
// earlier engine; RocksDB's background threads must not linger between
// engines), and runs strata-node for --node.
#ifndef STRATA_BENCH_SUBPROCESS_H_
#define STRATA_BENCH_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bench {

// A started child. stdin_fd / stdout_fd are the parent's ends of the pipes
// (-1 if not piped); stderr is inherited so the child's progress shows.
struct Child {
  pid_t pid = -1;
  int stdin_fd = -1;
  int stdout_fd = -1;
};

// Starts `argv[0]` with `argv`; dies if it cannot.
Child SpawnChild(const std::vector<std::string>& argv, bool pipe_stdin);

// Waits for the child to exit; returns its exit status (128 + signal number
// if a signal ended it).
int WaitChild(pid_t pid);

// Runs `argv` to completion, calling `on_line` with each stdout line (no
// newline) as soon as it arrives; dies if the child exits non-zero.
void RunChildLines(const std::vector<std::string>& argv,
                   const std::function<void(std::string_view)>& on_line);

// The path of the running executable, for re-running it.
std::string SelfPath();

}  // namespace strata::bench

#endif  // STRATA_BENCH_SUBPROCESS_H_
