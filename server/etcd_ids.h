// etcd's ids, derived as etcd derives them, so that the same flags give
// the same member and cluster ids etcd would (etcd's own tests and tools
// compare them), and so that every member of a replicated cluster, and one
// added later, computes every member's number alike from its peer URL.
#ifndef STRATA_SERVER_ETCD_IDS_H_
#define STRATA_SERVER_ETCD_IDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::server {

// A member's: the first 8 bytes (big-endian) of the SHA-1 of its sorted
// peer URLs and the cluster token.
uint64_t EtcdMemberId(std::vector<std::string> peer_urls, const std::string& token);
// A cluster's: of the SHA-1 of its members' ids (sorted, 8 bytes each,
// big-endian).
uint64_t EtcdClusterId(std::vector<uint64_t> member_ids);
// As etcdctl prints ids: lower-case hex without leading zeros.
std::string EtcdIdText(uint64_t id);
// The id EtcdIdText wrote (0 if `text` is not one).
uint64_t ParseEtcdId(std::string_view text);

}  // namespace strata::server

#endif  // STRATA_SERVER_ETCD_IDS_H_
