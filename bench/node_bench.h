// --node: end-to-end throughput of the strata-node binary over its real
// stdin/stdout pipes, with every reply checked against a model.
#ifndef STRATA_BENCH_NODE_BENCH_H_
#define STRATA_BENCH_NODE_BENCH_H_

#include <cstdint>
#include <string>

#include "bench/json_line.h"

namespace strata::bench {

struct NodeBenchOptions {
  std::string path;             // the strata-node executable
  uint64_t messages = 200'000;  // after init; half mvcc_put, half mvcc_get
  uint64_t keys = 10'000;
  int runs = 3;
};

// Returns the measurement line; `*ok` is false if any run lost a reply or
// got a wrong or error reply (the line says which).
JsonLine RunNodeBench(const NodeBenchOptions& options, bool* ok);

}  // namespace strata::bench

#endif  // STRATA_BENCH_NODE_BENCH_H_
