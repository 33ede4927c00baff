#include "replication/raft_host.h"

#include <algorithm>
#include <utility>

#include "base/thread_name.h"
#include "replication/snapshot_file.h"

namespace strata::replication {

using raft::ConfChange;
using raft::Entry;
using raft::EntryType;
using raft::GroupId;
using raft::GroupReady;
using raft::Index;
using raft::MultiReady;
using raft::NodeId;
using raft::Raft;
using raft::RaftConfig;
using raft::RaftRole;
using raft::RaftStorage;
using raft::Ready;

namespace {

Status NoGroup(GroupId group) {
  return Status::NotFound("no replica of group " + std::to_string(group) + " on this node");
}

Status NotLeader(GroupId group, const Raft& raft) {
  const std::string leader =
      raft.leader() == raft::kNobody ? "none known" : "node " + std::to_string(raft.leader());
  return Status::Unavailable("not the leader of group " + std::to_string(group) +
                             " (the leader: " + leader + ")");
}

// A Done as an Applied: the result's status alone.
RaftHost::Applied StatusOnly(RaftHost::Done done) {
  return [done = std::move(done)](Result<std::string> result) { done(result.status()); };
}

// Messages that acknowledge nothing a crash could take back: they may
// leave before the round's sync. A leader's appends, heartbeats and
// snapshots (it counts itself towards a commit only for entries it has
// made durable, so the commit index they carry is safe), its handovers and
// read indexes, requests that change no state (a pre-vote, a follower's
// read index), and a follower's count of the snapshot chunks it holds (in
// memory: it promises nothing durable). Not votes or vote requests (a
// candidate's vote for itself must be durable first), and not replies to
// appends (they acknowledge entries).
bool SendableBeforeSync(raft::MessageType type) {
  switch (type) {
    case raft::MessageType::kAppend:
    case raft::MessageType::kHeartbeat:
    case raft::MessageType::kSnapshot:
    case raft::MessageType::kSnapshotReply:  // chunks held in memory, not on disk
    case raft::MessageType::kTimeoutNow:
    case raft::MessageType::kReadIndex:
    case raft::MessageType::kReadIndexReply:
    case raft::MessageType::kPreVote:
      return true;
    default:
      return false;
  }
}

Status Unknown(std::string why) {
  return Status::Unavailable(std::move(why) + "; the proposal may still be applied");
}

}  // namespace

RaftHost::~RaftHost() {
  {
    MutexLock lock(saves_mu_);
    stop_saves_ = true;
  }
  saves_cv_.NotifyAll();
  if (saver_.joinable()) saver_.join();
}

Result<std::unique_ptr<RaftHost>> RaftHost::Open(NodeId id, std::string dir,
                                                 RaftHostOptions options, StateFactory factory,
                                                 Send send) {
  if (id == raft::kNobody) return Status::InvalidArgument("a Raft node id is not 0");
  Result<std::unique_ptr<RaftLogStore>> store = RaftLogStore::Open(std::move(dir), options.log);
  if (!store.ok()) return store.status();
  std::unique_ptr<RaftHost> host(
      new RaftHost(id, std::move(options), std::move(factory), std::move(send), std::move(*store)));
  for (const auto& [group, stored] : host->store_->groups()) host->StartGroup(group, stored);
  // Each group's Raft keeps its snapshot (to send it); the log store need
  // not keep a second copy of every group's whole state.
  RaftHost* raw = host.get();
  host->store_->TakeSnapshotDataFrom([raw](GroupId group) -> std::string_view {
    Raft* raft = raw->multi_.group(group);
    return raft != nullptr ? std::string_view(raft->snapshot().data) : std::string_view();
  });
  // Nor a second copy of every entry since the last compaction (its log
  // holds each until then, and a rewrite finds them there).
  host->store_->TakeEntryDataFrom([raw](GroupId group) -> std::span<const Entry> {
    Raft* raft = raw->multi_.group(group);
    return raft != nullptr ? raft->log().entries() : std::span<const Entry>();
  });
  return host;
}

RaftConfig RaftHost::ConfigFor(GroupId group, std::vector<NodeId> voters) const {
  RaftConfig config = options_.raft;
  config.id = multi_.id();
  config.voters = std::move(voters);
  if (store_->snapshots_in_files()) {
    // Raft sends a snapshot from its file, chunk by chunk, once it has
    // released its copy (ReleaseDurableSnapshots).
    RaftLogStore* store = store_.get();
    config.snapshot_reader = [store, group](Index index, uint64_t offset, size_t length) {
      return store->ReadSnapshotChunk(group, index, offset, length);
    };
  }
  // Groups that start together must not time out together.
  config.random_seed = options_.raft.random_seed ^ (group * 0xbf58476d1ce4e5b9ULL);
  return config;
}

void RaftHost::StartGroup(GroupId group, RaftStorage stored) {
  Group& g = groups_[group];
  g.state = factory_(group);
  if (Status restored = g.state->Restore(stored.snapshot.data); !restored.ok()) {
    Stop("group " + std::to_string(group) +
         "'s stored snapshot does not restore: " + restored.message());
  }
  g.applied = stored.snapshot.index;
  g.snapshot = stored.snapshot.index;
  g.snapshot_bytes = stored.snapshot.data.size();
  // Before its first snapshot a group's members are the membership
  // changes in its log, the first members' included (CreateGroup).
  std::vector<NodeId> voters = stored.snapshot.conf.voters;
  const Index snapshot = stored.snapshot.index;
  multi_.AddGroup(group, ConfigFor(group, std::move(voters)), std::move(stored));
  if (store_->SnapshotInFile(group, snapshot)) multi_.group(group)->ReleaseSnapshotData(snapshot);
}

void RaftHost::ReleaseDurableSnapshots() {
  for (const auto& [group, g] : groups_) {
    Raft* raft = multi_.group(group);
    if (raft == nullptr || raft->snapshot().data.empty()) continue;
    if (store_->SnapshotInFile(group, raft->snapshot().index)) {
      raft->ReleaseSnapshotData(raft->snapshot().index);
    }
  }
}

Status RaftHost::CreateGroup(GroupId group, std::vector<NodeId> voters, std::string initial) {
  if (Status status = health(); !status.ok()) return status;
  if (groups_.count(group) != 0) {
    return Status::PreconditionFailed("group " + std::to_string(group) + " is on this node");
  }
  // The first members are the log's first entries, one membership change
  // each, of term 1 and committed, alike on each of them (as etcd starts
  // a cluster): a member added later replays them from the leader's log
  // like any other entry, so it learns every member even from a log never
  // compacted into a snapshot (which would carry the members).
  std::sort(voters.begin(), voters.end());
  Ready first;
  for (size_t i = 0; i < voters.size(); ++i) {
    first.entries.push_back(Entry{1, i + 1,
                                  ConfChange{ConfChange::Kind::kAddVoter, voters[i]}.Encode(),
                                  EntryType::kConfChange});
  }
  if (!voters.empty()) {
    first.has_hard_state = true;
    first.hard_state = raft::HardState{1, raft::kNobody, voters.size()};
  }
  RaftStorage stored;
  if (!initial.empty() && !voters.empty()) {
    // A state to start from is a snapshot just after those entries (index
    // n + 1, term 1), which compacts them: a first member started without
    // it (its log ends at n, of the same term) is behind every member that
    // has it, never elected by them, and brought up by the snapshot.
    stored.snapshot =
        raft::Snapshot{voters.size() + 1, 1, raft::ConfState{voters, {}}, std::move(initial)};
    first.entries.clear();
    first.hard_state.commit = stored.snapshot.index;
  }
  store_->StageCompaction(group, stored.snapshot);
  store_->Stage(group, first);
  if (Status committed = store_->Commit(); !committed.ok()) return committed;
  stored.hard_state = first.hard_state;
  stored.entries = std::move(first.entries);
  StartGroup(group, std::move(stored));
  return Status::Ok();
}

Status RaftHost::RemoveGroup(GroupId group) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return NoGroup(group);
  store_->StageRemoval(group);
  Status committed = store_->Commit();
  FailAll(it->second, Status::Unavailable("the replica of group " + std::to_string(group) +
                                          " was removed from this node; the proposal may "
                                          "still be applied"));
  groups_.erase(it);
  multi_.RemoveGroup(group);
  DeliverAnswers();
  return committed;
}

void RaftHost::Tick() {
  ++now_;
  multi_.Tick();
  for (auto& [group, g] : groups_) {
    const auto expire = [&](auto& waiting, const Status& why, uint64_t* failed) {
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (it->second.deadline > now_) {
          ++it;
          continue;
        }
        Answer(std::move(it->second.done), why);
        it = waiting.erase(it);
        ++*failed;
      }
    };
    expire(g.proposals, Unknown("timed out waiting to be applied"), &stats_.proposals_failed);
    const Status read_timeout = Status::Unavailable("timed out waiting for a read index");
    expire(g.asked_reads, read_timeout, &stats_.reads_failed);
    expire(g.reads, read_timeout, &stats_.reads_failed);
  }
  DeliverAnswers();
}

void RaftHost::Receive(const raft::NodeBatch& batch) { multi_.Step(batch); }

RaftHost::Group* RaftHost::Admit(GroupId group, const Applied& done) {
  if (Status status = health(); !status.ok()) {
    done(status);
    return nullptr;
  }
  auto it = groups_.find(group);
  if (it == groups_.end()) {
    done(NoGroup(group));
    return nullptr;
  }
  Group& g = it->second;
  if (g.proposals.size() + g.reads.size() + g.asked_reads.size() >= options_.max_waiting) {
    done(Status::Unavailable("too many requests waiting on group " + std::to_string(group)));
    return nullptr;
  }
  return &g;
}

void RaftHost::Propose(GroupId group, std::string command, Applied done) {
  if (command.empty() || command.size() > options_.max_command_bytes) {
    done(Status::InvalidArgument("a command is 1 to " + std::to_string(options_.max_command_bytes) +
                                 " bytes, not " + std::to_string(command.size())));
    return;
  }
  Group* g = Admit(group, done);
  if (g == nullptr) return;
  Raft& raft = *multi_.group(group);
  std::optional<Index> index = raft.Propose(std::move(command));
  if (!index) {
    ++stats_.proposals_failed;
    done(NotLeader(group, raft));
    return;
  }
  Wait(group, *g, *index, raft.term(), std::move(done));
  DeliverAnswers();
}

void RaftHost::Wait(GroupId group, Group& g, Index index, raft::Term term, Applied done) {
  auto [it, added] =
      g.proposals.try_emplace(index, Waiting{term, now_ + options_.timeout_ticks, nullptr});
  if (!added) {
    // An earlier term's proposal at this index: this leader's log replaced
    // it, so it will never apply.
    ++stats_.proposals_failed;
    Answer(std::move(it->second.done),
           Status::Unavailable("a new leader of group " + std::to_string(group) +
                               " replaced the proposal; it was not applied"));
    it->second = Waiting{term, now_ + options_.timeout_ticks, nullptr};
  }
  it->second.done = std::move(done);
}

void RaftHost::ProposeConfChange(GroupId group, ConfChange change, Done status_done) {
  Applied done = StatusOnly(std::move(status_done));
  Group* g = Admit(group, done);
  if (g == nullptr) return;
  Raft& raft = *multi_.group(group);
  std::optional<Index> index = raft.ProposeConfChange(change);
  if (!index) {
    ++stats_.proposals_failed;
    done(raft.role() == RaftRole::kLeader
             ? Status::Unavailable("group " + std::to_string(group) +
                                   " cannot change its members now (a change is under way, "
                                   "the leader is new, or it would leave one voter)")
             : NotLeader(group, raft));
    return;
  }
  Wait(group, *g, *index, raft.term(), std::move(done));
  DeliverAnswers();
}

void RaftHost::Read(GroupId group, Done status_done) {
  Applied done = StatusOnly(std::move(status_done));
  Group* g = Admit(group, done);
  if (g == nullptr) return;
  const uint64_t request = next_read_++;
  g->asked_reads[request] = Waiting{0, now_ + options_.timeout_ticks, std::move(done)};
  multi_.group(group)->ReadIndex(request);
}

Status RaftHost::Run() {
  Status status = TakeSavedSnapshots();
  if (status.ok()) status = RunRounds();
  DeliverAnswers();
  return status;
}

Status RaftHost::RunRounds() {
  while (multi_.HasReady()) {
    if (Status status = health(); !status.ok()) return status;
    MultiReady ready = multi_.TakeReady();
    for (const GroupReady& g : ready.groups) store_->Stage(g.group, g.ready);
    // What promises nothing leaves before the sync (a leader's entries
    // reach its followers while its own disk writes them, thesis 10.2.1);
    // the rest after it.
    std::vector<raft::NodeBatch> after_sync;
    for (raft::NodeBatch& batch : ready.batches) {
      raft::NodeBatch later{batch.from, batch.to, {}};
      std::erase_if(batch.messages, [&](raft::GroupMessage& m) {
        if (SendableBeforeSync(m.message.type)) return false;
        later.messages.push_back(std::move(m));
        return true;
      });
      if (!batch.messages.empty()) send_(std::move(batch));
      if (!later.messages.empty()) after_sync.push_back(std::move(later));
    }
    // One write and one sync for every group's state and entries, before
    // any message that depends on them leaves.
    if (Status committed = store_->Commit(); !committed.ok()) return committed;
    ++stats_.rounds;
    for (raft::NodeBatch& batch : after_sync) send_(std::move(batch));
    for (const GroupReady& g : ready.groups) Apply(g.group, g.ready);
    multi_.Advance(ready);
    for (auto& [group, g] : groups_) MaybeCompact(group, g);
    if (Status committed = store_->Commit(); !committed.ok()) return committed;
    ReleaseDurableSnapshots();
  }
  return health();
}

Status RaftHost::health() const {
  if (failure_) return Status::IoError(*failure_);
  return store_->health();
}

void RaftHost::Stop(std::string why) {
  if (!failure_) failure_ = std::move(why);
}

void RaftHost::Apply(GroupId group, const Ready& ready) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return;
  Group& g = it->second;
  if (ready.snapshot.index != 0) {
    if (Status restored = g.state->Restore(ready.snapshot.data); !restored.ok()) {
      Stop("group " + std::to_string(group) + "'s snapshot at index " +
           std::to_string(ready.snapshot.index) + " does not restore: " + restored.message());
      return;
    }
    g.applied = g.snapshot = ready.snapshot.index;
    g.snapshot_bytes = ready.snapshot.data.size();
    g.bytes_since_snapshot = 0;
    ++stats_.snapshots_restored;
    // Whether this replica's own proposals are in the snapshot is unknown.
    while (!g.proposals.empty() && g.proposals.begin()->first <= ready.snapshot.index) {
      Answer(std::move(g.proposals.begin()->second.done),
             Unknown("replaced by the leader's snapshot"));
      g.proposals.erase(g.proposals.begin());
      ++stats_.proposals_failed;
    }
  }
  for (const Entry& entry : ready.committed) {
    std::string result;
    if (entry.type == EntryType::kNormal && !entry.data.empty()) {
      result = g.state->Apply(entry.index, entry.data);
      ++stats_.applied;
    } else if (entry.type == EntryType::kConfChange) {
      // Raft wrote it; one that does not decode was ignored by Raft too.
      if (auto change = ConfChange::Decode(entry.data))
        g.state->ApplyConfChange(entry.index, *change);
    }
    g.applied = entry.index;
    g.bytes_since_snapshot += entry.data.size();
    auto waiting = g.proposals.find(entry.index);
    if (waiting == g.proposals.end()) continue;
    const bool ours = waiting->second.term == entry.term;
    ++(ours ? stats_.proposals_done : stats_.proposals_failed);
    // Another leader's entry at our index: ours was overwritten, and a
    // log never holds an entry at two indexes, so it will never apply.
    Answer(std::move(waiting->second.done),
           ours ? Result<std::string>(std::move(result))
                : Status::Unavailable("a new leader of group " + std::to_string(group) +
                                      " replaced the proposal; it was not applied"));
    g.proposals.erase(waiting);
  }
  for (const raft::ReadState& read : ready.read_states) {
    auto asked = g.asked_reads.find(read.request);
    if (asked == g.asked_reads.end()) continue;  // timed out meanwhile
    g.reads.emplace(read.index, std::move(asked->second));
    g.asked_reads.erase(asked);
  }
  for (uint64_t request : ready.failed_reads) {
    auto asked = g.asked_reads.find(request);
    if (asked == g.asked_reads.end()) continue;
    Answer(std::move(asked->second.done),
           Status::Unavailable("group " + std::to_string(group) +
                               " has no leader to give a read index"));
    g.asked_reads.erase(asked);
    ++stats_.reads_failed;
  }
  ServeReads(g);
}

void RaftHost::ServeReads(Group& g) {
  while (!g.reads.empty() && g.reads.begin()->first <= g.applied) {
    Answer(std::move(g.reads.begin()->second.done), std::string());
    g.reads.erase(g.reads.begin());
    ++stats_.reads_done;
  }
}

void RaftHost::MaybeCompact(GroupId group, Group& g) {
  // A snapshot costs its size: it is taken once the entries since the last
  // are as many bytes, so snapshots cost at most what the log did.
  if (saving_.count(group) > 0) return;
  if (g.applied - g.snapshot < options_.compact_after) return;
  if (g.bytes_since_snapshot < g.snapshot_bytes) return;
  std::function<std::string()> save = g.state->SaveLater();
  const Index index = g.applied;  // applied entries are durable (Ready persists first)
  g.bytes_since_snapshot = 0;
  if (!options_.save_in_background) {
    std::string data = save();
    g.state->SaveFinished();
    CompactTo(group, g, index, std::move(data));
    return;
  }
  saving_.insert(group);
  ++stats_.saves_in_background;
  // The file too is written on the saver's thread: the round that refers
  // to it is a few bytes on the driver's.
  std::string file;
  if (store_->snapshots_in_files()) file = store_->NewSnapshotFileName();
  {
    MutexLock lock(saves_mu_);
    save_jobs_.push_back([this, group, index, save = std::move(save), file, dir = store_->dir(),
                          sync = store_->sync()] {
      std::string data = save();
      Status written = Status::Ok();
      if (!file.empty()) written = WriteSnapshotFile(dir, file, group, index, data, sync);
      MutexLock done(saves_mu_);
      saved_.push_back({group, index, std::move(data), file, std::move(written)});
    });
    if (!saver_.joinable()) {
      saver_ = std::thread([this] {
        NameThisThread("strata-raft-save");
        SaveRunner();
      });
    }
  }
  saves_cv_.NotifyOne();
}

void RaftHost::SaveRunner() {
  for (;;) {
    std::function<void()> job;
    {
      UniqueLock lock(saves_mu_);
      saves_cv_.Wait(
          lock, [&]() STRATA_REQUIRES(saves_mu_) { return stop_saves_ || !save_jobs_.empty(); });
      if (stop_saves_) return;
      job = std::move(save_jobs_.front());
      save_jobs_.pop_front();
    }
    job();
  }
}

Status RaftHost::TakeSavedSnapshots() {
  std::vector<Saved> saved;
  {
    MutexLock lock(saves_mu_);
    saved.swap(saved_);
  }
  if (saved.empty()) return Status::Ok();
  for (Saved& s : saved) {
    saving_.erase(s.group);
    auto it = groups_.find(s.group);
    if (!s.written.ok()) {
      // Not taken: the log keeps its entries, and a snapshot is tried
      // again once the entries since hold as many bytes as this one.
      ++stats_.snapshots_unwritten;
      if (it != groups_.end()) {
        it->second.state->SaveFinished();
        it->second.snapshot_bytes = std::max<uint64_t>(s.data.size(), 1);
      }
      continue;
    }
    if (!s.file.empty()) store_->CountSnapshotFileWritten();
    if (it == groups_.end()) {  // removed meanwhile
      if (!s.file.empty()) store_->DiscardSnapshotFile(s.file);
      continue;
    }
    it->second.state->SaveFinished();
    // Dropped by Raft if the group took a newer snapshot meanwhile (a
    // follower's from its leader).
    CompactTo(s.group, it->second, s.index, std::move(s.data), s.file);
  }
  Status committed = store_->Commit();
  if (committed.ok()) ReleaseDurableSnapshots();
  return committed;
}

void RaftHost::CompactTo(GroupId group, Group& g, Index index, std::string data,
                         const std::string& file) {
  if (!store_->snapshots_in_files() && data.size() + (size_t{1} << 20) > kMaxRaftRecordPayload) {
    // In memory, snapshots are in the log's rounds: larger than one holds,
    // the log keeps its entries instead (the state must shrink, by
    // compaction, for a snapshot to be taken again).
    ++stats_.snapshots_too_large;
    g.snapshot_bytes = data.size();  // tried again after as many bytes
    return;
  }
  Raft& raft = *multi_.group(group);
  if (!raft.Compact(index, std::move(data))) {
    if (!file.empty()) store_->DiscardSnapshotFile(file);
    return;
  }
  g.snapshot = index;
  g.snapshot_bytes = raft.snapshot_bytes();
  store_->StageCompaction(group, raft.snapshot(), file);
  ++stats_.compactions;
}

void RaftHost::FailAll(Group& g, const Status& why) {
  for (auto& [index, w] : g.proposals) Answer(std::move(w.done), why);
  for (auto& [index, w] : g.reads) Answer(std::move(w.done), why);
  for (auto& [request, w] : g.asked_reads) Answer(std::move(w.done), why);
  g.proposals.clear();
  g.reads.clear();
  g.asked_reads.clear();
}

void RaftHost::Answer(Applied done, Result<std::string> result) {
  answers_.emplace_back(std::move(done), std::move(result));
}

void RaftHost::DeliverAnswers() {
  // An answer may call the host again (and queue more answers).
  while (!answers_.empty()) {
    std::vector<std::pair<Applied, Result<std::string>>> now = std::move(answers_);
    answers_.clear();
    for (auto& [done, result] : now) done(std::move(result));
  }
}

const ReplicatedState* RaftHost::state(GroupId group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : it->second.state.get();
}

ReplicatedState* RaftHost::state(GroupId group) {
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : it->second.state.get();
}

Index RaftHost::applied(GroupId group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? 0 : it->second.applied;
}

RaftHostStats RaftHost::stats() const {
  RaftHostStats stats = stats_;
  stats.groups = groups_.size();
  for (const auto& [group, raft] : multi_.groups()) {
    if (raft->role() == RaftRole::kLeader) ++stats.leaders;
  }
  stats.log = store_->stats();
  return stats;
}

}  // namespace strata::replication
