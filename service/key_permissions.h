// KeyPermissions: which keys one user may read and which it may write, as
// etcd's roles grant them (a key, a range [key, range_end), or everything
// from key on when range_end is "\0").
//
// A request is allowed when the union of the user's granted ranges covers
// all of it: etcd merges a user's roles the same way, so a range split over
// two roles is as good as one grant of the whole.
#ifndef STRATA_SERVICE_KEY_PERMISSIONS_H_
#define STRATA_SERVICE_KEY_PERMISSIONS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::service {

// authpb.Permission.Type's values.
enum class PermissionType { kRead = 0, kWrite = 1, kReadWrite = 2 };

struct KeyPermission {
  PermissionType type = PermissionType::kRead;
  std::string key;
  std::string range_end;  // empty: the key alone; "\0": every key from `key` on
  bool operator==(const KeyPermission&) const = default;
};

enum class Access { kRead, kWrite };

class KeyPermissions {
 public:
  KeyPermissions() = default;
  explicit KeyPermissions(const std::vector<KeyPermission>& grants);

  // `range_end` as in a request: empty asks for `key` alone, "\0" for every
  // key from `key` on, anything else for [key, range_end).
  bool Allows(Access access, std::string_view key, std::string_view range_end) const;

 private:
  // [begin, end); no end: unbounded above.
  struct Interval {
    std::string begin;
    std::optional<std::string> end;
  };
  // Sorted, disjoint, not adjacent: a covering check is one binary search.
  static std::vector<Interval> Merge(std::vector<Interval> intervals);
  static bool Covers(const std::vector<Interval>& merged, const Interval& wanted);

  std::vector<Interval> read_;
  std::vector<Interval> write_;
};

}  // namespace strata::service

#endif  // STRATA_SERVICE_KEY_PERMISSIONS_H_
