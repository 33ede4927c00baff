// strata-node: the strata store speaking the Maelstrom protocol on
// stdin/stdout. The messages are the contract in shared/spec/PROTOCOL.md
// (summarized in README.md); `strata-node --help` lists the flags.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "node/event_loop.h"
#include "node/node.h"

namespace {

// One line to stderr in one write, so that lines from the checkpointer
// thread never interleave with the event loop's.
void LogLine(std::string_view line) {
  std::string text = "strata-node: ";
  text.append(line).push_back('\n');
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata-node: an MVCC key-value store speaking the Maelstrom protocol"};
  std::optional<uint64_t> gc_retention;
  app.add_option("--gc-retention", gc_retention,
                 "collect garbage automatically, keeping N timestamps of history below the "
                 "highest timestamp seen")
      ->check(CLI::Range(uint64_t{0}, (uint64_t{1} << 63) - 1));
  std::string isolation = "serializable";
  app.add_option("--isolation", isolation,
                 "isolation of transactions that do not name one, and of the Maelstrom workloads")
      ->check(CLI::IsMember({"snapshot", "serializable"}));
  uint64_t txn_timeout_ms = 10000;
  app.add_option("--txn-timeout-ms", txn_timeout_ms,
                 "abort a transaction idle this long, so none can pin old versions forever")
      ->check(CLI::Range(uint64_t{1}, uint64_t{86'400'000}));
  std::optional<std::string> data_dir;
  app.add_option("--data-dir", data_dir,
                 "keep the store durable in this directory (created if missing; recovered at "
                 "start); without it the store lives in memory only");
  std::string sync = "batch";
  app.add_option("--sync", sync,
                 "with --data-dir: when a write's log record is made durable before its reply: "
                 "'always' (fsync at once; requests arriving meanwhile share it), 'batch' (wait up "
                 "to --sync-delay-us for more, then one fsync), 'none' (hand it to the OS only: "
                 "survives a process crash, not a power loss)")
      ->check(CLI::IsMember({"always", "batch", "none"}));
  uint64_t sync_delay_us = 1000;
  app.add_option("--sync-delay-us", sync_delay_us,
                 "with --sync batch: the longest a write waits for others to share its fsync")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1'000'000}));
  uint64_t checkpoint_log_mb = 256;
  app.add_option("--checkpoint-log-mb", checkpoint_log_mb,
                 "with --data-dir: write a checkpoint in the background once the log grew this "
                 "many MiB since the last one (bounds recovery time and disk use); 0: never")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 20));
  // Cluster timing (only used when init names several nodes).
  strata::node::ClusterOptions cluster;
  cluster.log = [](const std::string& line) { LogLine(line); };
  auto ms_option = [&app](const char* name, std::chrono::milliseconds* value, const char* help,
                          uint64_t min = 1) {
    auto* option = app.add_option_function<uint64_t>(
        name, [value](uint64_t ms) { *value = std::chrono::milliseconds(ms); }, help);
    option->check(CLI::Range(min, uint64_t{3'600'000}));
    option->default_str(std::to_string(value->count()));
  };
  ms_option("--heartbeat-ms", &cluster.heartbeat_interval,
            "cluster: how often a coordinator refreshes the record of a transaction it commits");
  ms_option("--heartbeat-timeout-ms", &cluster.heartbeat_timeout,
            "cluster: a record not refreshed this long may be aborted by a shard whose intents "
            "it holds (so a dead coordinator leaves no key locked)");
  ms_option("--push-after-ms", &cluster.push_after,
            "cluster: a read held by an intent asks the intent's record after this long");
  ms_option("--read-wait-ms", &cluster.read_wait,
            "cluster: a read held by an intent gives up (error 11) after this long");
  ms_option("--rpc-timeout-ms", &cluster.rpc_timeout,
            "cluster: a node-to-node request is resent until answered, and given up after this");
  ms_option("--max-clock-offset-ms", &cluster.max_clock_offset,
            "cluster: the most the nodes' wall clocks may differ; commits wait this long (plus "
            "1 ms) before they are acknowledged, for strict serializability",
            0);
  app.add_option("--replication-factor", cluster.replication_factor,
                 "cluster: each shard a Raft group of this many nodes (at most the nodes there "
                 "are), its log in <data-dir>/shard-raft; needs --data-dir. 1: each node its own "
                 "shard, unreplicated")
      ->check(CLI::Range(1u, 16u))
      ->default_str("1");
  ms_option("--raft-tick-ms", &cluster.raft_tick,
            "cluster with --replication-factor: Raft's clock; a follower that hears nothing from "
            "its leader for 10 ticks (up to 20) campaigns");
  CLI11_PARSE(app, argc, argv);
  if (cluster.replication_factor > 1) {
    if (!data_dir) {
      LogLine("--replication-factor needs --data-dir (the shards' Raft logs live there)");
      return 2;
    }
    cluster.raft_dir = *data_dir + "/shard-raft";
  }

  // A reader that goes away must not kill the node mid-write; the write
  // reports EPIPE instead and the loop ends cleanly.
  ::signal(SIGPIPE, SIG_IGN);

  strata::node::NodeOptions options;
  options.gc_retention = gc_retention;
  options.isolation =
      isolation == "snapshot" ? strata::Isolation::kSnapshot : strata::Isolation::kSerializable;
  options.txn_timeout = std::chrono::milliseconds(txn_timeout_ms);
  options.data_dir = data_dir;
  options.durability.sync = sync == "always" ? strata::SyncMode::kAlways
                            : sync == "none" ? strata::SyncMode::kNone
                                             : strata::SyncMode::kBatch;
  options.durability.batch_delay = std::chrono::microseconds(sync_delay_us);
  options.durability.checkpoint_after_log_bytes = checkpoint_log_mb << 20;
  options.durability.progress = LogLine;
  options.cluster = cluster;

  auto node = strata::node::Node::Open(options);
  if (!node.ok()) {
    LogLine("cannot open the data directory '" + data_dir.value_or("") +
            "': " + node.status().message());
    return 1;
  }
  if (const strata::RecoveryReport* r = (*node)->recovery()) {
    std::string line = "recovered " + *data_dir + " in " + std::to_string(r->elapsed.count()) +
                       " ms: " + std::to_string(r->checkpoint_versions) +
                       " versions from the checkpoint, " + std::to_string(r->records_replayed) +
                       " log records replayed, last LSN " + std::to_string(r->last_lsn);
    LogLine(line);
    if (r->torn_tail) LogLine("recovery: " + *r->torn_tail);
  }
  strata::node::EventLoop loop(node->get(), STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO);
  return loop.Run();
}
