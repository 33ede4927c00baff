#include "server/dashboard.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <future>
#include <memory>
#include <string>

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
  std::string out;
  protocol::JsonWriter w(&out);
  w.BeginObject();
  w.Key("key").String(Printable(key, 256));
  // This member's clock may not have heard of the newest version yet.
  int64_t shown = current;
  for (const v1::Version& v : history.versions()) shown = std::max(shown, v.revision());
  w.Key("current_revision").Int(shown);
  w.Key("compact_revision").Int(history.compact_revision());
  // What the shard can no longer show: its compaction, as low as it goes.
  w.Key("low_water_mark").Int(history.compact_revision());
  w.Key("snapshots").BeginArray().EndArray();
  w.Key("versions").BeginArray();
  for (const v1::Version& v : history.versions()) {
    w.BeginObject().Key("revision").Int(v.revision());
    if (v.deleted()) {
      w.Key("deleted").Bool(true);
    } else {
      w.Key("value").String(Printable(v.value(), kMaxShownValueBytes));
      w.Key("value_bytes").Uint(v.value().size());
      w.Key("version").Int(v.version());
      w.Key("create_revision").Int(v.create_revision());
      w.Key("lease").Int(v.lease());
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("more").Bool(history.more());
  w.EndObject();
  return Json(200, std::move(out));
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
  const auto txns = s.txns->Stats();

  std::string out;
  protocol::JsonWriter w(&out);
  w.BeginObject();
  w.Key("key").String(Printable(key->second, 256));
  w.Key("current_revision").Int(current);
  w.Key("compact_revision").Int(std::max<int64_t>(0, compacted));
  w.Key("low_water_mark").Int(static_cast<int64_t>(engine->compaction_horizon().value()));
  w.Key("snapshots").BeginArray();
  for (const auto& t : txns.snapshots) {
    w.BeginObject().Key("txn_id").Uint(t.id).Key("revision").Int(t.revision).EndObject();
  }
  w.EndArray();
  w.Key("versions").BeginArray();
  for (const auto& v : h.value().versions) {
    w.BeginObject().Key("revision").Int(static_cast<int64_t>(v.timestamp.value()));
    if (v.deleted) {
      w.Key("deleted").Bool(true);
    } else if (auto kv = service::StoredToKeyValue(key->second, v.timestamp, v.value)) {
      w.Key("value").String(Printable(kv->value, kMaxShownValueBytes));
      w.Key("value_bytes").Uint(kv->value.size());
      w.Key("version").Int(kv->version);
      w.Key("create_revision").Int(kv->create_revision);
      w.Key("lease").Int(kv->lease);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("more").Bool(h.value().more);
  w.EndObject();
  return Json(200, std::move(out));
}

}  // namespace strata::server
