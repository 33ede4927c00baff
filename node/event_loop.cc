#include "node/event_loop.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "protocol/limits.h"

namespace strata::node {

namespace {

constexpr size_t kReadChunk = 1 << 20;
// Pending output beyond this is written even while more input waits, so a
// long stream never buffers without bound.
constexpr size_t kMaxPendingOutput = 1 << 20;
// Replies waiting for the log beyond this stop the loop reading input until
// the log catches up (backpressure on a client that never waits).
constexpr size_t kMaxHeldReplyBytes = size_t{64} << 20;

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, -1);
        continue;
      }
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

EventLoop::EventLoop(Node* node, int in_fd, int out_fd, int log_fd)
    : node_(node), in_fd_(in_fd), out_fd_(out_fd), log_fd_(log_fd) {}

bool EventLoop::InputWaiting() const {
  pollfd p{in_fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

void EventLoop::HandleLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  node_->HandleLine(line, &output_, &log_);
}

void EventLoop::ProcessLines() {
  size_t line_start = 0;
  for (;;) {
    const char* newline = static_cast<const char*>(
        std::memchr(input_.data() + scanned_, '\n', input_.size() - scanned_));
    if (newline == nullptr) break;
    size_t end = static_cast<size_t>(newline - input_.data());
    if (discarding_) {
      discarding_ = false;  // the rest of the over-long line ends here
    } else {
      HandleLine(std::string_view(input_).substr(line_start, end - line_start));
    }
    line_start = scanned_ = end + 1;
  }
  input_.erase(0, line_start);
  scanned_ = input_.size();
  if (!discarding_ && input_.size() > protocol::kMaxLineBytes) {
    // Answered from its start if it says who sent it; the rest is dropped
    // unread up to its newline.
    node_->HandleOverlongLine(std::string_view(input_).substr(0, protocol::kMaxLineBytes),
                              &output_, &log_);
    discarding_ = true;
  }
  if (discarding_) input_.clear(), scanned_ = 0;
}

bool EventLoop::DrainHeldReplies() {
  node_->ReleaseReplies(&output_);
  while (node_->HasHeldReplies()) {
    if (!Flush()) return false;
    pollfd p{node_->wake_fd(), POLLIN, 0};
    ::poll(&p, 1, 1000);
    node_->ReleaseReplies(&output_);
  }
  return Flush();
}

bool EventLoop::Flush() {
  if (!log_.empty()) {
    WriteAll(log_fd_, log_);  // a lost log line is no reason to stop serving
    log_.clear();
  }
  if (output_.empty()) return true;
  bool ok = WriteAll(out_fd_, output_);
  output_.clear();
  return ok;
}

int EventLoop::Run() {
  std::string chunk(kReadChunk, '\0');
  for (;;) {
    // Timers first: they tell how long the loop may sleep.
    int timeout_ms = -1;
    if (auto next = node_->RunTimers(Node::Clock::now(), &output_)) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Node::Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
    }
    if ((!log_.empty() || !output_.empty()) && !Flush()) return 1;  // what timers sent

    // Input is not read while too many replies wait for the log (a negative
    // descriptor makes poll skip the entry).
    const bool accept_input = node_->held_reply_bytes() < kMaxHeldReplyBytes;
    pollfd fds[2] = {{accept_input ? in_fd_ : -1, POLLIN, 0}, {node_->wake_fd(), POLLIN, 0}};
    const nfds_t nfds = node_->wake_fd() >= 0 ? 2 : 1;
    int ready = ::poll(fds, nfds, timeout_ms);
    if (ready < 0 && errno != EINTR) return 1;
    if (ready <= 0) continue;
    if (nfds == 2 && (fds[1].revents & POLLIN) != 0) {
      // The log made more records durable: the replies waiting for them go.
      node_->ReleaseReplies(&output_);
      if (!Flush()) return 1;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;

    ssize_t n = ::read(in_fd_, chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      log_.append("strata-node: reading input failed: ").append(std::strerror(errno)) += '\n';
      Flush();
      return 1;
    }
    if (n == 0) {
      // End of input: a last line without a newline still counts.
      if (!discarding_ && !input_.empty()) HandleLine(input_);
      return DrainHeldReplies() ? 0 : 1;
    }
    input_.append(chunk.data(), static_cast<size_t>(n));
    ProcessLines();
    node_->ReleaseReplies(&output_);
    // Answer now unless more input is already here to batch with.
    const bool drained = !InputWaiting();
    if (drained) node_->InputDrained();
    if (output_.size() >= kMaxPendingOutput || drained) {
      if (!Flush()) {
        // stdout is gone: nobody can receive replies any more.
        return 1;
      }
    }
  }
}

}  // namespace strata::node
