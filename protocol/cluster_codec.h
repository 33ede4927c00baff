// Cluster codec: the pieces node-to-node messages are made of.
//
// Keys and ranges travel as hex of their engine bytes: the receiver needs
// them exactly as the engine orders them, and a prefix range's end bound is
// not a key a client could write. Values are the stored canonical JSON,
// embedded as JSON. A transaction id is [stamp, coordinator index].
#ifndef STRATA_PROTOCOL_CLUSTER_CODEC_H_
#define STRATA_PROTOCOL_CLUSTER_CODEC_H_

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/txn_id.h"
#include "protocol/body.h"
#include "protocol/json_writer.h"
#include "strata/mvcc_store.h"

namespace strata::protocol {

void WriteHexKey(JsonWriter* w, std::string_view engine_key);
// False if `hex` is not an even-length hex string.
bool ParseHexKey(std::string_view hex, std::string* engine_key);

void WriteTxnId(JsonWriter* w, std::string_view name, const cluster::TxnId& txn);
// Body fields naming a transaction: ,"txn":[stamp, coordinator].
std::string TxnIdFields(const cluster::TxnId& txn);
MaybeError ReadTxnId(const Body& body, std::string_view name, cluster::TxnId* out);

// [shard, ...]: shard ids (each below `shard_count`).
void WriteShardIds(JsonWriter* w, std::string_view name, const std::vector<uint32_t>& shards);
MaybeError ReadShardIds(const Body& body, std::string_view name, uint32_t shard_count,
                        std::vector<uint32_t>* out);

// [{"k": hex, "val": json} or {"k": hex, "del": true}, ...]
void WriteWrites(JsonWriter* w, std::string_view name, const std::vector<BatchWrite>& writes);
MaybeError ReadWrites(const Body& body, std::string_view name, std::vector<BatchWrite>* out);

// ["hex", ...]
void WriteHexKeys(JsonWriter* w, std::string_view name, const std::vector<std::string>& keys);
MaybeError ReadHexKeys(const Body& body, std::string_view name, std::vector<std::string>* out);

// {"start": hex, "end": hex?}
void WriteRange(JsonWriter* w, const KeyRange& range);
MaybeError ReadRange(simdjson::dom::element element, KeyRange* out);
void WriteRanges(JsonWriter* w, std::string_view name, const std::vector<KeyRange>& ranges);
MaybeError ReadRanges(const Body& body, std::string_view name, std::vector<KeyRange>* out);

// A read result: {"v": version, "t": timestamp, "val": json} / {..., "del": true} / {}.
void WriteReadResult(JsonWriter* w, const ReadResult& read);
MaybeError ReadReadResult(simdjson::dom::element element, ReadResult* out);

}  // namespace strata::protocol

#endif  // STRATA_PROTOCOL_CLUSTER_CODEC_H_
