#include "service/stored_value.h"

namespace strata::service {
namespace {

constexpr char kFormat = 0x01;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    result |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

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
  uint64_t create = 0, version = 0, lease = 0;
  if (!GetVarint(&bytes, &create) || !GetVarint(&bytes, &version) || !GetVarint(&bytes, &lease)) {
    return std::nullopt;
  }
  StoredValue v;
  v.create_revision = static_cast<int64_t>(create);
  v.version = static_cast<int64_t>(version);
  v.lease = static_cast<int64_t>(lease);
  v.value = bytes;
  return v;
}

}  // namespace strata::service
