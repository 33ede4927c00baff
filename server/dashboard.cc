#include "server/dashboard.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/json_writer.h"
#include "server/server_state.h"
#include "service/stored_value.h"
#include "strata.pb.h"

namespace strata::server {

// Generated at build time from server/dashboard.html (cmake/embed_text.cmake).
extern const char kDashboardHtml[];

namespace {

constexpr size_t kMaxTimelineVersions = 1000;
constexpr size_t kMaxShownValueBytes = 64;
// How long the page waits for a cluster member's read of a key's shard.
constexpr std::chrono::seconds kClusterTimelineWait{5};

// Bytes as text a page can show: printable ASCII as is, the rest as \xNN,
// cut at `max` bytes (keys and values are arbitrary bytes; JSON is UTF-8).
std::string Printable(std::string_view bytes, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

ops::HttpResponse Json(int status, std::string body) {
  return {status, "application/json", std::move(body)};
}

ops::HttpResponse JsonError(int status, std::string_view message) {
  std::string body = "{\"error\":";
  protocol::AppendJsonString(&body, message);
  body += "}";
  return Json(status, std::move(body));
}

// What the page's timeline of one key shows, however it was read.
struct Timeline {
  struct Version {
    int64_t revision = 0;
    bool deleted = false;
    std::optional<service::KeyValue> kv;  // none for a delete, or a value that does not decode
  };
  std::string key;
  int64_t current_revision = 0;
  int64_t compact_revision = 0;
  int64_t low_water_mark = 0;
  std::vector<service::TxnSnapshot> snapshots;
  std::vector<Version> versions;
  bool more = false;
};

ops::HttpResponse TimelineJson(const Timeline& t) {
  std::string out;
  protocol::JsonWriter w(&out);
  w.BeginObject();
  w.Key("key").String(Printable(t.key, 256));
  w.Key("current_revision").Int(t.current_revision);
  w.Key("compact_revision").Int(t.compact_revision);
  w.Key("low_water_mark").Int(t.low_water_mark);
  w.Key("snapshots").BeginArray();
  for (const auto& s : t.snapshots) {
    w.BeginObject().Key("txn_id").Uint(s.id).Key("revision").Int(s.revision).EndObject();
  }
  w.EndArray();
  w.Key("versions").BeginArray();
  for (const Timeline::Version& v : t.versions) {
    w.BeginObject().Key("revision").Int(v.revision);
    if (v.deleted) {
      w.Key("deleted").Bool(true);
    } else if (v.kv) {
      w.Key("value").String(Printable(v.kv->value, kMaxShownValueBytes));
      w.Key("value_bytes").Uint(v.kv->value.size());
      w.Key("version").Int(v.kv->version);
      w.Key("create_revision").Int(v.kv->create_revision);
      w.Key("lease").Int(v.kv->lease);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("more").Bool(t.more);
  w.EndObject();
  return Json(200, std::move(out));
}

// A cluster member's timeline of `key`: strata.v1's History, read where
// the key's shard is (ClusterFront::History), not this member's own store,
// which holds one shard's keys (or, with replicated shards, none). The
// cluster's open interactive transactions are not listed (each member
// knows only its own): `snapshots` is empty.
ops::HttpResponse ClusterKeyTimeline(ClusterFront& cluster, const std::string& key, size_t limit) {
  v1::HistoryRequest request;
  request.set_key(key);
  request.set_limit(static_cast<int64_t>(limit));
  const int64_t current = cluster.current_revision();
  // The answer may come after this page's wait: it then lands in the
  // promise alone.
  auto answer = std::make_shared<std::promise<service::Reply<std::string>>>();
  std::future<service::Reply<std::string>> answered = answer->get_future();
  cluster.History(request.SerializeAsString(),
                  [answer](service::Reply<std::string> r) { answer->set_value(std::move(r)); });
  if (answered.wait_for(kClusterTimelineWait) != std::future_status::ready) {
    return JsonError(504, "the key's shard did not answer within 5 s");
  }
  service::Reply<std::string> r = answered.get();
  if (!r.ok()) return JsonError(503, r.error().message);
  v1::HistoryResponse history;
  if (!history.ParseFromString(r.value())) {
    return JsonError(500, "the shard's history did not decode");
  }
  Timeline t;
  t.key = key;
  // This member's clock may not have heard of the newest version yet.
  t.current_revision = current;
  // What the shard can no longer show: its compaction, as low as it goes.
  t.compact_revision = t.low_water_mark = history.compact_revision();
  for (const v1::Version& v : history.versions()) {
    t.current_revision = std::max(t.current_revision, v.revision());
    Timeline::Version& shown = t.versions.emplace_back();
    shown.revision = v.revision();
    shown.deleted = v.deleted();
    if (!v.deleted()) {
      shown.kv = service::KeyValue{key,         v.create_revision(), v.revision(),
                                   v.version(), v.value(),           v.lease()};
    }
  }
  t.more = history.more();
  return TimelineJson(t);
}

}  // namespace

ops::HttpResponse DashboardPage() { return {200, "text/html; charset=utf-8", kDashboardHtml}; }

ops::HttpResponse KeyTimeline(const EtcdServer::Impl& s, const ops::HttpListener::Params& q) {
  if (s.auth->enabled()) {
    return JsonError(403,
                     "authentication is enabled: the key timeline, which shows values, is off on "
                     "the metrics port (strata-ctl --user NAME history KEY shows the same)");
  }
  auto key = q.find("key");
  if (key == q.end() || key->second.empty()) return JsonError(400, "give a key: ?key=K");
  if (key->second.size() > s.options.max_request_bytes) return JsonError(400, "key too long");
  size_t limit = kMaxTimelineVersions;
  if (auto l = q.find("limit"); l != q.end()) {
    size_t asked = 0;
    auto [end, ec] = std::from_chars(l->second.data(), l->second.data() + l->second.size(), asked);
    if (ec != std::errc() || end != l->second.data() + l->second.size() || asked == 0) {
      return JsonError(400, "limit must be a positive integer");
    }
    limit = std::min(asked, kMaxTimelineVersions);
  }
  if (s.cluster) return ClusterKeyTimeline(*s.cluster, key->second, limit);
  const std::shared_ptr<const MvccStore> engine = s.KeySpaceEngine();
  const int64_t current =
      s.replicated ? s.replicated->current_revision() : s.kv->current_revision();
  const int64_t compacted =
      s.replicated ? s.replicated->compact_revision() : s.kv->compact_revision();
  // Never past what is answered to clients (the engine may hold newer).
  auto h =
      engine->History(key->second, std::nullopt, Timestamp(static_cast<uint64_t>(current)), limit);
  if (!h.ok()) return JsonError(500, h.status().message());
  Timeline t;
  t.key = key->second;
  t.current_revision = current;
  t.compact_revision = std::max<int64_t>(0, compacted);
  t.low_water_mark = static_cast<int64_t>(engine->compaction_horizon().value());
  t.snapshots = s.txns->Stats().snapshots;
  for (const auto& v : h.value().versions) {
    Timeline::Version& shown = t.versions.emplace_back();
    shown.revision = static_cast<int64_t>(v.timestamp.value());
    shown.deleted = v.deleted;
    if (!v.deleted) shown.kv = service::StoredToKeyValue(key->second, v.timestamp, v.value);
  }
  t.more = h.value().more;
  return TimelineJson(t);
}

}  // namespace strata::server
