#include "bench/workloads.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "bench/bench_util.h"

namespace strata::bench {
namespace {

// Fixed seeds: every engine and every run sees the same operations.
constexpr uint64_t kLoadOrderSeed = 1;
constexpr uint64_t kReadSeed = 2;
constexpr uint64_t kScanSeed = 3;
constexpr uint64_t kWriterSeed = 4;

constexpr uint64_t kVerifyReads = 20'000;
constexpr uint64_t kWarmupReads = 100'000;
constexpr size_t kScanLength = 100;
// W4's long scans and its count-only ranges (a list's total).
constexpr size_t kLongScanLength = 1000;
constexpr uint64_t kVerifyScans = 200;

struct ReadOps {
  std::vector<uint32_t> key;
  std::vector<uint32_t> ts;
  size_t size() const { return key.size(); }
};

// Generated before timing so the random number generator is not measured.
ReadOps MakeReadOps(const Dataset& data, uint64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> key_dist(0, data.keys() - 1);
  std::uniform_int_distribution<uint64_t> ts_dist(0, data.max_ts() + Dataset::kTsStep);
  ReadOps ops;
  ops.key.reserve(count);
  ops.ts.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    ops.key.push_back(static_cast<uint32_t>(key_dist(rng)));
    ops.ts.push_back(static_cast<uint32_t>(ts_dist(rng)));
  }
  return ops;
}

struct ReadPass {
  uint64_t reads = 0;
  uint64_t found = 0;
  double seconds = 0;
};

// Times reads [0, count) of `ops`. With a deadline, stops early once it
// passes (checked every 1024 reads) — the mutex-guarded engines can be
// starved by the writer in W5, and throughput is still reads / seconds.
ReadPass TimeReads(EngineAdapter& engine, const Dataset& data, const ReadOps& ops, size_t count,
                   std::optional<Clock::time_point> deadline = std::nullopt) {
  ReadPass pass;
  uint64_t sink = 0;
  const auto start = Clock::now();
  size_t i = 0;
  for (; i < count; ++i) {
    const std::optional<std::string_view> value = engine.Get(data.key(ops.key[i]), ops.ts[i]);
    if (value) {
      ++pass.found;
      sink += value->size() + static_cast<unsigned char>(value->back());
    }
    if (deadline && (i & 1023) == 1023 && Clock::now() > *deadline) {
      ++i;
      break;
    }
  }
  pass.seconds = SecondsSince(start);
  pass.reads = i;
  DoNotOptimize(sink);
  return pass;
}

// A fast engine that returns wrong answers has not won anything.
void VerifyReads(EngineAdapter& engine, const Dataset& data, const ReadOps& ops, size_t count) {
  char expected[Dataset::kValueBytes];
  for (size_t i = 0; i < std::min(count, ops.size()); ++i) {
    const std::string& key = data.key(ops.key[i]);
    const uint64_t visible = data.VisibleTs(ops.ts[i]);
    const std::optional<std::string_view> value = engine.Get(key, ops.ts[i]);
    if (visible == 0) {
      if (value) {
        Fatal(StrFormat("%s: %s at ts %u should be absent", std::string(engine.name()).c_str(),
                        key.c_str(), ops.ts[i]));
      }
      continue;
    }
    Dataset::Value(ops.key[i], visible, expected);
    if (!value || *value != std::string_view(expected, sizeof(expected))) {
      const std::string got = value ? std::string(*value) : std::string("(nothing)");
      Fatal(StrFormat("%s: %s at ts %u returned '%s', expected the version at ts %llu",
                      std::string(engine.name()).c_str(), key.c_str(), ops.ts[i], got.c_str(),
                      static_cast<unsigned long long>(visible)));
    }
  }
}

// W5's writer: a thread appending versions at rising timestamps (from
// `*next_ts`) to random keys as fast as it can, from construction to Stop().
class BackgroundWriter final {
 public:
  BackgroundWriter(EngineAdapter* engine, const Dataset& data, uint64_t seed, uint64_t* next_ts)
      : thread_([this, engine, &data, seed, next_ts] { Loop(engine, data, seed, next_ts); }) {
    // Measure the reader only once the writer is really writing.
    while (!started_.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  ~BackgroundWriter() {
    if (thread_.joinable()) Stop();
  }
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  // Stops and joins the writer; returns its puts per second.
  double Stop() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
    return static_cast<double>(puts_) / seconds_;
  }

 private:
  void Loop(EngineAdapter* engine, const Dataset& data, uint64_t seed, uint64_t* next_ts) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<uint64_t> key_dist(0, data.keys() - 1);
    char value[Dataset::kValueBytes];
    const auto start = Clock::now();
    started_.store(true, std::memory_order_release);
    while (!stop_.load(std::memory_order_relaxed)) {
      const uint64_t index = key_dist(rng);
      const uint64_t ts = (*next_ts)++;
      Dataset::Value(index, ts, value);
      engine->Put(data.key(index), ts, std::string_view(value, sizeof(value)));
      ++puts_;
    }
    engine->FlushWrites();  // by this thread: LMDB commits where it began
    seconds_ = SecondsSince(start);
  }

  std::atomic<bool> started_{false};
  std::atomic<bool> stop_{false};
  uint64_t puts_ = 0;  // written by the thread, read after join
  double seconds_ = 0;
  std::thread thread_;  // last: starts once the fields above exist
};

// One stderr line per timed run: long phases show progress, and a noisy
// run is visible next to the median.
void ReportRun(const EngineAdapter& engine, std::string_view workload, int run, int runs,
               double rate, const char* unit) {
  std::fprintf(stderr, "  %s %.*s run %d/%d: %s %s\n", std::string(engine.name()).c_str(),
               static_cast<int>(workload.size()), workload.data(), run + 1, runs,
               HumanCount(rate).c_str(), unit);
}

JsonLine BaseLine(std::string_view engine, std::string_view workload, const Dataset& data) {
  JsonLine line;
  line.Str("engine", engine).Str("workload", workload);
  line.Int("keys", static_cast<int64_t>(data.keys()))
      .Int("versions", static_cast<int64_t>(data.versions()))
      .Num("load_avg_1m", LoadAverage1m(), 2);
  return line;
}

}  // namespace

Dataset::Dataset(uint64_t keys, uint64_t versions) : versions_(versions) {
  if (keys == 0 || keys > 100'000'000) Fatal("--keys must be in [1, 100000000]");
  if (versions == 0) Fatal("--versions must be at least 1");
  keys_.reserve(keys);
  char buffer[16];
  for (uint64_t i = 0; i < keys; ++i) {
    std::snprintf(buffer, sizeof(buffer), "key%08llu", static_cast<unsigned long long>(i));
    keys_.emplace_back(buffer, kKeyBytes);
  }
  load_order_.resize(keys);
  for (uint64_t i = 0; i < keys; ++i) load_order_[i] = static_cast<uint32_t>(i);
  std::mt19937_64 rng(kLoadOrderSeed);
  std::shuffle(load_order_.begin(), load_order_.end(), rng);
}

uint64_t Dataset::VisibleTs(uint64_t read_ts) const {
  return std::min<uint64_t>(read_ts / kTsStep, versions_) * kTsStep;
}

void Dataset::Value(uint64_t index, uint64_t ts, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) out[7 - i] = kHex[(index >> (4 * i)) & 0xf];
  for (int i = 0; i < 8; ++i) out[15 - i] = kHex[(ts >> (4 * i)) & 0xf];
}

double Load(EngineAdapter& engine, const Dataset& data) {
  Progress progress(std::string(engine.name()) + " load", data.total_versions());
  char value[Dataset::kValueBytes];
  uint64_t done = 0;
  const auto start = Clock::now();
  for (uint64_t round = 1; round <= data.versions(); ++round) {
    const uint64_t ts = round * Dataset::kTsStep;
    for (const uint32_t index : data.load_order()) {
      Dataset::Value(index, ts, value);
      engine.Put(data.key(index), ts, std::string_view(value, sizeof(value)));
      progress.Update(++done);
    }
  }
  engine.FlushWrites();
  const double seconds = SecondsSince(start);
  progress.Finish();
  return seconds;
}

// W1's reads again, kBatch keys at a time at the batch's first timestamp,
// through EngineAdapter::MultiGet (what a Txn or a request naming many keys
// brings): checked against the data set, then timed; reads a second.
constexpr size_t kBatch = 16;

struct BatchPass {
  uint64_t found = 0;
  uint64_t checksum = 0;
};

BatchPass RunBatches(EngineAdapter& engine, const Dataset& data, const ReadOps& ops, size_t count) {
  BatchPass pass;
  std::string_view keys[kBatch];
  for (size_t base = 0; base + kBatch <= count; base += kBatch) {
    for (size_t i = 0; i < kBatch; ++i) keys[i] = data.key(ops.key[base + i]);
    pass.found += engine.MultiGet(keys, ops.ts[base], &pass.checksum);
  }
  return pass;
}

void VerifyBatches(EngineAdapter& engine, const Dataset& data, const ReadOps& ops, size_t count) {
  char expected[Dataset::kValueBytes];
  BatchPass want;
  for (size_t base = 0; base + kBatch <= count; base += kBatch) {
    const uint64_t visible = data.VisibleTs(ops.ts[base]);  // the batch's one timestamp
    if (visible == 0) continue;
    for (size_t i = base; i < base + kBatch; ++i) {
      Dataset::Value(ops.key[i], visible, expected);
      want.checksum +=
          ScanChecksum(data.key(ops.key[i]), std::string_view(expected, sizeof(expected)));
      ++want.found;
    }
  }
  const BatchPass got = RunBatches(engine, data, ops, count);
  if (got.found != want.found || got.checksum != want.checksum) {
    Fatal(StrFormat("%s: batched reads found %llu (checksum %llu), expected %llu (checksum %llu)",
                    std::string(engine.name()).c_str(), static_cast<unsigned long long>(got.found),
                    static_cast<unsigned long long>(got.checksum),
                    static_cast<unsigned long long>(want.found),
                    static_cast<unsigned long long>(want.checksum)));
  }
}

double MedianBatchRate(EngineAdapter& engine, const Dataset& data, const ReadOps& ops,
                       const RunOptions& options) {
  VerifyBatches(engine, data, ops, std::min<size_t>(kVerifyReads, ops.size()));
  const size_t count = ops.size() - ops.size() % kBatch;
  std::vector<double> rates;
  for (int run = 0; run < options.runs; ++run) {
    const auto start = Clock::now();
    const BatchPass pass = RunBatches(engine, data, ops, count);
    const double seconds = SecondsSince(start);
    DoNotOptimize(pass.checksum);
    rates.push_back(static_cast<double>(count) / seconds);
    ReportRun(engine, "W1 batched", run, options.runs, rates.back(), "reads/s");
  }
  return Median(rates);
}

JsonLine RunPointReads(EngineAdapter& engine, const Dataset& data, const RunOptions& options,
                       std::string_view workload) {
  const ReadOps ops = MakeReadOps(data, options.ops, kReadSeed);
  VerifyReads(engine, data, ops, kVerifyReads);
  TimeReads(engine, data, ops, std::min<uint64_t>(kWarmupReads, ops.size()));
  std::vector<double> rates;
  uint64_t found = 0;
  for (int run = 0; run < options.runs; ++run) {
    const ReadPass pass = TimeReads(engine, data, ops, ops.size());
    rates.push_back(static_cast<double>(pass.reads) / pass.seconds);
    found = pass.found;
    ReportRun(engine, workload, run, options.runs, rates.back(), "reads/s");
  }
  const double median = Median(rates);
  JsonLine line = BaseLine(engine.name(), workload, data);
  line.Num("ops_per_s", median)
      .Num("ns_per_op", 1e9 / median, 2)
      .Int("median_of", options.runs)
      .Int("runs", options.runs)
      .NumList("run_ops_per_s", rates)
      .Int("ops", static_cast<int64_t>(ops.size()))
      .Num("found_fraction", static_cast<double>(found) / static_cast<double>(ops.size()), 4)
      .Int("read_ts_max", static_cast<int64_t>(data.max_ts() + Dataset::kTsStep))
      .Str("config", engine.config());
  if (workload == "W1") {
    line.Num("batch_ops_per_s", MedianBatchRate(engine, data, ops, options))
        .Int("batch_keys", static_cast<int64_t>(kBatch));
  }
  return line;
}

// Scans a W4 run makes: options.ops keys in all.
uint64_t ScanCount(const RunOptions& options, size_t length) {
  return std::max<uint64_t>(1, options.ops / length);
}

// Times `scans` scans of `length` keys from random starts at `snapshot`
// (count_only: the keys are counted, their values not read), after checking
// the first kVerifyScans against the data set. Returns keys/s of each run.
std::vector<double> TimeScans(EngineAdapter& engine, const Dataset& data, const RunOptions& options,
                              std::string_view label, size_t length, bool count_only,
                              uint64_t snapshot) {
  const uint64_t scans = ScanCount(options, length);
  const uint64_t last_start = data.keys() - std::min<uint64_t>(data.keys(), length);
  std::mt19937_64 rng(kScanSeed + length + (count_only ? 1 : 0));
  std::uniform_int_distribution<uint64_t> start_dist(0, last_start);
  std::vector<uint32_t> starts(scans);
  for (auto& s : starts) s = static_cast<uint32_t>(start_dist(rng));

  char value[Dataset::kValueBytes];
  for (uint64_t i = 0; i < std::min(scans, kVerifyScans); ++i) {
    uint64_t checksum = 0;
    const size_t visited =
        engine.Scan(data.key(starts[i]), length, snapshot, count_only ? nullptr : &checksum);
    const size_t want = std::min<uint64_t>(length, data.keys() - starts[i]);
    uint64_t want_checksum = 0;
    for (size_t k = starts[i]; k < starts[i] + want && !count_only; ++k) {
      Dataset::Value(k, data.VisibleTs(snapshot), value);
      want_checksum += ScanChecksum(data.key(k), std::string_view(value, sizeof(value)));
    }
    if (visited != want || checksum != want_checksum) {
      Fatal(
          StrFormat("%s: scan of %zu from %s at ts %llu returned %zu keys (checksum %llu), "
                    "expected %zu (checksum %llu)",
                    std::string(engine.name()).c_str(), length, data.key(starts[i]).c_str(),
                    static_cast<unsigned long long>(snapshot), visited,
                    static_cast<unsigned long long>(checksum), want,
                    static_cast<unsigned long long>(want_checksum)));
    }
  }

  auto time_scans = [&](uint64_t count, uint64_t* keys_visited) {
    uint64_t checksum = 0;
    uint64_t visited = 0;
    const auto start = Clock::now();
    for (uint64_t i = 0; i < count; ++i) {
      visited +=
          engine.Scan(data.key(starts[i]), length, snapshot, count_only ? nullptr : &checksum);
    }
    const double seconds = SecondsSince(start);
    DoNotOptimize(checksum);
    *keys_visited = visited;
    return seconds;
  };
  uint64_t visited = 0;
  time_scans(std::min<uint64_t>(scans, kWarmupReads / length), &visited);
  std::vector<double> key_rates;
  for (int run = 0; run < options.runs; ++run) {
    const double seconds = time_scans(scans, &visited);
    key_rates.push_back(static_cast<double>(visited) / seconds);
    ReportRun(engine, label, run, options.runs, key_rates.back(), "keys/s");
  }
  return key_rates;
}

std::optional<JsonLine> RunScans(EngineAdapter& engine, const Dataset& data,
                                 const RunOptions& options) {
  if (!engine.ordered()) return std::nullopt;
  // Between two versions, so a scan must find "newest <= T", not an exact hit.
  const uint64_t snapshot = Dataset::kTsStep * ((data.versions() + 1) / 2) + 5;
  const std::vector<double> key_rates =
      TimeScans(engine, data, options, "W4", kScanLength, false, snapshot);
  const std::vector<double> long_rates =
      TimeScans(engine, data, options, "W4 long", kLongScanLength, false, snapshot);
  const std::vector<double> count_rates =
      TimeScans(engine, data, options, "W4 count", kLongScanLength, true, snapshot);
  const double median = Median(key_rates);
  const double scans_per_s = median / kScanLength;
  JsonLine line = BaseLine(engine.name(), "W4", data);
  line.Num("ops_per_s", median)
      .Str("ops_unit", "keys")
      .Num("scans_per_s", scans_per_s)
      .Num("ns_per_scan", 1e9 / scans_per_s, 1)
      .Num("ns_per_op", 1e9 / median, 2)
      .Int("median_of", options.runs)
      .Int("runs", options.runs)
      .NumList("run_ops_per_s", key_rates)
      .Int("scans", static_cast<int64_t>(ScanCount(options, kScanLength)))
      .Int("scan_length", kScanLength)
      .Num("long_scan_keys_per_s", Median(long_rates))
      .Num("count_keys_per_s", Median(count_rates))
      .Int("long_scan_length", kLongScanLength)
      .Int("snapshot_ts", static_cast<int64_t>(snapshot));
  return line;
}

JsonLine RunConcurrent(EngineAdapter& engine, const Dataset& data, const RunOptions& options) {
  std::unique_ptr<EngineAdapter> locked;
  EngineAdapter* target = &engine;
  if (!engine.concurrent()) {
    locked = MakeLockedAdapter(&engine);
    target = locked.get();
  }
  const ReadOps ops = MakeReadOps(data, options.ops, kReadSeed);
  TimeReads(*target, data, ops, std::min<uint64_t>(kWarmupReads, ops.size()));

  // Above every read timestamp: the writer changes what is stored, not what
  // the reader's operations return.
  uint64_t next_ts = data.max_ts() + 1000;
  std::vector<double> alone_rates;
  std::vector<double> with_rates;
  std::vector<double> ratios;
  std::vector<double> writer_rates;
  for (int run = 0; run < options.runs; ++run) {
    // Alone and with the writer back to back in every run, so slow drift of
    // the machine affects both sides of each ratio alike.
    const ReadPass alone = TimeReads(*target, data, ops, ops.size());
    const double alone_rate = static_cast<double>(alone.reads) / alone.seconds;

    BackgroundWriter writer(target, data, kWriterSeed + static_cast<uint64_t>(run), &next_ts);
    // A mutex-guarded engine's reader can be starved by the writer; cap the
    // phase so the run ends, the rate stays reads / seconds.
    const auto deadline =
        Clock::now() + std::max(std::chrono::duration<double>(5.0),
                                std::chrono::duration<double>(20 * alone.seconds));
    const ReadPass with = TimeReads(*target, data, ops, ops.size(),
                                    std::chrono::time_point_cast<Clock::duration>(deadline));
    const double writer_rate = writer.Stop();
    const double with_rate = static_cast<double>(with.reads) / with.seconds;
    alone_rates.push_back(alone_rate);
    with_rates.push_back(with_rate);
    ratios.push_back(with_rate / alone_rate);
    writer_rates.push_back(writer_rate);
    std::fprintf(stderr, "  %s W5 run %d/%d: %s reads/s alone, %s with writer (%s puts/s)\n",
                 std::string(engine.name()).c_str(), run + 1, options.runs,
                 HumanCount(alone_rate).c_str(), HumanCount(with_rate).c_str(),
                 HumanCount(writer_rates.back()).c_str());
  }
  {
    // Untimed: the answers must stay right while a writer runs (its
    // versions are all newer than any read timestamp here).
    BackgroundWriter writer(target, data, kWriterSeed + 1000, &next_ts);
    VerifyReads(*target, data, ops, kVerifyReads);
    writer.Stop();
  }
  const double median = Median(with_rates);
  JsonLine line = BaseLine(engine.name(), "W5", data);
  line.Num("ops_per_s", median)
      .Num("ns_per_op", 1e9 / median, 2)
      .Num("reader_alone_ops_per_s", Median(alone_rates))
      .Num("reader_ratio", Median(ratios), 3)
      .Num("writer_puts_per_s", Median(writer_rates))
      .Int("median_of", options.runs)
      .Int("runs", options.runs)
      .NumList("run_ops_per_s", with_rates)
      .NumList("run_reader_ratio", ratios, 3)
      .Int("ops", static_cast<int64_t>(ops.size()));
  if (!engine.concurrent()) {
    line.Str("note", "not thread-safe: reader and writer share one std::mutex");
  }
  return line;
}

JsonLine RunLoadOnce(std::string_view engine_name, uint64_t keys, uint64_t versions) {
  // The data set is the input, not the engine: build it before the baseline.
  const Dataset data(keys, versions);
  const uint64_t rss_before = ResidentBytes();
  std::unique_ptr<EngineAdapter> engine = MakeEngine(engine_name);
  if (!engine) Fatal("unknown engine " + std::string(engine_name));
  const double seconds = Load(*engine, data);
  const uint64_t rss_after = ResidentBytes();
  const std::optional<uint64_t> reported = engine->ReportedMemoryBytes();
  engine->Settle();  // untimed; makes the disk size of the file-based peers comparable
  const std::optional<uint64_t> disk = engine->DiskBytes();
  VerifyReads(*engine, data, MakeReadOps(data, 1000, kReadSeed), 1000);

  JsonLine line = BaseLine(engine_name, "W3-run", data);
  line.Num("ops_per_s", static_cast<double>(data.total_versions()) / seconds)
      .Num("seconds", seconds, 3)
      .Int("rss_delta_bytes", static_cast<int64_t>(rss_after - rss_before));
  if (reported) line.Int("store_memory_bytes", static_cast<int64_t>(*reported));
  if (disk) line.Int("disk_bytes", static_cast<int64_t>(*disk));
  line.Bool("in_memory", engine->in_memory());
  return line;
}

JsonLine SummarizeLoad(std::string_view engine_name, const std::vector<ParsedLine>& runs,
                       uint64_t keys, uint64_t versions) {
  std::vector<double> rates;
  std::vector<double> rss;
  std::vector<double> reported;
  std::vector<double> disk;
  bool in_memory = false;
  for (const ParsedLine& run : runs) {
    rates.push_back(run.Number("ops_per_s").value_or(0));
    rss.push_back(run.Number("rss_delta_bytes").value_or(0));
    if (auto v = run.Number("store_memory_bytes")) reported.push_back(*v);
    if (auto v = run.Number("disk_bytes")) disk.push_back(*v);
    in_memory = run.Number("in_memory").value_or(0) != 0;
  }
  const double total = static_cast<double>(keys * versions);
  const double payload = static_cast<double>(keys * Dataset::kKeyBytes) +
                         total * static_cast<double>(Dataset::kValueBytes);
  const double median = Median(rates);
  JsonLine line;
  line.Str("engine", engine_name).Str("workload", "W3");
  line.Int("keys", static_cast<int64_t>(keys)).Int("versions", static_cast<int64_t>(versions));
  line.Num("load_avg_1m", LoadAverage1m(), 2);
  line.Num("ops_per_s", median)
      .Num("ns_per_op", 1e9 / median, 2)
      .Int("median_of", static_cast<int64_t>(runs.size()))
      .Int("runs", static_cast<int64_t>(runs.size()))
      .NumList("run_ops_per_s", rates)
      .Bool("fresh_process_per_run", true)
      .Num("payload_bytes_per_version", payload / total, 2)
      .Num("rss_delta_bytes", Median(rss), 0)
      .Num("bytes_per_version", Median(rss) / total, 2)
      .Num("overhead_bytes_per_version", (Median(rss) - payload) / total, 2);
  if (!reported.empty()) {
    line.Num("store_memory_bytes", Median(reported), 0)
        .Num("store_bytes_per_version", Median(reported) / total, 2)
        .Num("store_overhead_bytes_per_version", (Median(reported) - payload) / total, 2);
  }
  if (!disk.empty()) line.Num("disk_bytes_per_version", Median(disk) / total, 2);
  if (!in_memory) {
    line.Str("note",
             "file-based engine: RSS delta counts its caches and mapped pages, not all "
             "of its data; see disk_bytes_per_version");
  }
  return line;
}

}  // namespace strata::bench
