#include "service/lease_journal.h"

#include <charconv>

namespace strata::service {
namespace {

// Big-endian, so the store's key order is the ids' order.
std::string IdKey(int64_t id) {
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>(static_cast<uint64_t>(id) >> (56 - 8 * i));
  return k;
}

int64_t KeyId(std::string_view k) {
  uint64_t v = 0;
  for (char c : k) v = (v << 8) | static_cast<unsigned char>(c);
  return static_cast<int64_t>(v);
}

}  // namespace

Result<std::unique_ptr<StoreLeaseJournal>> StoreLeaseJournal::Open(const std::string& dir,
                                                                   StoreOpenOptions options) {
  auto store = Store::Open(dir, std::move(options));
  if (!store.ok()) return store.status();
  return std::unique_ptr<StoreLeaseJournal>(new StoreLeaseJournal(std::move(store.value())));
}

// Appended through the engine (which logs but never waits); Sync makes a
// whole batch durable with one fsync.
Status StoreLeaseJournal::Record(int64_t id, int64_t ttl) {
  auto ts = store_->db().oracle().Next();
  if (!ts.ok()) return ts.status();
  auto r = store_->mvcc().Put(IdKey(id), std::to_string(ttl), ts.value());
  return r.ok() ? Status::Ok() : r.status();
}

Status StoreLeaseJournal::Erase(int64_t id) {
  auto ts = store_->db().oracle().Next();
  if (!ts.ok()) return ts.status();
  auto r = store_->mvcc().Delete(IdKey(id), ts.value());
  return r.ok() ? Status::Ok() : r.status();
}

Status StoreLeaseJournal::Sync() { return store_->Sync(); }

std::vector<std::pair<int64_t, int64_t>> StoreLeaseJournal::Load() {
  std::vector<std::pair<int64_t, int64_t>> out;
  auto r = store_->mvcc().ScanVisit(
      KeyRange::All(), Timestamp::Max(), SIZE_MAX, [&](const ScanItemView& item) {
        int64_t ttl = 0;
        std::from_chars(item.value.data(), item.value.data() + item.value.size(), ttl);
        out.emplace_back(KeyId(item.key), ttl);
      });
  (void)r;
  return out;
}

}  // namespace strata::service
