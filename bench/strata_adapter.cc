// strata: the engine under test, used through its public API the way a hot
// loop should use it: Put, GetInto (which reuses the caller's ReadResult
// buffer instead of allocating one per read), MultiGetInto for batches and
// Scan. Thread-safe by contract, so the concurrent workload uses it without
// any lock.
#include <span>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "bench/engine_adapter.h"
#include "strata/mvcc_store.h"

namespace strata::bench {
namespace {

class StrataAdapter final : public EngineAdapter {
 public:
  std::string_view name() const override { return "strata"; }
  std::string_view config() const override {
    return "strata::MvccStore: Put, GetInto with a reused ReadResult, ScanVisit(KeyRange{start}, "
           "limit) which hands views to a callback (no copies)";
  }
  bool concurrent() const override { return true; }
  bool in_memory() const override { return true; }
  bool ordered() const override { return true; }

  void Put(std::string_view key, uint64_t ts, std::string_view value) override {
    Result<WriteResult> result = store_.Put(key, value, Timestamp(ts));
    if (!result.ok()) Fatal("strata Put: " + result.status().message());
  }

  std::optional<std::string_view> Get(std::string_view key, uint64_t read_ts) override {
    const Status status = store_.GetInto(key, Timestamp(read_ts), &read_);
    if (!status.ok()) Fatal("strata GetInto: " + status.message());
    if (!read_.found || read_.deleted) return std::nullopt;
    return std::string_view(read_.value);
  }

  size_t MultiGet(std::span<const std::string_view> keys, uint64_t read_ts,
                  uint64_t* checksum) override {
    if (reads_.size() < keys.size()) reads_.resize(keys.size());
    const std::span<ReadResult> out(reads_.data(), keys.size());
    const Status status = store_.MultiGetInto(keys, Timestamp(read_ts), out);
    if (!status.ok()) Fatal("strata MultiGetInto: " + status.message());
    size_t found = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!out[i].found || out[i].deleted) continue;
      *checksum += ScanChecksum(keys[i], out[i].value);
      ++found;
    }
    return found;
  }

  size_t Scan(std::string_view start, size_t limit, uint64_t read_ts, uint64_t* checksum) override {
    range_.start.assign(start);
    // ScanVisit: views into the store, no copies (as LMDB's cursor gives).
    size_t count = 0;
    Result<bool> result =
        store_.ScanVisit(range_, Timestamp(read_ts), limit, [&](const ScanItemView& item) {
          if (checksum != nullptr) *checksum += ScanChecksum(item.key, item.value);
          ++count;
        });
    if (!result.ok()) Fatal("strata ScanVisit: " + result.status().message());
    return count;
  }

  std::optional<uint64_t> ReportedMemoryBytes() const override {
    return store_.GetStats().memory_bytes;
  }

 private:
  MvccStore store_;
  ReadResult read_;                // the reader's reused buffer
  std::vector<ReadResult> reads_;  // and MultiGet's
  KeyRange range_;                 // reused so a scan does not allocate its start key
};

}  // namespace

std::unique_ptr<EngineAdapter> MakeStrataAdapter() { return std::make_unique<StrataAdapter>(); }

}  // namespace strata::bench
