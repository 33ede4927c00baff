#include "raft/raft.h"

#include <algorithm>
#include <functional>
#include <utility>

namespace strata::raft {

namespace {

bool IsVoteRequest(MessageType type) {
  return type == MessageType::kVote || type == MessageType::kPreVote;
}

// What no correct member sends: entries that do not follow the message's
// previous entry one by one, or of a term later than the sender's; a
// previous entry, snapshot or entry of term 0 where there is an index; a
// message of term 0. A member that got such a message (a bug, a corrupted
// link) drops it rather than let it break its log's numbering.
bool WellFormed(const Message& m) {
  if (m.term == 0) return false;
  const bool names_an_entry = m.type == MessageType::kVote || m.type == MessageType::kPreVote ||
                              m.type == MessageType::kAppend || m.type == MessageType::kSnapshot;
  if (names_an_entry && ((m.index == 0) != (m.log_term == 0) || m.log_term > m.term)) {
    return false;
  }
  Index expected = m.index + 1;
  Term previous = m.log_term;
  for (const Entry& e : m.entries) {
    if (e.index != expected++ || e.term == 0 || e.term < previous || e.term > m.term) return false;
    previous = e.term;
  }
  if (!m.entries.empty() && m.type != MessageType::kAppend) return false;
  if ((m.type == MessageType::kSnapshot || m.type == MessageType::kSnapshotReply) && m.index == 0) {
    return false;
  }
  return true;
}

// A message of `type` for `to` (Send fills in the sender and the term).
Message To(NodeId to, MessageType type) {
  Message m;
  m.type = type;
  m.to = to;
  return m;
}

bool IsFromLeader(MessageType type) {
  return type == MessageType::kAppend || type == MessageType::kHeartbeat ||
         type == MessageType::kSnapshot;
}

}  // namespace

Raft::Raft(RaftConfig config, RaftStorage storage)
    : config_(std::move(config)),
      log_(storage.snapshot.index, storage.snapshot.term, std::move(storage.entries),
           storage.hard_state.commit),
      term_(storage.hard_state.term),
      vote_(storage.hard_state.vote),
      random_(config_.random_seed ^ (config_.id * 0x9e3779b97f4a7c15ULL)),
      snapshot_(std::move(storage.snapshot)),
      snapshot_bytes_(snapshot_.data.size()),
      last_hard_state_(storage.hard_state) {
  last_hard_state_.commit = log_.committed();
  base_conf_ = snapshot_.index != 0 ? snapshot_.conf : ConfState{config_.voters, {}};
  std::sort(base_conf_.voters.begin(), base_conf_.voters.end());
  RebuildConf();
  BecomeFollower(term_, kNobody);
}

// --- membership ----------------------------------------------------------------
//
// A member uses the newest configuration in its log, committed or not
// (thesis 4.1): a change takes effect on each member as it appends the
// entry, and is undone if the entry is replaced. So members that hold the
// entry removing a leader elect among themselves without it, and a leader
// never needs a vote from a member it removed.

namespace {

void Change(ConfState* conf, const ConfChange& change) {
  auto drop = [](std::vector<NodeId>* nodes, NodeId node) { std::erase(*nodes, node); };
  auto add = [](std::vector<NodeId>* nodes, NodeId node) {
    if (std::find(nodes->begin(), nodes->end(), node) == nodes->end()) nodes->push_back(node);
    std::sort(nodes->begin(), nodes->end());
  };
  const bool voter =
      std::find(conf->voters.begin(), conf->voters.end(), change.node) != conf->voters.end();
  switch (change.kind) {
    case ConfChange::Kind::kAddVoter:
      drop(&conf->learners, change.node);
      add(&conf->voters, change.node);
      break;
    case ConfChange::Kind::kAddLearner:
      if (!voter) add(&conf->learners, change.node);
      break;
    case ConfChange::Kind::kRemove:
      drop(&conf->voters, change.node);
      drop(&conf->learners, change.node);
      break;
  }
}

}  // namespace

void Raft::RebuildConf() {
  conf_changes_.clear();
  ConfState conf = base_conf_;
  for (const Entry& e : log_.Slice(log_.first_index(), log_.last_index(), SIZE_MAX)) {
    if (e.type != EntryType::kConfChange) continue;
    if (auto change = ConfChange::Decode(e.data)) Change(&conf, *change);
    conf_changes_[e.index] = conf;
  }
  voters_ = std::set<NodeId>(conf.voters.begin(), conf.voters.end());
  learners_ = std::set<NodeId>(conf.learners.begin(), conf.learners.end());
  if (role_ != RaftRole::kLeader) return;
  // The leader replicates to every member and no one else.
  std::erase_if(progress_, [&](const auto& entry) {
    return !IsVoter(entry.first) && learners_.count(entry.first) == 0;
  });
  if (transferee_ != kNobody && !IsVoter(transferee_)) transferee_ = kNobody;
  std::set<NodeId> members = voters_;
  members.insert(learners_.begin(), learners_.end());
  for (NodeId node : members) {
    if (node == config_.id || progress_.count(node) != 0) continue;
    Progress& p = progress_[node];
    p.next = log_.last_index() + 1;
    p.recently_active = true;
    SendAppend(node, true);
  }
}

size_t Raft::Voters(const std::set<NodeId>& nodes) const {
  size_t n = 0;
  for (NodeId node : nodes) n += IsVoter(node) ? 1 : 0;
  return n;
}

ConfState Raft::ConfAt(Index index) const {
  auto it = conf_changes_.upper_bound(index);
  return it == conf_changes_.begin() ? base_conf_ : std::prev(it)->second;
}

void Raft::LeaderUnreachable(NodeId leader) {
  if (role_ != RaftRole::kFollower || leader == kNobody || leader_ != leader) return;
  election_elapsed_ = std::max(election_elapsed_, config_.election_ticks);
  if (!IsVoter(config_.id)) return;  // never campaigns
  // The voters left, in id order, share the random part of the timeout:
  // the first campaigns within its first slice, the second within the
  // next. Drawing over the whole part, two of them could pick the same
  // tick, campaign together and split the vote: a second timeout.
  size_t rank = 0;
  size_t left = 0;
  for (NodeId voter : voters_) {
    if (voter == leader) continue;
    if (voter < config_.id) ++rank;
    ++left;
  }
  const int slice =
      std::max(1, config_.election_ticks / static_cast<int>(std::max<size_t>(left, 1)));
  randomized_timeout_ = config_.election_ticks + static_cast<int>(rank) * slice +
                        static_cast<int>(random_() % static_cast<uint64_t>(slice));
}

Index Raft::MatchOf(NodeId member) const {
  if (role_ != RaftRole::kLeader) return 0;
  if (member == config_.id) return log_.last_index();
  auto it = progress_.find(member);
  return it == progress_.end() ? 0 : it->second.match;
}

bool Raft::Active(NodeId member) const {
  if (role_ != RaftRole::kLeader) return false;
  if (member == config_.id) return true;
  auto it = progress_.find(member);
  return it != progress_.end() && it->second.heard_at != 0 &&
         ticks_ + 1 - it->second.heard_at < static_cast<uint64_t>(config_.election_ticks);
}

bool Raft::ActiveMajorityAfter(const ConfChange& change) const {
  std::set<NodeId> after = voters_;
  if (change.kind == ConfChange::Kind::kRemove) after.erase(change.node);
  if (change.kind == ConfChange::Kind::kAddVoter) after.insert(change.node);
  size_t active = 0;
  for (NodeId voter : after) {
    // A learner promoted has a progress of its own; a newcomer has none.
    if (Active(voter)) ++active;
  }
  return active >= after.size() / 2 + 1;
}

std::optional<Index> Raft::ProposeConfChange(ConfChange change) {
  if (role_ != RaftRole::kLeader || transferee_ != kNobody) return std::nullopt;
  // One change at a time, each after the leader's first commit of its term.
  if (!CommittedInTerm()) return std::nullopt;
  if (LastConfChange() > log_.committed()) {
    return std::nullopt;
  }
  // From two voters to one is refused: if the entry reached only the one
  // it removes, the other would need that one's vote, which it would not
  // get (its log is behind) while the removed one no longer campaigns.
  if (change.kind == ConfChange::Kind::kRemove && voters_.size() <= 2 && IsVoter(change.node)) {
    return std::nullopt;
  }
  const Index index = log_.last_index() + 1;
  log_.Append(Entry{term_, index, change.Encode(), EntryType::kConfChange});
  RebuildConf();
  BroadcastAppend();
  // Fewer voters may make a smaller majority.
  if (MaybeCommit()) BroadcastAppend();
  return index;
}

// --- roles -------------------------------------------------------------------

void Raft::BecomeFollower(Term term, NodeId leader) {
  std::vector<std::pair<uint64_t, NodeId>> unconfirmed;
  unconfirmed.swap(reads_before_commit_);
  for (const PendingRead& read : pending_reads_) unconfirmed.emplace_back(read.request, read.asker);
  pending_reads_.clear();
  if (term != term_) {
    term_ = term;
    vote_ = kNobody;
  }
  // A leader that steps down cannot confirm what it was asked to read (the
  // refusals carry the new term, which their askers do not drop).
  for (const auto& [request, asker] : unconfirmed) FailRead(request, asker);
  role_ = RaftRole::kFollower;
  leader_ = leader;
  transferee_ = kNobody;
  progress_.clear();
  ResetElectionTimer();
}

void Raft::BecomePreCandidate() {
  // The term stays: only a majority's promise makes this node campaign.
  role_ = RaftRole::kPreCandidate;
  leader_ = kNobody;
  ResetElectionTimer();
  Campaign(MessageType::kPreVote);
}

void Raft::BecomeCandidate(bool transfer) {
  ++term_;
  vote_ = config_.id;
  role_ = RaftRole::kCandidate;
  leader_ = kNobody;
  ResetElectionTimer();
  Campaign(MessageType::kVote, transfer);
}

void Raft::Campaign(MessageType type, bool transfer) {
  votes_for_ = {config_.id};
  votes_against_.clear();
  if (votes_for_.size() >= Quorum()) {  // a group of one
    return type == MessageType::kPreVote ? BecomeCandidate() : BecomeLeader();
  }
  const Term term = type == MessageType::kPreVote ? term_ + 1 : term_;
  for (NodeId peer : voters_) {
    if (peer == config_.id) continue;
    Message m = To(peer, type);
    m.term = term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    if (transfer) m.context = kTransfer;
    Send(std::move(m));
  }
}

void Raft::BecomeLeader() {
  role_ = RaftRole::kLeader;
  leader_ = config_.id;
  heartbeat_elapsed_ = quorum_elapsed_ = 0;
  progress_.clear();
  std::set<NodeId> members = voters_;
  members.insert(learners_.begin(), learners_.end());
  for (NodeId peer : members) {
    if (peer == config_.id) continue;
    Progress& p = progress_[peer];
    p.next = log_.last_index() + 1;
    p.recently_active = true;  // a fresh leader gets a full timeout to hear from them
  }
  // Entries of earlier terms commit only under an entry of this one. Until
  // it is committed, no membership change (ProposeConfChange): one of an
  // earlier term may still be in the log uncommitted.
  log_.Append(Entry{term_, log_.last_index() + 1, ""});
  BroadcastAppend();
}

void Raft::ResetElectionTimer() {
  election_elapsed_ = 0;
  randomized_timeout_ =
      config_.election_ticks +
      static_cast<int>(random_() % static_cast<uint64_t>(std::max(1, config_.election_ticks)));
}

bool Raft::InLease() const {
  return config_.check_quorum && leader_ != kNobody && election_elapsed_ < config_.election_ticks;
}

void Raft::Send(Message message) {
  message.from = config_.id;
  if (message.term == 0) message.term = term_;
  outbox_.push_back(std::move(message));
}

// --- time --------------------------------------------------------------------

void Raft::Tick() {
  ++ticks_;
  if (role_ != RaftRole::kLeader) {
    // Learners and members removed never campaign; their time since the
    // leader was heard still runs, so a lease of theirs ends and they
    // answer a candidate that counts them (one whose log holds a change
    // theirs does not yet).
    if (!IsVoter(config_.id)) {
      election_elapsed_ = std::min(election_elapsed_ + 1, config_.election_ticks);
      return;
    }
    if (++election_elapsed_ >= randomized_timeout_) {
      config_.pre_vote ? BecomePreCandidate() : BecomeCandidate();
    }
    return;
  }
  ++heartbeat_elapsed_;
  // A handover that has not happened within an election timeout is given
  // up: the leader takes proposals again.
  if (transferee_ != kNobody && ++transfer_elapsed_ >= config_.election_ticks) {
    transferee_ = kNobody;
  }

  if (config_.check_quorum && ++quorum_elapsed_ >= config_.election_ticks) {
    quorum_elapsed_ = 0;
    size_t active = IsVoter(config_.id) ? 1 : 0;
    for (auto& [peer, p] : progress_) {
      if (p.recently_active && IsVoter(peer)) ++active;
      p.recently_active = false;
    }
    if (active < Quorum()) return BecomeFollower(term_, kNobody);
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat(pending_reads_.empty() ? 0 : pending_reads_.back().seq);
  }
}

// --- messages ----------------------------------------------------------------

void Raft::Step(const Message& m) {
  if (m.to != config_.id || m.from == config_.id || m.from == kNobody) return;
  if (!WellFormed(m)) {
    ++malformed_;
    return;
  }
  if (m.term > term_) {
    // A node that heard from its leader lately does not help depose it,
    // unless the leader itself asked for the campaign.
    if (IsVoteRequest(m.type) && InLease() && m.context != kTransfer) return;
    const bool future_promise =
        m.type == MessageType::kPreVote || (m.type == MessageType::kPreVoteReply && !m.reject);
    if (!future_promise) BecomeFollower(m.term, IsFromLeader(m.type) ? m.from : kNobody);
  } else if (m.term < term_) {
    // A stale leader or pre-candidate learns the term, and steps down.
    if (IsFromLeader(m.type) && (config_.check_quorum || config_.pre_vote)) {
      Message reply = To(m.from, MessageType::kAppendReply);
      Send(std::move(reply));
    } else if (m.type == MessageType::kPreVote) {
      Message reply = To(m.from, MessageType::kPreVoteReply);
      reply.reject = true;
      Send(std::move(reply));
    } else if (m.type == MessageType::kReadIndex) {
      FailRead(m.context, m.from);
    }
    return;
  }

  switch (m.type) {
    case MessageType::kPreVote:
    case MessageType::kVote:
      return HandleVoteRequest(m);
    case MessageType::kPreVoteReply:
    case MessageType::kVoteReply:
      return HandleVoteReply(m);
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      if (role_ == RaftRole::kLeader) return;  // two leaders of one term cannot be
      if (role_ != RaftRole::kFollower) BecomeFollower(term_, m.from);
      leader_ = m.from;
      election_elapsed_ = 0;
      if (m.type == MessageType::kSnapshot) return HandleSnapshot(m);
      return m.type == MessageType::kAppend ? HandleAppend(m) : HandleHeartbeat(m);
    case MessageType::kAppendReply:
      if (role_ == RaftRole::kLeader) HandleAppendReply(m);
      return;
    case MessageType::kHeartbeatReply:
      if (role_ == RaftRole::kLeader) HandleHeartbeatReply(m);
      return;
    case MessageType::kSnapshotReply:
      if (role_ == RaftRole::kLeader) HandleSnapshotReply(m);
      return;
    case MessageType::kReadIndex:
      if (role_ != RaftRole::kLeader) return FailRead(m.context, m.from);
      return LeaderReadIndex(m.context, m.from);
    case MessageType::kReadIndexReply:
      return HandleReadIndexReply(m);
    case MessageType::kTimeoutNow:
      // From this term's leader: campaign at once, PreVote or not.
      if (role_ == RaftRole::kFollower && m.from == leader_ && IsVoter(config_.id)) {
        BecomeCandidate(/*transfer=*/true);
      }
      return;
  }
}

void Raft::HandleVoteRequest(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  const bool can_vote =
      vote_ == m.from || (vote_ == kNobody && leader_ == kNobody) || (pre && m.term > term_);
  Message reply = To(m.from, pre ? MessageType::kPreVoteReply : MessageType::kVoteReply);
  if (can_vote && log_.CandidateIsUpToDate(m.index, m.log_term)) {
    // A grant answers at the term asked about (a pre-vote's future one).
    reply.term = m.term;
    if (!pre) {
      vote_ = m.from;  // durable before the reply leaves (Ready's order)
      election_elapsed_ = 0;
    }
  } else {
    reply.reject = true;
  }
  Send(std::move(reply));
}

void Raft::HandleVoteReply(const Message& m) {
  const bool pre = m.type == MessageType::kPreVoteReply;
  if (role_ != (pre ? RaftRole::kPreCandidate : RaftRole::kCandidate)) return;
  if (!IsVoter(m.from)) return;  // only the members this one knows count
  // A grant of a pre-vote carries the term this node would campaign at.
  if (pre && !m.reject && m.term != term_ + 1) return;
  (m.reject ? votes_against_ : votes_for_).insert(m.from);
  if (votes_for_.size() >= Quorum()) {
    pre ? BecomeCandidate() : BecomeLeader();
  } else if (votes_against_.size() >= Quorum()) {
    BecomeFollower(term_, kNobody);
  }
}

void Raft::HandleAppend(const Message& m) {
  Message reply = To(m.from, MessageType::kAppendReply);
  if (m.index < log_.committed()) {
    // Everything committed is the leader's already: answer from there.
    reply.index = log_.committed();
  } else if (log_.Matches(m.index, m.log_term)) {
    const Index last_new = log_.TakeFromLeader(m.index, m.entries);
    log_.CommitTo(std::min(m.commit, last_new));
    reply.index = last_new;
    // A change appended, or one of ours replaced: the members changed.
    const bool changes = std::any_of(m.entries.begin(), m.entries.end(), [](const Entry& e) {
      return e.type == EntryType::kConfChange;
    });
    if (changes || LastConfChange() > m.index) {
      RebuildConf();
    }
  } else {
    reply.reject = true;
    reply.index = m.index;
    reply.reject_hint = log_.last_index();
  }
  Send(std::move(reply));
}

void Raft::HandleHeartbeat(const Message& m) {
  // The leader sends at most what it knows this log holds of its own.
  log_.CommitTo(m.commit);
  Message reply = To(m.from, MessageType::kHeartbeatReply);
  reply.context = m.context;  // confirms the leader's reads up to it
  Send(std::move(reply));
}

Raft::Progress* Raft::HeardFrom(NodeId peer) {
  auto it = progress_.find(peer);
  if (it == progress_.end()) return nullptr;
  it->second.recently_active = true;
  it->second.heard_at = ticks_ + 1;  // 0 stays "never"
  return &it->second;
}

void Raft::HandleAppendReply(const Message& m) {
  Progress* heard = HeardFrom(m.from);
  if (heard == nullptr) return;
  Progress& p = *heard;
  if (m.reject && p.pending_snapshot != 0) {
    // A chunk went missing: send the snapshot again, from the start.
    p.pending_snapshot = 0;
    p.paused = false;
    p.next = p.match + 1;
    SendAppend(m.from, true);
    return;
  }
  if (!m.reject && m.index >= p.pending_snapshot) p.pending_snapshot = 0;
  if (m.reject) {
    if (p.replicating) {
      if (m.index <= p.match) return;  // an answer to an older message
      p.replicating = false;
      p.next = p.match + 1;
    } else {
      if (m.index != p.next - 1) return;  // not the probe outstanding
      p.next = std::max<Index>(1, std::min(m.index, m.reject_hint + 1));
    }
    p.inflight = 0;
    p.paused = false;
    SendAppend(m.from, true);
    return;
  }
  const bool advanced = m.index > p.match;
  p.match = std::max(p.match, m.index);
  if (!p.replicating) {
    p.replicating = true;
    p.next = p.match + 1;
    p.inflight = 0;
  } else {
    p.next = std::max(p.next, m.index + 1);
    if (p.inflight > 0) --p.inflight;
  }
  p.paused = false;
  const bool committed = advanced && MaybeCommit();
  // A leader whose own removal just committed has stepped down (and `p`
  // is gone with the rest of its progress).
  if (role_ != RaftRole::kLeader) return;
  if (committed) {
    BroadcastAppend();
  } else {
    while (SendAppend(m.from, false)) {
    }
  }
  if (m.from == transferee_ && p.match == log_.last_index()) SendTimeoutNow(m.from);
}

bool Raft::TransferLeadership(NodeId target) {
  if (role_ != RaftRole::kLeader || progress_.count(target) == 0 || !IsVoter(target)) {
    return false;
  }
  transferee_ = target;
  transfer_elapsed_ = 0;
  if (progress_[target].match == log_.last_index()) {
    SendTimeoutNow(target);
  } else {
    SendAppend(target, true);
  }
  return true;
}

void Raft::SendTimeoutNow(NodeId to) {
  Message m = To(to, MessageType::kTimeoutNow);
  Send(std::move(m));
}

void Raft::HandleHeartbeatReply(const Message& m) {
  Progress* heard = HeardFrom(m.from);
  if (heard == nullptr) return;
  Progress& p = *heard;
  // A snapshot unanswered for long (a chunk or the answer lost): again.
  if (p.pending_snapshot != 0 && ++p.snapshot_wait >= config_.election_ticks) {
    p.pending_snapshot = 0;
  }
  p.paused = false;
  // Appends may have been lost: let one more go.
  if (p.replicating && p.inflight >= config_.max_inflight) --p.inflight;
  if (p.match < log_.last_index()) SendAppend(m.from, true);
  if (m.context == 0) return;
  // The follower still took this leader as leader after every read up to
  // m.context was asked; those a majority confirmed are answered, in order.
  for (PendingRead& read : pending_reads_) {
    if (read.seq <= m.context) read.acks.insert(m.from);
  }
  size_t done = 0;
  while (done < pending_reads_.size() && Voters(pending_reads_[done].acks) >= Quorum()) {
    AnswerRead(pending_reads_[done].request, pending_reads_[done].asker,
               pending_reads_[done].index);
    ++done;
  }
  pending_reads_.erase(pending_reads_.begin(),
                       pending_reads_.begin() + static_cast<std::ptrdiff_t>(done));
}

// --- reads -------------------------------------------------------------------

void Raft::ReadIndex(uint64_t request) {
  if (role_ == RaftRole::kLeader) return LeaderReadIndex(request, config_.id);
  if (leader_ == kNobody) return FailRead(request, config_.id);
  Message m = To(leader_, MessageType::kReadIndex);
  m.context = request;
  Send(std::move(m));
}

void Raft::LeaderReadIndex(uint64_t request, NodeId asker) {
  // Until an entry of its term is committed, a new leader's commit index
  // may be behind what an earlier leader acknowledged.
  if (!CommittedInTerm()) {
    reads_before_commit_.emplace_back(request, asker);
    return;
  }
  StartRead(request, asker);
}

void Raft::StartRead(uint64_t request, NodeId asker) {
  if (IsVoter(config_.id) && Quorum() == 1) return AnswerRead(request, asker, log_.committed());
  PendingRead read;
  read.seq = ++read_seq_;
  read.request = request;
  read.asker = asker;
  read.index = log_.committed();
  read.acks = {config_.id};
  pending_reads_.push_back(std::move(read));
  BroadcastHeartbeat(read_seq_);
}

void Raft::AnswerRead(uint64_t request, NodeId asker, Index index) {
  if (asker == config_.id) {
    read_states_.push_back(ReadState{request, index});
    return;
  }
  Message m = To(asker, MessageType::kReadIndexReply);
  m.context = request;
  m.index = index;
  Send(std::move(m));
}

void Raft::FailRead(uint64_t request, NodeId asker) {
  if (asker == config_.id) {
    failed_reads_.push_back(request);
    return;
  }
  Message m = To(asker, MessageType::kReadIndexReply);
  m.context = request;
  m.reject = true;
  Send(std::move(m));
}

void Raft::HandleReadIndexReply(const Message& m) {
  if (m.reject) {
    failed_reads_.push_back(m.context);
  } else {
    read_states_.push_back(ReadState{m.context, m.index});
  }
}

// --- the leader's side -------------------------------------------------------

bool Raft::SendAppend(NodeId to, bool even_if_empty) {
  Progress& p = progress_[to];
  if (p.pending_snapshot != 0) return false;  // until it is answered
  if (p.paused || (p.replicating && p.inflight >= config_.max_inflight)) return false;
  const Index prev = p.next - 1;
  if (!log_.TermAt(prev)) {  // compacted away: the follower needs the snapshot
    SendSnapshot(to);
    return false;
  }
  std::vector<Entry> entries = log_.Slice(
      p.next, log_.last_index(), config_.max_entries_per_message, config_.max_bytes_per_message);
  if (entries.empty() && !even_if_empty) return false;
  Message m = To(to, MessageType::kAppend);
  m.index = prev;
  m.log_term = log_.TermAt(prev).value_or(0);
  m.commit = log_.committed();
  const bool sent_entries = !entries.empty();
  if (sent_entries && p.replicating) {
    p.next = entries.back().index + 1;  // optimistically: answers come later
    ++p.inflight;
  }
  m.entries = std::move(entries);
  if (!p.replicating) p.paused = true;  // one probe at a time
  Send(std::move(m));
  return sent_entries && p.replicating;
}

void Raft::SendSnapshot(NodeId to) {
  Progress& p = progress_[to];
  p.pending_snapshot = snapshot_.index;
  p.snapshot_wait = 0;
  p.snapshot_sent = 0;
  p.snapshot_acked = 0;
  p.replicating = false;
  p.paused = true;
  p.inflight = 0;
  SendSnapshotChunks(to);
}

void Raft::SendSnapshotChunks(NodeId to) {
  Progress& p = progress_[to];
  // A newer snapshot replaced the one being sent: that one instead.
  if (p.pending_snapshot != snapshot_.index) return SendSnapshot(to);
  const size_t chunk = std::max<size_t>(1, config_.snapshot_chunk_bytes);
  const uint64_t window = uint64_t{chunk} * std::max<size_t>(1, config_.snapshot_window_chunks);
  const bool released = snapshot_.data.size() != snapshot_bytes_;
  // snapshot_sent passes the end once the last chunk is sent (an empty
  // snapshot is one empty chunk); the window counts bytes sent and not
  // acknowledged.
  while (p.snapshot_sent <= snapshot_bytes_ && p.snapshot_sent - p.snapshot_acked < window) {
    const uint64_t offset = p.snapshot_sent;
    Message m = To(to, MessageType::kSnapshot);
    m.index = snapshot_.index;
    m.log_term = snapshot_.term;
    m.chunk_offset = offset;
    if (released) {
      std::optional<std::string> read = config_.snapshot_reader(snapshot_.index, offset, chunk);
      if (!read) {
        // Unreadable: the rest is not sent; the follower's copy stays
        // incomplete, and the whole is sent again once the wait for an
        // acknowledgement runs out (HandleHeartbeatReply).
        p.snapshot_sent = snapshot_bytes_ + 1;
        return;
      }
      m.chunk = std::move(*read);
    } else {
      m.chunk = snapshot_.data.substr(std::min<uint64_t>(offset, snapshot_bytes_), chunk);
    }
    m.last_chunk = offset + chunk >= snapshot_bytes_;
    m.conf = snapshot_.conf;
    m.context = kAcknowledgeChunks;
    p.snapshot_sent = m.last_chunk ? snapshot_bytes_ + 1 : offset + chunk;
    Send(std::move(m));
  }
}

void Raft::HandleSnapshotReply(const Message& m) {
  Progress* heard = HeardFrom(m.from);
  if (heard == nullptr) return;
  Progress& p = *heard;
  // Only a new acknowledgement of the snapshot being sent moves the window
  // (an older send's, or one repeated, does not).
  if (p.pending_snapshot == 0 || m.index != p.pending_snapshot ||
      m.chunk_offset <= p.snapshot_acked || m.chunk_offset > p.snapshot_sent) {
    return;
  }
  p.snapshot_acked = m.chunk_offset;
  p.snapshot_wait = 0;  // it is coming in: no reason to start over
  SendSnapshotChunks(m.from);
}

void Raft::HandleSnapshot(const Message& m) {
  if (m.chunk_offset == 0) {
    incoming_ = Snapshot{m.index, m.log_term, m.conf, ""};
  } else if (incoming_.index != m.index || incoming_.term != m.log_term ||
             incoming_.data.size() != m.chunk_offset) {
    // Not the chunk that comes next (one was lost): the leader starts over.
    Message reply = To(m.from, MessageType::kAppendReply);
    reply.reject = true;
    reply.index = m.index;
    reply.reject_hint = log_.last_index();
    Send(std::move(reply));
    return;
  }
  incoming_.data += m.chunk;
  if (!m.last_chunk) {
    if (m.context == kAcknowledgeChunks) {
      Message reply = To(m.from, MessageType::kSnapshotReply);
      reply.index = m.index;
      reply.chunk_offset = incoming_.data.size();
      Send(std::move(reply));
    }
    return;
  }
  Snapshot received = std::move(incoming_);
  incoming_ = Snapshot{};
  Message reply = To(m.from, MessageType::kAppendReply);
  if (received.index <= log_.committed()) {
    reply.index = log_.committed();  // already has all it holds
  } else if (log_.Matches(received.index, received.term)) {
    log_.CommitTo(received.index);  // the log holds it already
    reply.index = received.index;
  } else {
    log_.RestoreFrom(received.index, received.term);
    base_conf_ = received.conf;
    RebuildConf();
    reply.index = received.index;
    snapshot_ = received;  // also what this member sends, should it lead
    snapshot_bytes_ = snapshot_.data.size();
    to_restore_ = std::move(received);
  }
  Send(std::move(reply));
}

bool Raft::Compact(Index index, std::string data) {
  const std::optional<Term> term = log_.TermAt(index);
  if (!term || !log_.CompactTo(index)) return false;
  snapshot_ = Snapshot{index, *term, ConfAt(index), std::move(data)};
  snapshot_bytes_ = snapshot_.data.size();
  // The changes up to the snapshot are in it now.
  base_conf_ = snapshot_.conf;
  conf_changes_.erase(conf_changes_.begin(), conf_changes_.upper_bound(index));
  return true;
}

bool Raft::ReleaseSnapshotData(Index index) {
  if (!config_.snapshot_reader || index == 0 || index != snapshot_.index) return false;
  snapshot_.data.clear();
  snapshot_.data.shrink_to_fit();
  return true;
}

void Raft::BroadcastAppend() {
  for (auto& [peer, p] : progress_) SendAppend(peer, true);
}

void Raft::BroadcastHeartbeat(uint64_t context) {
  for (auto& [peer, p] : progress_) {
    Message m = To(peer, MessageType::kHeartbeat);
    m.commit = std::min(p.match, log_.committed());
    m.context = context;
    Send(std::move(m));
  }
}

bool Raft::MaybeCommit() {
  std::vector<Index> matches;
  if (IsVoter(config_.id)) matches.push_back(log_.stable());  // what it has made durable
  for (const auto& [peer, p] : progress_) {
    if (IsVoter(peer)) matches.push_back(p.match);
  }
  if (matches.size() < Quorum()) return false;
  std::sort(matches.begin(), matches.end(), std::greater<>());
  const Index agreed = matches[Quorum() - 1];
  // Counting replicas commits only entries of this term (5.4.2).
  if (agreed <= log_.committed() || log_.TermAt(agreed) != term_) return false;
  log_.CommitTo(agreed);
  // A leader that removed itself steps down once that is committed (the
  // members that committed it already use the configuration without it),
  // after telling them the commit index.
  if (!IsVoter(config_.id) && LastConfChange() != 0 && LastConfChange() <= log_.committed()) {
    BroadcastAppend();
    BecomeFollower(term_, kNobody);
    return false;
  }
  // The first commit of the term: the reads asked before it may start.
  std::vector<std::pair<uint64_t, NodeId>> waiting;
  waiting.swap(reads_before_commit_);
  for (const auto& [request, asker] : waiting) StartRead(request, asker);
  return true;
}

std::optional<Index> Raft::Propose(std::string data) {
  // While handing over, the target's log must catch up and stay caught up.
  if (role_ != RaftRole::kLeader || transferee_ != kNobody) return std::nullopt;
  const Index index = log_.last_index() + 1;
  log_.Append(Entry{term_, index, std::move(data)});
  BroadcastAppend();
  return index;
}

// --- the driver's side ---------------------------------------------------------

bool Raft::HasReady() const {
  return to_restore_.index != 0 || HardState{term_, vote_, log_.committed()} != last_hard_state_ ||
         log_.stable() < log_.last_index() || !outbox_.empty() ||
         log_.applied() < log_.committed() || !read_states_.empty() || !failed_reads_.empty();
}

Ready Raft::TakeReady() {
  Ready ready;
  ready.snapshot = std::move(to_restore_);
  to_restore_ = Snapshot{};
  const HardState now{term_, vote_, log_.committed()};
  if (now != last_hard_state_) {
    ready.has_hard_state = true;
    ready.hard_state = now;
    last_hard_state_ = now;
  }
  ready.entries = log_.Unstable();
  ready.messages = std::move(outbox_);
  outbox_.clear();
  ready.committed = log_.ToApply();
  ready.read_states = std::move(read_states_);
  read_states_.clear();
  ready.failed_reads = std::move(failed_reads_);
  failed_reads_.clear();
  return ready;
}

void Raft::Advance(const Ready& ready) {
  if (!ready.entries.empty()) log_.StableTo(ready.entries.back().index, ready.entries.back().term);
  if (!ready.committed.empty()) log_.AppliedTo(ready.committed.back().index);

  // The leader counts its own entries once they are durable.
  if (role_ == RaftRole::kLeader && MaybeCommit()) BroadcastAppend();
}

}  // namespace strata::raft
