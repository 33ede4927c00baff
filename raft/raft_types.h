// The values a Raft node takes in and hands out: log entries, the messages
// nodes send each other, the state that must be durable before a node
// speaks (HardState), and one batch of work for the node's driver (Ready).
//
// The names follow the Raft paper (Ongaro and Ousterhout, "In Search of an
// Understandable Consensus Algorithm", 2014) and its thesis: terms, votes,
// AppendEntries, the commit index; PreVote and CheckQuorum from the thesis,
// section 9.6.
#ifndef STRATA_RAFT_RAFT_TYPES_H_
#define STRATA_RAFT_RAFT_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::raft {

using NodeId = uint64_t;  // 0 is "nobody"
using Term = uint64_t;
using Index = uint64_t;  // log positions from 1; 0 is "before the log"

inline constexpr NodeId kNobody = 0;

enum class EntryType : uint8_t {
  kNormal,      // for the state machine
  kConfChange,  // a membership change (ConfChange::Encode), taken in by Raft itself
};

struct Entry {
  Term term = 0;
  Index index = 0;
  // What the state machine applies; empty for the entry a new leader
  // appends to commit what earlier terms left (thesis 3.6.2).
  std::string data;
  EntryType type = EntryType::kNormal;

  bool operator==(const Entry&) const = default;
};

// One membership change (thesis 4.1: one server at a time). It takes
// effect on a member when the member appends its entry to its log.
struct ConfChange {
  enum class Kind : uint8_t {
    kAddVoter,    // a new member, or a learner promoted
    kAddLearner,  // receives the log, neither votes nor counts
    kRemove,
  };
  ConfChange() = default;
  ConfChange(Kind kind_in, NodeId node_in, std::string context_in = "")
      : kind(kind_in), node(node_in), context(std::move(context_in)) {}

  Kind kind = Kind::kAddVoter;
  NodeId node = kNobody;
  // What the group's state machine records with the change (the new
  // member's address, say); Raft carries it and does not read it.
  std::string context;

  std::string Encode() const;
  static std::optional<ConfChange> Decode(std::string_view data);
  bool operator==(const ConfChange&) const = default;
};

// The members as of some index: what a snapshot carries along with the
// state machine.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  bool operator==(const ConfState&) const = default;
};

enum class MessageType {
  kPreVote,  // "would you vote for me at term+1?" (no term change)
  kPreVoteReply,
  kVote,  // RequestVote
  kVoteReply,
  kAppend,  // AppendEntries with entries (or none, to probe)
  kAppendReply,
  kHeartbeat,  // AppendEntries without a log check: authority, commit
  kHeartbeatReply,
  kReadIndex,  // a follower asks its leader for a read index
  kReadIndexReply,
  kTimeoutNow,     // a leader hands over: "campaign now" (thesis 3.10)
  kSnapshot,       // InstallSnapshot, one chunk of it
  kSnapshotReply,  // a follower has a snapshot's chunks up to chunk_offset
};
inline constexpr MessageType kLastMessageType = MessageType::kSnapshotReply;

struct Message {
  MessageType type = MessageType::kHeartbeat;
  NodeId from = kNobody;
  NodeId to = kNobody;
  // The sender's term; for a PreVote, the term it would campaign at.
  Term term = 0;

  // kVote, kPreVote: the candidate's last log entry.
  // kAppend: the entry before `entries` (prev_log_index, prev_log_term).
  Index index = 0;
  Term log_term = 0;
  std::vector<Entry> entries;  // kAppend
  Index commit = 0;            // kAppend, kHeartbeat: the leader's commit index
  // kSnapshot: `index` and `log_term` are the snapshot's last entry; this
  // chunk is its data from `chunk_offset` on; `last_chunk` ends it.
  // kSnapshotReply: the follower holds the snapshot at `index` up to
  // `chunk_offset` (it is asked to say so by a chunk's `context` of
  // kAcknowledgeChunks).
  uint64_t chunk_offset = 0;
  std::string chunk;
  bool last_chunk = false;
  ConfState conf;  // kSnapshot: the members as of the snapshot

  // Replies: refused (a vote not granted; entries that did not match).
  bool reject = false;
  // kAppendReply: accepted, the last index now matching the leader's;
  // refused, the prev index that did not match (in `index`) and the
  // follower's last index (`reject_hint`), where the leader backs up to.
  Index reject_hint = 0;
  // kHeartbeat and its reply: the newest read the leader wants confirmed
  // (0: none). kReadIndex and its reply: the caller's request id; the
  // reply's `index` is the read index, and `reject` says there is none
  // (the receiver is not a leader that can give one). kVote: kTransfer for
  // a campaign a leader asked for, which members in a lease answer too.
  uint64_t context = 0;
};

inline constexpr uint64_t kTransfer = ~uint64_t{0};
// A snapshot chunk's context: answer it with a kSnapshotReply. (A leader
// of an earlier build sends none, and is sent no reply type it does not
// know.)
inline constexpr uint64_t kAcknowledgeChunks = 1;

// The state machine at `index` (the entry of term `term` and all before
// it), as bytes only the state machine reads. index 0: none.
struct Snapshot {
  Index index = 0;
  Term term = 0;
  ConfState conf;  // the members as of `index`
  std::string data;

  bool operator==(const Snapshot&) const = default;
};

// A read index (thesis 6.4): once this member has applied up to `index`,
// a read of its state machine reflects every write acknowledged before the
// request began. `request` is the id given to Raft::ReadIndex.
struct ReadState {
  uint64_t request = 0;
  Index index = 0;

  bool operator==(const ReadState&) const = default;
};

// What must be on disk before a node sends the messages of the same Ready:
// a vote once given, a term once seen, and the commit index (so a restart
// does not apply less than it acknowledged).
struct HardState {
  Term term = 0;
  NodeId vote = kNobody;
  Index commit = 0;

  bool operator==(const HardState&) const = default;
};

// One batch of work for the driver, in this order:
//  1. write `snapshot` (if its index is not 0: it replaces the stored
//     snapshot and every stored entry), then `hard_state` (if set) and
//     `entries` durably: entries replace the stored log from
//     entries.front().index on. A hard state whose term and vote are those
//     stored may wait (its commit index is a hint: the leader sends it
//     again, and one stored below the snapshot is raised to it);
//  2. send `messages`;
//  3. restore the state machine from `snapshot` (if any), apply
//     `committed` to it, in order (and serve the `read_states` whose index
//     is applied);
//  4. call Raft::Advance with this Ready.
struct Ready {
  Snapshot snapshot;  // from the leader: the state machine to restore
  bool has_hard_state = false;
  HardState hard_state;
  std::vector<Entry> entries;
  std::vector<Message> messages;
  std::vector<Entry> committed;
  // Reads this member may now serve, once it has applied their index.
  std::vector<ReadState> read_states;
  // ReadIndex requests that could not be given an index (no leader, or a
  // leader that lost its place): the caller may ask again.
  std::vector<uint64_t> failed_reads;

  bool empty() const {
    return snapshot.index == 0 && !has_hard_state && entries.empty() && messages.empty() &&
           committed.empty() && read_states.empty() && failed_reads.empty();
  }
};

}  // namespace strata::raft

#endif  // STRATA_RAFT_RAFT_TYPES_H_
