// Transaction: reads at the snapshot merged with the transaction's own
// buffered writes, and the read set serializable validation needs.
#include <cstdint>
#include <iterator>

#include "strata/txn_store.h"
#include "txn/txn_state.h"

namespace strata {

using txn_internal::TxnState;

Transaction::Transaction(TxnStore* owner, std::unique_ptr<TxnState> state)
    : owner_(owner), state_(std::move(state)) {}

Transaction::Transaction(Transaction&& other) noexcept = default;

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    Abort();
    owner_ = other.owner_;
    state_ = std::move(other.state_);
  }
  return *this;
}

Transaction::~Transaction() { Abort(); }

uint64_t Transaction::id() const { return state_->id; }
Timestamp Transaction::start_timestamp() const { return state_->start; }
Isolation Transaction::isolation() const { return state_->isolation; }
bool Transaction::read_only() const { return state_->read_only; }
bool Transaction::active() const { return state_ && state_->active; }
const std::optional<std::string>& Transaction::conflict_key() const { return state_->conflict_key; }

Status Transaction::CheckActive() const {
  if (!active()) return Status::NotFound("the transaction has already ended");
  return Status::Ok();
}

Status Transaction::CheckWriteRoom(std::string_view key) const {
  const size_t limit = owner_->options().max_writes_per_txn;
  if (state_->writes.size() >= limit && !state_->writes.contains(key)) {
    return Status::InvalidArgument("transaction " + std::to_string(state_->id) +
                                   " already writes " + std::to_string(limit) +
                                   " keys, the limit; commit it first");
  }
  return Status::Ok();
}

Status Transaction::CheckReadRoom() const {
  const size_t limit = owner_->options().max_reads_per_txn;
  if (state_->validates_reads() && state_->read_keys.size() + state_->read_ranges.size() >= limit) {
    return Status::InvalidArgument(
        "transaction " + std::to_string(state_->id) + " has recorded " + std::to_string(limit) +
        " reads for serializable validation, the limit; commit it first");
  }
  return Status::Ok();
}

Result<ReadResult> Transaction::Get(std::string_view key) {
  if (Status s = CheckActive(); !s.ok()) return s;
  if (auto own = state_->writes.find(key); own != state_->writes.end()) {
    ReadResult result;
    result.found = true;
    result.own_write = true;
    result.deleted = !own->second.has_value();
    if (own->second) result.value = *own->second;
    return result;
  }
  if (Status s = CheckReadRoom(); !s.ok()) return s;
  Result<ReadResult> read = owner_->store().Get(key, state_->start);
  if (read.ok() && state_->validates_reads()) state_->read_keys.emplace(key);
  return read;
}

Status Transaction::Put(std::string_view key, std::string_view value) {
  if (Status s = CheckActive(); !s.ok()) return s;
  if (state_->read_only) {
    return Status::InvalidArgument("the transaction is read-only");
  }
  if (Status s = owner_->store().CheckWrite(key, &value); !s.ok()) return s;
  if (Status s = CheckWriteRoom(key); !s.ok()) return s;
  state_->writes.insert_or_assign(std::string(key), std::string(value));
  return Status::Ok();
}

Status Transaction::Delete(std::string_view key) {
  if (Status s = CheckActive(); !s.ok()) return s;
  if (state_->read_only) {
    return Status::InvalidArgument("the transaction is read-only");
  }
  if (Status s = owner_->store().CheckWrite(key, nullptr); !s.ok()) return s;
  if (Status s = CheckWriteRoom(key); !s.ok()) return s;
  state_->writes.insert_or_assign(std::string(key), std::nullopt);
  return Status::Ok();
}

Result<ScanResult> Transaction::Scan(const KeyRange& range, size_t limit) {
  if (Status s = CheckActive(); !s.ok()) return s;
  if (range.end && *range.end <= range.start) return ScanResult{};  // an empty range
  if (Status s = CheckReadRoom(); !s.ok()) return s;
  auto own_begin = state_->writes.lower_bound(range.start);
  auto own_end = range.end ? state_->writes.lower_bound(*range.end) : state_->writes.end();
  // Each own write can hide at most one stored key, so this many stored
  // keys are enough to fill `limit` after merging (saturating: limit may be
  // SIZE_MAX).
  const size_t own_count = static_cast<size_t>(std::distance(own_begin, own_end));
  const size_t wanted = limit > SIZE_MAX - own_count ? SIZE_MAX : limit + own_count;
  Result<ScanResult> stored = owner_->store().Scan(range, state_->start, wanted);
  if (!stored.ok()) return stored;

  // Merge up to limit + 1 items: the extra one is the first key past the
  // limit, which the `more` flag depends on.
  ScanResult merged;
  auto item = stored->items.begin();
  auto own = own_begin;
  while (merged.items.size() <= limit && (item != stored->items.end() || own != own_end)) {
    const bool take_own =
        own != own_end && (item == stored->items.end() || own->first <= item->key);
    if (take_own) {
      if (item != stored->items.end() && item->key == own->first) ++item;  // own write wins
      if (own->second) merged.items.push_back({own->first, *own->second, 0, Timestamp()});
      ++own;
    } else {
      merged.items.push_back(std::move(*item));
      ++item;
    }
  }
  KeyRange covered = range;  // what the answer depended on
  if (merged.items.size() > limit) {
    // Cut by the limit: the answer depended on every key up to and
    // including the first one past the limit (it made `more` true).
    covered.end = merged.items[limit].key + '\0';
    merged.items.resize(limit);
    merged.more = true;
  } else {
    merged.more = stored->more;
  }
  if (state_->validates_reads()) state_->read_ranges.push_back(std::move(covered));
  return merged;
}

Result<Timestamp> Transaction::Commit() {
  if (Status s = CheckActive(); !s.ok()) return s;
  return owner_->Commit(state_.get());
}

void Transaction::Abort() {
  if (active()) owner_->Finish(state_.get());
}

}  // namespace strata
