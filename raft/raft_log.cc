#include "raft/raft_log.h"

#include <algorithm>
#include <utility>

namespace strata::raft {

RaftLog::RaftLog(Index snapshot_index, Term snapshot_term, std::vector<Entry> entries, Index commit)
    : snapshot_index_(snapshot_index),
      snapshot_term_(snapshot_term),
      entries_(std::move(entries)),
      stable_(last_index()),
      committed_(std::clamp<Index>(commit, snapshot_index, last_index())),
      applied_(snapshot_index) {}

std::optional<Term> RaftLog::TermAt(Index index) const {
  if (index == snapshot_index_) return snapshot_term_;
  if (index < snapshot_index_ || index > last_index()) return std::nullopt;
  return at(index).term;
}

bool RaftLog::CandidateIsUpToDate(Index last_index, Term last_term) const {
  return last_term > this->last_term() ||
         (last_term == this->last_term() && last_index >= this->last_index());
}

void RaftLog::Append(Entry entry) { entries_.push_back(std::move(entry)); }

Index RaftLog::TakeFromLeader(Index prev, const std::vector<Entry>& entries) {
  Index index = prev;
  for (const Entry& entry : entries) {
    ++index;
    if (index <= snapshot_index_) continue;  // compacted: committed, so the same
    if (index <= last_index()) {
      if (at(index).term == entry.term) continue;  // already have it
      // A conflict: ours from here on were never committed (the leader
      // holds every committed entry), so they go.
      entries_.resize(index - snapshot_index_ - 1);
      stable_ = std::min(stable_, index - 1);
    }
    entries_.push_back(entry);
  }
  return index;
}

std::vector<Entry> RaftLog::Slice(Index from, Index to, size_t max_count, size_t max_bytes) const {
  std::vector<Entry> out;
  from = std::max(from, first_index());
  to = std::min(to, last_index());
  size_t bytes = 0;
  for (Index i = from; i <= to && out.size() < max_count; ++i) {
    const Entry& entry = at(i);
    if (!out.empty() && bytes + entry.data.size() > max_bytes) break;
    bytes += entry.data.size();
    out.push_back(entry);
  }
  return out;
}

std::vector<Entry> RaftLog::Unstable() const { return Slice(stable_ + 1, last_index(), SIZE_MAX); }

void RaftLog::StableTo(Index index, Term term) {
  if (index > stable_ && Matches(index, term)) stable_ = index;
}

void RaftLog::CommitTo(Index index) {
  committed_ = std::max(committed_, std::min(index, last_index()));
}

std::vector<Entry> RaftLog::ToApply() const { return Slice(applied_ + 1, committed_, SIZE_MAX); }

void RaftLog::AppliedTo(Index index) { applied_ = std::max(applied_, index); }

bool RaftLog::CompactTo(Index index) {
  if (index <= snapshot_index_ || index > applied_ || index > stable_) return false;
  snapshot_term_ = at(index).term;
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(index - snapshot_index_));
  snapshot_index_ = index;
  return true;
}

void RaftLog::RestoreFrom(Index index, Term term) {
  entries_.clear();
  snapshot_index_ = index;
  snapshot_term_ = term;
  stable_ = committed_ = applied_ = index;
}

}  // namespace strata::raft
