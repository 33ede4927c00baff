// textbook: the seed task's algorithm, kept deliberately naive as the
// baseline. A hash map from key to the list of its versions in arrival order;
// a read walks every version of the key and keeps the newest one at or below
// the read timestamp. Nothing is sorted, nothing is indexed, nothing is
// thread-safe. Do not optimize it: its point is to show what the seed costs.
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_util.h"
#include "bench/engine_adapter.h"
#include "bench/string_keyed_versions.h"

namespace strata::bench {
namespace {

using Version = BaselineVersion;

class TextbookAdapter final : public EngineAdapter {
 public:
  std::string_view name() const override { return "textbook"; }
  std::string_view config() const override {
    return "unordered_map<key, vector<version>> in arrival order, linear scan of all versions "
           "per read (the seed's algorithm)";
  }
  bool concurrent() const override { return false; }
  bool in_memory() const override { return true; }
  bool ordered() const override { return false; }

  void Put(std::string_view key, uint64_t ts, std::string_view value) override {
    auto it = map_.find(key);
    if (it == map_.end()) it = map_.emplace(std::string(key), std::vector<Version>{}).first;
    it->second.push_back(Version{ts, std::string(value)});
  }

  std::optional<std::string_view> Get(std::string_view key, uint64_t read_ts) override {
    const auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    const Version* best = nullptr;
    for (const Version& v : it->second) {
      if (v.ts <= read_ts && (best == nullptr || v.ts > best->ts)) best = &v;
    }
    if (best == nullptr) return std::nullopt;
    return std::string_view(best->value);
  }

  size_t Scan(std::string_view, size_t, uint64_t, uint64_t*) override {
    Fatal("textbook keeps no key order; the workloads skip its scans");
  }

 private:
  VersionsByKey map_;
};

}  // namespace

std::unique_ptr<EngineAdapter> MakeTextbookAdapter() { return std::make_unique<TextbookAdapter>(); }

}  // namespace strata::bench
