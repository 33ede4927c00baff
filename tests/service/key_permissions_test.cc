// KeyPermissions against a model: over a small alphabet, a request is
// allowed exactly when every key it names is inside some grant of the
// right kind (the union of grants, as etcd merges a user's roles).
#include "service/key_permissions.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace strata::service {
namespace {

// Requests and grants use keys of up to 3 letters over {\0, a, b}. Every key
// of up to 4 letters is checked: an uncovered stretch of keys begins at a
// grant's or request's end or at a request's key, which is at most a 3-letter
// key plus "\0", so it always holds a key of this universe.
const std::vector<std::string>& Universe() {
  static const std::vector<std::string> universe = [] {
    std::vector<std::string> keys = {""};
    for (size_t len = 1; len <= 4; ++len) {
      std::vector<std::string> next;
      for (const auto& k : keys) {
        if (k.size() != len - 1) continue;
        for (char c : {'\0', 'a', 'b'}) next.push_back(k + c);
      }
      keys.insert(keys.end(), next.begin(), next.end());
    }
    return keys;
  }();
  return universe;
}

bool InSpan(const std::string& k, const std::string& key, const std::string& end) {
  if (end.empty()) return k == key;
  if (end == std::string(1, '\0')) return k >= key;
  return k >= key && k < end;
}

// The model: is each key of the universe named by the request covered?
bool ModelAllows(const std::vector<KeyPermission>& grants, Access access, const std::string& key,
                 const std::string& end) {
  std::string wanted_end = end;
  if (!end.empty() && end != std::string(1, '\0') && end <= key) wanted_end = "";  // first key only
  for (const auto& k : Universe()) {
    if (!InSpan(k, key, wanted_end)) continue;
    bool covered = false;
    for (const auto& g : grants) {
      const bool kind = access == Access::kRead ? g.type != PermissionType::kWrite
                                                : g.type != PermissionType::kRead;
      if (kind && InSpan(k, g.key, g.range_end)) covered = true;
    }
    if (!covered) return false;
  }
  return true;
}

std::string SmallKey() {
  const auto len = *rc::gen::inRange<size_t>(0, 4);
  return *rc::gen::container<std::string>(len, rc::gen::element('\0', 'a', 'b'));
}

// A range's end: empty (one key), "\0" (from the key on) or a key.
std::string SmallEnd() {
  return *rc::gen::element(0, 1, 2) == 0 ? std::string(1, '\0') : SmallKey();
}

TEST(KeyPermissionsTest, Examples) {
  KeyPermissions p({{PermissionType::kRead, "r/", "r0"},
                    {PermissionType::kReadWrite, "w/", "w0"},
                    {PermissionType::kWrite, "k", ""}});
  EXPECT_TRUE(p.Allows(Access::kRead, "r/x", ""));
  EXPECT_TRUE(p.Allows(Access::kRead, "r/", "r0"));
  EXPECT_FALSE(p.Allows(Access::kRead, "r/", "s"));
  EXPECT_FALSE(p.Allows(Access::kRead, "r/", std::string(1, '\0')));
  EXPECT_FALSE(p.Allows(Access::kWrite, "r/x", ""));
  EXPECT_TRUE(p.Allows(Access::kWrite, "w/x", ""));
  EXPECT_TRUE(p.Allows(Access::kWrite, "k", ""));
  EXPECT_FALSE(p.Allows(Access::kRead, "k", ""));
  EXPECT_FALSE(p.Allows(Access::kWrite, "k", "l"));  // "k\0" and on are not granted
  // Two grants that meet cover the range across them.
  KeyPermissions joined({{PermissionType::kRead, "a", "c"}, {PermissionType::kRead, "c", "e"}});
  EXPECT_TRUE(joined.Allows(Access::kRead, "b", "d"));
  // From-key grants cover everything after.
  KeyPermissions all({{PermissionType::kRead, "", std::string(1, '\0')}});
  EXPECT_TRUE(all.Allows(Access::kRead, "", std::string(1, '\0')));
  EXPECT_TRUE(all.Allows(Access::kRead, "\xff\xff", ""));
  EXPECT_FALSE(KeyPermissions().Allows(Access::kRead, "a", ""));
}

RC_GTEST_PROP(KeyPermissionsTest, AgreesWithTheModel, ()) {
  std::vector<KeyPermission> grants(*rc::gen::inRange<size_t>(0, 5));
  for (auto& g : grants) {
    g.type = *rc::gen::element(PermissionType::kRead, PermissionType::kWrite,
                               PermissionType::kReadWrite);
    g.key = SmallKey();
    g.range_end = SmallEnd();
  }
  const KeyPermissions p(grants);
  for (int i = 0; i < 20; ++i) {
    const auto access = *rc::gen::element(Access::kRead, Access::kWrite);
    const auto key = SmallKey();
    const auto end = SmallEnd();
    RC_ASSERT(p.Allows(access, key, end) == ModelAllows(grants, access, key, end));
  }
}

}  // namespace
}  // namespace strata::service
