// NodeProcess: one strata-node child process, talked to through pipes.
//
// The tests exercise the real binary, so they see exactly what Maelstrom sees:
// framing, flushing, stderr/stdout separation and the exit status. Every wait
// is bounded by a deadline so that a hung or crashed node fails the test
// instead of hanging the suite.
#ifndef STRATA_TESTS_NODE_NODE_PROCESS_H_
#define STRATA_TESTS_NODE_NODE_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::testing {

// The strata-node under test: STRATA_NODE_BINARY from the environment if set
// (to run a suite against another build, e.g. a sanitized one), else the one
// the test was built with (every target compiling this file defines
// STRATA_NODE_PATH).
std::string StrataNodeBinary();

class NodeProcess final {
 public:
  // Starts the binary at `path` with `args`, in this process's environment
  // plus `extra_env` ("NAME=value" each). Check ok() before talking to it.
  NodeProcess(const std::string& path, const std::vector<std::string>& args,
              const std::vector<std::string>& extra_env = {});
  // Kills the child if it is still running, so a failed test leaves no orphan.
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  bool ok() const { return pid_ > 0; }

  // Writes `bytes` to the child's stdin. While the pipe is full it keeps
  // draining stdout and stderr, so a multi-megabyte write cannot deadlock
  // against a child that is itself blocked writing. Returns false if the
  // bytes could not be written before `timeout` (or the child closed stdin).
  bool Write(std::string_view bytes, std::chrono::milliseconds timeout);

  // Returns the next stdout line without its '\n', or nullopt if none arrived
  // within `timeout` (or stdout reached end of file first).
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);

  // Signals end of input.
  void CloseStdin();

  // Closes stdin, waits for the child to exit and collects the rest of its
  // output. Returns the wait status, or nullopt after `timeout` (the child is
  // then killed by the destructor).
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);

  // Sends `signal` to the child (SIGKILL: a crash at an arbitrary moment),
  // waits for it to die and collects its remaining output. Returns the wait
  // status, or nullopt if it did not die within `timeout`.
  std::optional<int> Kill(int signal, std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }

  // Everything the child wrote to stderr so far.
  const std::string& stderr_text() const { return stderr_; }
  // Its last `limit` bytes, for failure messages.
  std::string StderrTail(size_t limit = 2000) const;
  // Stdout bytes received but not yet returned by ReadLine (after exit: the
  // unterminated tail, which should be empty).
  const std::string& unread_stdout() const { return stdout_; }

 private:
  using Clock = std::chrono::steady_clock;

  // One round of poll(): writes pending stdin bytes, reads whatever stdout and
  // stderr have. Returns false once the deadline has passed.
  bool PumpOnce(Clock::time_point deadline);
  // Reads from `*fd` into `*sink`; closes and resets it at end of file.
  static void Drain(int* fd, std::string* sink);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string pending_stdin_;
  size_t pending_offset_ = 0;
  std::string stdout_;
  std::string stderr_;
  std::optional<int> exit_status_;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_NODE_NODE_PROCESS_H_
