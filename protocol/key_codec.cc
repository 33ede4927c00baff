#include "protocol/key_codec.h"

namespace strata::protocol {

void EncodeIntegerKey(int64_t key, std::string* out) {
  uint64_t biased = static_cast<uint64_t>(key) ^ (uint64_t{1} << 63);
  out->clear();
  out->push_back(kIntegerKeyTag);
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(biased >> shift));
}

void EncodeStringKey(std::string_view key, std::string* out) {
  out->clear();
  out->reserve(key.size() + 1);
  out->push_back(kStringKeyTag);
  out->append(key);
}

void WriteKey(JsonWriter* writer, std::string_view encoded) {
  if (!encoded.empty() && encoded[0] == kIntegerKeyTag && encoded.size() == 9) {
    uint64_t biased = 0;
    for (size_t i = 1; i < 9; ++i) biased = (biased << 8) | static_cast<unsigned char>(encoded[i]);
    writer->Int(static_cast<int64_t>(biased ^ (uint64_t{1} << 63)));
    return;
  }
  // Everything the node stores is tagged; a string key drops its tag.
  writer->String(encoded.empty() ? encoded : encoded.substr(1));
}

std::string KeyText(std::string_view encoded) {
  std::string text;
  JsonWriter w(&text);
  WriteKey(&w, encoded);
  return text;
}

}  // namespace strata::protocol
