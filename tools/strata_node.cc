// strata-node: the strata store speaking the Maelstrom protocol on
// stdin/stdout. The messages are the contract in shared/spec/PROTOCOL.md
// (summarized in README.md); `strata-node --help` lists the flags.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "node/event_loop.h"
#include "node/node.h"

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
  CLI11_PARSE(app, argc, argv);

  // A reader that goes away must not kill the node mid-write; the write
  // reports EPIPE instead and the loop ends cleanly.
  ::signal(SIGPIPE, SIG_IGN);

  strata::node::NodeOptions options;
  options.gc_retention = gc_retention;
  options.isolation =
      isolation == "snapshot" ? strata::Isolation::kSnapshot : strata::Isolation::kSerializable;
  options.txn_timeout = std::chrono::milliseconds(txn_timeout_ms);
  strata::node::Node node(options);
  strata::node::EventLoop loop(&node, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO);
  return loop.Run();
}
