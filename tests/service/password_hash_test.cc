#include "service/password_hash.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <string>

namespace strata::service {
namespace {

TEST(PasswordHashTest, ANewHashIsArgon2idAt19MiBAndTwoPasses) {
  auto hash = HashPassword("s3cret");
  ASSERT_TRUE(hash.has_value());
  // libsodium's encoding: the algorithm, then m (KiB), t and p.
  EXPECT_EQ(hash->rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << *hash;
  EXPECT_TRUE(PasswordMatches(*hash, "s3cret"));
  EXPECT_FALSE(PasswordMatches(*hash, "s3cret "));
  EXPECT_FALSE(PasswordMatches(*hash, ""));
  // A salt of its own each time.
  EXPECT_NE(HashPassword("s3cret").value(), *hash);
}

TEST(PasswordHashTest, AHashStoredAtAnotherCostStillMatches) {
  // What strata stored before it took OWASP's setting: libsodium's
  // interactive preset (64 MiB). The string carries its cost.
  ASSERT_TRUE(InitSodium());
  char old[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str(old, "pw", 2, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE),
            0);
  EXPECT_EQ(std::string(old).rfind("$argon2id$v=19$m=65536,", 0), 0u) << old;
  EXPECT_TRUE(PasswordMatches(old, "pw"));
  EXPECT_FALSE(PasswordMatches(old, "pW"));
}

TEST(PasswordHashTest, ADamagedHashMatchesNothing) {
  EXPECT_FALSE(PasswordMatches("", ""));
  EXPECT_FALSE(PasswordMatches("$argon2id$v=19$m=19456,t=2,p=1$", "x"));
  EXPECT_FALSE(PasswordMatches("not a hash", "not a hash"));
}

}  // namespace
}  // namespace strata::service
