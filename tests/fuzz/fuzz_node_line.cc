// libFuzzer target: arbitrary bytes, split into lines, through Node::HandleLine.
//
// One Node lives for the whole run, so state built by earlier inputs (keys,
// versions, a compaction horizon) shapes how later inputs are handled, the
// way a long-running node accumulates state. Beyond the sanitizers'
// checks, every line the node emits must be one complete JSON object line,
// and every log entry one complete line: PROTOCOL.md section 1 allows
// nothing else on stdout.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "node/node.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "invariant violated: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

// Output appended by one HandleLine call: zero or more lines, each a JSON
// object, each ending in '\n'.
void CheckOutput(std::string_view out, simdjson::dom::parser& parser) {
  if (!out.empty() && out.back() != '\n') Fail("output does not end in a newline", out);
  while (!out.empty()) {
    size_t newline = out.find('\n');
    std::string_view line = out.substr(0, newline);
    out.remove_prefix(newline + 1);
    simdjson::dom::element element;
    if (parser.parse(line.data(), line.size()).get(element) != simdjson::SUCCESS) {
      Fail("output line is not JSON", line);
    }
    if (!element.is_object()) Fail("output line is not a JSON object", line);
  }
}

// A node initialized with `init_line`. Never destroyed: the fuzzer exits
// without unwinding, and a reachable static is not a leak.
strata::node::Node* InitializedNode(std::string_view init_line) {
  auto* n = new strata::node::Node(strata::node::NodeOptions{});
  // Start initialized so the fuzzer explores the API rather than spending
  // its time discovering `init`; inputs may still send their own.
  std::string out, log;
  n->HandleLine(init_line, &out, &log);
  return n;
}

// A single node, and a member of a three-node cluster whose peers are
// absent: every line goes to both, so node-to-node messages (src "n2",
// "n3") reach the cluster's handlers, and requests that need a peer leave
// calls in flight for the timers.
strata::node::Node& SingleNode() {
  static strata::node::Node* node = InitializedNode(
      R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}})");
  return *node;
}

strata::node::Node& ClusterMember() {
  static strata::node::Node* node = InitializedNode(
      R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2","n3"]}})");
  return *node;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static simdjson::dom::parser parser;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string out, log;
  while (true) {
    size_t newline = input.find('\n');
    std::string_view line = input.substr(0, newline);
    for (strata::node::Node* node : {&SingleNode(), &ClusterMember()}) {
      out.clear();
      log.clear();
      node->HandleLine(line, &out, &log);
      CheckOutput(out, parser);
      if (!log.empty() && log.back() != '\n') Fail("log entry does not end in a newline", log);
    }
    if (newline == std::string_view::npos) break;
    input.remove_prefix(newline + 1);
  }
  out.clear();
  ClusterMember().RunTimers(strata::node::Node::Clock::now(), &out);
  CheckOutput(out, parser);
  return 0;
}
