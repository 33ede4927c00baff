#include "cluster/router.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "cluster/forwarded_calls.h"
#include "cluster/hybrid_clock.h"

namespace strata::cluster {

namespace {

// Merges `parts` (each sorted by `order`) up to `limit` items, stopping at
// the lowest last item of a part that was cut short.
template <typename Item, typename Order>
std::pair<std::vector<Item>, bool> Merge(std::vector<std::pair<std::vector<Item>, bool>> parts,
                                         size_t limit, Order order) {
  using Key = decltype(order(std::declval<const Item&>()));
  std::optional<Key> bound;
  std::vector<Item> items;
  for (auto& [part, more] : parts) {
    if (more) {
      // Cut with nothing in it: nothing past the start is certain.
      const Key last = part.empty() ? Key() : order(part.back());
      if (!bound || last < *bound) bound = last;
    }
    std::move(part.begin(), part.end(), std::back_inserter(items));
  }
  std::sort(items.begin(), items.end(),
            [&](const Item& a, const Item& b) { return order(a) < order(b); });
  bool more = bound.has_value();
  size_t n = 0;
  for (; n < items.size(); ++n) {
    if (bound && order(items[n]) > *bound) break;
    if (n == limit) {
      more = true;
      break;
    }
  }
  items.resize(n);
  return {std::move(items), more};
}

}  // namespace

template <typename T>
void Router::FanOut(PeerRequest request, std::function<void(Result<std::vector<T>>)> done) {
  struct Gather {
    size_t waiting = 0;
    std::optional<Status> error;
    std::vector<T> parts;
    std::function<void(Result<std::vector<T>>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->waiting = peers_->map().shards().size();
  gather->done = std::move(done);
  for (const Shard& shard : peers_->map().shards()) {
    peers_->Call(shard.id, request, [gather](const PeerReply* reply) {
      if (const T* part = ReplyAs<T>(reply)) {
        gather->parts.push_back(*part);
      } else if (!gather->error) {
        gather->error = CallFailure(reply, "a shard did not answer in time; try again");
      }
      if (--gather->waiting > 0) return;
      if (gather->error) return gather->done(*gather->error);
      gather->done(std::move(gather->parts));
    });
  }
}

namespace {

PeerRpc::Callback ForwardAnswer(Router::Done<std::string> done, std::string gave_up) {
  return [done = std::move(done), gave_up = std::move(gave_up)](const PeerReply* reply) {
    if (const auto* forwarded = ReplyAs<ForwardReply>(reply)) return done(forwarded->reply);
    done(CallFailure(reply, gave_up));
  };
}

}  // namespace

void Router::Forward(std::string_view engine_key, std::string request, Done<std::string> done) {
  last_forward_id_ = ForwardedCalls::IdAt(HybridLogicalClock::SystemMillis(), last_forward_id_);
  peers_->Call(
      OwnerOf(engine_key), cluster::Forward{std::move(request), last_forward_id_},
      ForwardAnswer(std::move(done), "the shard that owns this key did not answer in time"));
}

void Router::ForwardToShard(ShardId shard, std::string request, Done<std::string> done) {
  last_forward_id_ = ForwardedCalls::IdAt(HybridLogicalClock::SystemMillis(), last_forward_id_);
  peers_->Call(
      shard, cluster::Forward{std::move(request), last_forward_id_},
      ForwardAnswer(std::move(done), "shard " + std::to_string(shard) + " did not answer in time"));
}

void Router::ForwardTo(const std::string& node, std::string request, Done<std::string> done) {
  last_forward_id_ = ForwardedCalls::IdAt(HybridLogicalClock::SystemMillis(), last_forward_id_);
  peers_->CallNode(node, cluster::Forward{std::move(request), last_forward_id_},
                   ForwardAnswer(std::move(done), "member " + node + " did not answer in time"));
}

void Router::Scan(KeyRange range, Timestamp at, size_t limit, Done<ScanResult> done) {
  FanOut<RawScanReply>(RawScan{std::move(range), at, limit},
                       [limit, done = std::move(done)](Result<std::vector<RawScanReply>> parts) {
                         if (!parts.ok()) return done(parts.status());
                         std::vector<ScanResult> scans;
                         for (RawScanReply& part : *parts) scans.push_back(std::move(part.scan));
                         done(MergeScans(std::move(scans), limit));
                       });
}

void Router::Changes(Timestamp since, KeyRange range, size_t limit, Done<ChangesResult> done) {
  FanOut<RawChangesReply>(
      RawChanges{since, std::move(range), limit},
      [limit, done = std::move(done)](Result<std::vector<RawChangesReply>> parts) {
        if (!parts.ok()) return done(parts.status());
        std::vector<ChangesResult> changes;
        for (RawChangesReply& part : *parts) changes.push_back(std::move(part.changes));
        done(MergeChanges(std::move(changes), limit));
      });
}

void Router::SettledChanges(Timestamp since, KeyRange range, size_t limit,
                            Done<ChangesResult> done) {
  FanOut<ShardWatchReply>(
      ShardWatch{std::move(range), since, 0, limit, false},
      [limit, done = std::move(done)](Result<std::vector<ShardWatchReply>> parts) {
        if (!parts.ok()) return done(parts.status());
        done(MergeSettled(std::move(*parts), limit));
      });
}

ChangesResult Router::MergeSettled(std::vector<ShardWatchReply> parts, size_t limit) {
  Timestamp settled = Timestamp::Max();
  bool more = false;
  for (const ShardWatchReply& part : parts) {
    settled = std::min(settled, part.resolved);
    // A shard whose page was full may hold more past it.
    more |= limit > 0 && part.changes.size() >= limit;
  }
  std::vector<Change> changes;
  for (ShardWatchReply& part : parts) {
    for (Change& change : part.changes) {
      if (change.timestamp <= settled) changes.push_back(std::move(change));
    }
  }
  std::sort(changes.begin(), changes.end(), [](const Change& a, const Change& b) {
    return std::tie(a.timestamp, a.key) < std::tie(b.timestamp, b.key);
  });
  if (limit > 0 && changes.size() > limit) {
    // Before the timestamp the limit falls in, unless that is the first.
    size_t end = limit;
    while (end > 0 && changes[end - 1].timestamp == changes[limit].timestamp) --end;
    if (end == 0) {
      end = limit;
      while (end < changes.size() && changes[end].timestamp == changes[0].timestamp) ++end;
    }
    changes.resize(end);
    more = true;
  }
  return ChangesResult{std::move(changes), more};
}

void Router::Compact(Timestamp horizon, Done<CompactResult> done) {
  FanOut<RawCompactReply>(RawCompact{horizon},
                          [done = std::move(done)](Result<std::vector<RawCompactReply>> parts) {
                            if (!parts.ok()) return done(parts.status());
                            std::vector<CompactResult> compactions;
                            for (const RawCompactReply& part : *parts) {
                              compactions.push_back(part.compacted);
                            }
                            done(MergeCompactions(compactions));
                          });
}

ScanResult Router::MergeScans(std::vector<ScanResult> parts, size_t limit) {
  std::vector<std::pair<std::vector<ScanItem>, bool>> lists;
  for (ScanResult& part : parts) lists.emplace_back(std::move(part.items), part.more);
  auto [items, more] =
      Merge<ScanItem>(std::move(lists), limit, [](const ScanItem& item) { return item.key; });
  return ScanResult{std::move(items), more};
}

ChangesResult Router::MergeChanges(std::vector<ChangesResult> parts, size_t limit) {
  std::vector<std::pair<std::vector<Change>, bool>> lists;
  for (ChangesResult& part : parts) lists.emplace_back(std::move(part.changes), part.more);
  auto [changes, more] = Merge<Change>(std::move(lists), limit, [](const Change& change) {
    return std::make_pair(change.timestamp.value(), change.key);
  });
  return ChangesResult{std::move(changes), more};
}

CompactResult Router::MergeCompactions(const std::vector<CompactResult>& parts) {
  CompactResult merged;
  merged.horizon = Timestamp::Max();
  for (const CompactResult& part : parts) {
    merged.horizon = std::min(merged.horizon, part.horizon);
    merged.versions_removed += part.versions_removed;
    merged.bytes_reclaimed += part.bytes_reclaimed;
  }
  return merged;
}

}  // namespace strata::cluster
