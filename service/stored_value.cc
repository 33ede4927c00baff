#include "service/stored_value.h"

#include "storage/coding.h"

namespace strata::service {
namespace {

constexpr char kFormat = 0x01;

using storage::PutVarint;

}  // namespace

std::string EncodeStoredValue(const StoredValue& v) {
  std::string out;
  out.reserve(v.value.size() + 16);
  out.push_back(kFormat);
  PutVarint(&out, static_cast<uint64_t>(v.create_revision));
  PutVarint(&out, static_cast<uint64_t>(v.version));
  PutVarint(&out, static_cast<uint64_t>(v.lease));
  out.append(v.value);
  return out;
}

std::optional<StoredValue> DecodeStoredValue(std::string_view bytes) {
  if (bytes.empty() || bytes.front() != kFormat) return std::nullopt;
  bytes.remove_prefix(1);
  storage::Decoder in(bytes);
  uint64_t create = 0, version = 0, lease = 0;
  if (!in.Varint(&create) || !in.Varint(&version) || !in.Varint(&lease)) return std::nullopt;
  StoredValue v;
  v.create_revision = static_cast<int64_t>(create);
  v.version = static_cast<int64_t>(version);
  v.lease = static_cast<int64_t>(lease);
  v.value = in.rest();
  return v;
}

}  // namespace strata::service
