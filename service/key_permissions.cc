#include "service/key_permissions.h"

#include <algorithm>

namespace strata::service {
namespace {

// The smallest key above `key`: a single key is the interval [key, key+"\0").
std::string Successor(std::string_view key) {
  std::string s(key);
  s.push_back('\0');
  return s;
}

}  // namespace

KeyPermissions::KeyPermissions(const std::vector<KeyPermission>& grants) {
  std::vector<Interval> read, write;
  for (const auto& g : grants) {
    Interval iv{g.key, std::nullopt};
    if (g.range_end.empty()) {
      iv.end = Successor(g.key);
    } else if (g.range_end != std::string_view("\0", 1)) {
      iv.end = g.range_end;
    }
    if (g.type != PermissionType::kWrite) read.push_back(iv);
    if (g.type != PermissionType::kRead) write.push_back(iv);
  }
  read_ = Merge(std::move(read));
  write_ = Merge(std::move(write));
}

std::vector<KeyPermissions::Interval> KeyPermissions::Merge(std::vector<Interval> intervals) {
  // Empty grants ([a, b) with b <= a) cover nothing.
  std::erase_if(intervals, [](const Interval& iv) { return iv.end && *iv.end <= iv.begin; });
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
  std::vector<Interval> merged;
  for (auto& iv : intervals) {
    if (!merged.empty()) {
      auto& last = merged.back();
      if (!last.end) continue;  // already unbounded
      if (iv.begin <= *last.end) {
        if (!iv.end || *iv.end > *last.end) last.end = std::move(iv.end);
        continue;
      }
    }
    merged.push_back(std::move(iv));
  }
  return merged;
}

bool KeyPermissions::Covers(const std::vector<Interval>& merged, const Interval& wanted) {
  // The last interval starting at or before wanted.begin is the only one
  // that can hold it, the intervals being disjoint and not adjacent.
  auto it = std::upper_bound(merged.begin(), merged.end(), wanted.begin,
                             [](const std::string& b, const Interval& iv) { return b < iv.begin; });
  if (it == merged.begin()) return false;
  const Interval& iv = *std::prev(it);
  if (!iv.end) return true;
  if (wanted.begin >= *iv.end) return false;
  return wanted.end && *wanted.end <= *iv.end;
}

bool KeyPermissions::Allows(Access access, std::string_view key, std::string_view range_end) const {
  const auto& merged = access == Access::kRead ? read_ : write_;
  Interval wanted{std::string(key), std::nullopt};
  if (range_end.empty()) {
    wanted.end = Successor(key);
  } else if (range_end != std::string_view("\0", 1)) {
    // A range that holds no key ([a, b) with b <= a) reads nothing; it is
    // judged by its first key, so it neither leaks nor fails for no reason.
    wanted.end = range_end <= key ? Successor(key) : std::string(range_end);
  }
  return Covers(merged, wanted);
}

}  // namespace strata::service
