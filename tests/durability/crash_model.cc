#include "crash_model.h"

#include <algorithm>
#include <deque>
#include <sstream>

namespace strata::testing {

void ApplyCompaction(StoreHistory* history, int64_t horizon) {
  for (auto key = history->begin(); key != history->end();) {
    KeyHistory& versions = key->second;
    // The newest version at or below the horizon is what reads at the
    // horizon see; everything older is unreachable.
    auto above = versions.upper_bound(horizon);
    if (above != versions.begin()) {
      auto newest_below = std::prev(above);
      versions.erase(versions.begin(), newest_below);
      if (newest_below->second.deleted) versions.erase(newest_below);
    }
    key = versions.empty() ? history->erase(key) : std::next(key);
  }
}

std::string Abbreviate(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "...(" + std::to_string(text.size()) + " bytes)";
}

std::string Describe(const std::string& key, int64_t timestamp, const StoredVersion& version) {
  std::ostringstream out;
  out << "key " << key << " at timestamp " << timestamp << ": "
      << (version.deleted ? "tombstone" : "value " + Abbreviate(version.value));
  if (version.version != 0) out << " (version " << version.version << ")";
  return out.str();
}

std::string DescribeHistory(const StoreHistory& history, const std::string& key) {
  auto found = history.find(key);
  if (found == history.end() || found->second.empty()) return "[] (no versions)";
  std::ostringstream out;
  out << "[";
  // Long histories are cut in the middle: the ends are where crashes bite.
  constexpr size_t kShown = 12;
  size_t index = 0;
  const size_t count = found->second.size();
  for (const auto& [timestamp, version] : found->second) {
    if (count > kShown && index == kShown / 2) out << " ...";
    if (count <= kShown || index < kShown / 2 || index >= count - kShown / 2) {
      out << (index == 0 ? "" : ", ") << "v" << version.version << "@" << timestamp << "="
          << (version.deleted ? "<deleted>" : Abbreviate(version.value, 24));
    }
    ++index;
  }
  out << "]";
  return out.str();
}

namespace {

const StoredVersion* Find(const StoreHistory& history, const std::string& key, int64_t timestamp) {
  auto versions = history.find(key);
  if (versions == history.end()) return nullptr;
  auto version = versions->second.find(timestamp);
  return version == versions->second.end() ? nullptr : &version->second;
}

class Checker {
 public:
  Checker(const CrashModel& model, const RecoveredState& recovered)
      : model_(model), recovered_(recovered) {}

  std::vector<std::string> Run() {
    CheckHorizon();
    CheckKnownVersions();
    CheckOtherVersions();
    CheckTransactionsWhole();
    CheckVersionNumbers();
    CheckStats();
    std::vector<std::string> sentences;
    for (const std::ostringstream& problem : problems_) sentences.push_back(problem.str());
    return sentences;
  }

 private:
  // Starts the next problem's sentence.
  std::ostream& Problem() { return problems_.emplace_back(); }

  void CheckHorizon() {
    const int64_t horizon = recovered_.horizon;
    if (horizon < model_.acked_horizon) {
      Problem() << "compaction horizon went backwards: an acknowledged mvcc_compact set it to "
                << model_.acked_horizon << ", the recovered node reports " << horizon;
    }
    const int64_t highest = std::max(model_.acked_horizon, model_.max_compact_requested);
    if (horizon > highest) {
      Problem() << "recovered compaction horizon " << horizon
                << " is above every mvcc_compact ever sent (highest requested: " << highest << ")";
    }
  }

  // Check 1: every version the client knows of (acknowledged, or seen by
  // an acknowledged read) is there, unchanged, unless compaction to the
  // recovered horizon legitimately removed it.
  void CheckKnownVersions() {
    expected_ = model_.known;
    ApplyCompaction(&expected_, recovered_.horizon);
    for (const auto& [key, versions] : expected_) {
      for (const auto& [timestamp, want] : versions) {
        const StoredVersion* got = Find(recovered_.history, key, timestamp);
        if (got == nullptr) {
          Problem() << "LOST acknowledged write: " << Describe(key, timestamp, want)
                    << " is missing after recovery (horizon " << recovered_.horizon
                    << "); recovered history of " << key << ": "
                    << DescribeHistory(recovered_.history, key);
        } else if (got->deleted != want.deleted || got->value != want.value) {
          Problem() << "CHANGED acknowledged write: expected " << Describe(key, timestamp, want)
                    << ", recovered " << Describe(key, timestamp, *got);
        } else if (want.version != 0 && got->version != want.version) {
          Problem() << "VERSION NUMBER changed: expected " << Describe(key, timestamp, want)
                    << ", recovered version " << got->version << "; recovered history of " << key
                    << ": " << DescribeHistory(recovered_.history, key);
        }
      }
    }
  }

  // Checks 2 and 3: a recovered version the client did not know of must be
  // an unanswered request, recovered whole and where it was sent.
  void CheckOtherVersions() {
    std::map<std::pair<std::string, int64_t>, const UnackedRawWrite*> raw_at;
    std::map<std::string, const UnackedRawWrite*> raw_by_value;
    for (const UnackedRawWrite& write : model_.unacked_raw) {
      raw_at[{write.key, write.timestamp}] = &write;
      if (!write.deleted) raw_by_value[write.value] = &write;
    }
    std::map<std::string, std::pair<size_t, std::string>> txn_by_value;  // commit index, key
    for (size_t i = 0; i < model_.unacked_commits.size(); ++i) {
      for (const auto& [key, value] : model_.unacked_commits[i].writes) {
        txn_by_value[value] = {i, key};
      }
    }
    appearances_.assign(model_.unacked_commits.size(), {});

    for (const auto& [key, versions] : recovered_.history) {
      for (const auto& [timestamp, got] : versions) {
        if (Find(expected_, key, timestamp) != nullptr) continue;  // compared above
        const std::string where = Describe(key, timestamp, got);
        if (got.deleted) {
          auto raw = raw_at.find({key, timestamp});
          if (raw == raw_at.end() || !raw->second->deleted) {
            Problem() << "UNEXPECTED tombstone: " << where << " — no mvcc_delete was sent there"
                      << (raw != raw_at.end() ? " (an unanswered mvcc_put was: " +
                                                    Abbreviate(raw->second->request, 200) + ")"
                                              : std::string())
                      << "; recovered history of " << key << ": "
                      << DescribeHistory(recovered_.history, key);
          }
          continue;
        }
        if (auto raw = raw_by_value.find(got.value); raw != raw_by_value.end()) {
          const UnackedRawWrite& sent = *raw->second;
          if (sent.key != key || sent.timestamp != timestamp) {
            Problem() << "MISPLACED unanswered mvcc_put: " << where << ", but it was sent as "
                      << Abbreviate(sent.request, 200);
          }
          continue;
        }
        if (auto txn = txn_by_value.find(got.value); txn != txn_by_value.end()) {
          const auto& [index, sent_key] = txn->second;
          if (sent_key != key) {
            Problem() << "MISPLACED transaction write: " << where << ", but transaction "
                      << model_.unacked_commits[index].txn_id << " wrote it to key " << sent_key;
          }
          appearances_[index].emplace_back(key, timestamp);
          continue;
        }
        if (auto never = model_.never_visible.find(got.value);
            never != model_.never_visible.end()) {
          Problem() << "VISIBLE write that never happened: " << where << " comes from "
                    << never->second;
          continue;
        }
        if (const StoredVersion* old = Find(model_.known, key, timestamp);
            old != nullptr && old->value == got.value && timestamp <= recovered_.horizon) {
          Problem() << "NOT COMPACTED: " << where << " should have been removed by compaction to "
                    << recovered_.horizon << "; recovered history of " << key << ": "
                    << DescribeHistory(recovered_.history, key);
          continue;
        }
        auto origin = model_.origin.find(got.value);
        Problem() << "UNEXPECTED version: " << where << " — "
                  << (origin != model_.origin.end()
                          ? "that value was written as " + Abbreviate(origin->second, 200)
                          : std::string("no request wrote it there"))
                  << "; recovered history of " << key << ": "
                  << DescribeHistory(recovered_.history, key);
      }
    }
  }

  // Check 2 for commits nobody answered: all of the transaction's writes,
  // at one timestamp above its start, or none of them.
  void CheckTransactionsWhole() {
    for (size_t i = 0; i < model_.unacked_commits.size(); ++i) {
      const UnackedCommit& txn = model_.unacked_commits[i];
      const auto& seen = appearances_[i];
      if (seen.empty()) continue;
      std::set<int64_t> timestamps;
      std::set<std::string> keys;
      for (const auto& [key, timestamp] : seen) {
        timestamps.insert(timestamp);
        keys.insert(key);
      }
      std::ostringstream wrote;
      for (const auto& [key, value] : txn.writes) wrote << " " << key << "=" << Abbreviate(value);
      std::ostringstream found;
      for (const auto& [key, timestamp] : seen) found << " " << key << "@" << timestamp;
      if (seen.size() != txn.writes.size()) {
        Problem() << "HALF TRANSACTION: unanswered commit of transaction " << txn.txn_id
                  << " (start " << txn.start << ", wrote" << wrote.str() << ") recovered only "
                  << seen.size() << " of " << txn.writes.size() << " writes:" << found.str();
      } else if (timestamps.size() != 1) {
        Problem() << "TORN TRANSACTION: transaction " << txn.txn_id << " recovered at "
                  << timestamps.size() << " timestamps:" << found.str();
      } else if (*timestamps.begin() <= txn.start) {
        Problem() << "transaction " << txn.txn_id << " recovered at commit timestamp "
                  << *timestamps.begin() << ", not above its start timestamp " << txn.start;
      }
    }
  }

  // The workload writes every key in timestamp order, so its surviving
  // versions must be numbered consecutively (a gap is a lost write).
  void CheckVersionNumbers() {
    for (const auto& [key, versions] : recovered_.history) {
      int64_t previous = 0;
      int64_t previous_timestamp = -1;
      for (const auto& [timestamp, version] : versions) {
        if (version.version < 1 || (previous != 0 && version.version != previous + 1)) {
          Problem() << "VERSION NUMBERS not consecutive for key " << key << ": version "
                    << version.version << " at timestamp " << timestamp << " follows version "
                    << previous << " at " << previous_timestamp
                    << "; recovered history: " << DescribeHistory(recovered_.history, key);
          break;
        }
        previous = version.version;
        previous_timestamp = timestamp;
      }
    }
  }

  // Check 5: mvcc_stats describes the store the histories show.
  void CheckStats() {
    int64_t keys = 0, versions = 0, tombstones = 0, max_timestamp = -1;
    for (const auto& [key, history] : recovered_.history) {
      if (history.empty()) continue;
      ++keys;
      versions += static_cast<int64_t>(history.size());
      for (const auto& [timestamp, version] : history) tombstones += version.deleted ? 1 : 0;
      max_timestamp = std::max(max_timestamp, history.rbegin()->first);
    }
    max_timestamp = std::max(max_timestamp, model_.max_acked_write);
    if (recovered_.keys != keys || recovered_.versions != versions ||
        recovered_.tombstones != tombstones) {
      Problem() << "mvcc_stats disagrees with the histories: stats say keys " << recovered_.keys
                << ", versions " << recovered_.versions << ", tombstones " << recovered_.tombstones
                << "; histories have " << keys << ", " << versions << ", " << tombstones;
    }
    if (max_timestamp > 0 &&
        (!recovered_.max_timestamp || *recovered_.max_timestamp < max_timestamp)) {
      Problem() << "mvcc_stats max_timestamp "
                << (recovered_.max_timestamp ? std::to_string(*recovered_.max_timestamp)
                                             : std::string("null"))
                << " is below timestamp " << max_timestamp
                << " of a stored or acknowledged version";
    }
    if (recovered_.active_txns != 0 || !recovered_.min_active_snapshot_null) {
      Problem() << "after a restart no transaction is open, but mvcc_stats says active_txns "
                << recovered_.active_txns
                << (recovered_.min_active_snapshot_null ? std::string()
                                                        : " and min_active_snapshot is set");
    }
    if (!recovered_.wal_failure_null) {
      Problem() << "mvcc_stats wal_failure is set right after recovery";
    }
  }

  const CrashModel& model_;
  const RecoveredState& recovered_;
  StoreHistory expected_;
  std::vector<std::vector<std::pair<std::string, int64_t>>> appearances_;
  std::deque<std::ostringstream> problems_;  // a deque: Problem()'s references stay valid
};

}  // namespace

std::vector<std::string> CheckRecovery(const CrashModel& model, const RecoveredState& recovered) {
  return Checker(model, recovered).Run();
}

}  // namespace strata::testing
