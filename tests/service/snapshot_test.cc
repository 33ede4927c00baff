// Snapshots: a node's stream restored whole and at a past revision, a
// cluster's stream restored member by member (each its keys), and the
// refusals: a damaged file, a cluster's snapshot without a member, a node's
// into a member.
#include "service/snapshot.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "service/auth_store.h"
#include "service/data_dir.h"
#include "service/lease_journal.h"
#include "service/stored_value.h"
#include "strata/store.h"

namespace strata::service {
namespace {

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("strata-snapshot-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static void WriteFile(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }

  // Every key visible at `at` in a restored data directory, key=value.
  static std::vector<std::string> Visible(const std::string& data_dir, Timestamp at) {
    auto store = std::move(Store::Open(KvStoreDir(data_dir)).value());
    std::vector<std::string> out;
    (void)store->mvcc().ScanVisit(KeyRange::All(), at, 1000, [&](const ScanItemView& item) {
      out.push_back(std::string(item.key) + "=" + std::string(item.value));
    });
    return out;
  }

  std::filesystem::path dir_;
};

TEST_F(SnapshotTest, ANodesSnapshotRestoresWholeAndAtAPastRevision) {
  MvccStore store;
  ASSERT_TRUE(store.Put("a", "1", Timestamp(1)).ok());
  ASSERT_TRUE(store.Put("b", "1", Timestamp(2)).ok());
  ASSERT_TRUE(store.Put("a", "2", Timestamp(3)).ok());
  ASSERT_TRUE(store.Delete("b", Timestamp(4)).ok());
  ASSERT_TRUE(store.Put("c", "after", Timestamp(5)).ok());  // above the snapshot
  SnapshotWriter writer(&store, {{7, 60}}, "", 4, [] { return 0; });
  std::string bytes;
  for (std::string piece; !(piece = writer.Next(8)).empty();) bytes += piece;
  EXPECT_EQ(bytes.size() % 512, 32u);  // etcdctl's size check
  WriteFile(Path("node.db"), bytes);

  auto whole = RestoreSnapshot(Path("node.db"), Path("whole"), {});
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  EXPECT_EQ(whole->revision, 4);
  EXPECT_EQ(whole->leases, 1u);
  EXPECT_EQ(Visible(Path("whole"), Timestamp::Max()), (std::vector<std::string>{"a=2"}));
  RestoreOptions past;
  past.as_of_revision = 2;
  ASSERT_TRUE(RestoreSnapshot(Path("node.db"), Path("past"), past).ok());
  EXPECT_EQ(Visible(Path("past"), Timestamp::Max()), (std::vector<std::string>{"a=1", "b=1"}));
  // Not into a member of a cluster.
  RestoreOptions member;
  member.keep = [](std::string_view) { return true; };
  auto refused = RestoreSnapshot(Path("node.db"), Path("member"), member);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("one node's snapshot"), std::string::npos);
  // A damaged byte is caught by the checksum before anything is written.
  bytes[bytes.size() / 2] ^= 1;
  WriteFile(Path("damaged.db"), bytes);
  auto damaged = RestoreSnapshot(Path("damaged.db"), Path("damaged"), {});
  ASSERT_FALSE(damaged.ok());
  EXPECT_FALSE(std::filesystem::exists(KvStoreDir(Path("damaged"))));
}

TEST_F(SnapshotTest, AClustersSnapshotRestoresEachMembersKeys) {
  // What a member streams: each key's version at the snapshot, in key order.
  SnapshotEncoder encoder;
  std::string bytes = encoder.Header(kClusterSnapshotFormat, 100, {}, "");
  const std::vector<std::pair<std::string, uint64_t>> keys = {
      {"a1", 10}, {"a2", 40}, {"b1", 20}, {"b2", 90}};
  for (const auto& [key, ts] : keys) {
    const std::string value = "v-" + key;
    const ExportedVersion v{ts, 1, false, value};
    bytes += encoder.Key(key, {&v, 1}, 100);
  }
  const ExportedVersion above{101, 1, false, "x"};
  EXPECT_EQ(encoder.Key("late", {&above, 1}, 100), "");  // above the snapshot: left out
  bytes += encoder.End(100);
  EXPECT_EQ(bytes.size(), encoder.bytes());
  WriteFile(Path("cluster.db"), bytes);

  auto without = RestoreSnapshot(Path("cluster.db"), Path("plain"), {});
  ASSERT_FALSE(without.ok());
  EXPECT_NE(without.status().message().find("a cluster's snapshot"), std::string::npos);

  for (char member : {'a', 'b'}) {
    RestoreOptions options;
    options.keep = [member](std::string_view key) { return key[0] == member; };
    const std::string dir = Path(std::string("m-") + member);
    auto restored = RestoreSnapshot(Path("cluster.db"), dir, options);
    ASSERT_TRUE(restored.ok()) << restored.status().message();
    EXPECT_EQ(restored->keys, 2u);
    EXPECT_EQ(restored->compact_revision, 100);
    const std::string one(1, member);
    EXPECT_EQ(Visible(dir, Timestamp::Max()),
              (std::vector<std::string>{one + "1=v-" + one + "1", one + "2=v-" + one + "2"}));
    // Compacted at the snapshot: no read below it.
    auto store = std::move(Store::Open(KvStoreDir(dir)).value());
    EXPECT_EQ(store->mvcc().compaction_horizon(), Timestamp(100));
    EXPECT_EQ(store->mvcc().max_timestamp(), Timestamp(100));
  }
}

// A layout of the cluster's kind: etcd keys under 0x01, lease records "L<id>",
// attachments "A<id>/<key>", the users' record "U".
RestoreOptions::ClusterLayout TestLayout() {
  const std::string tag(1, '\x01');
  return RestoreOptions::ClusterLayout{[tag](std::string_view k) { return tag + std::string(k); },
                                       [](int64_t id) { return "L" + std::to_string(id); },
                                       [](int64_t id, std::string_view k) {
                                         return "A" + std::to_string(id) + "/" + std::string(k);
                                       },
                                       "U",
                                       [tag](std::string_view k) -> std::optional<std::string> {
                                         if (!k.starts_with(tag)) return std::nullopt;
                                         return std::string(k.substr(1));
                                       },
                                       [](std::string_view k) -> std::optional<int64_t> {
                                         if (!k.starts_with("L")) return std::nullopt;
                                         return std::stoll(std::string(k.substr(1)));
                                       }};
}

TEST_F(SnapshotTest, AClustersSnapshotRestoresIntoOneNode) {
  // What a cluster streams: its engine keys, each at the snapshot (100).
  AuthState users;
  users.users["alice"] = AuthUser{"alice", "", {}, true};
  SnapshotEncoder encoder;
  std::string bytes = encoder.Header(kClusterSnapshotFormat, 100, {}, users.Encode());
  const std::string tag(1, '\x01');
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"A7/a", ""},           // an attachment: left out
      {"L7", "60"},           // lease 7's record
      {"U", users.Encode()},  // the users' record: 'A' has them
      {"Zinternal", "x"},     // other bookkeeping: left out
      {tag + "a", EncodeStoredValue({90, 1, 7, "leased"})},
      {tag + "b", EncodeStoredValue({95, 2, 9, "orphan"})},  // lease 9 has no record
  };
  uint64_t ts = 90;
  for (const auto& [key, value] : keys) {
    const ExportedVersion v{ts++, 1, false, value};
    bytes += encoder.Key(key, {&v, 1}, 100);
  }
  bytes += encoder.End(100);
  WriteFile(Path("cluster.db"), bytes);

  auto without = RestoreSnapshot(Path("cluster.db"), Path("plain"), {});
  ASSERT_FALSE(without.ok());
  EXPECT_NE(without.status().message().find("needs the cluster's layout"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(KvStoreDir(Path("plain"))));

  RestoreOptions options;
  options.cluster_layout = TestLayout();
  auto restored = RestoreSnapshot(Path("cluster.db"), Path("node"), options);
  ASSERT_TRUE(restored.ok()) << restored.status().message();
  EXPECT_EQ(restored->keys, 2u);
  EXPECT_EQ(restored->leases, 2u);
  EXPECT_EQ(restored->leases_regranted, 1u) << "lease 9, held by b, granted again";
  EXPECT_EQ(restored->users, 1u);
  EXPECT_EQ(restored->compact_revision, 100);
  EXPECT_EQ(Visible(Path("node"), Timestamp::Max()),
            (std::vector<std::string>{"a=" + EncodeStoredValue({90, 1, 7, "leased"}),
                                      "b=" + EncodeStoredValue({95, 2, 9, "orphan"})}))
      << "etcd's keys under their own names, the cluster's own keys left out";
  {
    auto store = std::move(Store::Open(KvStoreDir(Path("node"))).value());
    EXPECT_EQ(store->mvcc().max_timestamp(), Timestamp(100)) << "the next write numbered above";
  }
  auto journal = StoreLeaseJournal::Open(LeaseStoreDir(Path("node")), StoreOpenOptions{});
  ASSERT_TRUE(journal.ok());
  auto leases = journal.value()->Load();
  std::sort(leases.begin(), leases.end());
  EXPECT_EQ(leases, (std::vector<std::pair<int64_t, int64_t>>{{7, 60}, {9, kRegrantedLeaseTtl}}));
}

// One node's snapshot at revision 3: "a" twice, "b" with lease 7 (TTL 60),
// and a user, alice; the users' encoding in `users`.
std::string LeasedNodeSnapshot(std::string* users_encoded) {
  MvccStore store;
  EXPECT_TRUE(store.Put("a", EncodeStoredValue({0, 1, 0, "first"}), Timestamp(1)).ok());
  EXPECT_TRUE(store.Put("b", EncodeStoredValue({0, 1, 7, "leased"}), Timestamp(2)).ok());
  EXPECT_TRUE(store.Put("a", EncodeStoredValue({1, 2, 0, "second"}), Timestamp(3)).ok());
  AuthState users;
  users.users["alice"] = AuthUser{"alice", "", {}, true};
  *users_encoded = users.Encode();
  SnapshotWriter writer(&store, {{7, 60}}, users.Encode(), 3, [] { return 0; });
  std::string bytes;
  for (std::string piece; !(piece = writer.Next(1 << 20)).empty();) bytes += piece;
  return bytes;
}

// Restored in memory for a replicated shard, a member's keys are what its
// data directory gets; without `keep`, or damaged, nothing is restored.
TEST_F(SnapshotTest, AMembersKeysRestoreInMemoryAsIntoItsDataDirectory) {
  std::string users;
  const std::string bytes = LeasedNodeSnapshot(&users);
  WriteFile(Path("node.db"), bytes);
  for (int member = 0; member < 2; ++member) {
    RestoreOptions options;
    options.keep = [member](std::string_view key) { return key.back() % 2 == member; };
    options.cluster_layout = TestLayout();
    const std::string dir = Path("m" + std::to_string(member));
    ASSERT_TRUE(RestoreSnapshot(Path("node.db"), dir, options).ok());
    MvccStore memory;
    auto restored = RestoreMemberSnapshot(bytes, "node.db", options, &memory);
    ASSERT_TRUE(restored.ok()) << restored.status().message();
    EXPECT_EQ(restored->revision, 3);
    EXPECT_EQ(restored->auth_state, users);
    std::vector<std::string> in_memory;
    (void)memory.ScanVisit(KeyRange::All(), Timestamp::Max(), 1000, [&](const ScanItemView& item) {
      in_memory.push_back(std::string(item.key) + "=" + std::string(item.value));
    });
    EXPECT_EQ(in_memory, Visible(dir, Timestamp::Max()));
    EXPECT_EQ(memory.max_timestamp(), Timestamp(3));
  }
  MvccStore memory;
  RestoreOptions everything;
  EXPECT_FALSE(RestoreMemberSnapshot(bytes, "node.db", everything, &memory).ok());
  everything.keep = [](std::string_view) { return true; };
  everything.cluster_layout = TestLayout();
  std::string damaged = bytes;
  damaged[damaged.size() / 2] ^= 1;
  auto refused = RestoreMemberSnapshot(damaged, "node.db", everything, &memory);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("node.db is not a whole strata snapshot"),
            std::string::npos)
      << refused.status().message();
  EXPECT_FALSE(memory.max_timestamp().has_value()) << "nothing written";
}

TEST_F(SnapshotTest, ANodesSnapshotRestoresIntoTheMembersOfACluster) {
  std::string users_encoded;
  WriteFile(Path("node.db"), LeasedNodeSnapshot(&users_encoded));

  // A layout of the cluster's kind, and two members splitting the keys.
  const std::string tag(1, '\x01');  // ("\x01a" would be one character, 0x1a)
  const RestoreOptions::ClusterLayout layout = TestLayout();
  RestoreOptions without_layout;
  without_layout.keep = [](std::string_view) { return true; };
  EXPECT_FALSE(RestoreSnapshot(Path("node.db"), Path("no-layout"), without_layout).ok());
  std::vector<std::string> all;
  for (int member = 0; member < 2; ++member) {
    RestoreOptions options;
    options.keep = [member](std::string_view key) { return key.back() % 2 == member; };
    options.cluster_layout = layout;
    const std::string dir = Path("m" + std::to_string(member));
    auto restored = RestoreSnapshot(Path("node.db"), dir, options);
    ASSERT_TRUE(restored.ok()) << restored.status().message();
    EXPECT_EQ(restored->leases, 1u);
    for (auto& kv : Visible(dir, Timestamp::Max())) all.push_back(kv);
    // No lease journal: a member keeps its leases as records.
    EXPECT_FALSE(std::filesystem::exists(LeaseStoreDir(dir)));
    // The history is the node's: "a" at revision 1 where "a" lives.
    if (options.keep(tag + "a")) {
      auto reopened = std::move(Store::Open(KvStoreDir(dir)).value());
      auto old = reopened->mvcc().Get(tag + "a", Timestamp(1));
      ASSERT_TRUE(old.ok()) << old.status().message();
      ASSERT_TRUE(old->found);
      EXPECT_EQ(DecodeStoredValue(old->value)->value, "first");
    }
  }
  std::vector<std::string> want = {"A7/b=", "L7=60", "U=" + users_encoded,
                                   tag + "a=" + EncodeStoredValue({1, 2, 0, "second"}),
                                   tag + "b=" + EncodeStoredValue({0, 1, 7, "leased"})};
  std::sort(all.begin(), all.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(all, want) << "every record once, on the member that owns it";
}

}  // namespace
}  // namespace strata::service
