#include "server/etcd_ids.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace strata::server {

namespace {

uint64_t Sha1Prefix(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha1(), nullptr);
  uint64_t id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | digest[i];
  return id;
}

}  // namespace

uint64_t EtcdMemberId(std::vector<std::string> peer_urls, const std::string& token) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string b;
  for (const auto& u : peer_urls) b += u;
  return Sha1Prefix(b + token);
}

uint64_t EtcdClusterId(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::string b;
  for (uint64_t id : member_ids) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>(id >> (56 - 8 * i)));
  }
  return Sha1Prefix(b);
}

std::string EtcdIdText(uint64_t id) {
  char text[17];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(id));
  return text;
}

uint64_t ParseEtcdId(std::string_view text) {
  uint64_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id, 16);
  return error == std::errc() && end == text.data() + text.size() ? id : 0;
}

}  // namespace strata::server
