// AuthStore: etcd's rules for users, roles and permissions, tokens, and the
// state surviving a reopen (through a journal and through a real Store).
#include "service/auth_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "service/auth_tokens.h"
#include "service/password_hash.h"

namespace strata::service {
namespace {

using namespace std::chrono_literals;

class MemoryJournal final : public AuthJournal {
 public:
  Status Save(const std::string& encoded, uint64_t, std::string*) override {
    saved = encoded;
    ++saves;
    return Status::Ok();
  }
  std::optional<std::string> Load() override { return saved; }
  std::optional<std::string> saved;
  int saves = 0;
};

// One state several stores share, as a cluster's members do: a save over
// a state that is no longer the one held is refused with the newer one.
class SharedJournal final : public AuthJournal {
 public:
  Status Save(const std::string& encoded, uint64_t replaces, std::string* newer) override {
    const uint64_t held = saved ? AuthState::Decode(*saved)->revision : 1;
    if (held != replaces) {
      *newer = *saved;
      ++conflicts;
      return Status(StatusCode::kConflict, "changed");
    }
    saved = encoded;
    return Status::Ok();
  }
  std::optional<std::string> Load() override { return saved; }
  void TokenAssigned(const std::string& token, const std::string& user) override {
    tokens.emplace_back(token, user);
  }
  std::optional<std::string> saved;
  int conflicts = 0;
  std::vector<std::pair<std::string, std::string>> tokens;
};

std::string Msg(const std::optional<ServiceError>& e) { return e ? e->message : "ok"; }

// root (with the root role) and a reader of the prefix r/; no passwords
// (hashing is tested on its own, and costs 19 MiB a time).
std::unique_ptr<AuthStore> WithUsers(AuthJournal* journal, AuthLimits limits = {}) {
  auto s = std::move(AuthStore::Open(journal, limits).value());
  EXPECT_EQ(Msg(s->UserAdd("root", "", true)), "ok");
  EXPECT_EQ(Msg(s->UserGrantRole("root", "root")), "ok");
  EXPECT_EQ(Msg(s->RoleAdd("ro")), "ok");
  EXPECT_EQ(Msg(s->RoleGrantPermission("ro", {PermissionType::kRead, "r/", "r0"})), "ok");
  EXPECT_EQ(Msg(s->UserAdd("reader", "", true)), "ok");
  EXPECT_EQ(Msg(s->UserGrantRole("reader", "ro")), "ok");
  return s;
}

TEST(AuthStoreTest, EnableNeedsRootWithTheRootRole) {
  auto s = std::move(AuthStore::Open(nullptr).value());
  EXPECT_EQ(Msg(s->Enable()), "etcdserver: root user does not exist");
  ASSERT_EQ(Msg(s->UserAdd("root", "", true)), "ok");
  EXPECT_EQ(Msg(s->Enable()), "etcdserver: root user does not have root role");
  // "root" may be granted before a role of that name exists, as in etcd.
  ASSERT_EQ(Msg(s->UserGrantRole("root", "root")), "ok");
  EXPECT_EQ(Msg(s->Enable()), "ok");
  EXPECT_TRUE(s->enabled());
  EXPECT_EQ(Msg(s->Enable()), "ok");  // twice is no error
}

TEST(AuthStoreTest, ChecksOnlyWhileEnabled) {
  auto s = WithUsers(nullptr);
  EXPECT_EQ(Msg(s->Check("", Access::kWrite, "x", "")), "ok");
  ASSERT_EQ(Msg(s->Enable()), "ok");
  EXPECT_EQ(Msg(s->Check("", Access::kRead, "r/1", "")), "etcdserver: user name is empty");
  EXPECT_EQ(Msg(s->Check("reader", Access::kRead, "r/1", "")), "ok");
  EXPECT_EQ(Msg(s->Check("reader", Access::kRead, "r/", "r0")), "ok");
  EXPECT_EQ(Msg(s->Check("reader", Access::kWrite, "r/1", "")), "etcdserver: permission denied");
  EXPECT_EQ(Msg(s->Check("reader", Access::kRead, "s", "")), "etcdserver: permission denied");
  EXPECT_EQ(Msg(s->Check("nobody", Access::kRead, "r/1", "")), "etcdserver: permission denied");
  EXPECT_EQ(Msg(s->Check("root", Access::kWrite, "anything", std::string(1, '\0'))), "ok");
  EXPECT_EQ(Msg(s->CheckAdmin("root")), "ok");
  EXPECT_EQ(Msg(s->CheckAdmin("reader")), "etcdserver: permission denied");
  ASSERT_EQ(Msg(s->Disable()), "ok");
  EXPECT_EQ(Msg(s->Check("", Access::kWrite, "x", "")), "ok");
}

TEST(AuthStoreTest, ChangesTakeEffectAtOnce) {
  auto s = WithUsers(nullptr);
  ASSERT_EQ(Msg(s->Enable()), "ok");
  ASSERT_EQ(Msg(s->RoleGrantPermission("ro", {PermissionType::kReadWrite, "r/", "r0"})), "ok");
  EXPECT_EQ(Msg(s->Check("reader", Access::kWrite, "r/1", "")), "ok");
  // Granting the same range again changes its type, not the count.
  EXPECT_EQ(s->RoleGet("ro").value().permissions.size(), 1u);
  ASSERT_EQ(Msg(s->RoleRevokePermission("ro", "r/", "r0")), "ok");
  EXPECT_EQ(Msg(s->Check("reader", Access::kRead, "r/1", "")), "etcdserver: permission denied");
  EXPECT_EQ(Msg(s->RoleRevokePermission("ro", "r/", "r0")),
            "etcdserver: permission is not granted to the role");
  ASSERT_EQ(Msg(s->RoleGrantPermission("ro", {PermissionType::kRead, "r/", "r0"})), "ok");
  ASSERT_EQ(Msg(s->RoleDelete("ro")), "ok");
  EXPECT_TRUE(s->UserGet("reader").value().roles.empty());
  EXPECT_EQ(Msg(s->Check("reader", Access::kRead, "r/1", "")), "etcdserver: permission denied");
}

TEST(AuthStoreTest, RefusesWhatEtcdRefuses) {
  auto s = WithUsers(nullptr);
  EXPECT_EQ(Msg(s->UserAdd("", "", true)), "etcdserver: user name is empty");
  EXPECT_EQ(Msg(s->UserAdd("reader", "", true)), "etcdserver: user name already exists");
  EXPECT_EQ(Msg(s->RoleAdd("")), "etcdserver: role name is empty");
  EXPECT_EQ(Msg(s->RoleAdd("ro")), "etcdserver: role name already exists");
  EXPECT_EQ(Msg(s->UserGrantRole("nobody", "ro")), "etcdserver: user name not found");
  EXPECT_EQ(Msg(s->UserGrantRole("reader", "nope")), "etcdserver: role name not found");
  EXPECT_EQ(Msg(s->UserRevokeRole("reader", "root")),
            "etcdserver: role is not granted to the user");
  EXPECT_EQ(Msg(s->UserDelete("nobody")), "etcdserver: user name not found");
  EXPECT_EQ(Msg(s->RoleDelete("nope")), "etcdserver: role name not found");
  EXPECT_EQ(s->UserGet("nobody").error().message, "etcdserver: user name not found");
  EXPECT_EQ(s->RoleGet("nope").error().message, "etcdserver: role name not found");
  EXPECT_EQ(s->Authenticate("root", "x").error().message,
            "etcdserver: authentication is not enabled");
  ASSERT_EQ(Msg(s->Enable()), "ok");
  // Once enabled, root cannot lock itself out.
  EXPECT_EQ(Msg(s->UserDelete("root")), "etcdserver: invalid auth management");
  EXPECT_EQ(Msg(s->UserRevokeRole("root", "root")), "etcdserver: invalid auth management");
  EXPECT_EQ(Msg(s->RoleDelete("root")), "etcdserver: invalid auth management");
  // A user without a password cannot authenticate with one.
  EXPECT_EQ(s->Authenticate("reader", "").error().message,
            "etcdserver: authentication failed, invalid user ID or password");
}

TEST(AuthStoreTest, BoundsWhatClientsAdd) {
  AuthLimits limits;
  limits.max_users = 3;
  limits.max_roles = 2;
  limits.max_permissions_per_role = 2;
  auto s = WithUsers(nullptr, limits);  // 2 users, 1 role, 1 permission
  EXPECT_EQ(Msg(s->UserAdd("u3", "", true)), "ok");
  EXPECT_EQ(Msg(s->UserAdd("u4", "", true)), "strata: too many users (at most 3)");
  EXPECT_EQ(Msg(s->RoleAdd("r2")), "ok");
  EXPECT_EQ(Msg(s->RoleAdd("r3")), "strata: too many roles (at most 2)");
  EXPECT_EQ(Msg(s->RoleGrantPermission("ro", {PermissionType::kRead, "a", ""})), "ok");
  EXPECT_EQ(Msg(s->RoleGrantPermission("ro", {PermissionType::kRead, "b", ""})),
            "strata: too many permissions in one role (at most 2)");
  EXPECT_NE(Msg(s->UserAdd(std::string(2000, 'x'), "", true)), "ok");
}

TEST(AuthStoreTest, PasswordsAndTokens) {
  auto s = std::move(AuthStore::Open(nullptr).value());
  ASSERT_EQ(Msg(s->UserAdd("root", "s3cret", false)), "ok");
  EXPECT_EQ(s->UserGet("root").value().password_hash.rfind("$argon2id$", 0), 0u);
  ASSERT_EQ(Msg(s->UserGrantRole("root", "root")), "ok");
  ASSERT_EQ(Msg(s->Enable()), "ok");
  EXPECT_EQ(s->Authenticate("root", "wrong").error().message,
            "etcdserver: authentication failed, invalid user ID or password");
  EXPECT_EQ(s->Authenticate("nobody", "s3cret").error().message,
            "etcdserver: authentication failed, invalid user ID or password");
  auto token = s->Authenticate("root", "s3cret");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(s->UserOfToken(token.value()).value(), "root");
  EXPECT_EQ(s->UserOfToken("forged.1").error().message, "etcdserver: invalid auth token");
  // A new password ends the tokens given for the old one.
  ASSERT_EQ(Msg(s->UserChangePassword("root", "n3w")), "ok");
  EXPECT_FALSE(s->UserOfToken(token.value()).ok());
  EXPECT_FALSE(s->Authenticate("root", "s3cret").ok());
  token = s->Authenticate("root", "n3w");
  ASSERT_TRUE(token.ok());
  ASSERT_EQ(Msg(s->Disable()), "ok");
  EXPECT_FALSE(s->UserOfToken(token.value()).ok());
}

TEST(AuthStoreTest, SurvivesAReopen) {
  MemoryJournal journal;
  {
    auto s = WithUsers(&journal);
    ASSERT_EQ(Msg(s->Enable()), "ok");
    EXPECT_EQ(journal.saves, 7);  // one per change, none for a refused one
    EXPECT_NE(Msg(s->UserAdd("root", "", true)), "ok");
    EXPECT_EQ(journal.saves, 7);
  }
  auto s = std::move(AuthStore::Open(&journal).value());
  EXPECT_TRUE(s->enabled());
  EXPECT_EQ(s->revision(), 8u);
  EXPECT_EQ(s->UserList(), (std::vector<std::string>{"reader", "root"}));
  EXPECT_EQ(Msg(s->Check("reader", Access::kRead, "r/1", "")), "ok");
  EXPECT_EQ(Msg(s->Check("reader", Access::kWrite, "r/1", "")), "etcdserver: permission denied");
}

TEST(AuthStoreTest, AChangeOverAStaleStateIsMadeAgainOverTheNewerOne) {
  SharedJournal shared;
  auto b = std::move(AuthStore::Open(&shared).value());  // hears nothing of a's changes
  auto a = WithUsers(&shared);
  EXPECT_EQ(b->revision(), 1u);
  // b's change conflicts with a's five, adopts them and is made over them.
  ASSERT_EQ(Msg(b->RoleAdd("rw")), "ok");
  EXPECT_EQ(shared.conflicts, 1);
  EXPECT_EQ(b->revision(), a->revision() + 1);
  EXPECT_EQ(b->UserList(), (std::vector<std::string>{"reader", "root"}));
  // A change that the newer state makes wrong is refused, not forced.
  ASSERT_EQ(Msg(a->RoleDelete("ro")), "ok");
  EXPECT_EQ(Msg(b->RoleGrantPermission("ro", {PermissionType::kRead, "x", ""})),
            "etcdserver: role name not found");
  // a hears of b's changes by adopting the shared state.
  ASSERT_TRUE(a->Adopt(*shared.saved));
  EXPECT_EQ(a->RoleList(), (std::vector<std::string>{"rw"}));
  EXPECT_EQ(a->revision(), b->revision());
}

TEST(AuthStoreTest, AStateAheadOfTheSharedOneGivesWayToIt) {
  SharedJournal shared;
  auto a = WithUsers(&shared);  // the shared record: revision 6
  // A member restored with a copy newer than the record (revision 50).
  AuthState ahead = AuthState::Decode(*shared.saved).value();
  ahead.revision = 50;
  ahead.roles.erase("ro");
  auto b = std::move(AuthStore::Open(&shared).value());
  ASSERT_TRUE(b->Adopt(ahead.Encode()));
  EXPECT_EQ(b->revision(), 50u);
  // A change there is made over the record's state and saved, not refused
  // by every attempt.
  ASSERT_EQ(Msg(b->RoleAdd("after-restore")), "ok");
  EXPECT_EQ(b->revision(), a->revision() + 1);
  ASSERT_TRUE(a->Adopt(*shared.saved));
  EXPECT_EQ(a->RoleList(), (std::vector<std::string>{"after-restore", "ro"}));
}

TEST(AuthStoreTest, AdoptedStatesAndTokensActAsLocalOnes) {
  SharedJournal shared;
  auto a = WithUsers(&shared);
  ASSERT_EQ(Msg(a->UserAdd("writer", "pw", false)), "ok");
  ASSERT_EQ(Msg(a->Enable()), "ok");
  auto b = std::move(AuthStore::Open(nullptr).value());
  ASSERT_TRUE(b->Adopt(*shared.saved));
  EXPECT_TRUE(b->enabled());
  // A token handed out by a is told to the journal, and b takes it.
  auto token = a->Authenticate("writer", "pw");
  ASSERT_TRUE(token.ok());
  ASSERT_EQ(shared.tokens.size(), 1u);
  EXPECT_EQ(shared.tokens[0], std::make_pair(token.value(), std::string("writer")));
  b->AdoptToken(token.value(), "writer");
  EXPECT_EQ(b->UserOfToken(token.value()).value(), "writer");
  // An older state is ignored; damage is refused.
  const std::string current = *shared.saved;
  ASSERT_EQ(Msg(a->UserChangePassword("writer", "new")), "ok");
  EXPECT_FALSE(b->Adopt("\x01garbage"));
  ASSERT_TRUE(b->Adopt(*shared.saved));
  ASSERT_TRUE(b->Adopt(current));
  EXPECT_EQ(b->revision(), a->revision());
  // The adopted password change made the token lapse on b as on a.
  EXPECT_FALSE(b->UserOfToken(token.value()).ok());
  EXPECT_FALSE(a->UserOfToken(token.value()).ok());
  // As does turning authentication off, for every token.
  auto root_token = a->Authenticate("writer", "new");
  ASSERT_TRUE(root_token.ok());
  b->AdoptToken(root_token.value(), "writer");
  ASSERT_EQ(Msg(a->Disable()), "ok");
  ASSERT_TRUE(b->Adopt(*shared.saved));
  EXPECT_FALSE(b->enabled());
  EXPECT_EQ(b->live_tokens(), 0u);
}

TEST(AuthStoreTest, DecodeRejectsDamageWithoutCrashing) {
  MemoryJournal journal;
  WithUsers(&journal);
  const std::string good = *journal.saved;
  ASSERT_TRUE(AuthState::Decode(good).has_value());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(AuthState::Decode(good.substr(0, n)).has_value()) << n;
  }
  // Flipped bytes decode to something or nothing, never a crash or a huge
  // allocation (counts are bounded by the bytes left).
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0xff);
    (void)AuthState::Decode(bad);
  }
  journal.saved = "garbage";
  EXPECT_FALSE(AuthStore::Open(&journal).ok());
}

TEST(AuthStoreTest, StoreJournalReopens) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("strata-auth-journal-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto journal = std::move(StoreAuthJournal::Open(dir.string(), {}).value());
    auto s = WithUsers(journal.get());
    for (int i = 0; i < 50; ++i) ASSERT_EQ(Msg(s->RoleAdd("role" + std::to_string(i))), "ok");
  }
  auto journal = std::move(StoreAuthJournal::Open(dir.string(), {}).value());
  auto s = std::move(AuthStore::Open(journal.get()).value());
  EXPECT_EQ(s->RoleList().size(), 51u);
  EXPECT_EQ(s->UserGet("reader").value().roles, (std::vector<std::string>{"ro"}));
  std::filesystem::remove_all(dir);
}

TEST(AuthTokensTest, LapseWhenUnusedAndStayBounded) {
  ASSERT_TRUE(InitSodium());
  AuthTokens tokens(100ms, 8);
  const auto t = tokens.Assign("alice");
  EXPECT_EQ(t.find('.'), 16u);
  EXPECT_EQ(tokens.Lookup(t), "alice");
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(tokens.Lookup(t), std::nullopt);
  for (int i = 0; i < 100; ++i) tokens.Assign("u" + std::to_string(i));
  EXPECT_LE(tokens.size(), 8u);
  const auto bob = tokens.Assign("bob");
  tokens.InvalidateUser("bob");
  EXPECT_EQ(tokens.Lookup(bob), std::nullopt);
}

}  // namespace
}  // namespace strata::service
