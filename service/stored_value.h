// StoredValue: what the etcd model keeps in each engine version.
//
// The engine stores (key, timestamp) -> bytes. etcd's per-version fields
// that the engine does not know (create_revision, version, lease) ride in a
// small header in front of the client's value, so that every version
// carries its own and they survive compaction (they are never derived from
// history that compaction may have removed). mod_revision is the version's
// timestamp. Layout: 0x01, varint create_revision (0 = this version created
// the key, so it equals mod_revision: a transaction does not know its
// revision until it commits), varint version, varint lease, value bytes.
#ifndef STRATA_SERVICE_STORED_VALUE_H_
#define STRATA_SERVICE_STORED_VALUE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::service {

struct StoredValue {
  int64_t create_revision = 0;  // 0: the version that holds it created the key
  int64_t version = 0;
  int64_t lease = 0;
  std::string_view value;
};

std::string EncodeStoredValue(const StoredValue& v);
// nullopt if `bytes` is not a stored value (damaged, or written by
// something else than this model).
std::optional<StoredValue> DecodeStoredValue(std::string_view bytes);

}  // namespace strata::service

#endif  // STRATA_SERVICE_STORED_VALUE_H_
