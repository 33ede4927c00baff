#include "node_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdlib>

#include <algorithm>
#include <thread>

extern char** environ;

namespace strata::testing {
namespace {

void CloseFd(int* fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

NodeProcess::NodeProcess(const std::string& path, const std::vector<std::string>& args,
                         const std::vector<std::string>& extra_env) {
  // A node that dies while we write must fail the test, not kill the test
  // binary with SIGPIPE; write() then reports EPIPE instead.
  signal(SIGPIPE, SIG_IGN);

  // O_CLOEXEC keeps every pipe end out of the child except the three dup2'ed
  // onto its standard streams, so its stdin sees EOF when we close ours.
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return;
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);

  std::vector<std::string> argv_strings = {path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_strings = extra_env;
  std::vector<char*> env;
  for (std::string& entry : env_strings) env.push_back(entry.data());
  for (char** entry = environ; *entry != nullptr; ++entry) env.push_back(*entry);
  env.push_back(nullptr);

  pid_t pid = -1;
  if (posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), env.data()) == 0) pid_ = pid;
  posix_spawn_file_actions_destroy(&actions);

  close(in[0]), close(out[1]), close(err[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) SetNonBlocking(fd);
  if (pid_ <= 0) {
    CloseFd(&stdin_fd_), CloseFd(&stdout_fd_), CloseFd(&stderr_fd_);
  }
}

NodeProcess::~NodeProcess() {
  CloseFd(&stdin_fd_), CloseFd(&stdout_fd_), CloseFd(&stderr_fd_);
  if (pid_ > 0 && !exit_status_) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

void NodeProcess::Drain(int* fd, std::string* sink) {
  char buffer[64 * 1024];
  while (*fd >= 0) {
    ssize_t n = read(*fd, buffer, sizeof buffer);
    if (n > 0) {
      sink->append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      CloseFd(fd);
    } else if (errno != EINTR) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) CloseFd(fd);
      return;
    }
  }
}

bool NodeProcess::PumpOnce(Clock::time_point deadline) {
  Clock::time_point now = Clock::now();
  if (now >= deadline) return false;
  bool want_write = stdin_fd_ >= 0 && pending_offset_ < pending_stdin_.size();
  pollfd fds[3] = {{stdin_fd_, static_cast<short>(want_write ? POLLOUT : 0), 0},
                   {stdout_fd_, POLLIN, 0},
                   {stderr_fd_, POLLIN, 0}};
  // poll() ignores negative descriptors, which is how closed streams drop out.
  if (!want_write) fds[0].fd = -1;
  auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
  int ready = poll(fds, 3, static_cast<int>(std::min<int64_t>(wait_ms, 100)));
  if (ready < 0 && errno != EINTR) return false;
  if (ready <= 0) return Clock::now() < deadline;

  if (fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
    ssize_t n = write(stdin_fd_, pending_stdin_.data() + pending_offset_,
                      pending_stdin_.size() - pending_offset_);
    if (n > 0) {
      pending_offset_ += static_cast<size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      CloseFd(&stdin_fd_);  // EPIPE: the child is gone or closed its stdin
    }
  }
  if (fds[1].revents) Drain(&stdout_fd_, &stdout_);
  if (fds[2].revents) Drain(&stderr_fd_, &stderr_);
  return true;
}

bool NodeProcess::Write(std::string_view bytes, std::chrono::milliseconds timeout) {
  if (stdin_fd_ < 0) return false;
  pending_stdin_.assign(bytes);
  pending_offset_ = 0;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (pending_offset_ < pending_stdin_.size()) {
    if (stdin_fd_ < 0 || !PumpOnce(deadline)) return false;
  }
  pending_stdin_.clear();
  return true;
}

std::optional<std::string> NodeProcess::ReadLine(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    size_t newline = stdout_.find('\n');
    if (newline != std::string::npos) {
      std::string line = stdout_.substr(0, newline);
      stdout_.erase(0, newline + 1);
      return line;
    }
    if (stdout_fd_ < 0 || !PumpOnce(deadline)) return std::nullopt;
  }
}

void NodeProcess::CloseStdin() { CloseFd(&stdin_fd_); }

std::optional<int> NodeProcess::WaitForExit(std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  CloseStdin();
  const Clock::time_point deadline = Clock::now() + timeout;
  while (stdout_fd_ >= 0 || stderr_fd_ >= 0) {
    if (!PumpOnce(deadline)) return std::nullopt;
  }
  for (;;) {
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_status_ = status;
      return exit_status_;
    }
    if (done < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::optional<int> NodeProcess::Kill(int signal, std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, signal);
  return WaitForExit(timeout);
}

std::string NodeProcess::StderrTail(size_t limit) const {
  return stderr_.size() <= limit ? stderr_ : "..." + stderr_.substr(stderr_.size() - limit);
}

std::string StrataNodeBinary() {
  const char* override_path = std::getenv("STRATA_NODE_BINARY");
  return override_path != nullptr && *override_path != '\0' ? override_path : STRATA_NODE_PATH;
}

}  // namespace strata::testing
