// Password hashes for etcd's Auth users: Argon2id through libsodium, whose
// strings carry their own salt and cost, so a stored hash stays checkable
// when the cost changes. Both calls take about 25 ms and 19 MiB on purpose
// (that is what makes a stolen hash expensive to attack): run them off the
// gRPC threads, a few at a time.
#ifndef STRATA_SERVICE_PASSWORD_HASH_H_
#define STRATA_SERVICE_PASSWORD_HASH_H_

#include <optional>
#include <string>
#include <string_view>

namespace strata::service {

// libsodium's setup (idempotent); false if it cannot seed its generator.
bool InitSodium();
// nullopt when libsodium cannot (it is out of memory).
std::optional<std::string> HashPassword(std::string_view password);
bool PasswordMatches(const std::string& hash, std::string_view password);

}  // namespace strata::service

#endif  // STRATA_SERVICE_PASSWORD_HASH_H_
