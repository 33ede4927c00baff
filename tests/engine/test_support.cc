#include "test_support.h"

#include <cstdio>
#include <sstream>
#include <tuple>
#include <utility>

namespace strata {
namespace {

// Each type's observable fields as a tuple, so equality is one comparison and
// a field added to both the struct and this list is compared everywhere.
auto Fields(const WriteResult& r) { return std::tie(r.version, r.timestamp, r.retry); }
auto Fields(const ReadResult& r) {
  return std::tie(r.found, r.deleted, r.version, r.timestamp, r.value);
}
auto Fields(const ScanItem& r) { return std::tie(r.key, r.value, r.version, r.timestamp); }
auto Fields(const HistoryEntry& r) { return std::tie(r.version, r.timestamp, r.deleted, r.value); }
auto Fields(const Change& r) { return std::tie(r.key, r.timestamp, r.version, r.deleted, r.value); }
auto Fields(const CompactResult& r) {
  return std::tie(r.horizon, r.versions_removed, r.bytes_reclaimed);
}
auto Fields(const StoreStats& s) {
  return std::tie(s.keys, s.versions, s.tombstones, s.bytes, s.max_timestamp, s.compaction_horizon,
                  s.gc_runs, s.gc_versions_removed, s.gc_bytes_reclaimed);
}

std::string Quoted(std::string_view bytes) {
  return testing::StrCat("\"", testing::EscapeBytes(bytes), "\"");
}

}  // namespace

bool operator==(const WriteResult& a, const WriteResult& b) { return Fields(a) == Fields(b); }
bool operator==(const ReadResult& a, const ReadResult& b) { return Fields(a) == Fields(b); }
bool operator==(const ScanItem& a, const ScanItem& b) { return Fields(a) == Fields(b); }
bool operator==(const ScanResult& a, const ScanResult& b) {
  return a.items == b.items && a.more == b.more;
}
bool operator==(const HistoryEntry& a, const HistoryEntry& b) { return Fields(a) == Fields(b); }
bool operator==(const HistoryResult& a, const HistoryResult& b) {
  return a.versions == b.versions && a.more == b.more;
}
bool operator==(const Change& a, const Change& b) { return Fields(a) == Fields(b); }
bool operator==(const ChangesResult& a, const ChangesResult& b) {
  return a.changes == b.changes && a.more == b.more;
}
bool operator==(const CompactResult& a, const CompactResult& b) { return Fields(a) == Fields(b); }
bool operator==(const StoreStats& a, const StoreStats& b) { return Fields(a) == Fields(b); }

std::string ToString(StatusCode code) { return std::string(StatusCodeName(code)); }

std::string ToString(const Status& status) {
  if (status.ok()) return "OK";
  return ToString(status.code()) + " (" + status.message() + ")";
}

std::string ToString(Timestamp timestamp) {
  if (timestamp == Timestamp::Max()) return "MAX";
  return std::to_string(timestamp.value());
}

std::string ToString(const WriteResult& r) {
  return "{version=" + std::to_string(r.version) + " ts=" + ToString(r.timestamp) +
         (r.retry ? " retry}" : "}");
}

std::string ToString(const ReadResult& r) {
  if (!r.found) {
    // A stale field on a not-found result is still worth seeing.
    return "{not found version=" + std::to_string(r.version) + " ts=" + ToString(r.timestamp) +
           " value=" + Quoted(r.value) + (r.deleted ? " deleted}" : "}");
  }
  return std::string(r.deleted ? "{tombstone" : "{value=" + Quoted(r.value)) +
         (r.deleted && !r.value.empty() ? " value=" + Quoted(r.value) : "") +
         " version=" + std::to_string(r.version) + " ts=" + ToString(r.timestamp) + "}";
}

std::string ToString(const ScanResult& r) {
  std::string out = "{items=[";
  for (const ScanItem& item : r.items) {
    out += "\n  " + Quoted(item.key) + "=" + Quoted(item.value) +
           " v=" + std::to_string(item.version) + " ts=" + ToString(item.timestamp);
  }
  return out + "] more=" + (r.more ? "true}" : "false}");
}

std::string ToString(const HistoryResult& r) {
  std::string out = "{versions=[";
  for (const HistoryEntry& e : r.versions) {
    out += "\n  v=" + std::to_string(e.version) + " ts=" + ToString(e.timestamp) +
           (e.deleted ? " tombstone" : " value=" + Quoted(e.value));
  }
  return out + "] more=" + (r.more ? "true}" : "false}");
}

std::string ToString(const ChangesResult& r) {
  std::string out = "{changes=[";
  for (const Change& c : r.changes) {
    out += "\n  ts=" + ToString(c.timestamp) + " key=" + Quoted(c.key) +
           " v=" + std::to_string(c.version) +
           (c.deleted ? " tombstone" : " value=" + Quoted(c.value));
  }
  return out + "] more=" + (r.more ? "true}" : "false}");
}

std::string ToString(const CompactResult& r) {
  return "{horizon=" + ToString(r.horizon) +
         " versions_removed=" + std::to_string(r.versions_removed) +
         " bytes_reclaimed=" + std::to_string(r.bytes_reclaimed) + "}";
}

std::string ToString(const CompactStepResult& r) {
  return "{keys_visited=" + std::to_string(r.keys_visited) +
         " versions_removed=" + std::to_string(r.versions_removed) +
         " bytes_reclaimed=" + std::to_string(r.bytes_reclaimed) +
         (r.sweep_finished ? " sweep_finished}" : "}");
}

std::string ToString(const StoreStats& s) {
  std::ostringstream out;
  out << "{keys=" << s.keys << " versions=" << s.versions << " tombstones=" << s.tombstones
      << " bytes=" << s.bytes << " memory_bytes=" << s.memory_bytes
      << " max_ts=" << (s.max_timestamp ? ToString(*s.max_timestamp) : "none")
      << " horizon=" << ToString(s.compaction_horizon) << " gc_runs=" << s.gc_runs
      << " gc_versions_removed=" << s.gc_versions_removed
      << " gc_bytes_reclaimed=" << s.gc_bytes_reclaimed << "}";
  return out.str();
}

}  // namespace strata

namespace strata::testing {

std::string EscapeBytes(std::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\' && byte != '"') {
      out += c;
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", byte);
      out += buf;
    }
  }
  return out;
}

ReadResult FoundValue(uint64_t version, uint64_t timestamp, std::string value) {
  return {.found = true,
          .deleted = false,
          .version = version,
          .timestamp = Timestamp(timestamp),
          .value = std::move(value)};
}

ReadResult FoundTombstone(uint64_t version, uint64_t timestamp) {
  return {.found = true,
          .deleted = true,
          .version = version,
          .timestamp = Timestamp(timestamp),
          .value = {}};
}

ReadResult NotFound() { return {}; }

ReadResult WithoutStaleFields(ReadResult r) {
  if (!r.found) {
    r.version = 0;
    r.timestamp = Timestamp();
  }
  return r;
}

WriteResult Written(uint64_t version, uint64_t timestamp) {
  return {.version = version, .timestamp = Timestamp(timestamp), .retry = false};
}

WriteResult Retried(uint64_t version, uint64_t timestamp) {
  return {.version = version, .timestamp = Timestamp(timestamp), .retry = true};
}

ScanItem Item(std::string key, std::string value, uint64_t version, uint64_t timestamp) {
  return {.key = std::move(key),
          .value = std::move(value),
          .version = version,
          .timestamp = Timestamp(timestamp)};
}

HistoryEntry ValueEntry(uint64_t version, uint64_t timestamp, std::string value) {
  return {.version = version,
          .timestamp = Timestamp(timestamp),
          .deleted = false,
          .value = std::move(value)};
}

HistoryEntry TombstoneEntry(uint64_t version, uint64_t timestamp) {
  return {.version = version, .timestamp = Timestamp(timestamp), .deleted = true, .value = {}};
}

}  // namespace strata::testing
