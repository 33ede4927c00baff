#include "bench/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "bench/bench_util.h"

extern char** environ;

namespace strata::bench {
namespace {

void MakePipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) Fatal(std::string("pipe2: ") + std::strerror(errno));
}

}  // namespace

Child SpawnChild(const std::vector<std::string>& argv, bool pipe_stdin) {
  int out_pipe[2];
  int in_pipe[2] = {-1, -1};
  MakePipe(out_pipe);
  if (pipe_stdin) MakePipe(in_pipe);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears O_CLOEXEC on the target descriptor; every other pipe end is
  // close-on-exec, so the child holds no stray copy that would hide EOF.
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  if (pipe_stdin) posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);

  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  Child child;
  const int rc = posix_spawn(&child.pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) Fatal("cannot start " + argv[0] + ": " + std::strerror(rc));

  close(out_pipe[1]);
  child.stdout_fd = out_pipe[0];
  if (pipe_stdin) {
    close(in_pipe[0]);
    child.stdin_fd = in_pipe[1];
  }
  return child;
}

int WaitChild(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Fatal(std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

void RunChildLines(const std::vector<std::string>& argv,
                   const std::function<void(std::string_view)>& on_line) {
  const Child child = SpawnChild(argv, /*pipe_stdin=*/false);
  std::string pending;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = read(child.stdout_fd, buffer, sizeof(buffer));
    if (n > 0) {
      pending.append(buffer, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl = pending.find('\n'); nl != std::string::npos;
           nl = pending.find('\n', start)) {
        on_line(std::string_view(pending).substr(start, nl - start));
        start = nl + 1;
      }
      pending.erase(0, start);
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      Fatal(std::string("read from child: ") + std::strerror(errno));
    }
  }
  close(child.stdout_fd);
  const int status = WaitChild(child.pid);
  if (status != 0) {
    std::string command;
    for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
    Fatal("child failed with status " + std::to_string(status) + ": " + command);
  }
  if (!pending.empty()) on_line(pending);
}

std::string SelfPath() {
  std::error_code ec;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) Fatal("cannot resolve /proc/self/exe: " + ec.message());
  return path.string();
}

}  // namespace strata::bench
