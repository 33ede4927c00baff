#include "protocol/mvcc_messages.h"

#include <algorithm>

#include "protocol/key_codec.h"

namespace strata::protocol {

namespace {

// The key range named by a request's optional start, end and prefix fields
// (a prefix narrows [start, end) further).
MaybeError ParseKeyRange(const Body& body, bool allow_bounds, KeyRange* range) {
  std::optional<std::string> start, end;
  if (allow_bounds) {
    if (auto err = body.OptionalKey("start", &start)) return err;
    if (auto err = body.OptionalKey("end", &end)) return err;
  }
  std::optional<std::string_view> prefix;
  if (auto e = body.Find("prefix"); e && !e->is_null() && !e->is_string()) {
    return Malformed("field 'prefix' must be a string: prefixes apply to string keys only");
  }
  if (auto err = body.OptionalString("prefix", &prefix)) return err;

  *range = KeyRange::All();
  if (prefix) {
    std::string encoded;
    EncodeStringKey(*prefix, &encoded);
    *range = KeyRange::WithPrefix(encoded);
  }
  if (start && *start > range->start) range->start = std::move(*start);
  if (end && (!range->end || *end < *range->end)) range->end = std::move(*end);
  if (!range->end) range->end = std::string(1, kFirstInternalKeyTag);
  return std::nullopt;
}

void WriteVersionFields(uint64_t version, Timestamp ts, JsonWriter* w) {
  w->FieldUint("version", version).FieldUint("timestamp", ts.value());
}

}  // namespace

MaybeError ParseRequest(const Body& body, MvccPutRequest* out) {
  if (auto err = body.RequiredKey("key", &out->key)) return err;
  if (auto err = body.RequiredValue("value", &out->value_json)) return err;
  return body.RequiredTimestamp("timestamp", &out->timestamp);
}

MaybeError ParseRequest(const Body& body, MvccGetRequest* out) {
  if (auto err = body.RequiredKey("key", &out->key)) return err;
  return body.OptionalTimestamp("read_timestamp", &out->read_timestamp);
}

MaybeError ParseRequest(const Body& body, MvccDeleteRequest* out) {
  if (auto err = body.RequiredKey("key", &out->key)) return err;
  return body.RequiredTimestamp("timestamp", &out->timestamp);
}

MaybeError ParseRequest(const Body& body, MvccScanRequest* out) {
  if (auto err = ParseKeyRange(body, /*allow_bounds=*/true, &out->range)) return err;
  if (auto err = body.OptionalTimestamp("read_timestamp", &out->read_timestamp)) return err;
  return body.Limit(&out->limit);
}

MaybeError ParseRequest(const Body& body, MvccHistoryRequest* out) {
  if (auto err = body.RequiredKey("key", &out->key)) return err;
  if (auto err = body.OptionalTimestamp("start_timestamp", &out->start_timestamp)) return err;
  if (auto err = body.OptionalTimestamp("end_timestamp", &out->end_timestamp)) return err;
  return body.Limit(&out->limit);
}

MaybeError ParseRequest(const Body& body, MvccChangesRequest* out) {
  if (auto err = body.RequiredTimestamp("since_timestamp", &out->since_timestamp)) return err;
  if (auto err = ParseKeyRange(body, /*allow_bounds=*/false, &out->range)) return err;
  return body.Limit(&out->limit);
}

MaybeError ParseRequest(const Body& body, MvccCompactRequest* out) {
  return body.RequiredTimestamp("timestamp", &out->timestamp);
}

void WriteReply(const WriteResult& result, JsonWriter* w) {
  WriteVersionFields(result.version, result.timestamp, w);
}

void WriteReply(const ReadResult& result, JsonWriter* w) {
  if (!result.found) {
    w->Key("value").Null().Key("version").Null().Key("as_of_timestamp").Null();
    return;
  }
  if (result.deleted) {
    w->Key("value").Null().Key("deleted").Bool(true);
  } else {
    w->Key("value").Raw(result.value);
  }
  if (result.own_write) {
    // A transaction's own write has no version or timestamp until commit.
    w->Key("version").Null().Key("as_of_timestamp").Null().Key("own_write").Bool(true);
    return;
  }
  w->FieldUint("version", result.version).FieldUint("as_of_timestamp", result.timestamp.value());
}

void WriteReply(const ScanResult& result, JsonWriter* w) {
  w->Key("items").BeginArray();
  for (const ScanItem& item : result.items) {
    w->BeginObject().Key("key");
    WriteKey(w, item.key);
    w->Key("value").Raw(item.value);
    if (item.version == 0) {
      // A transaction's own write: no version or timestamp until commit.
      w->Key("version").Null().Key("as_of_timestamp").Null().Key("own_write").Bool(true);
    } else {
      w->FieldUint("version", item.version).FieldUint("as_of_timestamp", item.timestamp.value());
    }
    w->EndObject();
  }
  w->EndArray().Key("more").Bool(result.more);
}

void WriteReply(const HistoryResult& result, JsonWriter* w) {
  w->Key("versions").BeginArray();
  for (const HistoryEntry& v : result.versions) {
    w->BeginObject();
    WriteVersionFields(v.version, v.timestamp, w);
    if (v.deleted) {
      w->Key("deleted").Bool(true);
    } else {
      w->Key("value").Raw(v.value);
    }
    w->EndObject();
  }
  w->EndArray().Key("more").Bool(result.more);
}

void WriteReply(const ChangesResult& result, JsonWriter* w) {
  w->Key("changes").BeginArray();
  for (const Change& c : result.changes) {
    w->BeginObject().Key("key");
    WriteKey(w, c.key);
    WriteVersionFields(c.version, c.timestamp, w);
    if (c.deleted) {
      w->Key("deleted").Bool(true);
    } else {
      w->Key("value").Raw(c.value);
    }
    w->EndObject();
  }
  w->EndArray().Key("more").Bool(result.more);
}

void WriteReply(const CompactResult& result, JsonWriter* w) {
  w->FieldUint("horizon", result.horizon.value())
      .FieldUint("versions_removed", result.versions_removed)
      .FieldUint("bytes_reclaimed", result.bytes_reclaimed);
}

void WriteStats(const StoreStats& stats, JsonWriter* w) {
  w->FieldUint("keys", stats.keys)
      .FieldUint("versions", stats.versions)
      .FieldUint("tombstones", stats.tombstones)
      .FieldUint("bytes", stats.bytes)
      .FieldUint("memory_bytes", stats.memory_bytes)
      .FieldUintOrNull("max_timestamp", stats.max_timestamp
                                            ? std::optional(stats.max_timestamp->value())
                                            : std::nullopt)
      .FieldUint("compaction_horizon", stats.compaction_horizon.value())
      .FieldUint("gc_runs", stats.gc_runs)
      .FieldUint("gc_versions_removed", stats.gc_versions_removed)
      .FieldUint("gc_bytes_reclaimed", stats.gc_bytes_reclaimed);
}

void WriteTxnStats(const TxnStats& stats, uint64_t expired_txns, JsonWriter* w) {
  w->FieldUintOrNull("min_active_snapshot", stats.min_active_snapshot
                                                ? std::optional(stats.min_active_snapshot->value())
                                                : std::nullopt)
      .FieldUint("active_txns", stats.active_txns)
      .FieldUintOrNull("oldest_txn_age_ms",
                       stats.oldest_txn_age ? std::optional<uint64_t>(stats.oldest_txn_age->count())
                                            : std::nullopt)
      .FieldUintOrNull("oldest_txn_id", stats.oldest_txn_id)
      .FieldUint("commits", stats.commits)
      .FieldUint("conflicts", stats.conflicts)
      .FieldUint("expired_txns", expired_txns);
}

void WriteDurabilityStats(const DurabilityStats& stats, JsonWriter* w) {
  w->FieldUint("wal_appended_lsn", stats.appended_lsn)
      .FieldUint("wal_durable_lsn", stats.durable_lsn)
      .FieldUint("wal_syncs", stats.syncs)
      .FieldUint("wal_bytes", stats.log_bytes)
      .FieldUint("checkpoints", stats.checkpoints)
      .FieldUintOrNull("last_checkpoint_lsn", stats.last_checkpoint_lsn)
      .FieldStringOrNull("wal_failure", stats.failure);
}

}  // namespace strata::protocol
