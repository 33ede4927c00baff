// Raft: one member of one Raft group, as a state machine with no I/O.
//
// The driver (an event loop, or a test's simulation) feeds it ticks and
// messages, proposes commands on the leader, and takes batches of work
// (Ready: state and entries to make durable, messages to send, entries to
// apply), then reports them done (Advance). Nothing here reads a clock,
// a disk or a socket, so a test can run thousands of groups through loss,
// reordering, partitions and crashes deterministically (tests/raft).
//
// What it does (the Raft paper and thesis; section numbers are the
// paper's unless said):
//  - elections with randomized timeouts (5.2), the log up-to-date check
//    (5.4.1), one vote per term made durable before it is sent;
//  - PreVote (thesis 9.6): a node that lost touch campaigns only once a
//    majority would vote for it, so rejoining does not depose a leader;
//  - CheckQuorum (thesis 6.2): a leader that has not heard from a majority
//    for an election timeout steps down, and a node that heard from its
//    leader within that time ignores candidates (a leader lease);
//  - replication with the consistency check (5.3): a follower's
//    conflicting suffix is replaced; the leader backs up to the follower's
//    last index on a refusal, probes one message at a time until an entry
//    matches, then sends entries as they come;
//  - commitment only of entries of the leader's own term by counting
//    replicas (5.4.2, the "Figure 8" rule), the leader counting itself
//    only for entries it has made durable;
//  - a new leader appends an empty entry to commit earlier terms' entries;
//  - ReadIndex (thesis 6.4): linearizable reads without a log write;
//  - leadership transfer (thesis 3.10);
//  - log compaction, and snapshots sent in chunks to followers that need
//    compacted entries (thesis 5);
//  - membership changes one server at a time, each member using the
//    newest configuration in its log, and learners (thesis 4).
// docs/RAFT.md says how a driver uses it and how it is tested; MultiRaft
// (multi_raft.h) drives a node's many groups together.
//
// Not thread-safe: one driver thread owns it.
#ifndef STRATA_RAFT_RAFT_H_
#define STRATA_RAFT_RAFT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "raft/raft_log.h"
#include "raft/raft_types.h"

namespace strata::raft {

struct RaftConfig {
  NodeId id = kNobody;
  // The members a new group starts with (a restarted member takes them
  // from its snapshot and the membership changes in its log instead).
  std::vector<NodeId> voters;
  // In ticks: a follower that hears nothing for a random time in
  // [election_ticks, 2 * election_ticks) campaigns; a leader sends
  // heartbeats every heartbeat_ticks.
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  // Entries one append message carries at most, and their data's bytes at
  // most (one entry larger than that goes alone), so that one message
  // stays well under what a transport carries (etcd's MaxSizePerMsg).
  size_t max_entries_per_message = 64;
  size_t max_bytes_per_message = 1 << 20;
  // Appends sent and not yet answered, per follower, before the leader
  // waits for answers.
  size_t max_inflight = 256;
  // A snapshot goes to a follower in messages of at most this many bytes,
  // at most snapshot_window_chunks of them sent and not yet acknowledged
  // (so a leader holds a window, not a whole state machine, in messages
  // for each follower it catches up).
  size_t snapshot_chunk_bytes = 1 << 20;
  size_t snapshot_window_chunks = 4;
  // Where the newest snapshot's data is read from once the driver has
  // released it here (ReleaseSnapshotData): `length` bytes from `offset`
  // of the snapshot at `index` (fewer at its end), or nullopt if they
  // cannot be read (the follower is sent it again later). The driver's
  // storage, as etcd's raft reads its Storage; null: data stays here.
  std::function<std::optional<std::string>(Index index, uint64_t offset, size_t length)>
      snapshot_reader;
  uint64_t random_seed = 1;  // the election timeouts' randomness
};

// What a node's storage held when it started.
struct RaftStorage {
  HardState hard_state;
  Snapshot snapshot;           // the log's compacted start (index 0: none)
  std::vector<Entry> entries;  // indexes snapshot.index + 1, + 2, ...

  bool operator==(const RaftStorage&) const = default;
};

enum class RaftRole { kFollower, kPreCandidate, kCandidate, kLeader };

class Raft final {
 public:
  Raft(RaftConfig config, RaftStorage storage);

  // One unit of logical time.
  void Tick();
  // A message from another member (or a stale copy of one).
  void Step(const Message& message);
  // On the leader: appends `data` to the log and returns its index;
  // elsewhere, or while the leader hands over, nullopt (the caller asks
  // the leader, leader() if known).
  std::optional<Index> Propose(std::string data);
  // On the leader: hands leadership to `target` (thesis 3.10). The leader
  // stops taking proposals, brings the target's log up to date and tells
  // it to campaign at once; the target wins unless another log is ahead.
  // Given up after an election timeout without a new leader. False if
  // this member is not the leader or `target` is not another voter.
  bool TransferLeadership(NodeId target);
  // Log compaction: the driver saved the state machine at `index` (at most
  // what is applied, and what is durable) as `data`, and drops the
  // entries up to it from its storage; the log drops them here. A
  // follower that needs them is sent this snapshot, in chunks. False if
  // `index` is out of range.
  bool Compact(Index index, std::string data);
  // On the leader: proposes one membership change (thesis 4.1) and returns
  // its index; it takes effect on each member as the member appends the
  // entry. nullopt elsewhere, while handing over, while an earlier change
  // is not committed yet, before the leader has committed an entry of its
  // own term (the fix to single-server changes, thesis 4.1 / the raft-dev
  // post of 2015), and for a removal that would leave fewer than two
  // voters (add one first). A leader that
  // removes itself leads, not counting itself, until the removal is
  // committed, then steps down.
  std::optional<Index> ProposeConfChange(ConfChange change);
  const std::set<NodeId>& voters() const { return voters_; }
  const std::set<NodeId>& learners() const { return learners_; }
  // On the leader: the highest index known to be on `member` (0 if it is
  // not a member, or elsewhere); a learner near the leader's last index
  // may be promoted without stalling commits.
  Index MatchOf(NodeId member) const;
  // On the leader: whether `member` answered within the last election
  // timeout (itself: always). etcd's strict reconfiguration check counts
  // such members before a change that could cost the majority.
  bool Active(NodeId member) const;
  NodeId transferring_to() const { return transferee_; }
  // The index of the newest membership change in the log (0: none since
  // the snapshot). voters() and learners() take a change when it is
  // appended; once the driver applied this index they are the committed
  // configuration.
  Index LastConfChange() const { return conf_changes_.empty() ? 0 : conf_changes_.rbegin()->first; }
  // On the leader: whether the voters after `change` would include a
  // majority of them that answered within the last election timeout
  // (Active; a voter added, not yet a member, counts as silent). etcd's
  // strict reconfiguration check: a change that fails it could leave the
  // group without a majority to commit with.
  bool ActiveMajorityAfter(const ConfChange& change) const;

  // The driver learned that `leader` is gone (its connection to this
  // member broke, as when its process dies). A follower of it leaves the
  // leader's lease at once (it grants a candidate's PreVote) and skips the
  // fixed part of its election timeout: it campaigns after the random part
  // alone. The voters left take turns in id order, each within its own
  // slice of the random part, so members that learn it together do not
  // campaign together (a split vote costs a whole timeout more). A
  // leader that is in fact alive is not deposed: its next heartbeat
  // restarts the timer, and a member still in its lease refuses the
  // PreVote. Failover after a crash then takes about half an election
  // timeout instead of one and a half.
  void LeaderUnreachable(NodeId leader);
  // Asks for a read index (thesis 6.4) for `request`, an id of the
  // caller's: a later Ready carries it in read_states (serve the read once
  // applied up to its index) or in failed_reads (no leader could give one:
  // ask again). A follower asks its leader; a leader confirms it still
  // leads with a round of heartbeats, and gives none before it has
  // committed an entry of its own term. A request lost on the way gets no
  // answer: the caller gives up after a timeout of its own.
  void ReadIndex(uint64_t request);

  bool HasReady() const;
  // The work to do now (see Ready for the order).
  Ready TakeReady();
  // The driver did all of `ready`: its entries and state are durable, its
  // messages sent, its committed entries applied.
  void Advance(const Ready& ready);

  NodeId id() const { return config_.id; }
  RaftRole role() const { return role_; }
  Term term() const { return term_; }
  NodeId leader() const { return leader_; }
  NodeId vote() const { return vote_; }
  const RaftLog& log() const { return log_; }
  // Messages dropped because no correct member sends them (Step).
  uint64_t malformed() const { return malformed_; }
  // The newest snapshot (taken here, or received from a leader); its data
  // is empty once released.
  const Snapshot& snapshot() const { return snapshot_; }
  uint64_t snapshot_bytes() const { return snapshot_bytes_; }  // its data's size, held or not
  // The driver holds the newest snapshot's data durably, readable through
  // config's snapshot_reader: this member drops its copy (a whole state
  // machine's worth of memory). False, keeping it, without a reader or if
  // `index` is not the newest snapshot's.
  bool ReleaseSnapshotData(Index index);

 private:
  struct Progress {
    Index match = 0;  // the highest index known to be on the follower
    Index next = 1;   // the next index to send it
    // Probing: one append at a time until a match is found; then entries
    // are sent as they come (replicating), up to max_inflight unanswered.
    bool replicating = false;
    bool paused = false;  // probing and waiting for an answer
    size_t inflight = 0;
    bool recently_active = false;  // heard from since the last quorum check
    uint64_t heard_at = 0;         // the leader's tick it was last heard at (0: never)
    // A snapshot being sent and not yet answered (its index), the
    // heartbeats answered since its last chunk was acknowledged (after an
    // election timeout of them it is sent again), and its bytes sent and
    // acknowledged so far.
    Index pending_snapshot = 0;
    int snapshot_wait = 0;
    uint64_t snapshot_sent = 0;
    uint64_t snapshot_acked = 0;
  };

  // A read the leader is confirming: it may be served at `index` once a
  // majority has answered a heartbeat sent after it was asked (`seq`).
  struct PendingRead {
    uint64_t seq = 0;
    uint64_t request = 0;
    NodeId asker = kNobody;
    Index index = 0;
    std::set<NodeId> acks;
  };

  void BecomeFollower(Term term, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate(bool transfer = false);
  void BecomeLeader();
  // `transfer`: asked for by the leader, so members in a lease vote too.
  void Campaign(MessageType type, bool transfer = false);
  void SendTimeoutNow(NodeId to);
  void ResetElectionTimer();
  bool InLease() const;
  size_t Quorum() const { return voters_.size() / 2 + 1; }
  bool IsVoter(NodeId node) const { return voters_.count(node) != 0; }
  // How many of `nodes` are voters.
  size_t Voters(const std::set<NodeId>& nodes) const;
  // The members from the snapshot's and the changes in the log (after the
  // log changed); a leader starts and stops replicating to members.
  void RebuildConf();
  // The members as of `index`, for a snapshot taken there.
  ConfState ConfAt(Index index) const;
  void Send(Message message);

  void HandleVoteRequest(const Message& m);
  void HandleVoteReply(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleAppendReply(const Message& m);
  void HandleHeartbeatReply(const Message& m);
  void HandleReadIndexReply(const Message& m);
  // Leader: `peer`'s progress, marked as heard from (nullptr: not a member).
  Progress* HeardFrom(NodeId peer);
  void HandleSnapshot(const Message& m);
  void HandleSnapshotReply(const Message& m);
  // Leader: starts sending the snapshot to `to`; then sends its chunks as
  // the window allows (SendSnapshotChunks), more as they are acknowledged.
  void SendSnapshot(NodeId to);
  void SendSnapshotChunks(NodeId to);

  // Leader: a read for `asker` (this member or a follower).
  void LeaderReadIndex(uint64_t request, NodeId asker);
  void StartRead(uint64_t request, NodeId asker);
  void AnswerRead(uint64_t request, NodeId asker, Index index);
  void FailRead(uint64_t request, NodeId asker);
  bool CommittedInTerm() const { return log_.TermAt(log_.committed()) == term_; }
  // Leader: sends `to` what it lacks (if it may send now); true if sent.
  bool SendAppend(NodeId to, bool even_if_empty);
  void BroadcastAppend();
  void BroadcastHeartbeat(uint64_t context);
  // Leader: raises the commit index to what a majority holds, if that
  // entry is of this term. True if it rose.
  bool MaybeCommit();

  RaftConfig config_;
  RaftLog log_;
  Term term_ = 0;
  NodeId vote_ = kNobody;
  NodeId leader_ = kNobody;
  RaftRole role_ = RaftRole::kFollower;

  uint64_t ticks_ = 0;           // ticks since this member started
  int election_elapsed_ = 0;     // ticks since the leader, or a granted vote, was heard
  int randomized_timeout_ = 0;   // this round's election timeout
  int heartbeat_elapsed_ = 0;    // leader: ticks since the last heartbeats
  int quorum_elapsed_ = 0;       // leader: ticks since the last quorum check
  NodeId transferee_ = kNobody;  // leader: handing over to it
  int transfer_elapsed_ = 0;     // leader: ticks since the handover began
  std::set<NodeId> votes_for_, votes_against_;
  std::map<NodeId, Progress> progress_;  // leader: every member but itself
  std::set<NodeId> voters_, learners_;   // as the newest change in the log says
  // The members as of the snapshot, and after each change in the log.
  ConfState base_conf_;
  std::map<Index, ConfState> conf_changes_;
  std::mt19937_64 random_;

  // Leader: reads asked before it committed in its term, and reads being
  // confirmed (in the order asked).
  std::vector<std::pair<uint64_t, NodeId>> reads_before_commit_;
  std::vector<PendingRead> pending_reads_;
  uint64_t read_seq_ = 0;

  Snapshot snapshot_;            // the newest snapshot, what a follower is sent
  uint64_t snapshot_bytes_ = 0;  // its data's size, also once released
  Snapshot incoming_;            // follower: the chunks received so far
  Snapshot to_restore_;          // follower: received whole, for the next Ready

  uint64_t malformed_ = 0;
  std::vector<Message> outbox_;
  std::vector<ReadState> read_states_;
  std::vector<uint64_t> failed_reads_;
  HardState last_hard_state_;  // as last handed out in a Ready
};

}  // namespace strata::raft

#endif  // STRATA_RAFT_RAFT_H_
