// What the two in-memory baselines (textbook, hash-binsearch) share: a hash
// map keyed by std::string that can be probed with a std::string_view, and
// the version they store per key.
#ifndef STRATA_BENCH_STRING_KEYED_VERSIONS_H_
#define STRATA_BENCH_STRING_KEYED_VERSIONS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::bench {

// Lets the map be probed with a string_view, so a read allocates nothing (the
// seed would build a std::string per lookup; that cost is not the point here).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct BaselineVersion {
  uint64_t ts;
  std::string value;
};

using VersionsByKey =
    std::unordered_map<std::string, std::vector<BaselineVersion>, StringHash, std::equal_to<>>;

}  // namespace strata::bench

#endif  // STRATA_BENCH_STRING_KEYED_VERSIONS_H_
