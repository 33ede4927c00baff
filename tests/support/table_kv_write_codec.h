// TableKvWriteCodec: forwarded or replicated etcd writes (and their
// replies) as an index into a table of their own, for tests whose members
// share one process. The server's codec, etcd's protobuf, is tested in
// tests/server and through the real binaries; this one keeps a test free
// of the server's library. Bytes it did not make decode to nothing (a
// write) or to an error (a reply), never to an exception.
#ifndef STRATA_TESTS_SUPPORT_TABLE_KV_WRITE_CODEC_H_
#define STRATA_TESTS_SUPPORT_TABLE_KV_WRITE_CODEC_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "service/forwarded_write.h"

namespace strata::service {

class TableKvWriteCodec final : public KvWriteCodec {
 public:
  std::string EncodeWrite(const KvWrite& write) const override {
    writes_.push_back(write);
    return std::to_string(writes_.size() - 1);
  }
  std::optional<KvWrite> DecodeWrite(std::string_view bytes) const override {
    const std::optional<size_t> i = IndexIn(bytes, writes_.size());
    if (!i) return std::nullopt;
    return writes_[*i];
  }
  std::string EncodeReply(const Reply<KvWriteReply>& reply) const override {
    replies_.push_back(reply);
    return std::to_string(replies_.size() - 1);
  }
  Reply<KvWriteReply> DecodeReply(std::string_view bytes) const override {
    const std::optional<size_t> i = IndexIn(bytes, replies_.size());
    if (!i) return ServiceError{ErrorCode::kInternal, "not a reply this codec made"};
    return replies_[*i];
  }
  // Writes encoded so far.
  size_t writes() const { return writes_.size(); }

 private:
  static std::optional<size_t> IndexIn(std::string_view bytes, size_t size) {
    if (bytes.empty() || bytes.size() > 18) return std::nullopt;
    size_t i = 0;
    for (char c : bytes) {
      if (c < '0' || c > '9') return std::nullopt;
      i = i * 10 + static_cast<size_t>(c - '0');
    }
    if (i >= size) return std::nullopt;
    return i;
  }
  mutable std::vector<KvWrite> writes_;
  mutable std::vector<Reply<KvWriteReply>> replies_;
};

// One codec for every replica of a test binary (it outlives them).
inline const TableKvWriteCodec& TableCodec() {
  static const TableKvWriteCodec codec;
  return codec;
}

}  // namespace strata::service

#endif  // STRATA_TESTS_SUPPORT_TABLE_KV_WRITE_CODEC_H_
