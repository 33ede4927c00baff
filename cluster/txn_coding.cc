#include "cluster/txn_coding.h"

#include <cstdint>

namespace strata::cluster {

using storage::Decoder;
using storage::PutBytes;
using storage::PutVarint;

void PutPrepareRequest(std::string* out, const PrepareRequest& request) {
  PutVarint(out, request.start.value());
  out->push_back(request.isolation == Isolation::kSerializable ? 's' : 'i');
  PutVarint(out, request.primary);
  PutVarint(out, request.writes.size());
  for (const BatchWrite& w : request.writes) {
    PutBytes(out, w.key);
    out->push_back(w.value ? 'v' : 'd');
    if (w.value) PutBytes(out, *w.value);
  }
  PutVarint(out, request.read_keys.size());
  for (const std::string& key : request.read_keys) PutBytes(out, key);
  PutVarint(out, request.read_ranges.size());
  for (const KeyRange& range : request.read_ranges) {
    PutBytes(out, range.start);
    out->push_back(range.end ? 'e' : 'o');
    if (range.end) PutBytes(out, *range.end);
  }
}

bool GetPrepareRequest(Decoder* in, PrepareRequest* request) {
  uint64_t primary = 0, count = 0;
  uint8_t isolation = 0;
  if (!GetTimestamp(in, &request->start) || !in->Byte(&isolation) ||
      (isolation != 's' && isolation != 'i') || !in->Varint(&primary) || primary > UINT32_MAX ||
      !in->Varint(&count)) {
    return false;
  }
  request->isolation = isolation == 's' ? Isolation::kSerializable : Isolation::kSnapshot;
  request->primary = static_cast<uint32_t>(primary);
  request->writes.clear();
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view key, v;
    uint8_t kind = 0;
    if (!in->Bytes(&key) || !in->Byte(&kind) || (kind != 'v' && kind != 'd')) return false;
    BatchWrite write{std::string(key), std::nullopt};
    if (kind == 'v') {
      if (!in->Bytes(&v)) return false;
      write.value = std::string(v);
    }
    request->writes.push_back(std::move(write));
  }
  if (!in->Varint(&count)) return false;
  request->read_keys.clear();
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view key;
    if (!in->Bytes(&key)) return false;
    request->read_keys.emplace_back(key);
  }
  if (!in->Varint(&count)) return false;
  request->read_ranges.clear();
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view begin, end;
    uint8_t bounded = 0;
    if (!in->Bytes(&begin) || !in->Byte(&bounded) || (bounded != 'e' && bounded != 'o')) {
      return false;
    }
    KeyRange range{std::string(begin), std::nullopt};
    if (bounded == 'e') {
      if (!in->Bytes(&end)) return false;
      range.end = std::string(end);
    }
    request->read_ranges.push_back(std::move(range));
  }
  return true;
}

void PutTxnStatus(std::string* out, TxnStatus status) {
  out->push_back(status == TxnStatus::kPending ? 'p' : status == TxnStatus::kCommitted ? 'c' : 'a');
}

bool GetTxnStatus(Decoder* in, TxnStatus* status) {
  uint8_t b = 0;
  if (!in->Byte(&b)) return false;
  switch (b) {
    case 'p':
      *status = TxnStatus::kPending;
      return true;
    case 'c':
      *status = TxnStatus::kCommitted;
      return true;
    case 'a':
      *status = TxnStatus::kAborted;
      return true;
    default:
      return false;
  }
}

bool GetTimestamp(Decoder* in, Timestamp* t) {
  uint64_t v = 0;
  if (!in->Varint(&v) || v > Timestamp::kMaxValue) return false;
  *t = Timestamp(v);
  return true;
}

void PutTxnRecord(std::string* out, const TxnRecord& record) {
  PutTxnStatus(out, record.status);
  PutVarint(out, record.commit_timestamp.value());
  PutVarint(out, record.participants.size());
  for (uint32_t shard : record.participants) PutVarint(out, shard);
}

bool GetTxnRecord(Decoder* in, TxnRecord* record) {
  uint64_t count = 0;
  if (!GetTxnStatus(in, &record->status) || !GetTimestamp(in, &record->commit_timestamp) ||
      !in->Varint(&count)) {
    return false;
  }
  record->participants.clear();
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t shard = 0;
    if (!in->Varint(&shard) || shard > UINT32_MAX) return false;
    record->participants.push_back(static_cast<uint32_t>(shard));
  }
  return true;
}

void PutTxnId(std::string* out, TxnId txn) {
  PutVarint(out, txn.stamp);
  PutVarint(out, txn.coordinator);
}

bool GetTxnId(Decoder* in, TxnId* txn) {
  uint64_t stamp = 0, coordinator = 0;
  if (!in->Varint(&stamp) || !in->Varint(&coordinator) || coordinator > UINT32_MAX) return false;
  *txn = TxnId{stamp, static_cast<uint32_t>(coordinator)};
  return true;
}

}  // namespace strata::cluster
