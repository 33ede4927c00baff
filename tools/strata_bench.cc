// strata-bench: strata against its peers on the workloads of
// bench/workloads.h, strata's transactions against RocksDB's transactional
// DBs on those of bench/txn_workloads.h, and strata-node end to end.
//
//   strata-bench                         every engine, every workload, then a table
//   strata-bench --all [--node PATH]     the same (plus the node)
//   strata-bench --engine NAME[,NAME..] [--workload W1[,W2..]]
//                [--keys N --versions V --ops N --runs R]
//   strata-bench --txn-all               every transactional engine x TX and RO
//                                        x keys x dist x threads x isolation, then a table
//   strata-bench --engine NAME[,NAME..] --workload TX[,RO] [--keys N --dist D
//                --threads T --isolation I --duration S --runs R]
//   strata-bench --node PATH [--node-messages N --runs R]
//   strata-bench --etcd-api --server PATH [--etcd PATH] [--seconds S --runs R --row NAME]
//                                        strata-server against etcd over gRPC (the etcd
//                                        v3 API), then a markdown table
//   strata-bench --failover N --server PATH [--etcd PATH] [--replication-factor R]
//                                        the leader of three members killed -9 N times
//                                        under writes: seconds to the next write
//   strata-bench --cluster [--cluster-nodes 1,3,5 --clients C --seconds S --runs R]
//                                        the cluster in one process (members linked by
//                                        gRPC on loopback): cross-shard transactions
//   strata-bench --durable-all           durable writes (DW) and recovery (DR) for
//                                        strata and RocksDB, then markdown tables
//   strata-bench --engine NAME[,NAME..] --workload DW[,DR] [--sync M --threads T
//                --duration S --runs R --dw-keys N --recovery-versions N]
//
// stdout carries only JSON lines, one per measurement, so scripts can parse
// it; progress and the human table go to stderr.
//
// Process layout: a multi-engine run re-runs this binary once per engine so
// that no engine inherits another's heap or background threads, and W3 runs
// every load in its own fresh process so that load time and RSS growth start
// from the same clean state each time. The transactional workloads run one
// child per (engine, key count), each loading its keys once. The durability
// workloads run one child per (engine, sync mode) for DW and per (engine,
// data size) for DR; every DW run opens a fresh store in a fresh directory.
#include <absl/synchronization/mutex.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "bench/cluster_driver.h"
#include "bench/durable_report.h"
#include "bench/durable_workloads.h"
#include "bench/engine_adapter.h"
#include "bench/etcd_bench.h"
#include "bench/failover_bench.h"
#include "bench/json_line.h"
#include "bench/node_bench.h"
#include "bench/report_table.h"
#include "bench/subprocess.h"
#include "bench/txn_adapter.h"
#include "bench/txn_report.h"
#include "bench/txn_workloads.h"
#include "bench/workloads.h"

namespace strata::bench {
namespace {

constexpr std::string_view kUsage = R"(usage:
  strata-bench [--all] [--node PATH]       every engine x every workload, then a table on stderr
  strata-bench --engine NAME[,NAME...] [--workload W1[,W2,...]] [sizes]
  strata-bench --node PATH [--node-messages N] [--runs R]
  strata-bench --etcd-api --server PATH [--etcd PATH] [--seconds S] [--runs R] [--row NAME]
               [--members N [--replicated | --replication-factor R]]
                                           strata-server (and etcd) under one gRPC load
                                           generator: puts, ranges, the Kubernetes update
                                           Txn, lease grants; ops/s, p50/p99, server CPU
                                           per 1,000 ops, RSS; then a table on stderr;
                                           --members N: clusters of N members each (the
                                           key-value rows), load spread over the members;
                                           --replicated: strata's members replicate the key
                                           space (--cluster-mode replicated);
                                           --replication-factor R: each shard of a
                                           sharded cluster a Raft group of R members
  strata-bench --failover N --server PATH [--etcd PATH] [--replication-factor R]
                                           three replicated members (and three etcd
                                           members) under four writers; the leader
                                           killed -9 N times, started again between:
                                           seconds from each kill to the first write
                                           acknowledged after it, and until every
                                           writer's key is written again (p50, p90,
                                           max); --replication-factor R: strata as a
                                           sharded cluster with replicated shards, the
                                           member leading the most shards killed
  strata-bench --cluster [--cluster-nodes 1,3,5] [--clients C] [--seconds S] [--runs R]
                                           N cluster members in this process, linked by gRPC
                                           on loopback: single-shard (1PC) and multi-shard
                                           (2PC) transactions; txn/s, p50/p99, peer messages
                                           and CPU per transaction
  strata-bench --txn-all                   every transactional engine x TX, RO x every
                                           keys/dist/threads/isolation, then a table on stderr
  strata-bench --engine NAME[,NAME...] --workload TX[,RO] [transaction options]

engines:   strata, textbook, hash-binsearch, rocksdb, lmdb
workloads: W1 point reads (1M keys x 4 versions), W2 deep history (10k x 1000),
           W3 load + memory, W4 100-key scans, W5 reads with a concurrent writer
sizes:     --keys N --versions V     W1/W3/W4/W5 data set (default 1000000 x 4);
                                     for a run of only W2 they size W2 instead
           --w2-keys N --w2-versions V   W2 data set (default 10000 x 1000)
           --ops N                   reads per run (W4: keys scanned per run), default 1000000
           --runs R                  runs per measurement, the median is reported (default 3)
           --node-messages N         requests after init for --node (default 200000)
transactional engines: strata, rocksdb-optimistic, rocksdb-pessimistic
transactional workloads (not mixable with W1-W5 in one run):
           TX read-modify-write transactions (read 4 keys, write 2), retried on abort:
              committed txn/s and abort rate
           RO read-only snapshot transactions (10 reads), alone and with a committing writer
transaction options (each a comma-separated list; default: all of them):
           --keys N                  counters loaded (default 1000 and 1000000; one value only)
           --dist uniform,zipf       TX key choice (zipf: theta --zipf-theta, default 0.99)
           --threads 1,2             TX threads
           --isolation snapshot,serializable   strata's level (RO's writer uses the first);
                                     the RocksDB peers run theirs once whatever is asked
           --duration S              seconds per timed run (default 1.5)
           --runs R                  runs per measurement, the median is reported (default 3)
durability (strata::Store against RocksDB with its WAL; not mixable with the others):
  strata-bench --durable-all               the whole matrix below (about 3 minutes)
  strata-bench --engine NAME[,NAME...] --workload DW[,DR] [durability options]
durable engines: strata (one transaction per write), strata-raw (one raw put per
           write), rocksdb (one Put per write, WAL on)
durable workloads:
           DW durable writes for --duration S (default 2) per run by each of
              --threads writers (default 1,2,8): writes/s, latency p50/p99/p99.9, fsyncs
           DR recovery: load --recovery-versions N (default 1000000,2000000) as
              N/4 keys x 4 versions, time reopening (strata: log only, and a
              checkpoint + a log tail; RocksDB: WAL replay, and after a flush)
durability options:
           --sync always,batch,none  strata's SyncMode (RocksDB: always = sync=true,
                                     none = sync=false; it has no batch mode)
                                     default: all; --durable-all runs strata-raw in always only
                                     and RocksDB's DR at the first size only
           --dw-keys N               DW key space (default 100000)
           --threads, --duration, --runs as above
stdout: one JSON line per measurement; stderr: progress and the summary table.
)";

const std::vector<std::string_view> kWorkloads = {"W1", "W2", "W3", "W4", "W5"};

struct Flags {
  std::vector<std::string> engines;
  std::vector<std::string> workloads;
  std::optional<uint64_t> keys;
  std::optional<uint64_t> versions;
  uint64_t w2_keys = 10'000;
  uint64_t w2_versions = 1'000;
  uint64_t ops = 1'000'000;
  int runs = 3;
  std::string node_path;
  uint64_t node_messages = 200'000;
  bool all = false;
  bool load_run = false;  // internal: one W3 run in this fresh process
  // The transactional workloads.
  bool txn_all = false;
  std::vector<std::string> dists;
  std::vector<int> threads;
  std::vector<std::string> isolations;
  double duration = 1.5;
  double zipf_theta = 0.99;
  bool duration_given = false;  // DW's default duration differs from TX's
  // The etcd-API benchmark.
  bool etcd_api = false;
  std::string server_path;
  std::string etcd_path;
  int members = 1;
  bool replicated = false;
  int shard_replicas = 1;
  int failover_kills = 0;  // --failover N: the failover benchmark
  double seconds = 3;
  std::string row;
  // The in-process cluster.
  bool cluster = false;
  std::vector<int> cluster_nodes = {1, 3, 5};
  int clients = 32;
  // The durability workloads.
  bool durable_all = false;
  std::vector<std::string> syncs;
  uint64_t dw_keys = 100'000;
  std::vector<uint64_t> recovery_versions;
};

const std::vector<std::string_view> kTxnWorkloads = {"TX", "RO"};
const std::vector<std::string_view> kDurableWorkloads = {"DW", "DR"};

bool Contains(const std::vector<std::string_view>& names, std::string_view name) {
  for (const std::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    if (comma > start) items.emplace_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

uint64_t ParseCount(std::string_view flag, std::string_view text) {
  char* end = nullptr;
  const std::string copy(text);
  const unsigned long long value = std::strtoull(copy.c_str(), &end, 10);
  if (copy.empty() || *end != '\0' || value == 0) {
    Fatal(std::string(flag) + " needs a positive integer, got '" + copy + "'");
  }
  return value;
}

double ParsePositive(std::string_view flag, std::string_view text) {
  char* end = nullptr;
  const std::string copy(text);
  const double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || *end != '\0' || !(value > 0)) {
    Fatal(std::string(flag) + " needs a positive number, got '" + copy + "'");
  }
  return value;
}

// Checks every item of a list flag against the values it accepts.
std::vector<std::string> ParseChoices(std::string_view flag, std::string_view text,
                                      const std::vector<std::string_view>& accepted) {
  std::vector<std::string> items = SplitList(text);
  if (items.empty()) Fatal(std::string(flag) + " needs a value");
  for (const std::string& item : items) {
    if (!Contains(accepted, item)) Fatal("unknown " + std::string(flag) + " value " + item);
  }
  return items;
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) Fatal(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      std::exit(0);
    } else if (arg == "--all") {
      flags.all = true;
    } else if (arg == "--engine") {
      flags.engines = SplitList(value());
    } else if (arg == "--workload") {
      flags.workloads = SplitList(value());
    } else if (arg == "--keys") {
      flags.keys = ParseCount(arg, value());
    } else if (arg == "--versions") {
      flags.versions = ParseCount(arg, value());
    } else if (arg == "--w2-keys") {
      flags.w2_keys = ParseCount(arg, value());
    } else if (arg == "--w2-versions") {
      flags.w2_versions = ParseCount(arg, value());
    } else if (arg == "--ops") {
      flags.ops = ParseCount(arg, value());
    } else if (arg == "--runs") {
      flags.runs = static_cast<int>(ParseCount(arg, value()));
    } else if (arg == "--node") {
      flags.node_path = value();
    } else if (arg == "--node-messages") {
      flags.node_messages = ParseCount(arg, value());
    } else if (arg == "--internal-load-run") {
      flags.load_run = true;
    } else if (arg == "--txn-all") {
      flags.txn_all = true;
    } else if (arg == "--dist") {
      flags.dists = ParseChoices(arg, value(), {"uniform", "zipf"});
    } else if (arg == "--threads") {
      flags.threads.clear();
      for (const std::string& t : SplitList(value())) {
        flags.threads.push_back(static_cast<int>(ParseCount(arg, t)));
      }
      if (flags.threads.empty()) Fatal("--threads needs a value");
    } else if (arg == "--isolation") {
      flags.isolations = ParseChoices(arg, value(), {"snapshot", "serializable"});
    } else if (arg == "--duration") {
      flags.duration = ParsePositive(arg, value());
      flags.duration_given = true;
    } else if (arg == "--zipf-theta") {
      flags.zipf_theta = ParsePositive(arg, value());
      if (flags.zipf_theta >= 1) Fatal("--zipf-theta must be in (0, 1)");
    } else if (arg == "--etcd-api") {
      flags.etcd_api = true;
    } else if (arg == "--server") {
      flags.server_path = value();
    } else if (arg == "--etcd") {
      flags.etcd_path = value();
    } else if (arg == "--replicated") {
      flags.replicated = true;
    } else if (arg == "--replication-factor") {
      const uint64_t n = ParseCount(arg, value());
      if (n < 1 || n > 16) Fatal("--replication-factor: from 1 to 16");
      flags.shard_replicas = static_cast<int>(n);
    } else if (arg == "--failover") {
      const uint64_t n = ParseCount(arg, value());
      if (n < 1 || n > 1000) Fatal("--failover: from 1 to 1000 kills");
      flags.failover_kills = static_cast<int>(n);
    } else if (arg == "--members") {
      const uint64_t n = ParseCount(arg, value());
      if (n < 1 || n > 32) Fatal("--members: from 1 to 32");
      flags.members = static_cast<int>(n);
    } else if (arg == "--seconds") {
      flags.seconds = ParsePositive(arg, value());
    } else if (arg == "--row") {
      flags.row = value();
    } else if (arg == "--cluster") {
      flags.cluster = true;
    } else if (arg == "--cluster-nodes") {
      flags.cluster_nodes.clear();
      for (const std::string& n : SplitList(value())) {
        const uint64_t count = ParseCount(arg, n);
        if (count > 32) Fatal("--cluster-nodes: a cluster has at most 32 nodes");
        flags.cluster_nodes.push_back(static_cast<int>(count));
      }
    } else if (arg == "--clients") {
      const uint64_t clients = ParseCount(arg, value());
      if (clients > 10000) Fatal("--clients: at most 10000");
      flags.clients = static_cast<int>(clients);
    } else if (arg == "--durable-all") {
      flags.durable_all = true;
    } else if (arg == "--sync") {
      flags.syncs = ParseChoices(arg, value(), {"always", "batch", "none"});
    } else if (arg == "--dw-keys") {
      flags.dw_keys = ParseCount(arg, value());
    } else if (arg == "--recovery-versions") {
      flags.recovery_versions.clear();
      for (const std::string& n : SplitList(value())) {
        flags.recovery_versions.push_back(ParseCount(arg, n));
      }
      if (flags.recovery_versions.empty()) Fatal("--recovery-versions needs a value");
    } else {
      std::fputs(kUsage.data(), stderr);
      Fatal("unknown argument " + std::string(arg));
    }
  }
  for (const std::string& e : flags.engines) {
    if (!Contains(EngineNames(), e) && !Contains(TxnEngineNames(), e) &&
        !Contains(DurableEngineNames(), e)) {
      Fatal("unknown engine " + e);
    }
  }
  for (std::string& w : flags.workloads) {
    for (char& c : w) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!Contains(kWorkloads, w) && !Contains(kTxnWorkloads, w) &&
        !Contains(kDurableWorkloads, w)) {
      Fatal("unknown workload " + w);
    }
  }
  return flags;
}

bool Wants(const std::vector<std::string>& workloads, std::string_view w) {
  for (const std::string& x : workloads) {
    if (x == w) return true;
  }
  return false;
}

// Arguments that carry the sizes to a child process.
std::vector<std::string> SizeArgs(const Flags& flags) {
  std::vector<std::string> args = {"--ops",         std::to_string(flags.ops),
                                   "--runs",        std::to_string(flags.runs),
                                   "--w2-keys",     std::to_string(flags.w2_keys),
                                   "--w2-versions", std::to_string(flags.w2_versions)};
  if (flags.keys) args.insert(args.end(), {"--keys", std::to_string(*flags.keys)});
  if (flags.versions) args.insert(args.end(), {"--versions", std::to_string(*flags.versions)});
  return args;
}

void PrintLine(const JsonLine& line, std::vector<ParsedLine>* collected) {
  line.Print();
  if (collected != nullptr) {
    if (auto parsed = ParseLine(line.ToString())) collected->push_back(std::move(*parsed));
  }
}

// W3: every run loads into a fresh engine in a fresh process.
void RunLoadWorkload(const Flags& flags, std::string_view engine, uint64_t keys,
                     uint64_t versions) {
  std::vector<ParsedLine> runs;
  for (int run = 0; run < flags.runs; ++run) {
    std::fprintf(stderr, "[%s] W3 load run %d/%d (fresh process)\n", std::string(engine).c_str(),
                 run + 1, flags.runs);
    RunChildLines({SelfPath(), "--internal-load-run", "--engine", std::string(engine), "--keys",
                   std::to_string(keys), "--versions", std::to_string(versions)},
                  [&](std::string_view text) {
                    auto parsed = ParseLine(text);
                    if (!parsed || parsed->workload() != "W3-run") {
                      Fatal("unexpected output from a W3 run: " + std::string(text));
                    }
                    std::fprintf(stderr, "  %s W3 run %d/%d: %s puts/s, RSS +%.1f B/version\n",
                                 std::string(engine).c_str(), run + 1, flags.runs,
                                 HumanCount(parsed->Number("ops_per_s").value_or(0)).c_str(),
                                 parsed->Number("rss_delta_bytes").value_or(0) /
                                     static_cast<double>(keys * versions));
                    runs.push_back(std::move(*parsed));
                  });
  }
  SummarizeLoad(engine, runs, keys, versions).Print();
}

// Every requested workload on one engine, in this process (W3 excepted).
void RunEngine(const Flags& flags, std::string_view name) {
  // Sizes: --keys/--versions size W2 only when W2 is all that was asked for.
  const bool only_w2 = flags.workloads.size() == 1 && flags.workloads[0] == "W2";
  const uint64_t keys = flags.keys.value_or(1'000'000);
  const uint64_t versions = flags.versions.value_or(4);
  const uint64_t w2_keys = only_w2 ? flags.keys.value_or(flags.w2_keys) : flags.w2_keys;
  const uint64_t w2_versions =
      only_w2 ? flags.versions.value_or(flags.w2_versions) : flags.w2_versions;
  const RunOptions options{flags.ops, flags.runs};
  const std::string label = "[" + std::string(name) + "]";

  // W3 first: its runs are separate processes, best started while this one
  // holds no data set.
  if (Wants(flags.workloads, "W3")) RunLoadWorkload(flags, name, keys, versions);

  if (Wants(flags.workloads, "W1") || Wants(flags.workloads, "W4") ||
      Wants(flags.workloads, "W5")) {
    std::fprintf(stderr, "%s loading %llu keys x %llu versions\n", label.c_str(),
                 static_cast<unsigned long long>(keys), static_cast<unsigned long long>(versions));
    const Dataset data(keys, versions);
    std::unique_ptr<EngineAdapter> engine = MakeEngine(name);
    const double seconds = Load(*engine, data);
    engine->Settle();
    std::fprintf(stderr, "%s loaded in %.1f s\n", label.c_str(), seconds);
    if (Wants(flags.workloads, "W1")) {
      std::fprintf(stderr, "%s W1 point reads\n", label.c_str());
      RunPointReads(*engine, data, options, "W1").Print();
    }
    if (Wants(flags.workloads, "W4")) {
      if (auto line = RunScans(*engine, data, options)) {
        std::fprintf(stderr, "%s W4 scans done\n", label.c_str());
        line->Print();
      } else {
        std::fprintf(stderr, "%s W4 skipped: no key order\n", label.c_str());
      }
    }
    // Last: it appends versions to the data set.
    if (Wants(flags.workloads, "W5")) {
      std::fprintf(stderr, "%s W5 reads with a concurrent writer\n", label.c_str());
      RunConcurrent(*engine, data, options).Print();
    }
  }

  if (Wants(flags.workloads, "W2")) {
    std::fprintf(stderr, "%s W2: loading %llu keys x %llu versions\n", label.c_str(),
                 static_cast<unsigned long long>(w2_keys),
                 static_cast<unsigned long long>(w2_versions));
    const Dataset data(w2_keys, w2_versions);
    std::unique_ptr<EngineAdapter> engine = MakeEngine(name);
    Load(*engine, data);
    engine->Settle();
    RunPointReads(*engine, data, options, "W2").Print();
  }
}

std::string MachineSummary() {
  std::string load = "?";
  std::ifstream loadavg("/proc/loadavg");
  std::getline(loadavg, load);
  return StrFormat("%ld CPUs, load average %s", sysconf(_SC_NPROCESSORS_ONLN), load.c_str());
}

// --- the transactional workloads (TX, RO) ----------------------------------

// The flags' transactional choices, with the defaults filled in.
struct TxnPlan {
  std::vector<std::string> engines;
  std::vector<std::string> workloads;
  std::vector<uint64_t> keys;
  std::vector<KeyDist> dists;
  std::vector<int> threads;
  std::vector<TxnIsolation> isolations;
  TxnRunOptions options;
};

TxnPlan MakeTxnPlan(const Flags& flags) {
  TxnPlan plan;
  plan.workloads = flags.workloads;
  if (plan.workloads.empty()) plan.workloads = {"TX", "RO"};
  for (const std::string& w : plan.workloads) {
    if (!Contains(kTxnWorkloads, w)) {
      Fatal("workload " + w + " cannot run with TX/RO or --txn-all; run it separately");
    }
  }
  if (flags.all) Fatal("--all and --txn-all (or TX/RO) cannot be combined; run them separately");
  plan.engines = flags.engines;
  if (plan.engines.empty()) plan.engines.assign(TxnEngineNames().begin(), TxnEngineNames().end());
  for (const std::string& e : plan.engines) {
    if (!Contains(TxnEngineNames(), e)) Fatal("engine " + e + " has no transactional adapter");
  }
  plan.keys =
      flags.keys ? std::vector<uint64_t>{*flags.keys} : std::vector<uint64_t>{1000, 1000000};
  const std::vector<std::string> dists =
      flags.dists.empty() ? std::vector<std::string>{"uniform", "zipf"} : flags.dists;
  for (const std::string& d : dists)
    plan.dists.push_back(d == "zipf" ? KeyDist::kZipf : KeyDist::kUniform);
  plan.threads = flags.threads.empty() ? std::vector<int>{1, 2} : flags.threads;
  const std::vector<std::string> isolations =
      flags.isolations.empty() ? std::vector<std::string>{"snapshot", "serializable"}
                               : flags.isolations;
  for (const std::string& i : isolations) {
    plan.isolations.push_back(i == "serializable" ? TxnIsolation::kSerializable
                                                  : TxnIsolation::kSnapshot);
  }
  plan.options.seconds = flags.duration;
  plan.options.runs = flags.runs;
  plan.options.zipf_theta = flags.zipf_theta;
  return plan;
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

// Every requested transactional measurement on one engine and key count,
// in this process.
void RunTxnEngine(const TxnPlan& plan, std::string_view name, uint64_t keys) {
  std::unique_ptr<TxnAdapter> engine = MakeTxnEngine(name);
  TxnBench bench(engine.get(), keys, plan.options, plan.isolations);
  // A peer with one fixed behaviour runs each combination once.
  std::vector<TxnIsolation> isolations = plan.isolations;
  if (!engine->honours_isolation()) isolations.resize(1);
  if (Wants(plan.workloads, "TX")) {
    for (const KeyDist dist : plan.dists) {
      for (const int threads : plan.threads) {
        for (const TxnIsolation isolation : isolations) {
          bench.RunReadModifyWrite(dist, threads, isolation).Print();
        }
      }
    }
  }
  if (Wants(plan.workloads, "RO")) bench.RunReadOnly(plan.isolations.front()).Print();
  bench.CheckCounters("every workload");
}

int RunTxnMain(const Flags& flags) {
  const TxnPlan plan = MakeTxnPlan(flags);
  if (plan.engines.size() == 1 && plan.keys.size() == 1 && !flags.txn_all) {
    RunTxnEngine(plan, plan.engines[0], plan.keys[0]);
    return 0;
  }
  // Several: one child process per (engine, key count), lines forwarded as
  // they come, then the table.
  std::fprintf(stderr, "strata-bench: %s; transactional workloads %s; median of %d runs x %.2g s\n",
               MachineSummary().c_str(), JoinList(plan.workloads).c_str(), flags.runs,
               flags.duration);
  std::vector<std::string> thread_list;
  for (const int t : plan.threads) thread_list.push_back(std::to_string(t));
  std::vector<std::string> dist_list;
  for (const KeyDist d : plan.dists) dist_list.emplace_back(KeyDistName(d));
  std::vector<std::string> isolation_list;
  for (const TxnIsolation i : plan.isolations) isolation_list.emplace_back(TxnIsolationName(i));
  std::vector<ParsedLine> collected;
  const auto start = Clock::now();
  for (const std::string& engine : plan.engines) {
    for (const uint64_t keys : plan.keys) {
      RunChildLines(
          {SelfPath(), "--engine", engine, "--workload", JoinList(plan.workloads), "--keys",
           std::to_string(keys), "--dist", JoinList(dist_list), "--threads", JoinList(thread_list),
           "--isolation", JoinList(isolation_list), "--duration", StrFormat("%g", flags.duration),
           "--runs", std::to_string(flags.runs), "--zipf-theta", StrFormat("%g", flags.zipf_theta)},
          [&](std::string_view text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fputc('\n', stdout);
            std::fflush(stdout);
            if (auto parsed = ParseLine(text)) collected.push_back(std::move(*parsed));
          });
    }
  }
  std::vector<std::string_view> engines(plan.engines.begin(), plan.engines.end());
  std::fputs(FormatTxnReportTable(engines, collected).c_str(), stderr);
  std::fprintf(stderr, "total time %.0f s\n", SecondsSince(start));
  return 0;
}

// --- the durability workloads (DW, DR) --------------------------------------

// Every requested DW cell and DR size of one engine, in this process.
void RunDurableEngine(const Flags& flags, std::string_view engine,
                      const std::vector<DurableSync>& syncs, const std::vector<int>& threads,
                      const std::vector<uint64_t>& recovery_versions) {
  if (Wants(flags.workloads, "DW")) {
    DurableWriteOptions options;
    options.runs = flags.runs;
    options.keys = flags.dw_keys;
    if (flags.duration_given) options.seconds = flags.duration;
    for (const DurableSync sync : syncs) {
      if (!DurableEngineSupports(engine, sync)) {
        std::fprintf(stderr, "[%s] DW sync=%s: not a mode of this engine, skipped\n",
                     std::string(engine).c_str(), std::string(DurableSyncName(sync)).c_str());
        continue;
      }
      for (const int t : threads) RunDurableWrites(engine, sync, t, options).Print();
    }
  }
  if (Wants(flags.workloads, "DR")) {
    if (!RecoveryEngineSupported(engine)) {
      std::fprintf(stderr, "[%s] DR: measured as strata, skipped\n", std::string(engine).c_str());
      return;
    }
    RecoveryOptions options;
    options.runs = flags.runs;
    for (const uint64_t versions : recovery_versions) {
      options.versions = versions;
      RunRecovery(engine, options).Print();
    }
  }
}

int RunDurableMain(Flags flags) {
  if (flags.all || flags.txn_all) Fatal("--durable-all (or DW/DR) runs on its own");
  if (flags.workloads.empty()) flags.workloads = {"DW", "DR"};
  for (const std::string& w : flags.workloads) {
    if (!Contains(kDurableWorkloads, w)) {
      Fatal("workload " + w + " cannot run with DW/DR or --durable-all; run it separately");
    }
  }
  std::vector<std::string> engines = flags.engines;
  if (engines.empty()) engines.assign(DurableEngineNames().begin(), DurableEngineNames().end());
  for (const std::string& e : engines) {
    if (!Contains(DurableEngineNames(), e)) Fatal("engine " + e + " has no durable adapter");
  }
  std::vector<DurableSync> syncs;
  for (const std::string& s : flags.syncs) syncs.push_back(*ParseDurableSync(s));
  const bool syncs_given = !syncs.empty();
  if (!syncs_given) syncs = {DurableSync::kAlways, DurableSync::kBatch, DurableSync::kNone};
  const std::vector<int> threads =
      flags.threads.empty() ? std::vector<int>{1, 2, 8} : flags.threads;
  const std::vector<uint64_t> recovery_versions = flags.recovery_versions.empty()
                                                      ? std::vector<uint64_t>{1'000'000, 2'000'000}
                                                      : flags.recovery_versions;

  if (engines.size() == 1 && !flags.durable_all) {
    RunDurableEngine(flags, engines[0], syncs, threads, recovery_versions);
    return 0;
  }

  // Several: one child per (engine, sync mode) for DW and per (engine, size)
  // for DR, lines forwarded as they come, then the tables.
  std::vector<std::string> thread_list;
  for (const int t : threads) thread_list.push_back(std::to_string(t));
  std::fprintf(stderr, "strata-bench: %s; durability workloads %s; median of %d runs\n",
               MachineSummary().c_str(), JoinList(flags.workloads).c_str(), flags.runs);
  std::vector<ParsedLine> collected;
  auto run_child = [&](std::vector<std::string> args) {
    args.insert(args.begin(), SelfPath());
    args.insert(args.end(), {"--runs", std::to_string(flags.runs)});
    RunChildLines(args, [&](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
      if (auto parsed = ParseLine(text)) collected.push_back(std::move(*parsed));
    });
  };
  const auto start = Clock::now();
  if (Wants(flags.workloads, "DW")) {
    for (const std::string& engine : engines) {
      for (const DurableSync sync : syncs) {
        if (!DurableEngineSupports(engine, sync)) continue;
        // The raw writes only add a row per writer count to compare the
        // transaction's own cost with: one mode is enough for the matrix,
        // the one compared with RocksDB's sync=true.
        if (engine == "strata-raw" && !syncs_given && sync != DurableSync::kAlways) continue;
        std::vector<std::string> args = {"--engine",   engine,
                                         "--workload", "DW",
                                         "--sync",     std::string(DurableSyncName(sync)),
                                         "--threads",  JoinList(thread_list),
                                         "--dw-keys",  std::to_string(flags.dw_keys)};
        if (flags.duration_given)
          args.insert(args.end(), {"--duration", StrFormat("%g", flags.duration)});
        run_child(args);
      }
    }
  }
  if (Wants(flags.workloads, "DR")) {
    for (const std::string& engine : engines) {
      if (!RecoveryEngineSupported(engine)) continue;
      for (const uint64_t versions : recovery_versions) {
        // RocksDB is a side reference here: by default only at the first
        // size, which keeps --durable-all near three minutes.
        if (engine == "rocksdb" && flags.recovery_versions.empty() &&
            versions != recovery_versions.front()) {
          continue;
        }
        run_child({"--engine", engine, "--workload", "DR", "--recovery-versions",
                   std::to_string(versions)});
      }
    }
  }
  std::fputs(FormatDurableReport(collected).c_str(), stderr);
  std::fprintf(stderr, "total time %.0f s\n", SecondsSince(start));
  return 0;
}

int Main(int argc, char** argv) {
  // As strata-server does: Debian's Abseil checks every lock gRPC takes
  // for deadlocks, which its release builds do not (the load generator's
  // CPU is the servers' too on a small machine).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The node benchmark writes to a pipe whose reader may die; that is a
  // result to report, not a reason to be killed by SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  Flags flags = ParseFlags(argc, argv);

  if (flags.load_run) {
    if (flags.engines.size() != 1) Fatal("--internal-load-run needs exactly one --engine");
    RunLoadOnce(flags.engines[0], flags.keys.value_or(1'000'000), flags.versions.value_or(4))
        .Print();
    return 0;
  }
  if (flags.cluster) {
    RunClusterBench(
        {flags.cluster_nodes, {"single", "multi"}, flags.clients, flags.seconds, flags.runs});
    return 0;
  }
  if (flags.failover_kills > 0) {
    if (flags.server_path.empty()) Fatal("--failover needs --server PATH (strata-server)");
    RunFailoverBench(
        {flags.server_path, flags.etcd_path, flags.failover_kills, flags.shard_replicas});
    return 0;
  }
  if (flags.etcd_api) {
    if (flags.server_path.empty()) Fatal("--etcd-api needs --server PATH (strata-server)");
    RunEtcdBench({flags.server_path, flags.etcd_path, flags.seconds, flags.runs, flags.row,
                  flags.members, flags.replicated, flags.shard_replicas});
    return 0;
  }
  bool durable_workloads = flags.durable_all;
  for (const std::string& w : flags.workloads)
    durable_workloads = durable_workloads || Contains(kDurableWorkloads, w);
  if (durable_workloads) return RunDurableMain(flags);
  bool txn_workloads = flags.txn_all;
  for (const std::string& w : flags.workloads)
    txn_workloads = txn_workloads || Contains(kTxnWorkloads, w);
  if (txn_workloads) return RunTxnMain(flags);
  for (const std::string& e : flags.engines) {
    if (!Contains(EngineNames(), e)) Fatal("engine " + e + " only runs the TX and RO workloads");
  }
  if (flags.workloads.empty()) flags.workloads.assign(kWorkloads.begin(), kWorkloads.end());

  const bool node_only = !flags.node_path.empty() && !flags.all && flags.engines.empty();
  bool ok = true;
  if (node_only) {
    NodeBenchOptions node{flags.node_path, flags.node_messages, 10'000, flags.runs};
    RunNodeBench(node, &ok).Print();
    return ok ? 0 : 1;
  }

  if (flags.engines.size() == 1 && !flags.all) {
    RunEngine(flags, flags.engines[0]);
    return 0;
  }

  // Several engines: one child process per engine, lines forwarded as they
  // come, then the table.
  std::vector<std::string_view> engines;
  if (flags.engines.empty()) {
    engines = EngineNames();
  } else {
    for (const std::string& e : flags.engines) engines.push_back(e);
  }
  std::string workload_list;
  for (const std::string& w : flags.workloads)
    workload_list += (workload_list.empty() ? "" : ",") + w;
  std::fprintf(stderr, "strata-bench: %s; workloads %s; median of %d runs\n",
               MachineSummary().c_str(), workload_list.c_str(), flags.runs);
  std::vector<ParsedLine> collected;
  const auto start = Clock::now();
  for (const std::string_view engine : engines) {
    std::vector<std::string> args = {SelfPath(), "--engine", std::string(engine), "--workload",
                                     workload_list};
    const std::vector<std::string> sizes = SizeArgs(flags);
    args.insert(args.end(), sizes.begin(), sizes.end());
    RunChildLines(args, [&](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
      if (auto parsed = ParseLine(text)) collected.push_back(std::move(*parsed));
    });
  }
  if (!flags.node_path.empty()) {
    NodeBenchOptions node{flags.node_path, flags.node_messages, 10'000, flags.runs};
    PrintLine(RunNodeBench(node, &ok), &collected);
  }
  const std::string table = FormatReportTable(engines, collected);
  std::fputs(table.c_str(), stderr);
  std::fprintf(stderr, "total time %.0f s\n", SecondsSince(start));
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) { return strata::bench::Main(argc, argv); }
