// The raw MVCC API's requests (PROTOCOL.md section 3) as typed structs, the
// parsers that fill them from a Body, and the writers of their replies.
#ifndef STRATA_PROTOCOL_MVCC_MESSAGES_H_
#define STRATA_PROTOCOL_MVCC_MESSAGES_H_

#include <cstddef>
#include <optional>
#include <string>

#include "protocol/body.h"
#include "protocol/json_writer.h"
#include "strata/mvcc_store.h"
#include "strata/store.h"
#include "strata/txn_store.h"

namespace strata::protocol {

struct MvccPutRequest {
  std::string key;         // encoded (key_codec.h)
  std::string value_json;  // the value as compact JSON
  Timestamp timestamp;
};

struct MvccGetRequest {
  std::string key;
  std::optional<Timestamp> read_timestamp;  // omitted: the newest version
};

struct MvccDeleteRequest {
  std::string key;
  Timestamp timestamp;
};

struct MvccScanRequest {
  KeyRange range;  // from start/end/prefix
  std::optional<Timestamp> read_timestamp;
  size_t limit = 0;
};

struct MvccHistoryRequest {
  std::string key;
  std::optional<Timestamp> start_timestamp;
  std::optional<Timestamp> end_timestamp;
  size_t limit = 0;
};

struct MvccChangesRequest {
  Timestamp since_timestamp;
  KeyRange range;  // from prefix
  size_t limit = 0;
};

struct MvccCompactRequest {
  Timestamp timestamp;
};

MaybeError ParseRequest(const Body& body, MvccPutRequest* out);
MaybeError ParseRequest(const Body& body, MvccGetRequest* out);
MaybeError ParseRequest(const Body& body, MvccDeleteRequest* out);
MaybeError ParseRequest(const Body& body, MvccScanRequest* out);
MaybeError ParseRequest(const Body& body, MvccHistoryRequest* out);
MaybeError ParseRequest(const Body& body, MvccChangesRequest* out);
MaybeError ParseRequest(const Body& body, MvccCompactRequest* out);

// Reply fields, written into an open body object.
void WriteReply(const WriteResult& result, JsonWriter* w);  // mvcc_put_ok, mvcc_delete_ok
void WriteReply(const ReadResult& result, JsonWriter* w);   // mvcc_get_ok
void WriteReply(const ScanResult& result, JsonWriter* w);
void WriteReply(const HistoryResult& result, JsonWriter* w);
void WriteReply(const ChangesResult& result, JsonWriter* w);
void WriteReply(const CompactResult& result, JsonWriter* w);
// The raw-API fields of mvcc_stats_ok (section 5).
void WriteStats(const StoreStats& stats, JsonWriter* w);
// The transaction fields of mvcc_stats_ok: what holds the low-water mark.
void WriteTxnStats(const TxnStats& stats, uint64_t expired_txns, JsonWriter* w);
// The write-ahead log's fields of mvcc_stats (a node with --data-dir).
void WriteDurabilityStats(const DurabilityStats& stats, JsonWriter* w);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_MVCC_MESSAGES_H_
