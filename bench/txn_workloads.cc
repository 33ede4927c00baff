#include "bench/txn_workloads.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <numeric>
#include <random>
#include <thread>

#include "bench/bench_util.h"

namespace strata::bench {
namespace {

constexpr int kReadsPerTxn = 4;
constexpr int kWritesPerTxn = 2;  // the first kWritesPerTxn keys read
constexpr int kReadsPerSnapshot = 10;

// Transactions per thread precomputed before timing; a thread that gets
// through them all starts over. Large enough that one pass over uniform
// keys touches about a million keys, so the repetition does not shrink the
// working set of the 1M-key runs much.
constexpr size_t kRingTxns = size_t{1} << 18;

// Fixed seeds: every engine runs the same transactions.
constexpr uint64_t kPermutationSeed = 11;
constexpr uint64_t kTxSeed = 12;
constexpr uint64_t kReaderSeed = 13;
constexpr uint64_t kWriterSeed = 14;
constexpr uint64_t kCheckSeed = 15;

constexpr double kCheckSeconds = 0.3;
constexpr double kSnapshotCheckSeconds = 0.5;

// What a thread's transactions came to.
struct TxnCounters {
  uint64_t commits = 0;
  uint64_t attempts = 0;
  std::array<uint64_t, kTxnStepKinds> aborts{};

  uint64_t aborted() const { return std::accumulate(aborts.begin(), aborts.end(), uint64_t{0}); }
  void Add(const TxnCounters& other) {
    commits += other.commits;
    attempts += other.attempts;
    for (int i = 0; i < kTxnStepKinds; ++i) aborts[i] += other.aborts[i];
  }
  double abort_rate() const {
    return attempts == 0 ? 0 : static_cast<double>(aborted()) / static_cast<double>(attempts);
  }
};

// Runs one attempt of the read-modify-write on `keys` (kReadsPerTxn
// distinct keys). Anything but kOk leaves the transaction to roll back.
TxnStep AttemptReadModifyWrite(TxnSession& session, const std::string* const* keys) {
  session.Begin(/*read_only=*/false);
  uint64_t values[kReadsPerTxn];
  for (int i = 0; i < kReadsPerTxn; ++i) {
    const TxnStep step = session.Get(*keys[i], /*for_update=*/i < kWritesPerTxn, &values[i]);
    if (step != TxnStep::kOk) return step;
  }
  for (int i = 0; i < kWritesPerTxn; ++i) {
    const TxnStep step = session.Put(*keys[i], values[i] + 1);
    if (step != TxnStep::kOk) return step;
  }
  return session.Commit();
}

// Set by the timing thread when a run's time is up; checked once per
// transaction.
struct StopFlag {
  std::atomic<bool> stop{false};
  bool stopped() const { return stop.load(std::memory_order_relaxed); }
};

// The key sequence of one thread: `txns` transactions of `per_txn`
// distinct key indexes each.
struct KeyRing {
  int per_txn = 0;
  std::vector<const std::string*> keys;
  size_t txns() const { return keys.size() / static_cast<size_t>(per_txn); }
  const std::string* const* txn(size_t i) const {
    return &keys[(i % txns()) * static_cast<size_t>(per_txn)];
  }
};

// Read-modify-writes from `ring` until `stop`, retrying each on abort.
// Publishes its commit count as it goes (for RO's consistency check).
void ReadModifyWriteLoop(TxnSession& session, const KeyRing& ring, const StopFlag& flag,
                         TxnCounters* counters, std::atomic<uint64_t>* published_commits) {
  for (size_t next = 0; !flag.stopped(); ++next) {
    const std::string* const* keys = ring.txn(next);
    while (true) {
      ++counters->attempts;
      const TxnStep step = AttemptReadModifyWrite(session, keys);
      if (step == TxnStep::kOk) {
        ++counters->commits;
        if (published_commits != nullptr) {
          published_commits->store(counters->commits, std::memory_order_release);
        }
        break;
      }
      ++counters->aborts[static_cast<int>(step)];
      session.Rollback();
      if (flag.stopped()) break;  // the abandoned transaction left no trace
    }
  }
}

// Read-only transactions of `ring.per_txn` reads from `ring` until `stop`.
uint64_t ReadOnlyLoop(TxnSession& session, const KeyRing& ring, const StopFlag& flag) {
  uint64_t txns = 0;
  uint64_t sink = 0;
  for (size_t next = 0; !flag.stopped(); ++next) {
    const std::string* const* keys = ring.txn(next);
    session.Begin(/*read_only=*/true);
    for (int i = 0; i < ring.per_txn; ++i) {
      uint64_t value = 0;
      if (session.Get(*keys[i], /*for_update=*/false, &value) != TxnStep::kOk) {
        Fatal("a read-only transaction's read failed");
      }
      sink += value;
    }
    if (session.Commit() != TxnStep::kOk) Fatal("a read-only transaction failed to commit");
    ++txns;
  }
  DoNotOptimize(sink);
  return txns;
}

std::string Abbreviated(uint64_t keys) {
  if (keys >= 1'000'000 && keys % 1'000'000 == 0) return std::to_string(keys / 1'000'000) + "M";
  if (keys >= 1'000 && keys % 1'000 == 0) return std::to_string(keys / 1'000) + "k";
  return std::to_string(keys);
}

}  // namespace

std::string_view KeyDistName(KeyDist dist) { return dist == KeyDist::kZipf ? "zipf" : "uniform"; }

// The keys, and how ranks map onto them: Zipf's rank 0 is the hottest, and
// a fixed shuffle spreads the hot ranks over the key space, so no engine
// gets its hot set packed into a few neighbouring keys (one block in
// RocksDB's sorted files) for free.
class TxnBench::KeySpace final {
 public:
  KeySpace(uint64_t count, double theta) : zipf_(std::max<uint64_t>(count, 2), theta) {
    if (count == 0 || count > 100'000'000) Fatal("--keys must be in [1, 100000000]");
    keys_.reserve(count);
    char buffer[32];
    for (uint64_t i = 0; i < count; ++i) {
      std::snprintf(buffer, sizeof(buffer), "key%08llu", static_cast<unsigned long long>(i));
      keys_.emplace_back(buffer);
    }
    order_.resize(count);
    std::iota(order_.begin(), order_.end(), uint32_t{0});
    std::mt19937_64 rng(kPermutationSeed);
    std::shuffle(order_.begin(), order_.end(), rng);
  }

  const std::vector<std::string>& keys() const { return keys_; }
  uint64_t size() const { return keys_.size(); }

  KeyRing MakeRing(KeyDist dist, int per_txn, size_t txns, uint64_t seed) const {
    if (static_cast<uint64_t>(per_txn) > size()) Fatal("fewer keys than reads per transaction");
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<uint64_t> uniform(0, size() - 1);
    KeyRing ring;
    ring.per_txn = per_txn;
    ring.keys.reserve(txns * static_cast<size_t>(per_txn));
    std::vector<uint64_t> chosen;
    for (size_t t = 0; t < txns; ++t) {
      chosen.clear();
      while (chosen.size() < static_cast<size_t>(per_txn)) {
        const uint64_t index = dist == KeyDist::kZipf ? order_[zipf_(rng) % size()] : uniform(rng);
        if (std::find(chosen.begin(), chosen.end(), index) == chosen.end()) {
          chosen.push_back(index);
        }
      }
      for (const uint64_t index : chosen) ring.keys.push_back(&keys_[index]);
    }
    return ring;
  }

  double zipf_top_probability() const { return zipf_.top_probability(); }

 private:
  std::vector<std::string> keys_;
  std::vector<uint32_t> order_;  // Zipf rank -> key index
  ZipfGenerator zipf_;
};

namespace {

// Runs `threads` read-modify-write loops for `seconds`; returns their
// summed counters and sets `*elapsed` to the run's wall time.
TxnCounters TimedReadModifyWrite(TxnAdapter& engine, TxnIsolation isolation,
                                 const std::vector<KeyRing>& rings, double seconds,
                                 double* elapsed) {
  const size_t threads = rings.size();
  std::vector<std::unique_ptr<TxnSession>> sessions;
  for (size_t t = 0; t < threads; ++t) sessions.push_back(engine.NewSession(isolation));
  std::vector<TxnCounters> counters(threads);
  StopFlag flag;
  std::atomic<size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      ReadModifyWriteLoop(*sessions[t], rings[t], flag, &counters[t], nullptr);
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  flag.stop.store(true);
  for (std::thread& w : workers) w.join();
  *elapsed = SecondsSince(start);
  TxnCounters total;
  for (const TxnCounters& c : counters) total.Add(c);
  return total;
}

}  // namespace

TxnBench::TxnBench(TxnAdapter* engine, uint64_t keys, const TxnRunOptions& options,
                   const std::vector<TxnIsolation>& isolations)
    : engine_(engine),
      options_(options),
      space_(std::make_shared<const KeySpace>(keys, options.zipf_theta)) {
  const std::string label = StrFormat("[%s]", std::string(engine->name()).c_str());
  std::fprintf(stderr, "%s loading %s counters\n", label.c_str(), Abbreviated(keys).c_str());
  const auto start = Clock::now();
  engine_->Load(space_->keys());
  std::fprintf(stderr, "%s loaded in %.1f s\n", label.c_str(), SecondsSince(start));
  CheckCounters("the load");

  // Two threads on the skewed keys: the conflict-heavy case, where a lost
  // update or a double-applied retry would show up.
  std::vector<TxnIsolation> checked = {TxnIsolation::kSnapshot};
  if (engine->honours_isolation()) checked = isolations;
  for (const TxnIsolation isolation : checked) {
    std::vector<KeyRing> rings;
    for (int t = 0; t < 2; ++t) {
      rings.push_back(space_->MakeRing(KeyDist::kZipf, kReadsPerTxn, 1 << 14, kCheckSeed + t));
    }
    double elapsed = 0;
    const TxnCounters counters =
        TimedReadModifyWrite(*engine_, isolation, rings, kCheckSeconds, &elapsed);
    commits_ += counters.commits;
    CheckCounters(StrFormat("%llu concurrent %s increments (%llu aborts)",
                            static_cast<unsigned long long>(counters.commits),
                            std::string(engine->IsolationLabel(isolation)).c_str(),
                            static_cast<unsigned long long>(counters.aborted())));
  }
}

void TxnBench::CheckCounters(std::string_view when) {
  std::unique_ptr<TxnSession> session = engine_->NewSession(TxnIsolation::kSnapshot);
  session->Begin(/*read_only=*/true);
  uint64_t sum = 0;
  for (const std::string& key : space_->keys()) {
    uint64_t value = 0;
    if (session->Get(key, /*for_update=*/false, &value) != TxnStep::kOk) {
      Fatal("a read-only read failed while checking the counters");
    }
    sum += value;
  }
  if (session->Commit() != TxnStep::kOk) Fatal("a read-only transaction failed to commit");
  if (sum != 2 * commits_) {
    Fatal(StrFormat("%s: the counters add up to %llu after %.*s, expected 2 x %llu commits",
                    std::string(engine_->name()).c_str(), static_cast<unsigned long long>(sum),
                    static_cast<int>(when.size()), when.data(),
                    static_cast<unsigned long long>(commits_)));
  }
  std::fprintf(stderr, "  %s check ok: counters sum to 2 x %llu commits after %.*s\n",
               std::string(engine_->name()).c_str(), static_cast<unsigned long long>(commits_),
               static_cast<int>(when.size()), when.data());
}

JsonLine TxnBench::RunReadModifyWrite(KeyDist dist, int threads, TxnIsolation isolation) {
  const std::string what =
      StrFormat("%s TX %s %s t=%d %s", std::string(engine_->name()).c_str(),
                Abbreviated(space_->size()).c_str(), std::string(KeyDistName(dist)).c_str(),
                threads, std::string(engine_->IsolationLabel(isolation)).c_str());
  std::vector<KeyRing> rings;
  for (int t = 0; t < threads; ++t) {
    rings.push_back(space_->MakeRing(dist, kReadsPerTxn, kRingTxns, kTxSeed + t));
  }
  double elapsed = 0;
  commits_ +=
      TimedReadModifyWrite(*engine_, isolation, rings, options_.warmup_seconds, &elapsed).commits;
  engine_->BetweenRuns();

  std::vector<double> rates;
  std::vector<double> abort_rates;
  std::vector<double> attempt_rates;
  TxnCounters total;
  double total_seconds = 0;
  for (int run = 0; run < options_.runs; ++run) {
    const TxnCounters counters =
        TimedReadModifyWrite(*engine_, isolation, rings, options_.seconds, &elapsed);
    engine_->BetweenRuns();
    commits_ += counters.commits;
    total.Add(counters);
    total_seconds += elapsed;
    rates.push_back(static_cast<double>(counters.commits) / elapsed);
    attempt_rates.push_back(static_cast<double>(counters.attempts) / elapsed);
    abort_rates.push_back(counters.abort_rate());
    std::fprintf(stderr, "  %s run %d/%d: %s txn/s committed, aborts %.2f%%\n", what.c_str(),
                 run + 1, options_.runs, HumanCount(rates.back()).c_str(),
                 100 * abort_rates.back());
  }

  const double median = Median(rates);
  JsonLine line;
  line.Str("engine", engine_->name()).Str("workload", "TX");
  line.Int("keys", static_cast<int64_t>(space_->size()))
      .Str("dist", KeyDistName(dist))
      .Int("threads", threads)
      .Str("isolation", engine_->IsolationLabel(isolation))
      .Str("isolation_requested", TxnIsolationName(isolation))
      .Num("load_avg_1m", LoadAverage1m(), 2);
  if (dist == KeyDist::kZipf) {
    line.Num("zipf_theta", options_.zipf_theta, 2)
        .Num("zipf_top_key_p", space_->zipf_top_probability(), 4);
  }
  line.Num("ops_per_s", median)
      .Str("ops_unit", "committed txns")
      .Num("ns_per_op", 1e9 / median, 1)
      .Num("abort_rate", Median(abort_rates), 5)
      .Num("attempts_per_s", Median(attempt_rates))
      .Int("reads_per_txn", kReadsPerTxn)
      .Int("writes_per_txn", kWritesPerTxn)
      .Int("median_of", options_.runs)
      .Int("runs", options_.runs)
      .Num("seconds_per_run", options_.seconds, 2)
      .NumList("run_ops_per_s", rates)
      .NumList("run_abort_rate", abort_rates, 5)
      .Int("commits", static_cast<int64_t>(total.commits))
      .Int("attempts", static_cast<int64_t>(total.attempts));
  for (int i = 1; i < kTxnStepKinds; ++i) {
    line.Int("aborts_" + std::string(TxnStepName(static_cast<TxnStep>(i))),
             static_cast<int64_t>(total.aborts[i]));
  }
  line.Str("note", engine_->validation_note()).Str("config", engine_->config());
  return line;
}

JsonLine TxnBench::RunReadOnly(TxnIsolation isolation) {
  const std::string what = StrFormat("%s RO %s", std::string(engine_->name()).c_str(),
                                     Abbreviated(space_->size()).c_str());
  const KeyRing reader_ring =
      space_->MakeRing(KeyDist::kUniform, kReadsPerSnapshot, kRingTxns, kReaderSeed);
  const KeyRing writer_ring =
      space_->MakeRing(KeyDist::kUniform, kReadsPerTxn, kRingTxns, kWriterSeed);
  std::unique_ptr<TxnSession> reader = engine_->NewSession(isolation);
  std::unique_ptr<TxnSession> writer = engine_->NewSession(isolation);

  // The writer, on its own thread until Stop: returns its counters and time.
  struct WriterRun {
    StopFlag flag;
    std::atomic<uint64_t> published{0};
    TxnCounters counters;
    double seconds = 0;
    std::thread thread;
  };
  auto start_writer = [&](WriterRun* run) {
    run->thread = std::thread([&, run] {
      const auto start = Clock::now();
      ReadModifyWriteLoop(*writer, writer_ring, run->flag, &run->counters, &run->published);
      run->seconds = SecondsSince(start);
    });
    // Measure only once the writer is really committing.
    while (run->published.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  };
  auto stop_writer = [&](WriterRun* run) {
    run->flag.stop.store(true);
    run->thread.join();
    commits_ += run->counters.commits;
  };
  auto time_reader = [&](double seconds) {
    StopFlag flag;
    const auto start = Clock::now();
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      flag.stop.store(true);
    });
    const uint64_t txns = ReadOnlyLoop(*reader, reader_ring, flag);
    stopper.join();
    return static_cast<double>(txns) / SecondsSince(start);
  };

  // Untimed check: every read-only snapshot of all the counters sees whole
  // commits only (an even sum), never less than what had committed before
  // it began, never more than what had committed by its end (+2 for one
  // commit applied but not yet counted), and never goes backwards.
  {
    WriterRun run;
    start_writer(&run);
    const uint64_t base = commits_;
    uint64_t previous = 0;
    int snapshots = 0;
    const auto start = Clock::now();
    while (snapshots < 2 || SecondsSince(start) < kSnapshotCheckSeconds) {
      const uint64_t before = base + run.published.load(std::memory_order_acquire);
      reader->Begin(/*read_only=*/true);
      uint64_t sum = 0;
      for (const std::string& key : space_->keys()) {
        uint64_t value = 0;
        if (reader->Get(key, false, &value) != TxnStep::kOk) Fatal("read-only read failed");
        sum += value;
      }
      if (reader->Commit() != TxnStep::kOk) Fatal("read-only commit failed");
      const uint64_t after = base + run.published.load(std::memory_order_acquire);
      if (sum % 2 != 0 || sum < 2 * before || sum > 2 * after + 2 || sum < previous) {
        Fatal(StrFormat(
            "%s: a snapshot's counters sum to %llu; expected an even sum in "
            "[2 x %llu, 2 x %llu + 2] and at least the previous snapshot's %llu",
            what.c_str(), static_cast<unsigned long long>(sum),
            static_cast<unsigned long long>(before), static_cast<unsigned long long>(after),
            static_cast<unsigned long long>(previous)));
      }
      previous = sum;
      ++snapshots;
    }
    stop_writer(&run);
    std::fprintf(stderr, "  %s check ok: %d full snapshots consistent under a writer\n",
                 what.c_str(), snapshots);
    engine_->BetweenRuns();
  }

  time_reader(options_.warmup_seconds);
  std::vector<double> alone_rates;
  std::vector<double> with_rates;
  std::vector<double> ratios;
  std::vector<double> writer_rates;
  std::vector<double> writer_abort_rates;
  for (int r = 0; r < options_.runs; ++r) {
    // Alone and with the writer back to back in every run, so drift of the
    // machine affects both sides of each ratio alike.
    const double alone = time_reader(options_.seconds);
    WriterRun run;
    start_writer(&run);
    const double with = time_reader(options_.seconds);
    stop_writer(&run);
    engine_->BetweenRuns();
    alone_rates.push_back(alone);
    with_rates.push_back(with);
    ratios.push_back(with / alone);
    writer_rates.push_back(static_cast<double>(run.counters.commits) / run.seconds);
    writer_abort_rates.push_back(run.counters.abort_rate());
    std::fprintf(stderr, "  %s run %d/%d: %s ro txn/s alone, %s with a writer (%s commits/s)\n",
                 what.c_str(), r + 1, options_.runs, HumanCount(alone).c_str(),
                 HumanCount(with).c_str(), HumanCount(writer_rates.back()).c_str());
  }
  const double median = Median(with_rates);
  JsonLine line;
  line.Str("engine", engine_->name()).Str("workload", "RO");
  line.Int("keys", static_cast<int64_t>(space_->size()))
      .Str("dist", "uniform")
      .Int("threads", 2)
      .Str("isolation", engine_->IsolationLabel(isolation))
      .Str("isolation_requested", TxnIsolationName(isolation))
      .Num("load_avg_1m", LoadAverage1m(), 2)
      .Num("ops_per_s", median)
      .Str("ops_unit", "read-only txns with a writer")
      .Num("reads_per_s", median * kReadsPerSnapshot)
      .Num("reader_alone_ops_per_s", Median(alone_rates))
      .Num("reader_ratio", Median(ratios), 3)
      .Num("writer_commits_per_s", Median(writer_rates))
      .Num("writer_abort_rate", Median(writer_abort_rates), 5)
      .Int("reads_per_txn", kReadsPerSnapshot)
      .Int("median_of", options_.runs)
      .Int("runs", options_.runs)
      .Num("seconds_per_run", options_.seconds, 2)
      .NumList("run_ops_per_s", with_rates)
      .NumList("run_reader_alone_ops_per_s", alone_rates)
      .Str("config", engine_->config());
  return line;
}

}  // namespace strata::bench
