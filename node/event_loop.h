// EventLoop: drives a Node from a byte stream (stdin) to a byte stream
// (stdout), with timers.
//
// It reads input in large chunks, hands every complete line to the node,
// collects the replies in one buffer and writes them when no more input is
// waiting: a harness that sends one line and waits gets its reply at once,
// and a stream of a million lines costs a few hundred write calls, not a
// million. Between reads it runs the node's timers (garbage collection now;
// transaction timeouts and RPC retries later). With a durable store it also
// waits on the node's wake descriptor and writes the replies the log has
// made durable since. It returns at end of input, once every reply is out.
//
// Output never stops input: stdout is written without blocking, and what
// the reader has not taken yet waits in a buffer while the loop goes on
// reading and answering. Only past kMaxUnwrittenOutput bytes does the loop
// stop reading input until the reader catches up, so a client that writes
// a long stream before it reads neither deadlocks with the node nor grows
// its memory without bound.
#ifndef STRATA_NODE_EVENT_LOOP_H_
#define STRATA_NODE_EVENT_LOOP_H_

#include <string>

#include "node/node.h"

namespace strata::node {

class EventLoop final {
 public:
  EventLoop(Node* node, int in_fd, int out_fd, int log_fd);

  // Runs until end of input. Returns the process exit code: 0 at end of
  // input, 1 if the output could not be written.
  int Run();

 private:
  int Loop();
  // Feeds every complete line in the input buffer to the node.
  void ProcessLines();
  void HandleLine(std::string_view line);
  // Writes the log, and as much of the output as stdout takes now (the
  // rest waits in unwritten_); false if the output is gone.
  bool Flush();
  // Writes out everything (at end of input): false if the output is gone.
  bool FlushAll();
  bool InputWaiting() const;
  // At end of input: waits until the node has released every held reply.
  bool DrainHeldReplies();

  Node* node_;
  int in_fd_, out_fd_, log_fd_;
  std::string input_;        // unprocessed bytes; begins at a line start
  size_t scanned_ = 0;       // bytes of input_ already searched for '\n'
  bool discarding_ = false;  // inside an over-long line: drop until '\n'
  std::string output_;       // replies produced, not yet handed to Flush
  std::string unwritten_;    // replies stdout did not take yet
  size_t unwritten_at_ = 0;
  std::string log_;
};

}  // namespace strata::node

#endif  // STRATA_NODE_EVENT_LOOP_H_
