#include "cluster/txn_record_table.h"

#include <string>

namespace strata::cluster {

void TxnRecordTable::SetStatus(TxnId txn, Entry* entry, TxnStatus status) {
  if (entry->record.status == TxnStatus::kPending) --pending_;
  if (status == TxnStatus::kPending) ++pending_;
  if (status == TxnStatus::kCommitted) {
    committed_.insert(txn);
  } else {
    committed_.erase(txn);
  }
  entry->record.status = status;
}

Status TxnRecordTable::Create(TxnId txn, std::vector<uint32_t> participants,
                              Clock::time_point now) {
  auto [it, inserted] = records_.try_emplace(txn);
  Entry& entry = it->second;
  if (inserted) {
    entry.record.status = TxnStatus::kPending;
    entry.record.participants = std::move(participants);
    entry.last_heartbeat = now;
    ++pending_;
    return Status::Ok();
  }
  if (entry.record.status == TxnStatus::kPending) {
    if (now > entry.last_heartbeat) entry.last_heartbeat = now;
    return Status::Ok();
  }
  return Status(StatusCode::kConflict, "transaction " + txn.ToString() + " is already " +
                                           TxnStatusName(entry.record.status) +
                                           " at its primary; it cannot prepare again");
}

TxnRecord TxnRecordTable::Commit(TxnId txn, Timestamp commit_timestamp) {
  auto it = records_.find(txn);
  if (it == records_.end()) {
    // The record never reached us (or was forgotten): nobody can vouch for
    // the prepare, so the transaction is aborted for good.
    Entry entry;
    entry.record.status = TxnStatus::kAborted;
    return records_.emplace(txn, entry).first->second.record;
  }
  Entry& entry = it->second;
  if (entry.record.status == TxnStatus::kPending) {
    SetStatus(txn, &entry, TxnStatus::kCommitted);
    entry.record.commit_timestamp = commit_timestamp;
  }
  return entry.record;
}

TxnRecord TxnRecordTable::Abort(TxnId txn) {
  auto [it, inserted] = records_.try_emplace(txn);
  Entry& entry = it->second;
  if (inserted) {
    entry.record.status = TxnStatus::kAborted;
    return entry.record;
  }
  if (entry.record.status == TxnStatus::kPending) SetStatus(txn, &entry, TxnStatus::kAborted);
  return entry.record;
}

bool TxnRecordTable::Abandoned(TxnId txn, Clock::time_point now) const {
  auto it = records_.find(txn);
  if (it == records_.end()) return true;
  const Entry& entry = it->second;
  return entry.record.status == TxnStatus::kPending &&
         now - entry.last_heartbeat >= heartbeat_timeout_;
}

TxnRecord TxnRecordTable::Push(TxnId txn, Clock::time_point now) {
  if (Abandoned(txn, now)) return Abort(txn);
  return records_.at(txn).record;
}

std::vector<std::pair<TxnId, TxnRecord>> TxnRecordTable::All() const {
  std::vector<std::pair<TxnId, TxnRecord>> all;
  all.reserve(records_.size());
  for (const auto& [txn, entry] : records_) all.emplace_back(txn, entry.record);
  return all;
}

std::optional<TxnRecord> TxnRecordTable::Heartbeat(TxnId txn, Clock::time_point now) {
  auto it = records_.find(txn);
  if (it == records_.end()) return std::nullopt;
  Entry& entry = it->second;
  if (entry.record.status == TxnStatus::kPending && now > entry.last_heartbeat) {
    entry.last_heartbeat = now;
  }
  return entry.record;
}

std::optional<TxnRecord> TxnRecordTable::Find(TxnId txn) const {
  auto it = records_.find(txn);
  if (it == records_.end()) return std::nullopt;
  return it->second.record;
}

void TxnRecordTable::Restore(TxnId txn, const TxnRecord& record, Clock::time_point now) {
  auto [it, inserted] = records_.emplace(txn, Entry{TxnRecord{}, now});
  if (inserted) ++pending_;  // a new entry starts PENDING
  SetStatus(txn, &it->second, record.status);
  it->second.record.commit_timestamp = record.commit_timestamp;
  it->second.record.participants = record.participants;
}

bool TxnRecordTable::Forget(TxnId txn) {
  auto it = records_.find(txn);
  if (it == records_.end() || it->second.record.status == TxnStatus::kPending) return false;
  committed_.erase(txn);
  records_.erase(it);
  return true;
}

std::vector<TxnId> TxnRecordTable::ForgetAbortedBefore(uint64_t stamp_floor) {
  std::vector<TxnId> forgotten;
  for (auto it = records_.begin(); it != records_.end() && it->first.stamp < stamp_floor;) {
    if (it->second.record.status != TxnStatus::kAborted) {
      ++it;
    } else {
      forgotten.push_back(it->first);
      it = records_.erase(it);
    }
  }
  return forgotten;
}

std::vector<std::pair<TxnId, TxnRecord>> TxnRecordTable::CommittedBefore(Timestamp floor) const {
  std::vector<std::pair<TxnId, TxnRecord>> found;
  for (const TxnId& txn : committed_) {
    const TxnRecord& record = records_.at(txn).record;
    if (record.commit_timestamp < floor) found.emplace_back(txn, record);
  }
  return found;
}

}  // namespace strata::cluster
