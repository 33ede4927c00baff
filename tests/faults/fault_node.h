// Helpers for the fault-injection tests: a scratch data directory, the
// shim's configuration, a Maelstrom client for a durable strata-node that
// tolerates (and classifies) error replies, and a checker that a restarted
// node holds exactly what the first one promised.
//
// Unlike tests/node's NodeSession, FaultNode expects error 11 and 13 as
// outcomes, and matches replies by in_reply_to: a durable node holds a
// write's reply until its record is durable, so a read sent after it may be
// answered first.
#ifndef STRATA_TESTS_FAULTS_FAULT_NODE_H_
#define STRATA_TESTS_FAULTS_FAULT_NODE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json_value.h"
#include "node_process.h"

namespace strata::testing {

// How long a test waits for any one reply: generous, because a reply waits
// for an fsync on a shared machine (and a sanitized build is slower).
inline constexpr std::chrono::milliseconds kFaultReplyTimeout{15000};

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `name` inside the directory.
  std::string File(std::string_view name) const;
  // The names in the directory, sorted.
  std::vector<std::string> List() const;
  // A path beside the directory (not in it, where the node would find it)
  // for the shim's STRATA_FAULT_ARMED_IF file; removed with the directory.
  std::string ArmFile() const { return path_ + ".armed"; }

 private:
  std::string path_;
};

// Environment for strata_fault_shim (see fault_shim.c for the meaning):
//   ShimConfig("wal-", "fdatasync", "EIO").After(2).Count(1)
struct ShimConfig {
  ShimConfig() = default;  // the shim loaded but idle
  ShimConfig(std::string path_part, std::string ops, std::string error_name)
      : path(std::move(path_part)), op(std::move(ops)), error(std::move(error_name)) {}
  ShimConfig After(long n) const { return With(&ShimConfig::after, n); }
  ShimConfig Count(long n) const { return With(&ShimConfig::count, n); }
  ShimConfig ArmedIf(std::string file) const { return With(&ShimConfig::armed_if, file); }

  // "LD_PRELOAD=..." and the STRATA_FAULT_* entries.
  std::vector<std::string> Env() const;

  std::string path;   // STRATA_FAULT_PATH; empty: nothing fails
  std::string op;     // STRATA_FAULT_OP
  std::string error;  // STRATA_FAULT_ERRNO
  long after = 0;
  long count = -1;       // -1: forever
  std::string armed_if;  // STRATA_FAULT_ARMED_IF (empty: always armed)

 private:
  template <typename T>
  ShimConfig With(T ShimConfig::*member, T value) const {
    ShimConfig copy = *this;
    copy.*member = std::move(value);
    return copy;
  }
};

// The line the shim writes to stderr for every failure it injects.
inline constexpr std::string_view kShimInjected = "strata-fault-shim: injected";

// What a write's reply promised about it.
enum class Outcome {
  kAcked,    // a success reply: must survive a restart
  kRefused,  // error 11: definitely not applied, must be absent after a restart
  kUnknown,  // error 13: may or may not survive
};

// One mvcc_put and what its reply said.
struct WriteRecord {
  std::string key;    // JSON text
  std::string value;  // JSON text
  int64_t timestamp = 0;
  Outcome outcome = Outcome::kUnknown;
  std::string text;  // the error text, if any
};

class FaultNode {
 public:
  // Starts strata-node on `dir` with `flags` after --data-dir, preloading
  // the shim if `shim` is given.
  FaultNode(const std::string& dir, const std::vector<std::string>& flags,
            const std::optional<ShimConfig>& shim = std::nullopt);

  NodeProcess& process() { return process_; }

  // Sends init and expects init_ok.
  void Init();

  // Sends `body` (a JSON object text) with the next msg_id, which it returns.
  int64_t Send(std::string_view body);
  // The reply to `msg_id` (an invalid value, after a test failure, if none
  // came). Replies to other requests read meanwhile are kept for later.
  JsonValue Await(int64_t msg_id);
  JsonValue Call(std::string_view body) { return Await(Send(body)); }

  // mvcc_stats, expected to succeed.
  JsonValue Stats();

  // Puts `records` (timestamps and values filled in by the caller) with up to
  // `window` requests in flight, and fills in each one's outcome. A reply
  // that is neither success nor error 11/13 fails the test.
  void PutAll(std::vector<WriteRecord>* records, size_t window);

  // Keeps the node busy (mvcc_stats calls) until its stderr contains
  // `needle` or `timeout` passes; returns whether it appeared.
  bool WaitForStderr(std::string_view needle, std::chrono::milliseconds timeout);

  // Closes stdin and waits for the exit; returns the wait status.
  std::optional<int> Close();

  // The last part of stderr, to explain a failure.
  std::string StderrTail() const;

 private:
  // Reads one line and files it under its in_reply_to; false on timeout.
  bool ReadOne();

  NodeProcess process_;
  int64_t next_msg_id_ = 1;
  int64_t next_node_msg_id_ = 0;
  std::map<int64_t, JsonValue> replies_;
  bool stalled_ = false;  // a reply timed out: the node stopped answering
};

// Records for `count` puts of distinct keys "<prefix><n>", values of about
// `value_bytes` characters, at timestamps from `first_timestamp` on.
std::vector<WriteRecord> MakeWrites(std::string_view prefix, size_t count, size_t value_bytes,
                                    int64_t first_timestamp);

// Checks a restarted node against `records`: acknowledged writes are there
// with their value, refused ones are absent, unknown ones either.
void ExpectRecovered(FaultNode& node, const std::vector<WriteRecord>& records);

// How many records have `outcome`.
size_t CountOutcome(const std::vector<WriteRecord>& records, Outcome outcome);

// `text` in lower case, for wording checks that ignore capitalization.
std::string Lower(std::string_view text);

}  // namespace strata::testing

#endif  // STRATA_TESTS_FAULTS_FAULT_NODE_H_
