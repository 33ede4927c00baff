#include "node/event_loop.h"

#include <fcntl.h>
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
// Replies stdout has not taken yet beyond this stop the loop reading input
// until the reader catches up (docs/LIMITS.md).
constexpr size_t kMaxUnwrittenOutput = size_t{64} << 20;

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
    node_->HandleOverlongLine(std::string_view(input_).substr(0, protocol::kMaxLineBytes), &output_,
                              &log_);
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
  return FlushAll();
}

bool EventLoop::Flush() {
  if (!log_.empty()) {
    WriteAll(log_fd_, log_);  // a lost log line is no reason to stop serving
    log_.clear();
  }
  if (!output_.empty()) {
    if (unwritten_at_ == unwritten_.size()) {
      unwritten_.clear();
      unwritten_at_ = 0;
    }
    unwritten_.append(output_);
    output_.clear();
  }
  while (unwritten_at_ < unwritten_.size()) {
    ssize_t n =
        ::write(out_fd_, unwritten_.data() + unwritten_at_, unwritten_.size() - unwritten_at_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;  // the reader is behind
      return false;
    }
    unwritten_at_ += static_cast<size_t>(n);
  }
  if (unwritten_at_ == unwritten_.size()) {
    unwritten_.clear();
    unwritten_at_ = 0;
  } else if (unwritten_at_ > (size_t{1} << 20)) {
    unwritten_.erase(0, unwritten_at_);  // keep the buffer from creeping
    unwritten_at_ = 0;
  }
  return true;
}

bool EventLoop::FlushAll() {
  if (!Flush()) return false;
  while (unwritten_at_ < unwritten_.size()) {
    pollfd p{out_fd_, POLLOUT, 0};
    ::poll(&p, 1, -1);
    if ((p.revents & (POLLERR | POLLNVAL)) != 0) return false;
    if (!Flush()) return false;
  }
  return true;
}

int EventLoop::Run() {
  // Non-blocking stdout for the loop's lifetime (restored on return, as the
  // descriptor may be shared with whoever started the node).
  const int out_flags = ::fcntl(out_fd_, F_GETFL);
  if (out_flags >= 0) ::fcntl(out_fd_, F_SETFL, out_flags | O_NONBLOCK);
  const int code = Loop();
  if (out_flags >= 0) ::fcntl(out_fd_, F_SETFL, out_flags);
  return code;
}

int EventLoop::Loop() {
  std::string chunk(kReadChunk, '\0');
  for (;;) {
    // Timers first: they tell how long the loop may sleep.
    int timeout_ms = -1;
    if (auto next = node_->RunTimers(Node::Clock::now(), &output_)) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Node::Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
    }
    if ((!log_.empty() || !output_.empty()) && !Flush()) return 1;  // what timers sent

    // Input is not read while too many replies wait for the log, or for the
    // reader of stdout (a negative descriptor makes poll skip the entry).
    const size_t unwritten = unwritten_.size() - unwritten_at_;
    const bool accept_input =
        node_->held_reply_bytes() < kMaxHeldReplyBytes && unwritten < kMaxUnwrittenOutput;
    pollfd fds[3] = {{accept_input ? in_fd_ : -1, POLLIN, 0},
                     {unwritten > 0 ? out_fd_ : -1, POLLOUT, 0},
                     {node_->wake_fd(), POLLIN, 0}};
    const nfds_t nfds = node_->wake_fd() >= 0 ? 3 : 2;
    int ready = ::poll(fds, nfds, timeout_ms);
    if (ready < 0 && errno != EINTR) return 1;
    if (ready <= 0) continue;
    if ((fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0 && !Flush()) return 1;
    if (nfds == 3 && (fds[2].revents & POLLIN) != 0) {
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
