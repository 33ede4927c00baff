// EngineAdapter: the one interface every engine under benchmark implements.
//
// The workloads (workloads.h) only talk to this interface, so every engine
// runs exactly the same operations on exactly the same data. Each adapter
// lives in its own file and uses its engine the way a careful user would
// (reused buffers and iterators, batched transactions), never the way that
// flatters the benchmark.
//
// Threading contract: Get and Scan are called by one thread at a time, Put
// and FlushWrites by one thread at a time. A reader thread and a writer
// thread may call in at the same time only if concurrent() is true.
#ifndef STRATA_BENCH_ENGINE_ADAPTER_H_
#define STRATA_BENCH_ENGINE_ADAPTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace strata::bench {

inline uint64_t ScanChecksum(std::string_view key, std::string_view value);

class EngineAdapter {
 public:
  virtual ~EngineAdapter() = default;

  virtual std::string_view name() const = 0;
  // One line on how the engine is configured, for the report footer.
  virtual std::string_view config() const = 0;
  // True if one reader thread and one writer thread may run at once.
  virtual bool concurrent() const = 0;
  // True if the engine keeps its data in process memory, so that the RSS
  // growth while loading is its footprint.
  virtual bool in_memory() const = 0;
  // False for the hash-map engines: they keep no key order, so a range scan
  // would have to sort the whole key space.
  virtual bool ordered() const = 0;

  // Stores `value` as the version of `key` at `ts`.
  virtual void Put(std::string_view key, uint64_t ts, std::string_view value) = 0;
  // Makes every Put so far visible to readers (LMDB commits its open write
  // transaction). Called by the thread that did the Puts.
  virtual void FlushWrites() {}
  // Untimed, after a bulk load: brings the engine to the steady state reads
  // should be measured in (RocksDB flushes its memtable and compacts).
  virtual void Settle() {}

  // The value of the newest version of `key` at or below `read_ts`. The view
  // stays valid until the next Get or Scan on this adapter.
  virtual std::optional<std::string_view> Get(std::string_view key, uint64_t read_ts) = 0;
  // Reads every key of `keys` at `read_ts` (a batch, as a request naming
  // many keys brings): adds ScanChecksum(key, value) of each found to
  // `*checksum` and returns how many were found. By default one Get after
  // another; an engine with a batched read overrides it.
  virtual size_t MultiGet(std::span<const std::string_view> keys, uint64_t read_ts,
                          uint64_t* checksum) {
    size_t found = 0;
    for (std::string_view key : keys) {
      if (const std::optional<std::string_view> value = Get(key, read_ts)) {
        *checksum += ScanChecksum(key, *value);
        ++found;
      }
    }
    return found;
  }
  // Visits the first `limit` keys >= `start` that have a version at or below
  // `read_ts`, in key order, adding ScanChecksum(key, value) of each to
  // `*checksum`. Returns how many keys it visited. A null `checksum` asks
  // for the count alone: the values need not be read.
  virtual size_t Scan(std::string_view start, size_t limit, uint64_t read_ts,
                      uint64_t* checksum) = 0;

  // The engine's own estimate of its memory use, if it keeps one.
  virtual std::optional<uint64_t> ReportedMemoryBytes() const { return std::nullopt; }
  // Bytes in the engine's files, for the engines that keep files.
  virtual std::optional<uint64_t> DiskBytes() const { return std::nullopt; }
};

// The per-item checksum every Scan implementation adds up, so that the
// workload can check a scan's result without the adapter copying items out.
inline uint64_t ScanChecksum(std::string_view key, std::string_view value) {
  uint64_t sum = key.size() * 31 + value.size();
  if (!key.empty()) sum += static_cast<unsigned char>(key.back()) * 131;
  if (!value.empty())
    sum += static_cast<unsigned char>(value.front()) * 7 + static_cast<unsigned char>(value.back());
  return sum;
}

// One factory per adapter file.
std::unique_ptr<EngineAdapter> MakeStrataAdapter();
std::unique_ptr<EngineAdapter> MakeTextbookAdapter();
std::unique_ptr<EngineAdapter> MakeHashBinsearchAdapter();
std::unique_ptr<EngineAdapter> MakeRocksDbAdapter();
std::unique_ptr<EngineAdapter> MakeLmdbAdapter();
// Serializes every call to `inner` (not owned) on one mutex: how the engines
// that are not thread-safe take part in the concurrent workload.
std::unique_ptr<EngineAdapter> MakeLockedAdapter(EngineAdapter* inner);

// The engine names the command line accepts, in report order.
const std::vector<std::string_view>& EngineNames();
// nullptr for an unknown name.
std::unique_ptr<EngineAdapter> MakeEngine(std::string_view name);

}  // namespace strata::bench

#endif  // STRATA_BENCH_ENGINE_ADAPTER_H_
