// RaftLog: one node's copy of the replicated log, and how far it is
// durable (stable), agreed (committed) and applied.
//
// The log starts after a snapshot (index 0 when there is none): the
// entries up to the snapshot's index are compacted into it and known only
// by that index and its term. Entries a leader sent that conflict with
// ours replace our suffix from the first conflict, as AppendEntries says;
// the driver is told through Unstable(), which then starts at the
// replaced index.
#ifndef STRATA_RAFT_RAFT_LOG_H_
#define STRATA_RAFT_RAFT_LOG_H_

#include <optional>
#include <span>
#include <vector>

#include "raft/raft_types.h"

namespace strata::raft {

class RaftLog final {
 public:
  // What the node's storage holds: a snapshot's position (index 0: none)
  // and the entries after it, in order; `commit`: the durable commit index.
  // The snapshot counts as applied.
  RaftLog(Index snapshot_index, Term snapshot_term, std::vector<Entry> entries, Index commit);

  Index first_index() const { return snapshot_index_ + 1; }  // the first entry kept
  Index last_index() const { return snapshot_index_ + entries_.size(); }
  Term last_term() const { return entries_.empty() ? snapshot_term_ : entries_.back().term; }
  Index snapshot_index() const { return snapshot_index_; }
  // The entries kept, first_index() to last_index(), durable or not.
  std::span<const Entry> entries() const { return entries_; }
  // The term of entry `index`: 0 before the log, the snapshot's term at its
  // index, nullopt past the end and for entries compacted away.
  std::optional<Term> TermAt(Index index) const;
  bool Matches(Index index, Term term) const { return TermAt(index) == term; }
  // Whether a candidate whose log ends at (last_index, last_term) is at
  // least as up to date as this one (paper, 5.4.1).
  bool CandidateIsUpToDate(Index last_index, Term last_term) const;

  // A leader appends its own entry (index and term set by the caller).
  void Append(Entry entry);
  // A follower takes `entries` from its leader, sent after (prev, prev_term),
  // which Matches(): entries it already has are kept, the first that
  // conflicts and everything after it are replaced. Returns the index of
  // the last of `entries` (prev if none).
  Index TakeFromLeader(Index prev, const std::vector<Entry>& entries);
  // Entries [from, to] (clipped to what the log keeps), at most
  // `max_count`, and no more than `max_bytes` of data unless the first
  // alone is larger (then it alone).
  std::vector<Entry> Slice(Index from, Index to, size_t max_count,
                           size_t max_bytes = SIZE_MAX) const;

  // Durability: the entries not yet written (from the first replaced or
  // new index), and the driver's report that everything up to `index` of
  // term `term` is written (ignored if the log changed there meanwhile).
  std::vector<Entry> Unstable() const;
  void StableTo(Index index, Term term);
  Index stable() const { return stable_; }

  Index committed() const { return committed_; }
  // Raises the commit index (never lowers it); `index` <= last_index().
  void CommitTo(Index index);
  // Committed entries not yet handed out to be applied, and the report
  // that they were.
  std::vector<Entry> ToApply() const;
  void AppliedTo(Index index);
  Index applied() const { return applied_; }

  // Drops the entries up to `index` (at most what is applied): a snapshot
  // of the state machine at `index` replaces them. False if out of range.
  bool CompactTo(Index index);
  // Replaces the whole log by a snapshot received from the leader (which
  // this log does not match at its index): committed and applied there.
  void RestoreFrom(Index index, Term term);

 private:
  const Entry& at(Index index) const { return entries_[index - snapshot_index_ - 1]; }

  Index snapshot_index_ = 0;
  Term snapshot_term_ = 0;
  std::vector<Entry> entries_;  // entries_[i] has index snapshot_index_ + 1 + i
  Index stable_ = 0;            // entries up to here are durable
  Index committed_ = 0;
  Index applied_ = 0;
};

}  // namespace strata::raft

#endif  // STRATA_RAFT_RAFT_LOG_H_
