#include "cluster/durable_state.h"

#include "cluster/txn_coding.h"
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
  PutPrepareRequest(&value, request);
  return Write(PreparedKey(request.txn), std::move(value));
}

Status DurableClusterState::ErasePrepared(TxnId txn) {
  return Write(PreparedKey(txn), std::nullopt);
}

Status DurableClusterState::SaveRecord(TxnId txn, const TxnRecord& record) {
  std::string value;
  PutTxnRecord(&value, record);
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
    uint64_t prepare_ts = 0;
    if (!in.Varint(&prepare_ts) || !GetPrepareRequest(&in, &request) || !in.done()) return false;
    loaded.prepared.emplace_back(std::move(request), Timestamp(prepare_ts));
    return true;
  });
  if (!scanned.ok()) return scanned;
  scanned = visit_all(kRecordKind, [&](TxnId txn, std::string_view value) {
    storage::Decoder in(value);
    TxnRecord record;
    if (!GetTxnRecord(&in, &record) || !in.done()) return false;
    loaded.records.emplace_back(txn, record);
    return true;
  });
  if (!scanned.ok()) return scanned;
  if (!failure.ok()) return failure;
  return loaded;
}

}  // namespace strata::cluster
