#include "cluster/durable_state.h"

#include "storage/coding.h"

namespace strata::cluster {

namespace {

constexpr char kPreparedKind = 'p';
constexpr char kRecordKind = 'r';
// Stamps and coordinators big-endian, so the keys sort by transaction.
void PutBigEndian(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

std::string InternalKey(char kind, TxnId txn) {
  std::string key{kInternalKeyTag, kind};
  PutBigEndian(&key, txn.stamp, 8);
  PutBigEndian(&key, txn.coordinator, 4);
  return key;
}

bool ParseTxnKey(std::string_view key, char kind, TxnId* txn) {
  if (key.size() != 14 || key[0] != kInternalKeyTag || key[1] != kind) return false;
  uint64_t stamp = 0, coordinator = 0;
  for (int i = 2; i < 10; ++i) stamp = stamp << 8 | static_cast<unsigned char>(key[i]);
  for (int i = 10; i < 14; ++i) coordinator = coordinator << 8 | static_cast<unsigned char>(key[i]);
  *txn = TxnId{stamp, static_cast<uint32_t>(coordinator)};
  return true;
}

KeyRange KindRange(char kind) {
  return KeyRange{std::string{kInternalKeyTag, kind},
                  std::string{kInternalKeyTag, static_cast<char>(kind + 1)}};
}

Status Undecodable(std::string_view what) {
  return Status::InvalidArgument("the store holds an unreadable " + std::string(what) +
                                 " (not written by this version of strata)");
}

}  // namespace

std::string DurableClusterState::PreparedKey(TxnId txn) { return InternalKey(kPreparedKind, txn); }
std::string DurableClusterState::RecordKey(TxnId txn) { return InternalKey(kRecordKind, txn); }

Status DurableClusterState::Write(std::string key, std::optional<std::string> value) {
  Result<Timestamp> at = clock_->Next();
  if (!at.ok()) return at.status();
  return store_->ApplyBatch({BatchWrite{std::move(key), std::move(value)}}, *at);
}

Status DurableClusterState::SavePrepared(const PrepareRequest& request,
                                         Timestamp prepare_timestamp) {
  std::string value;
  storage::PutVarint(&value, prepare_timestamp.value());
  storage::PutVarint(&value, request.start.value());
  value.push_back(request.isolation == Isolation::kSerializable ? 's' : 'i');
  storage::PutVarint(&value, request.primary);
  storage::PutVarint(&value, request.writes.size());
  for (const BatchWrite& w : request.writes) {
    storage::PutBytes(&value, w.key);
    value.push_back(w.value ? 'v' : 'd');
    if (w.value) storage::PutBytes(&value, *w.value);
  }
  storage::PutVarint(&value, request.read_keys.size());
  for (const std::string& key : request.read_keys) storage::PutBytes(&value, key);
  storage::PutVarint(&value, request.read_ranges.size());
  for (const KeyRange& range : request.read_ranges) {
    storage::PutBytes(&value, range.start);
    value.push_back(range.end ? 'e' : 'o');
    if (range.end) storage::PutBytes(&value, *range.end);
  }
  return Write(PreparedKey(request.txn), std::move(value));
}

Status DurableClusterState::ErasePrepared(TxnId txn) {
  return Write(PreparedKey(txn), std::nullopt);
}

Status DurableClusterState::SaveRecord(TxnId txn, const TxnRecord& record) {
  std::string value(1, record.status == TxnStatus::kPending     ? 'p'
                       : record.status == TxnStatus::kCommitted ? 'c'
                                                                : 'a');
  storage::PutVarint(&value, record.commit_timestamp.value());
  storage::PutVarint(&value, record.participants.size());
  for (uint32_t shard : record.participants) storage::PutVarint(&value, shard);
  return Write(RecordKey(txn), std::move(value));
}

Status DurableClusterState::EraseRecord(TxnId txn) { return Write(RecordKey(txn), std::nullopt); }

Result<DurableClusterState::Loaded> DurableClusterState::Load() const {
  Loaded loaded;
  Status failure;
  auto visit_all = [&](char kind, const std::function<bool(TxnId, std::string_view)>& decode) {
    std::string start = KindRange(kind).start;
    for (;;) {
      KeyRange range = KindRange(kind);
      range.start = start;
      constexpr size_t kBatch = 1024;
      std::string last;
      Result<bool> more =
          store_->ScanVisit(range, Timestamp::Max(), kBatch, [&](const ScanItemView& item) {
            last = std::string(item.key);
            TxnId txn;
            if (failure.ok() && (!ParseTxnKey(item.key, kind, &txn) || !decode(txn, item.value))) {
              failure = Undecodable(kind == kPreparedKind ? "prepared transaction"
                                                          : "transaction record");
            }
          });
      if (!more.ok()) return more.status();
      if (!*more || last.empty()) return Status::Ok();
      start = last + '\0';
    }
  };
  Status scanned = visit_all(kPreparedKind, [&](TxnId txn, std::string_view value) {
    storage::Decoder in(value);
    PrepareRequest request;
    request.txn = txn;
    uint64_t prepare_ts = 0, start = 0, primary = 0, count = 0;
    uint8_t isolation = 0;
    if (!in.Varint(&prepare_ts) || !in.Varint(&start) || !in.Byte(&isolation) ||
        !in.Varint(&primary) || !in.Varint(&count)) {
      return false;
    }
    request.start = Timestamp(start);
    request.isolation = isolation == 's' ? Isolation::kSerializable : Isolation::kSnapshot;
    request.primary = static_cast<uint32_t>(primary);
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view key, v;
      uint8_t kind = 0;
      if (!in.Bytes(&key) || !in.Byte(&kind)) return false;
      BatchWrite write{std::string(key), std::nullopt};
      if (kind == 'v') {
        if (!in.Bytes(&v)) return false;
        write.value = std::string(v);
      }
      request.writes.push_back(std::move(write));
    }
    if (!in.Varint(&count)) return false;
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view key;
      if (!in.Bytes(&key)) return false;
      request.read_keys.emplace_back(key);
    }
    if (!in.Varint(&count)) return false;
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view begin, end;
      uint8_t bounded = 0;
      if (!in.Bytes(&begin) || !in.Byte(&bounded)) return false;
      KeyRange range{std::string(begin), std::nullopt};
      if (bounded == 'e') {
        if (!in.Bytes(&end)) return false;
        range.end = std::string(end);
      }
      request.read_ranges.push_back(std::move(range));
    }
    if (!in.done()) return false;
    loaded.prepared.emplace_back(std::move(request), Timestamp(prepare_ts));
    return true;
  });
  if (!scanned.ok()) return scanned;
  scanned = visit_all(kRecordKind, [&](TxnId txn, std::string_view value) {
    if (value.empty()) return false;
    storage::Decoder in(value.substr(1));
    uint64_t commit_ts = 0, count = 0;
    if (!in.Varint(&commit_ts) || !in.Varint(&count)) return false;
    TxnRecord record;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t shard = 0;
      if (!in.Varint(&shard) || shard > UINT32_MAX) return false;
      record.participants.push_back(static_cast<uint32_t>(shard));
    }
    if (!in.done()) return false;
    switch (value[0]) {
      case 'p':
        record.status = TxnStatus::kPending;
        break;
      case 'c':
        record.status = TxnStatus::kCommitted;
        break;
      case 'a':
        record.status = TxnStatus::kAborted;
        break;
      default:
        return false;
    }
    record.commit_timestamp = Timestamp(commit_ts);
    loaded.records.emplace_back(txn, record);
    return true;
  });
  if (!scanned.ok()) return scanned;
  if (!failure.ok()) return failure;
  return loaded;
}

}  // namespace strata::cluster
