// PeerFaults: faults a test puts on a member's links to its peers, one
// kind of message at a time: hold it until a file appears, send it late,
// send it twice, send every message a random time late (so they overtake
// each other), or kill the process right after one has gone out.
//
// Why: the netfault proxy (tests/netfault) cuts and slows bytes, but a
// peer stream is HTTP/2 and a proxy cannot tell a prepare from a resolve.
// The article's scenarios need exactly that: a coordinator that dies after
// its prepares, a record's commit held back, a resolve that comes late.
// The server reads the rules from the environment variable
// STRATA_PEER_FAULTS when it starts, as etcd's end-to-end tests switch on
// gofail failpoints; it is for tests and never set in production.
//
// Rules, separated by ';', each ACTION=KIND[@PEER][:ARG]:
//   crash-after=KIND[:N]   after the Nth (default 1) KIND has been written
//                          to a peer, stop every link both ways, wait
//                          300 ms (the bytes reach the peer), then SIGKILL
//                          the process
//   hold=KIND[@PEER]:FILE  keep KIND (to PEER) unsent until FILE exists
//                          (once it does, the rule is spent: with several,
//                          the first whose file is missing holds)
//   delay=KIND[@PEER]:MS   send KIND (to PEER) MS milliseconds late
//   duplicate=KIND:PCT     send PCT % of KIND again, up to 20 ms later
//   jitter=KIND:MS         send each KIND between 0 and MS ms late
//   route=HOST:PORT>HOST2:PORT2
//                          dial the peer at HOST:PORT at HOST2:PORT2 (a
//                          netfault proxy's port, tests/netfault): every
//                          member keeps one list of peer URLs, from which
//                          a replicated cluster derives its members' ids,
//                          while each of its links runs through a proxy
// KIND is the message's field name in strata.peer.v1 (shard_prepare,
// shard_resolve, forward, ...), record_commit, record_abort, record_push,
// record_heartbeat or record_forget for a record call, or * for any.
// Replies are kinds too (prepare_reply, ...). Only messages to other
// members pass through links; what a member sends itself is not touched.
#ifndef STRATA_SERVER_PEER_FAULTS_H_
#define STRATA_SERVER_PEER_FAULTS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "peer.pb.h"
#include "strata/status.h"

namespace strata::server {

namespace peerpb = ::strata::peer::v1;

// What to do with one message on its way to a peer.
struct PeerFaultPlan {
  std::string hold_until;  // a file; nonempty: unsent until it exists
  std::chrono::milliseconds delay{0};
  // Extra copies, each with its own delay (after `delay`).
  std::vector<std::chrono::milliseconds> copies;
  bool crash_after = false;  // CrashAfterWrite once it is written
};

class PeerFaults {
 public:
  // Told what the faults do (holding, killing), for the server's log.
  using Note = std::function<void(std::string_view)>;

  // kInvalidArgument naming the rule it cannot read.
  static Result<std::unique_ptr<PeerFaults>> Parse(std::string_view spec, Note note = nullptr,
                                                   uint64_t seed = std::random_device{}());
  // A message's kind, as the rules name it.
  static std::string KindOf(const peerpb::Message& message);

  // Where to dial the peer that listens at `address` (host:port).
  std::string Route(const std::string& address) const;
  // Thread-safe: what to do with `message` on its way to `peer`.
  PeerFaultPlan Plan(std::string_view peer, const peerpb::Message& message);
  // True once a crash has begun: links neither write nor deliver any more.
  bool frozen() const { return frozen_.load(); }
  // Set by the link about to write a message planned crash_after, before
  // it writes: an answer to it that came back before CrashAfterWrite
  // froze the links would otherwise be acted on (a client answered by a
  // member that was to die; seen under load). Unset if the write failed.
  void SetFrozen(bool frozen) { frozen_.store(frozen); }
  // Called by the link that wrote a message planned crash_after: freezes
  // every link, lets the bytes go, and kills the process. Never returns.
  [[noreturn]] void CrashAfterWrite(std::string_view peer, std::string_view kind);

 private:
  enum class Action { kCrashAfter, kHold, kDelay, kDuplicate, kJitter };
  struct Rule {
    Action action;
    std::string kind;  // "*": any
    std::string peer;  // empty: any
    std::string file;  // kHold
    int64_t number = 0;
    uint64_t matched = 0;  // messages it has seen (kCrashAfter)
  };
  PeerFaults(std::vector<Rule> rules, std::map<std::string, std::string> routes, Note note,
             uint64_t seed);
  static bool Matches(const Rule& rule, std::string_view peer, std::string_view kind);

  const std::map<std::string, std::string> routes_;  // address -> where to dial it
  const Note note_;
  std::atomic<bool> frozen_{false};
  Mutex mu_;
  std::vector<Rule> rules_ STRATA_GUARDED_BY(mu_);
  std::mt19937_64 random_ STRATA_GUARDED_BY(mu_);
};

}  // namespace strata::server

#endif  // STRATA_SERVER_PEER_FAULTS_H_
