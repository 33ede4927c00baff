#include "cluster/change_log.h"

#include <algorithm>
#include <utility>

namespace strata::cluster {

void ChangeLog::Append(const std::vector<BatchWrite>& writes, Timestamp timestamp) {
  for (const BatchWrite& w : writes) {
    Change c;
    c.key = w.key;
    c.timestamp = timestamp;
    c.deleted = !w.value.has_value();
    if (w.value) c.value = *w.value;
    const size_t bytes = c.key.size() + c.value.size() + sizeof(Entry);
    entries_.push_back(Entry{std::move(c), bytes});
    bytes_ += bytes;
  }
  while (bytes_ > max_bytes_ && !entries_.empty()) {
    evicted_max_ = std::max(evicted_max_, entries_.front().change.timestamp);
    bytes_ -= entries_.front().bytes;
    entries_.pop_front();
    ++first_seq_;
  }
  if (on_append_ && !writes.empty()) on_append_(timestamp);
}

std::optional<ChangeLog::Page> ChangeLog::Read(const KeyRange& range, Timestamp after,
                                               Timestamp upto, uint64_t cursor,
                                               size_t limit) const {
  if (cursor < first_seq_) {
    // Entries the reader never saw are gone: harmless only if none could
    // be above what it already has.
    if (evicted_max_ > after) return std::nullopt;
    cursor = first_seq_;
  }
  if (cursor > end()) return std::nullopt;  // not a cursor of this log
  const size_t from = static_cast<size_t>(cursor - first_seq_);
  Page page;
  page.upto = upto;
  for (size_t i = from; i < entries_.size(); ++i) {
    const Change& c = entries_[i].change;
    if (c.timestamp > after && c.timestamp <= upto && range.Contains(c.key)) {
      page.changes.push_back(c);
    }
  }
  auto order = [](const Change& a, const Change& b) {
    return a.timestamp != b.timestamp ? a.timestamp < b.timestamp : a.key < b.key;
  };
  std::sort(page.changes.begin(), page.changes.end(), order);
  if (limit > 0 && page.changes.size() > limit) {
    // Cut below the first timestamp past the limit, unless that would cut
    // inside the first timestamp (one commit's changes always go together).
    const Timestamp first_out = page.changes[limit].timestamp;
    page.upto =
        first_out > page.changes.front().timestamp ? Timestamp(first_out.value() - 1) : first_out;
    std::erase_if(page.changes, [&](const Change& c) { return c.timestamp > page.upto; });
  }
  // The next read starts at the first entry held back (above upto).
  page.next_cursor = end();
  for (size_t i = from; i < entries_.size(); ++i) {
    if (entries_[i].change.timestamp > page.upto) {
      page.next_cursor = first_seq_ + i;
      break;
    }
  }
  return page;
}

void ChangeLog::Reset(Timestamp before) {
  // Past end(): a reader that had read everything must look at the store
  // too, for what the restored store brought in.
  first_seq_ = end() + 1;
  entries_.clear();
  bytes_ = 0;
  evicted_max_ = std::max(evicted_max_, before);
}

}  // namespace strata::cluster
