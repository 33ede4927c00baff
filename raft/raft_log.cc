#include "raft/raft_log.h"

#include <algorithm>
#include <utility>

namespace strata::raft {

RaftLog::RaftLog(std::vector<Entry> persisted, Index commit)
    : entries_(std::move(persisted)),
      stable_(entries_.size()),
      committed_(std::min<Index>(commit, entries_.size())),
      applied_(0) {}

std::optional<Term> RaftLog::TermAt(Index index) const {
  if (index == 0) return Term{0};
  if (index > entries_.size()) return std::nullopt;
  return entries_[index - 1].term;
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
    if (index <= entries_.size()) {
      if (entries_[index - 1].term == entry.term) continue;  // already have it
      // A conflict: ours from here on were never committed (the leader
      // holds every committed entry), so they go.
      entries_.resize(index - 1);
      stable_ = std::min(stable_, index - 1);
    }
    entries_.push_back(entry);
  }
  return index;
}

std::vector<Entry> RaftLog::Slice(Index from, Index to, size_t max_count) const {
  std::vector<Entry> out;
  from = std::max<Index>(from, 1);
  to = std::min<Index>(to, entries_.size());
  for (Index i = from; i <= to && out.size() < max_count; ++i) out.push_back(entries_[i - 1]);
  return out;
}

std::vector<Entry> RaftLog::Unstable() const {
  return std::vector<Entry>(entries_.begin() + static_cast<std::ptrdiff_t>(stable_),
                            entries_.end());
}

void RaftLog::StableTo(Index index, Term term) {
  if (index > stable_ && Matches(index, term)) stable_ = index;
}

void RaftLog::CommitTo(Index index) {
  committed_ = std::max(committed_, std::min<Index>(index, entries_.size()));
}

std::vector<Entry> RaftLog::ToApply() const { return Slice(applied_ + 1, committed_, SIZE_MAX); }

void RaftLog::AppliedTo(Index index) { applied_ = std::max(applied_, index); }

}  // namespace strata::raft
