#include "service/password_hash.h"

#include <sodium.h>

namespace strata::service {
bool InitSodium() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::optional<std::string> HashPassword(std::string_view password) {
  if (!InitSodium()) return std::nullopt;
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return std::nullopt;
  }
  return std::string(out);
}

bool PasswordMatches(const std::string& hash, std::string_view password) {
  if (!InitSodium()) return false;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

}  // namespace strata::service
