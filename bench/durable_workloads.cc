#include "bench/durable_workloads.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "bench/bench_util.h"
#include "bench/mvcc_key_codec.h"
#include "bench/rocksdb_common.h"
#include "strata/store.h"

namespace strata::bench {
namespace {

constexpr size_t kKeyBytes = 16;
constexpr size_t kValueBytes = 100;

// Fixed seeds: every engine writes the same key sequence.
constexpr uint64_t kWriterSeed = 21;

// Writes the low `digits` digits of `value` in `base`, zero-padded.
void FormatDigits(uint64_t value, int base, int digits, char* out) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = "0123456789abcdef"[value % static_cast<uint64_t>(base)];
    value /= static_cast<uint64_t>(base);
  }
}

// "user000000000042": every key the same width, as the MVCC key codec of
// the RocksDB recovery reference needs (mvcc_key_codec.h).
void FormatKey(uint64_t index, char* out) {
  std::memcpy(out, "user", 4);
  FormatDigits(index, 10, kKeyBytes - 4, out + 4);
}

// A 100-byte value naming what wrote it (so a recovered value can be
// checked): the low 32 bits of `a` and `b` in hex, then filler.
void FormatValue(uint64_t a, uint64_t b, char* out) {
  FormatDigits(a, 16, 8, out);
  FormatDigits(b, 16, 8, out + 8);
  std::memset(out + 16, 'v', kValueBytes - 16);
}

std::string Value(uint64_t a, uint64_t b) {
  std::string value(kValueBytes, '\0');
  FormatValue(a, b, value.data());
  return value;
}

// The key space, formatted once: the writers' hot loop only indexes it.
class KeyTable final {
 public:
  explicit KeyTable(uint64_t keys) : bytes_(keys * kKeyBytes, '\0') {
    for (uint64_t i = 0; i < keys; ++i) FormatKey(i, bytes_.data() + i * kKeyBytes);
  }
  uint64_t size() const { return bytes_.size() / kKeyBytes; }
  std::string_view key(uint64_t index) const {
    return std::string_view(bytes_).substr(index * kKeyBytes, kKeyBytes);
  }

 private:
  std::string bytes_;
};

// splitmix64: a cheap, well-mixed stream for picking keys.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

SyncMode ToSyncMode(DurableSync sync) {
  switch (sync) {
    case DurableSync::kAlways:
      return SyncMode::kAlways;
    case DurableSync::kBatch:
      return SyncMode::kBatch;
    case DurableSync::kNone:
      return SyncMode::kNone;
  }
  return SyncMode::kBatch;
}

std::unique_ptr<Store> OpenStore(const std::string& dir, const StoreOpenOptions& options) {
  Result<std::unique_ptr<Store>> store = Store::Open(dir, options);
  if (!store.ok()) Fatal("strata Store::Open(" + dir + "): " + store.status().message());
  return std::move(*store);
}

void CheckStatus(const Status& status, std::string_view what) {
  if (!status.ok()) Fatal("strata " + std::string(what) + ": " + status.message());
}

// How busy the machine was with work other than this process: the load
// average cannot tell, since writers blocked in fsync count towards it, so
// this compares the CPU time of the whole machine with this process's own.
struct CpuSample {
  uint64_t machine_busy = 0;  // clock ticks, all CPUs (steal included: the host took them)
  uint64_t self = 0;          // this process's user + system ticks, all threads
  Clock::time_point when;
};

CpuSample SampleCpu() {
  CpuSample sample;
  sample.when = Clock::now();
  std::ifstream stat("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  sample.machine_busy = user + nice + system + irq + softirq + steal;
  // utime and stime are fields 14 and 15; the command name (field 2) may
  // hold spaces, so count from the ')' that ends it.
  std::ifstream self_stat("/proc/self/stat");
  std::string line;
  std::getline(self_stat, line);
  const size_t paren = line.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream fields(line.substr(paren + 2));
    std::string field;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i >= 14) sample.self += std::strtoull(field.c_str(), nullptr, 10);
    }
  }
  return sample;
}

// The share of all CPUs that other processes used between two samples.
double OtherCpuShare(const CpuSample& before, const CpuSample& after) {
  const double seconds = std::chrono::duration<double>(after.when - before.when).count();
  const double ticks = static_cast<double>(after.machine_busy - before.machine_busy) -
                       static_cast<double>(after.self - before.self);
  const double capacity = seconds * static_cast<double>(sysconf(_SC_CLK_TCK)) *
                          static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  return capacity <= 0 ? 0 : std::max(0.0, ticks / capacity);
}

// --- DW: the engines' durable write ----------------------------------------

// One engine opened in a fresh directory, written to by many threads at once
// (strata::Store and rocksdb::DB are both thread-safe).
class DurableTarget {
 public:
  virtual ~DurableTarget() = default;
  // One durable write; returns how many times it had to be retried (a
  // strata transaction that lost a write-write conflict on the same key).
  virtual uint64_t Write(std::string_view key, std::string_view value) = 0;
  // fsyncs of the log so far (with strata's kNone: write-outs to the OS,
  // which its counter counts the same way).
  virtual uint64_t Syncs() const = 0;
  // Whether Syncs() counts fsyncs (false: write-outs without one).
  virtual bool SyncsAreFsyncs() const { return true; }
  // Bytes appended to the log so far.
  virtual uint64_t LogBytes() const = 0;
  // Checkpoints written in the background so far (strata only), which
  // compete with the writers for the disk.
  virtual uint64_t Checkpoints() const { return 0; }
  virtual std::string config() const = 0;
};

class StrataTarget final : public DurableTarget {
 public:
  StrataTarget(DurableSync sync, bool raw)
      : dir_(raw ? "dw-strata-raw" : "dw-strata"), raw_(raw), sync_(sync) {
    // Everything else as a user gets it: the default batch delay, segment
    // size and checkpoint threshold.
    StoreOpenOptions options;
    options.durability.sync = ToSyncMode(sync);
    options.durability.wait_for_durability = true;
    batch_delay_us_ = options.durability.batch_delay.count();
    store_ = OpenStore(dir_.path(), options);
  }

  uint64_t Write(std::string_view key, std::string_view value) override {
    if (raw_) {
      // Distinct, increasing timestamps from one counter: raw writes of one
      // key at distinct timestamps never collide, and the engine accepts an
      // older timestamp arriving after a newer one (another thread's).
      const uint64_t ts = next_ts_.fetch_add(1, std::memory_order_relaxed);
      Result<WriteResult> written = store_->db().RawPut(key, value, Timestamp(ts));
      if (!written.ok()) Fatal("strata RawPut: " + written.status().message());
      // The point of the benchmark: the write must be durable on return.
      if (store_->durable_lsn() < written->lsn) {
        Fatal(StrFormat("strata RawPut returned before its record (LSN %llu) was durable (%llu)",
                        static_cast<unsigned long long>(written->lsn),
                        static_cast<unsigned long long>(store_->durable_lsn())));
      }
      return 0;
    }
    for (uint64_t retries = 0;; ++retries) {
      Result<Transaction> txn = store_->db().Begin();
      if (!txn.ok()) Fatal("strata Begin: " + txn.status().message());
      CheckStatus(txn->Put(key, value), "Transaction::Put");
      Result<Timestamp> committed = txn->Commit();
      if (committed.ok()) return retries;
      if (committed.status().code() != StatusCode::kConflict) {
        Fatal("strata Commit: " + committed.status().message());
      }
    }
  }

  uint64_t Syncs() const override { return store_->GetDurabilityStats().syncs; }
  bool SyncsAreFsyncs() const override { return sync_ != DurableSync::kNone; }
  uint64_t LogBytes() const override { return store_->GetDurabilityStats().log_bytes; }
  uint64_t Checkpoints() const override { return store_->GetDurabilityStats().checkpoints; }

  std::string config() const override {
    std::string mode = "SyncMode::kAlways";
    if (sync_ == DurableSync::kBatch) {
      mode = StrFormat("SyncMode::kBatch (batch_delay %lld us)", batch_delay_us_);
    } else if (sync_ == DurableSync::kNone) {
      mode = "SyncMode::kNone (write, no fsync)";
    }
    return "strata::Store, " + mode + ", wait_for_durability, default checkpointing; " +
           (raw_ ? "one TxnStore::RawPut per write (timestamps from a shared counter)"
                 : "one transaction per write (Begin, Put, Commit; default isolation)");
  }

 private:
  TempDir dir_;  // outlives store_, whose destructor still writes to it
  bool raw_;
  DurableSync sync_;
  long long batch_delay_us_ = 0;
  std::unique_ptr<Store> store_;
  std::atomic<uint64_t> next_ts_{1};
};

class RocksDbTarget final : public DurableTarget {
 public:
  explicit RocksDbTarget(DurableSync sync) : dir_("dw-rocksdb") {
    // The same tuning as every RocksDB peer (rocksdb_common.h), with the WAL
    // on. Tickers only: histograms and timers would cost every write.
    rocksdb::Options options = RocksDbBenchOptions(/*bloom_filter=*/true);
    statistics_ = rocksdb::CreateDBStatistics();
    statistics_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
    options.statistics = statistics_;
    rocksdb::DB* db = nullptr;
    CheckRocksDb(rocksdb::DB::Open(options, dir_.path(), &db), "open");
    db_.reset(db);
    write_options_.disableWAL = false;
    write_options_.sync = sync != DurableSync::kNone;
  }
  ~RocksDbTarget() override {
    if (db_) CheckRocksDb(db_->Close(), "close");
  }

  uint64_t Write(std::string_view key, std::string_view value) override {
    CheckRocksDb(db_->Put(write_options_, rocksdb::Slice(key.data(), key.size()),
                          rocksdb::Slice(value.data(), value.size())),
                 "put");
    return 0;
  }
  uint64_t Syncs() const override { return statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED); }
  uint64_t LogBytes() const override {
    return statistics_->getTickerCount(rocksdb::WAL_FILE_BYTES);
  }
  std::string config() const override {
    return std::string("RocksDB ") + std::to_string(ROCKSDB_MAJOR) + "." +
           std::to_string(ROCKSDB_MINOR) + ", WAL on, WriteOptions.sync=" +
           (write_options_.sync ? "true (fdatasync; concurrent writers share one)" : "false") +
           ", one DB::Put per write; 128 MiB memtable, no compression";
  }

 private:
  TempDir dir_;  // outlives db_
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
};

std::unique_ptr<DurableTarget> MakeTarget(std::string_view engine, DurableSync sync) {
  if (engine == "strata") return std::make_unique<StrataTarget>(sync, /*raw=*/false);
  if (engine == "strata-raw") return std::make_unique<StrataTarget>(sync, /*raw=*/true);
  if (engine == "rocksdb") return std::make_unique<RocksDbTarget>(sync);
  Fatal("no durable engine " + std::string(engine));
}

// What one writer thread did in a run.
struct WriterResult {
  uint64_t writes = 0;
  uint64_t retries = 0;
  std::vector<uint32_t> latency_ns;  // one per write, saturated at ~4.3 s
};

// `threads` writers on `target` for `seconds`. Every write is timed
// individually (two steady_clock reads, tens of nanoseconds, against
// microseconds to milliseconds per durable write).
std::vector<WriterResult> TimedWrites(DurableTarget& target, const KeyTable& keys, int threads,
                                      double seconds, uint64_t seed, double* elapsed) {
  std::vector<WriterResult> results(static_cast<size_t>(threads));
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      WriterResult& result = results[static_cast<size_t>(t)];
      result.latency_ns.reserve(1 << 16);
      Rng rng{seed * 1000 + static_cast<uint64_t>(t)};
      char value[kValueBytes];
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      while (!stop.load(std::memory_order_relaxed)) {
        FormatValue(static_cast<uint64_t>(t), result.writes, value);
        const std::string_view key = keys.key(rng.Next() % keys.size());
        const auto start = Clock::now();
        result.retries += target.Write(key, std::string_view(value, kValueBytes));
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
        result.latency_ns.push_back(
            static_cast<uint32_t>(std::min<int64_t>(ns.count(), UINT32_MAX)));
        ++result.writes;
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (std::thread& w : writers) w.join();
  *elapsed = SecondsSince(start);
  return results;
}

// The latency at quantile q of `sorted` (ascending), in microseconds.
double QuantileUs(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t index =
      std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return sorted[index] / 1e3;
}

// One timed run's figures.
struct RunFigures {
  double writes_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0, mean_us = 0, max_us = 0;
  double other_cpu = 0;  // share of the CPUs other processes used meanwhile
  uint64_t writes = 0, retries = 0, syncs = 0, log_bytes = 0, checkpoints = 0;
};

}  // namespace

const std::vector<std::string_view>& DurableEngineNames() {
  static const std::vector<std::string_view> names = {"strata", "strata-raw", "rocksdb"};
  return names;
}

std::string_view DurableSyncName(DurableSync sync) {
  switch (sync) {
    case DurableSync::kAlways:
      return "always";
    case DurableSync::kBatch:
      return "batch";
    case DurableSync::kNone:
      return "none";
  }
  return "?";
}

std::optional<DurableSync> ParseDurableSync(std::string_view name) {
  if (name == "always") return DurableSync::kAlways;
  if (name == "batch") return DurableSync::kBatch;
  if (name == "none") return DurableSync::kNone;
  return std::nullopt;
}

bool DurableEngineSupports(std::string_view engine, DurableSync sync) {
  return engine != "rocksdb" || sync != DurableSync::kBatch;
}

bool RecoveryEngineSupported(std::string_view engine) {
  return engine == "strata" || engine == "rocksdb";
}

JsonLine RunDurableWrites(std::string_view engine, DurableSync sync, int threads,
                          const DurableWriteOptions& options) {
  const std::string what = StrFormat("%s DW sync=%s writers=%d", std::string(engine).c_str(),
                                     std::string(DurableSyncName(sync)).c_str(), threads);
  const KeyTable keys(options.keys);
  std::vector<RunFigures> runs;
  std::string config;
  bool syncs_are_fsyncs = true;
  for (int run = 0; run < options.runs; ++run) {
    // A fresh store (and directory) per run: no run inherits another's log,
    // checkpoint or memtable.
    std::unique_ptr<DurableTarget> target = MakeTarget(engine, sync);
    config = target->config();
    double elapsed = 0;
    TimedWrites(*target, keys, threads, options.warmup_seconds, kWriterSeed + 100, &elapsed);
    const uint64_t syncs_before = target->Syncs();
    const uint64_t bytes_before = target->LogBytes();
    const uint64_t checkpoints_before = target->Checkpoints();
    const CpuSample cpu_before = SampleCpu();
    std::vector<WriterResult> results =
        TimedWrites(*target, keys, threads, options.seconds, kWriterSeed + run, &elapsed);
    RunFigures f;
    f.other_cpu = OtherCpuShare(cpu_before, SampleCpu());
    f.syncs = target->Syncs() - syncs_before;
    syncs_are_fsyncs = target->SyncsAreFsyncs();
    f.log_bytes = target->LogBytes() - bytes_before;
    f.checkpoints = target->Checkpoints() - checkpoints_before;
    target.reset();  // closes (untimed) and removes the directory

    std::vector<uint32_t> latencies;
    double total_ns = 0;
    for (WriterResult& r : results) {
      f.writes += r.writes;
      f.retries += r.retries;
      for (const uint32_t ns : r.latency_ns) total_ns += ns;
      latencies.insert(latencies.end(), r.latency_ns.begin(), r.latency_ns.end());
      std::vector<uint32_t>().swap(r.latency_ns);
    }
    std::sort(latencies.begin(), latencies.end());
    f.writes_per_s = static_cast<double>(f.writes) / elapsed;
    f.p50_us = QuantileUs(latencies, 0.50);
    f.p99_us = QuantileUs(latencies, 0.99);
    f.p999_us = QuantileUs(latencies, 0.999);
    f.max_us = latencies.empty() ? 0 : latencies.back() / 1e3;
    f.mean_us = latencies.empty() ? 0 : total_ns / static_cast<double>(latencies.size()) / 1e3;
    const std::string per_fsync =
        f.syncs == 0 ? "no fsync"
                     : StrFormat("%.2f writes per %s",
                                 static_cast<double>(f.writes) / static_cast<double>(f.syncs),
                                 syncs_are_fsyncs ? "fsync" : "write-out (no fsync)");
    std::fprintf(stderr,
                 "  %s run %d/%d: %s writes/s, p50 %.0f us, p99 %.0f us, p99.9 %.0f us, %s; "
                 "other processes %.0f%% CPU\n",
                 what.c_str(), run + 1, options.runs, HumanCount(f.writes_per_s).c_str(), f.p50_us,
                 f.p99_us, f.p999_us, per_fsync.c_str(), 100 * f.other_cpu);
    runs.push_back(f);
  }

  auto median = [&](double RunFigures::*field) {
    std::vector<double> values;
    for (const RunFigures& f : runs) values.push_back(f.*field);
    return Median(values);
  };
  std::vector<double> rates;
  RunFigures total;
  double max_other_cpu = 0;
  for (const RunFigures& f : runs) {
    rates.push_back(f.writes_per_s);
    max_other_cpu = std::max(max_other_cpu, f.other_cpu);
    total.writes += f.writes;
    total.retries += f.retries;
    total.syncs += f.syncs;
    total.log_bytes += f.log_bytes;
    total.checkpoints += f.checkpoints;
  }
  const double rate = median(&RunFigures::writes_per_s);
  JsonLine line;
  line.Str("engine", engine)
      .Str("workload", "DW")
      .Str("sync", DurableSyncName(sync))
      .Int("threads", threads)
      .Num("load_avg_1m", LoadAverage1m(), 2)
      .Num("other_cpu_share", median(&RunFigures::other_cpu), 3)
      .Num("other_cpu_share_max", max_other_cpu, 3)
      .Num("ops_per_s", rate)
      .Str("ops_unit", engine == "strata" ? "durable commits (1 put each)" : "durable puts")
      .Num("p50_us", median(&RunFigures::p50_us), 1)
      .Num("p99_us", median(&RunFigures::p99_us), 1)
      .Num("p999_us", median(&RunFigures::p999_us), 1)
      .Num("mean_us", median(&RunFigures::mean_us), 1)
      .Num("max_us", median(&RunFigures::max_us), 1)
      .Int("writes", static_cast<int64_t>(total.writes))
      .Int("retries", static_cast<int64_t>(total.retries))
      .Int(syncs_are_fsyncs ? "fsyncs" : "log_write_outs", static_cast<int64_t>(total.syncs));
  if (total.syncs > 0) {
    line.Num(syncs_are_fsyncs ? "writes_per_fsync" : "writes_per_log_write_out",
             static_cast<double>(total.writes) / static_cast<double>(total.syncs), 2);
  }
  line.Num("log_bytes_per_write",
           total.writes == 0
               ? 0.0
               : static_cast<double>(total.log_bytes) / static_cast<double>(total.writes),
           1)
      .Int("keys", static_cast<int64_t>(options.keys))
      .Int("key_bytes", kKeyBytes)
      .Int("value_bytes", kValueBytes)
      .Int("median_of", options.runs)
      .Int("runs", options.runs)
      .Num("seconds_per_run", options.seconds, 2)
      .NumList("run_ops_per_s", rates);
  if (engine != "rocksdb") line.Int("checkpoints", static_cast<int64_t>(total.checkpoints));
  line.Str("config", config);
  return line;
}

// --- DR: recovery ----------------------------------------------------------

namespace {

// Drops the page cache's copy of every file in `dir` (after writing back
// whatever is dirty, which DONTNEED would otherwise keep), so the next open
// reads from the disk: only this store's files, nothing else on the machine.
void EvictFromPageCache(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    const int fd = open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
}

// Total size of the files in `dir` whose names start with `prefix` and end
// with `suffix`.
uint64_t FileBytes(const std::string& dir, std::string_view prefix, std::string_view suffix) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && name.starts_with(prefix) && name.ends_with(suffix)) {
      total += entry.file_size(ec);
    }
  }
  return total;
}

// The data set: keys x versions_per_key versions loaded version by version
// (every key's version v before any key's v+1) at timestamps 1, 2, ...,
// then a tail of more versions cycling over the keys.
struct RecoveryData {
  uint64_t keys;
  uint64_t versions_per_key;
  uint64_t versions;  // keys x versions_per_key
  uint64_t tail;
  KeyTable table;

  RecoveryData(const RecoveryOptions& options)
      : keys(std::max<uint64_t>(
            1, options.versions / std::max<uint64_t>(1, options.versions_per_key))),
        versions_per_key(std::max<uint64_t>(1, options.versions_per_key)),
        versions(keys * versions_per_key),
        tail(options.tail_versions),
        table(keys) {}

  // The i-th write overall (load, then tail): its key, and its timestamp i+1.
  uint64_t KeyOf(uint64_t i) const { return i % keys; }
  // The value of the i-th write names the key and the write.
  std::string ValueOf(uint64_t i) const { return Value(KeyOf(i), i); }
  // The last write of key k among the first n writes (n > k).
  uint64_t LastWriteOf(uint64_t k, uint64_t n) const { return k + (n - 1 - k) / keys * keys; }
};

// Keys whose newest value every recovery check reads back.
std::vector<uint64_t> SampleKeys(const RecoveryData& data) {
  std::vector<uint64_t> sample;
  for (uint64_t k = 0; k < data.keys; k += std::max<uint64_t>(1, data.keys / 97)) {
    sample.push_back(k);
  }
  sample.push_back(data.keys - 1);
  return sample;
}

// The opens of one variant: cold then warm, `runs` times, medians in ms.
struct OpenTimes {
  std::vector<double> cold_ms;
  std::vector<double> warm_ms;
};

template <typename OpenFn>
OpenTimes TimeOpens(const std::string& dir, int runs, const std::string& what, OpenFn open_once) {
  OpenTimes times;
  for (int run = 0; run < runs; ++run) {
    EvictFromPageCache(dir);
    times.cold_ms.push_back(open_once(/*check=*/true));
    times.warm_ms.push_back(open_once(/*check=*/false));
    std::fprintf(stderr, "  %s open %d/%d: %.0f ms cold, %.0f ms warm\n", what.c_str(), run + 1,
                 runs, times.cold_ms.back(), times.warm_ms.back());
  }
  return times;
}

// The fields every DR line starts with (the data set, the load, the log).
JsonLine RecoveryLine(std::string_view engine, const RecoveryData& data,
                      const CpuSample& cpu_before, double load_seconds, uint64_t log_bytes,
                      std::string_view replay_label) {
  JsonLine line;
  line.Str("engine", engine)
      .Str("workload", "DR")
      .Num("load_avg_1m", LoadAverage1m(), 2)
      .Num("other_cpu_share", OtherCpuShare(cpu_before, SampleCpu()), 3)
      .Int("versions", static_cast<int64_t>(data.versions))
      .Int("keys", static_cast<int64_t>(data.keys))
      .Int("versions_per_key", static_cast<int64_t>(data.versions_per_key))
      .Int("value_bytes", kValueBytes)
      .Num("load_s", load_seconds, 2)
      .Int("log_bytes", static_cast<int64_t>(log_bytes))
      .Str("replay_label", replay_label);
  return line;
}

void AddOpenTimes(JsonLine& line, std::string_view prefix, const OpenTimes& times,
                  uint64_t versions) {
  const double cold = Median(times.cold_ms);
  const double warm = Median(times.warm_ms);
  const double millions = static_cast<double>(versions) / 1e6;
  const std::string p(prefix);
  line.Int(p + "_versions", static_cast<int64_t>(versions))
      .Num(p + "_cold_ms", cold, 1)
      .Num(p + "_cold_ms_per_mversion", cold / millions, 1)
      .Num(p + "_warm_ms", warm, 1)
      .Num(p + "_warm_ms_per_mversion", warm / millions, 1)
      .NumList(p + "_run_cold_ms", times.cold_ms)
      .NumList(p + "_run_warm_ms", times.warm_ms);
}

JsonLine StrataRecovery(const RecoveryOptions& options) {
  const CpuSample cpu_before = SampleCpu();
  const RecoveryData data(options);
  const std::vector<uint64_t> sample = SampleKeys(data);
  TempDir dir("dr-strata");
  // The load is not what is measured: no fsync, no waiting per write, and
  // no background checkpoint, so the log holds every version.
  StoreOpenOptions open_options;
  open_options.durability.sync = SyncMode::kNone;
  open_options.durability.wait_for_durability = false;
  open_options.durability.checkpoint_after_log_bytes = 0;

  auto write = [&](Store& store, uint64_t i) {
    const std::string value = data.ValueOf(i);
    Result<WriteResult> written =
        store.db().RawPut(data.table.key(data.KeyOf(i)), value, Timestamp(i + 1));
    if (!written.ok()) Fatal("strata RawPut: " + written.status().message());
  };

  std::fprintf(stderr, "[strata] DR: loading %llu keys x %llu versions\n",
               static_cast<unsigned long long>(data.keys),
               static_cast<unsigned long long>(data.versions_per_key));
  const auto load_start = Clock::now();
  uint64_t log_bytes = 0;
  {
    std::unique_ptr<Store> store = OpenStore(dir.path(), open_options);
    Progress progress("strata load", data.versions);
    for (uint64_t i = 0; i < data.versions; ++i) {
      write(*store, i);
      progress.Update(i + 1);
    }
    CheckStatus(store->Sync(), "Sync");
    progress.Finish();
    log_bytes = store->GetDurabilityStats().log_bytes;
  }
  const double load_seconds = SecondsSince(load_start);

  // Opens `dir`, checks that it holds the first `writes` writes, closes.
  auto open_once = [&](uint64_t writes, bool expect_checkpoint, bool check,
                       RecoveryReport* report) {
    const auto start = Clock::now();
    std::unique_ptr<Store> store = OpenStore(dir.path(), open_options);
    const double ms = SecondsSince(start) * 1e3;
    *report = store->recovery();
    if (report->checkpoint_lsn.has_value() != expect_checkpoint) {
      Fatal(StrFormat("strata recovery %s a checkpoint, expected %s",
                      report->checkpoint_lsn ? "loaded" : "found no",
                      expect_checkpoint ? "one" : "none"));
    }
    if (check) {
      const StoreStats stats = store->mvcc().GetStats();
      if (stats.versions != writes || stats.keys != data.keys) {
        Fatal(StrFormat("strata recovered %llu keys / %llu versions, expected %llu / %llu",
                        static_cast<unsigned long long>(stats.keys),
                        static_cast<unsigned long long>(stats.versions),
                        static_cast<unsigned long long>(data.keys),
                        static_cast<unsigned long long>(writes)));
      }
      for (const uint64_t k : sample) {
        Result<ReadResult> read = store->mvcc().Get(data.table.key(k));
        const uint64_t last = data.LastWriteOf(k, writes);
        if (!read.ok() || !read->found || read->value != data.ValueOf(last) ||
            read->timestamp != Timestamp(last + 1)) {
          Fatal("strata recovered a wrong newest version of " + std::string(data.table.key(k)));
        }
      }
    }
    return ms;  // the close (destructor) is not timed
  };

  RecoveryReport log_report;
  const OpenTimes log_times =
      TimeOpens(dir.path(), options.runs, "[strata] log replay", [&](bool check) {
        return open_once(data.versions, /*expect_checkpoint=*/false, check, &log_report);
      });

  // A checkpoint, then a small tail of writes that only the log holds.
  uint64_t checkpoint_bytes = 0;
  uint64_t tail_log_bytes = 0;
  {
    std::unique_ptr<Store> store = OpenStore(dir.path(), open_options);
    const auto start = Clock::now();
    CheckStatus(store->Checkpoint(), "Checkpoint");
    std::fprintf(stderr, "[strata] DR: checkpoint written in %.1f s\n", SecondsSince(start));
    for (uint64_t i = data.versions; i < data.versions + data.tail; ++i) write(*store, i);
    CheckStatus(store->Sync(), "Sync");
    tail_log_bytes = store->GetDurabilityStats().log_bytes;
  }
  checkpoint_bytes = FileBytes(dir.path(), "checkpoint-", "");
  RecoveryReport checkpoint_report;
  const OpenTimes checkpoint_times =
      TimeOpens(dir.path(), options.runs, "[strata] checkpoint + tail", [&](bool check) {
        return open_once(data.versions + data.tail, /*expect_checkpoint=*/true, check,
                         &checkpoint_report);
      });

  JsonLine line =
      RecoveryLine("strata", data, cpu_before, load_seconds, log_bytes, "log only, no checkpoint");
  AddOpenTimes(line, "replay", log_times, data.versions);
  line.Int("replay_records", static_cast<int64_t>(log_report.records_replayed))
      .Int("replay_log_bytes_read", static_cast<int64_t>(log_report.log_bytes_read))
      .Int("replay_reported_ms", log_report.elapsed.count())
      .Str("reopen_label", StrFormat("checkpoint + %llu-version log tail",
                                     static_cast<unsigned long long>(data.tail)));
  AddOpenTimes(line, "reopen", checkpoint_times, data.versions + data.tail);
  line.Int("reopen_records", static_cast<int64_t>(checkpoint_report.records_replayed))
      .Int("checkpoint_bytes", static_cast<int64_t>(checkpoint_bytes))
      .Int("tail_log_bytes", static_cast<int64_t>(tail_log_bytes))
      .Int("reopen_reported_ms", checkpoint_report.elapsed.count())
      .Int("median_of", options.runs)
      .Str("config",
           "strata::Store loaded with raw puts (SyncMode::kNone), cold = the store's files "
           "evicted from the page cache (fdatasync + POSIX_FADV_DONTNEED) before Store::Open");
  return line;
}

// RocksDB, as a side reference: the same versions as MVCC-encoded keys
// (user key ++ inverted timestamp), so it stores as many entries as strata
// holds versions.
JsonLine RocksDbRecovery(const RecoveryOptions& options) {
  const CpuSample cpu_before = SampleCpu();
  const RecoveryData data(options);
  const std::vector<uint64_t> sample = SampleKeys(data);
  TempDir dir("dr-rocksdb");
  rocksdb::Options db_options = RocksDbBenchOptions(/*bloom_filter=*/false);
  // One memtable big enough for the whole load, so the WAL holds every
  // version (as strata's log does) and nothing is flushed before the
  // replay opens; replaying leaves it in the memtable (no flush at open or
  // close), so every replay open replays the same WAL.
  db_options.write_buffer_size = size_t{1} << 30;
  db_options.max_write_buffer_number = 2;
  db_options.avoid_flush_during_recovery = true;
  db_options.avoid_flush_during_shutdown = true;
  rocksdb::WriteOptions write_options;
  write_options.sync = false;
  write_options.disableWAL = false;

  auto open_db = [&]() {
    rocksdb::DB* db = nullptr;
    CheckRocksDb(rocksdb::DB::Open(db_options, dir.path(), &db), "open");
    return std::unique_ptr<rocksdb::DB>(db);
  };
  auto close_db = [](std::unique_ptr<rocksdb::DB>& db) {
    CheckRocksDb(db->Close(), "close");
    db.reset();
  };

  std::fprintf(stderr, "[rocksdb] DR: loading %llu keys x %llu versions\n",
               static_cast<unsigned long long>(data.keys),
               static_cast<unsigned long long>(data.versions_per_key));
  const auto load_start = Clock::now();
  {
    std::unique_ptr<rocksdb::DB> db = open_db();
    rocksdb::WriteBatch batch;
    std::string key;
    for (uint64_t i = 0; i < data.versions; ++i) {
      EncodeMvccKey(data.table.key(data.KeyOf(i)), i + 1, &key);
      CheckRocksDb(batch.Put(key, data.ValueOf(i)), "batch put");
      if (batch.Count() == 1000 || i + 1 == data.versions) {
        CheckRocksDb(db->Write(write_options, &batch), "write");
        batch.Clear();
      }
    }
    CheckRocksDb(db->FlushWAL(/*sync=*/true), "FlushWAL");
    close_db(db);
  }
  const double load_seconds = SecondsSince(load_start);
  const uint64_t wal_bytes = FileBytes(dir.path(), "", ".log");

  auto open_once = [&](bool check) {
    const auto start = Clock::now();
    std::unique_ptr<rocksdb::DB> db = open_db();
    const double ms = SecondsSince(start) * 1e3;
    if (check) {
      std::string key;
      std::string value;
      for (const uint64_t k : sample) {
        const uint64_t last = data.LastWriteOf(k, data.versions);
        EncodeMvccKey(data.table.key(k), last + 1, &key);
        CheckRocksDb(db->Get(rocksdb::ReadOptions(), key, &value), "get after reopen");
        if (value != data.ValueOf(last)) Fatal("rocksdb reopened with a wrong value");
      }
    }
    close_db(db);
    return ms;
  };
  const OpenTimes wal_times =
      TimeOpens(dir.path(), options.runs, "[rocksdb] WAL replay", open_once);
  {
    std::unique_ptr<rocksdb::DB> db = open_db();
    CheckRocksDb(db->Flush(rocksdb::FlushOptions()), "flush");
    close_db(db);
  }
  const uint64_t sst_bytes = FileBytes(dir.path(), "", ".sst");
  const OpenTimes flushed_times =
      TimeOpens(dir.path(), options.runs, "[rocksdb] after flush", open_once);

  JsonLine line = RecoveryLine("rocksdb", data, cpu_before, load_seconds, wal_bytes,
                               "WAL replay into the memtable");
  AddOpenTimes(line, "replay", wal_times, data.versions);
  line.Str("reopen_label", "after a flush (SST files, no data read at open)");
  AddOpenTimes(line, "reopen", flushed_times, data.versions);
  line.Int("sst_bytes", static_cast<int64_t>(sst_bytes))
      .Int("median_of", options.runs)
      .Str("config",
           "RocksDB, MVCC-encoded keys (one entry per version), loaded with WAL on and sync=false "
           "into one 1 GiB memtable; avoid_flush_during_recovery; cold as strata's");
  return line;
}

}  // namespace

JsonLine RunRecovery(std::string_view engine, const RecoveryOptions& options) {
  if (engine == "strata") return StrataRecovery(options);
  if (engine == "rocksdb") return RocksDbRecovery(options);
  Fatal("DR has no engine " + std::string(engine));
}

}  // namespace strata::bench
