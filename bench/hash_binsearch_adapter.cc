// hash-binsearch: the practical speed limit of an in-memory point read. A
// hash map from key to its versions kept sorted by timestamp; a read is one
// hash probe and one binary search. It pays for none of what strata offers
// (key order, concurrent readers, compaction), so strata is expected to be
// slower; the gap is the price of those features.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_util.h"
#include "bench/engine_adapter.h"
#include "bench/string_keyed_versions.h"

namespace strata::bench {
namespace {

using Version = BaselineVersion;

class HashBinsearchAdapter final : public EngineAdapter {
 public:
  std::string_view name() const override { return "hash-binsearch"; }
  std::string_view config() const override {
    return "unordered_map<key, vector<version>> sorted by ts, upper_bound per read; no order, "
           "not thread-safe";
  }
  bool concurrent() const override { return false; }
  bool in_memory() const override { return true; }
  bool ordered() const override { return false; }

  void Put(std::string_view key, uint64_t ts, std::string_view value) override {
    auto it = map_.find(key);
    if (it == map_.end()) it = map_.emplace(std::string(key), std::vector<Version>{}).first;
    std::vector<Version>& versions = it->second;
    // Versions nearly always arrive in timestamp order: append is the fast path.
    if (versions.empty() || versions.back().ts < ts) {
      versions.push_back(Version{ts, std::string(value)});
      return;
    }
    auto pos = std::lower_bound(versions.begin(), versions.end(), ts,
                                [](const Version& v, uint64_t t) { return v.ts < t; });
    if (pos != versions.end() && pos->ts == ts) {
      pos->value.assign(value);
    } else {
      versions.insert(pos, Version{ts, std::string(value)});
    }
  }

  std::optional<std::string_view> Get(std::string_view key, uint64_t read_ts) override {
    const auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    const std::vector<Version>& versions = it->second;
    auto pos = std::upper_bound(versions.begin(), versions.end(), read_ts,
                                [](uint64_t t, const Version& v) { return t < v.ts; });
    if (pos == versions.begin()) return std::nullopt;
    return std::string_view(std::prev(pos)->value);
  }

  size_t Scan(std::string_view, size_t, uint64_t, uint64_t*) override {
    Fatal("hash-binsearch keeps no key order; the workloads skip its scans");
  }

 private:
  VersionsByKey map_;
};

}  // namespace

std::unique_ptr<EngineAdapter> MakeHashBinsearchAdapter() {
  return std::make_unique<HashBinsearchAdapter>();
}

}  // namespace strata::bench
