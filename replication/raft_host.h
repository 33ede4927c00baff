// RaftHost: runs one node's Raft groups. It owns their members
// (raft::MultiRaft), their durable state (RaftLogStore) and each group's
// replicated state machine, and does the driver's part of Raft's contract:
// round after round, it makes every group's Ready durable with one sync,
// sends the round's batches (one a destination node), restores snapshots,
// applies committed entries, answers the proposals and reads waiting on
// them, and compacts a group's log once enough is applied.
//
// It is the piece between Raft (pure, raft/) and a node's event loop: the
// loop calls Tick on its timer, Receive for each peer batch, Propose and
// Read for clients, and Run once its input is drained. Nothing here
// blocks but the round's write and sync.
//
// Every client-controlled amount is bounded: a command's size, and the
// proposals and reads waiting per group; each waits at most a timeout.
//
// Not thread-safe: the node's loop owns it.
#ifndef STRATA_REPLICATION_RAFT_HOST_H_
#define STRATA_REPLICATION_RAFT_HOST_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "raft/multi_raft.h"
#include "replication/raft_log_store.h"
#include "strata/status.h"

namespace strata::replication {

// One group's replicated state, as the host applies it. Every replica of
// a group applies the same commands in the same order.
class ReplicatedState {
 public:
  virtual ~ReplicatedState() = default;
  // Replaces the whole state by a snapshot Save() made (on this replica or
  // another); "" is the state a new group starts from. An error (a
  // snapshot that does not restore) stops the host.
  virtual Status Restore(std::string_view snapshot) = 0;
  // Applies the committed command at `index` and returns its result, which
  // the replica that proposed it hands to its proposer (as bytes, so a
  // proposal forwarded from another node can be answered over the wire).
  virtual std::string Apply(raft::Index index, std::string_view command) = 0;
  // The committed membership change at `index` (Raft took it in already,
  // when it was appended): what the state keeps of members (their
  // addresses, say) follows it here, in log order like every command.
  virtual void ApplyConfChange(raft::Index /*index*/, const raft::ConfChange& /*change*/) {}
  // The state as bytes Restore() takes.
  virtual std::string Save() const = 0;
  // A function that makes the bytes Save() would return now, and that may
  // run on another thread while Apply goes on, so a large state is saved
  // off the driver's thread. The default saves at once. Each call is
  // followed by one SaveFinished(), on the driver's thread, once the bytes
  // were made (whether or not they were used).
  virtual std::function<std::string()> SaveLater() {
    return [saved = Save()] { return saved; };
  }
  virtual void SaveFinished() {}
};

struct RaftHostOptions {
  // Every group's Raft settings; `id`, `voters` and the seed are set here.
  raft::RaftConfig raft;
  RaftLogOptions log;
  // A group's log is compacted into a snapshot once this many entries are
  // applied past its last one (etcd's --snapshot-count), and the entries
  // since hold at least as many bytes as that snapshot did: so the work of
  // snapshots is at most that of the log, however large the state.
  uint64_t compact_after = 100'000;
  // Snapshots saved on a thread of the host's (SaveLater), the log
  // compacted once the bytes are made, so the driver's thread goes on
  // meanwhile; false: saved and compacted within the round (deterministic,
  // for simulations).
  bool save_in_background = false;
  // Bounds on what clients ask: a command's size, proposals and reads
  // waiting per group, and how many ticks each may wait.
  size_t max_command_bytes = size_t{3} << 19;  // 1.5 MiB, etcd's request limit
  size_t max_waiting = 10'000;
  uint64_t timeout_ticks = 100;
};

struct RaftHostStats {
  uint64_t rounds = 0;  // of Ready, each with one sync
  uint64_t groups = 0;
  uint64_t leaders = 0;  // groups this node leads
  uint64_t applied = 0;  // commands applied here
  uint64_t proposals_done = 0;
  uint64_t proposals_failed = 0;  // refused, superseded, timed out
  uint64_t reads_done = 0;
  uint64_t reads_failed = 0;
  uint64_t compactions = 0;
  uint64_t saves_in_background = 0;  // started; each ends in a compaction or is dropped
  uint64_t snapshots_too_large = 0;  // not taken: more than a log record holds (in memory)
  uint64_t snapshots_unwritten = 0;  // not taken: their file could not be written
  uint64_t snapshots_restored = 0;   // sent by a leader
  RaftLogStats log;
};

class RaftHost final {
 public:
  // The answer to a read or a membership change: Ok once this replica
  // reflects every write acknowledged before the read began, or once the
  // change is applied.
  using Done = std::function<void(Status)>;
  // The answer to a proposal: what applying it returned. kUnavailable with
  // "may still be applied" is an unknown outcome; every other error means
  // it was not applied.
  using Applied = std::function<void(Result<std::string>)>;
  using Send = std::function<void(raft::NodeBatch)>;
  using StateFactory = std::function<std::unique_ptr<ReplicatedState>(raft::GroupId)>;

  // Opens the node's Raft log in `dir` and restarts every group found
  // there, each with a state from `factory`.
  ~RaftHost();  // waits for a save under way
  static Result<std::unique_ptr<RaftHost>> Open(raft::NodeId id, std::string dir,
                                                RaftHostOptions options, StateFactory factory,
                                                Send send);

  // Starts this node's member of a new group. `voters`: the group's first
  // members (the same on each of them), or none for a member that joins an
  // existing group and learns its members from the leader. `initial`: the
  // state the group starts from (bytes Restore takes, the same on each
  // first member: a backup restored), "" for the empty state. Durable when
  // it returns.
  Status CreateGroup(raft::GroupId group, std::vector<raft::NodeId> voters,
                     std::string initial = "");
  // Stops this node's member of `group` and forgets its state; what waits
  // on it fails.
  Status RemoveGroup(raft::GroupId group);

  void Tick();
  void Receive(const raft::NodeBatch& batch);
  // Proposes `command` (non-empty) to `group`; this member must lead it.
  void Propose(raft::GroupId group, std::string command, Applied done);
  // Proposes one membership change to `group` (on its leader).
  void ProposeConfChange(raft::GroupId group, raft::ConfChange change, Done done);
  // A linearizable read of `group` on this replica (Raft's ReadIndex).
  void Read(raft::GroupId group, Done done);

  // Does every round there is to do. An error is the log's, and final:
  // the host then refuses everything.
  Status Run();

  raft::MultiRaft& raft() { return multi_; }
  const ReplicatedState* state(raft::GroupId group) const;
  // The same, for what a state keeps beside the replicated part (a change
  // log's observer, a leader's own bookkeeping): changing replicated state
  // anywhere but in Apply would make replicas differ.
  ReplicatedState* state(raft::GroupId group);
  raft::Index applied(raft::GroupId group) const;
  RaftHostStats stats() const;
  Status health() const;

 private:
  struct Waiting {
    raft::Term term = 0;  // a proposal's (0 for a read)
    uint64_t deadline = 0;
    Applied done;  // a read's or change's Done gets the status alone
  };
  struct Group {
    std::unique_ptr<ReplicatedState> state;
    raft::Index applied = 0;
    raft::Index snapshot = 0;                   // the index of the newest snapshot
    uint64_t snapshot_bytes = 0;                // its size
    uint64_t bytes_since_snapshot = 0;          // of the entries applied since
    std::map<raft::Index, Waiting> proposals;   // by index
    std::multimap<raft::Index, Waiting> reads;  // given an index, by it
    std::map<uint64_t, Waiting> asked_reads;    // asked, by request id
  };

  RaftHost(raft::NodeId id, RaftHostOptions options, StateFactory factory, Send send,
           std::unique_ptr<RaftLogStore> store)
      : options_(std::move(options)),
        factory_(std::move(factory)),
        send_(std::move(send)),
        store_(std::move(store)),
        multi_(id) {}

  raft::RaftConfig ConfigFor(raft::GroupId group, std::vector<raft::NodeId> voters) const;
  void StartGroup(raft::GroupId group, raft::RaftStorage stored);
  // The group if it exists and may take one more waiting request;
  // otherwise answers `done` and returns null.
  Group* Admit(raft::GroupId group, const Applied& done);
  // Keeps `done` waiting for the entry at `index` (of `term`), answering
  // an earlier proposal that waited there.
  void Wait(raft::GroupId group, Group& g, raft::Index index, raft::Term term, Applied done);
  void Apply(raft::GroupId group, const raft::Ready& ready);
  void ServeReads(Group& g);
  void MaybeCompact(raft::GroupId group, Group& g);
  // Compacts `group`'s log into the snapshot `data` of its state at `index`,
  // written to `file` already if not "".
  void CompactTo(raft::GroupId group, Group& g, raft::Index index, std::string data,
                 const std::string& file = "");
  // Compacts the logs whose saves finished in the background.
  Status TakeSavedSnapshots();
  // Has each group's Raft drop its copy of a snapshot that is durable in a
  // file (Raft reads the file to send it): a whole state less in memory.
  void ReleaseDurableSnapshots();
  void SaveRunner();
  void FailAll(Group& g, const Status& why);
  // The host stops for good (health() says why).
  void Stop(std::string why);
  Status RunRounds();
  // Answers are queued while the host's state is being changed and given
  // once it is consistent, so a Done may call the host again.
  void Answer(Applied done, Result<std::string> result);
  void DeliverAnswers();

  RaftHostOptions options_;
  StateFactory factory_;
  Send send_;
  std::unique_ptr<RaftLogStore> store_;
  raft::MultiRaft multi_;
  std::map<raft::GroupId, Group> groups_;
  std::vector<std::pair<Applied, Result<std::string>>> answers_;
  uint64_t now_ = 0;  // ticks since Open
  uint64_t next_read_ = 1;
  RaftHostStats stats_;
  std::optional<std::string> failure_;  // a snapshot that did not restore

  // Background saves (save_in_background): one thread, started at the
  // first, runs them in turn; what they made waits in saved_ for the
  // driver's next Run.
  struct Saved {
    raft::GroupId group;
    raft::Index index;
    std::string data;
    std::string file;  // written with the data, unless "" (a store in memory)
    Status written;    // the file's write
  };
  std::set<raft::GroupId> saving_;  // the driver's: groups with a save under way
  Mutex saves_mu_;
  CondVar saves_cv_;
  std::deque<std::function<void()>> save_jobs_ STRATA_GUARDED_BY(saves_mu_);
  std::vector<Saved> saved_ STRATA_GUARDED_BY(saves_mu_);
  bool stop_saves_ STRATA_GUARDED_BY(saves_mu_) = false;
  std::thread saver_;
};

}  // namespace strata::replication

#endif  // STRATA_REPLICATION_RAFT_HOST_H_
