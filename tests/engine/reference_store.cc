#include "reference_store.h"

#include <algorithm>
#include <utility>

#include "test_support.h"

namespace strata::testing {

ModelRange ModelRange::Bounds(std::string start, std::optional<std::string> end) {
  return {.start = std::move(start), .end = std::move(end), .prefix = std::nullopt};
}

ModelRange ModelRange::Prefix(std::string prefix) {
  return {.start = {}, .end = std::nullopt, .prefix = std::move(prefix)};
}

bool ModelRange::Contains(std::string_view key) const {
  if (prefix) return key.starts_with(*prefix);
  // std::string_view compares bytes as unsigned char, i.e. memcmp order.
  return key >= std::string_view(start) && (!end || key < std::string_view(*end));
}

KeyRange ModelRange::ToKeyRange() const {
  if (prefix) return KeyRange::WithPrefix(*prefix);
  return KeyRange{.start = start, .end = end};
}

std::string ModelRange::ToString() const {
  if (prefix) return StrCat("prefix \"", EscapeBytes(*prefix), "\"");
  const std::string end_text = end ? StrCat("\"", EscapeBytes(*end), "\"") : "end";
  return StrCat("[\"", EscapeBytes(start), "\", ", end_text, ")");
}

std::vector<StatusCode> ReferenceStore::WriteErrors(std::string_view key,
                                                    std::optional<std::string_view> value,
                                                    Timestamp timestamp) const {
  std::vector<StatusCode> errors;
  if (key.size() > options_.max_key_bytes || (value && value->size() > options_.max_value_bytes)) {
    errors.push_back(StatusCode::kInvalidArgument);
  }
  // Horizon 0 means "nothing compacted yet", so timestamp 0 stays writable.
  if (horizon_ > Timestamp::Min() && timestamp <= horizon_) {
    errors.push_back(StatusCode::kCompacted);
  }
  if (auto it = keys_.find(std::string(key)); it != keys_.end()) {
    for (const Version& v : it->second.versions) {
      if (v.timestamp != timestamp) continue;
      const bool identical = value ? (!v.deleted && v.value == *value) : v.deleted;
      if (!identical) errors.push_back(StatusCode::kPreconditionFailed);
    }
  }
  return errors;
}

Result<WriteResult> ReferenceStore::Put(std::string_view key, std::string_view value,
                                        Timestamp timestamp) {
  return Write(key, value, timestamp);
}

Result<WriteResult> ReferenceStore::Delete(std::string_view key, Timestamp timestamp) {
  return Write(key, std::nullopt, timestamp);
}

Result<WriteResult> ReferenceStore::Write(std::string_view key,
                                          std::optional<std::string_view> value,
                                          Timestamp timestamp) {
  if (std::vector<StatusCode> errors = WriteErrors(key, value, timestamp); !errors.empty()) {
    return Status(errors.front(), "model");
  }
  KeyState& state = keys_[std::string(key)];
  for (const Version& v : state.versions) {
    // WriteErrors() ruled out a conflicting write, so this one is identical.
    if (v.timestamp == timestamp) return WriteResult{v.version, timestamp, /*retry=*/true};
  }
  ++state.writes;
  state.versions.push_back({.timestamp = timestamp,
                            .version = state.writes,
                            .deleted = !value.has_value(),
                            .value = value ? std::string(*value) : std::string()});
  max_timestamp_ = std::max(max_timestamp_.value_or(timestamp), timestamp);
  return WriteResult{state.writes, timestamp, /*retry=*/false};
}

const ReferenceStore::Version* ReferenceStore::VersionAt(const KeyState& state,
                                                         Timestamp timestamp) {
  const Version* newest = nullptr;
  for (const Version& v : state.versions) {
    if (v.timestamp <= timestamp && (newest == nullptr || v.timestamp > newest->timestamp)) {
      newest = &v;
    }
  }
  return newest;
}

Result<ReadResult> ReferenceStore::Get(std::string_view key, Timestamp read_timestamp) const {
  if (BelowHorizon(read_timestamp)) return Status::Compacted("model");
  auto it = keys_.find(std::string(key));
  if (it == keys_.end()) return ReadResult{};
  const Version* v = VersionAt(it->second, read_timestamp);
  if (v == nullptr) return ReadResult{};
  return ReadResult{.found = true,
                    .deleted = v->deleted,
                    .version = v->version,
                    .timestamp = v->timestamp,
                    .value = v->value};
}

Result<ScanResult> ReferenceStore::Scan(const ModelRange& range, Timestamp read_timestamp,
                                        size_t limit) const {
  if (BelowHorizon(read_timestamp)) return Status::Compacted("model");
  ScanResult result;
  for (const auto& [key, state] : keys_) {
    if (!range.Contains(key)) continue;
    const Version* v = VersionAt(state, read_timestamp);
    if (v == nullptr || v->deleted) continue;
    if (result.items.size() == limit) {
      result.more = true;
      break;
    }
    result.items.push_back(
        {.key = key, .value = v->value, .version = v->version, .timestamp = v->timestamp});
  }
  return result;
}

Result<HistoryResult> ReferenceStore::History(std::string_view key, std::optional<Timestamp> from,
                                              std::optional<Timestamp> to, size_t limit) const {
  if (from && BelowHorizon(*from)) return Status::Compacted("model");
  HistoryResult result;
  auto it = keys_.find(std::string(key));
  if (it == keys_.end()) return result;
  std::vector<Version> versions = it->second.versions;
  std::sort(versions.begin(), versions.end(),
            [](const Version& a, const Version& b) { return a.timestamp < b.timestamp; });
  for (const Version& v : versions) {
    if ((from && v.timestamp < *from) || (to && v.timestamp > *to)) continue;
    if (result.versions.size() == limit) {
      result.more = true;
      break;
    }
    result.versions.push_back(
        {.version = v.version, .timestamp = v.timestamp, .deleted = v.deleted, .value = v.value});
  }
  return result;
}

Result<ChangesResult> ReferenceStore::Changes(Timestamp since, const ModelRange& range,
                                              size_t limit) const {
  if (BelowHorizon(since)) return Status::Compacted("model");
  std::vector<Change> all;
  for (const auto& [key, state] : keys_) {
    if (!range.Contains(key)) continue;
    for (const Version& v : state.versions) {
      if (v.timestamp <= since) continue;
      all.push_back({.key = key,
                     .timestamp = v.timestamp,
                     .version = v.version,
                     .deleted = v.deleted,
                     .value = v.value});
    }
  }
  std::sort(all.begin(), all.end(), [](const Change& a, const Change& b) {
    return std::tie(a.timestamp, a.key) < std::tie(b.timestamp, b.key);
  });
  ChangesResult result;
  result.more = all.size() > limit;
  if (result.more) all.resize(limit);
  result.changes = std::move(all);
  return result;
}

CompactResult ReferenceStore::Compact(Timestamp horizon) {
  horizon_ = std::max(horizon_, horizon);
  CompactResult result{.horizon = horizon_};
  for (auto it = keys_.begin(); it != keys_.end();) {
    std::vector<Version>& versions = it->second.versions;
    const Version* kept = VersionAt(it->second, horizon_);
    const bool had_versions = !versions.empty();
    if (kept != nullptr) {
      const Timestamp cutoff = kept->timestamp;
      // Older than the newest version at or below the horizon: invisible to
      // every read at or above it. That version itself too if it is a delete,
      // since "deleted" and "absent" read the same to a Scan.
      const bool drop_kept = kept->deleted;
      auto removed = [&](const Version& v) {
        return v.timestamp < cutoff || (drop_kept && v.timestamp == cutoff);
      };
      for (const Version& v : versions) {
        if (!removed(v)) continue;
        ++result.versions_removed;
        result.bytes_reclaimed += v.value.size();
      }
      std::erase_if(versions, removed);
    }
    // A key left with no version is retired, not forgotten: it keeps its
    // write count, so its next write continues the count.
    if (had_versions && versions.empty()) result.bytes_reclaimed += it->first.size();
    ++it;
  }
  ++gc_runs_;
  gc_versions_removed_ += result.versions_removed;
  gc_bytes_reclaimed_ += result.bytes_reclaimed;
  return result;
}

StoreStats ReferenceStore::GetStats() const {
  StoreStats stats;
  for (const auto& [key, state] : keys_) {
    if (state.versions.empty()) continue;  // retired
    ++stats.keys;
    stats.bytes += key.size();
    for (const Version& v : state.versions) {
      ++stats.versions;
      stats.tombstones += v.deleted ? 1 : 0;
      stats.bytes += v.value.size();
    }
  }
  stats.max_timestamp = max_timestamp_;
  stats.compaction_horizon = horizon_;
  stats.gc_runs = gc_runs_;
  stats.gc_versions_removed = gc_versions_removed_;
  stats.gc_bytes_reclaimed = gc_bytes_reclaimed_;
  return stats;
}

std::vector<std::string> ReferenceStore::Keys() const {
  std::vector<std::string> keys;
  for (const auto& [key, state] : keys_) {
    if (!state.versions.empty()) keys.push_back(key);
  }
  return keys;
}

}  // namespace strata::testing
