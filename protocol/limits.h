// Limits on everything a client controls. Each is checked before any work is
// done, and exceeding one gets error 12 naming the limit (or, for a line too
// long to parse, a log line). docs/LIMITS.md lists them for users.
#ifndef STRATA_PROTOCOL_LIMITS_H_
#define STRATA_PROTOCOL_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace strata::protocol {

// A longer input line is skipped (logged, unanswered): it cannot be parsed
// without buffering unbounded input.
inline constexpr size_t kMaxLineBytes = 4 * 1024 * 1024;
// JSON nesting depth of a whole message (the envelope and body take 2).
inline constexpr size_t kMaxJsonDepth = 64;
// Fields in one body: the largest request has fewer than 10.
inline constexpr size_t kMaxBodyFields = 32;
// Encoded key size (a string key's UTF-8 bytes plus one tag byte).
inline constexpr size_t kMaxKeyBytes = 4096;
// A value's JSON text, as stored.
inline constexpr size_t kMaxValueBytes = 1024 * 1024;
// Operations in one Maelstrom `txn` request.
inline constexpr size_t kMaxTxnOps = 1024;
// `limit` on scans, history and changes.
inline constexpr uint64_t kMinLimit = 1;
inline constexpr uint64_t kMaxLimit = 10000;
inline constexpr uint64_t kDefaultLimit = 1000;
// In a cluster: a message from one node to another must fit one input line
// of its receiver (with room for the envelope).
inline constexpr size_t kMaxNodeMessageBytes = kMaxLineBytes - 64 * 1024;
// In a cluster: what one transaction writes (keys and values) travels in
// one prepare or one-phase commit message to each shard, so it must fit one.
inline constexpr size_t kMaxClusterTxnWriteBytes = 3 * 1024 * 1024;

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_LIMITS_H_
