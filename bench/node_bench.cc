#include "bench/node_bench.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/subprocess.h"

namespace strata::bench {
namespace {

constexpr uint64_t kNodeSeed = 7;
// A node that sends nothing for this long is stuck (or lost messages).
constexpr int kStallTimeoutMs = 30'000;
constexpr int kExitTimeoutMs = 10'000;

// What the reply to one request must say, from a model of the store.
struct Expected {
  enum class Kind { kInit, kPut, kGet } kind = Kind::kInit;
  uint64_t version = 0;  // put: the key's write count; get: 0 = none found
  std::string value;     // get: the value found ("" when none)
};

struct NodeWorkload {
  std::string input;               // every request line, init first
  std::vector<Expected> expected;  // by msg_id
};

std::string PutValue(uint64_t ts) {
  return StrFormat("v%010llu", static_cast<unsigned long long>(ts));
}

NodeWorkload MakeNodeWorkload(const NodeBenchOptions& options) {
  NodeWorkload w;
  w.input.reserve(options.messages * 110);
  w.expected.resize(options.messages + 2);
  w.input +=
      R"({"src":"c1","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}})"
      "\n";
  w.expected[1].kind = Expected::Kind::kInit;

  // Timestamps rise with every put, so each key's versions are in order and
  // its write count is the index of the version plus one.
  std::vector<std::vector<uint64_t>> model(options.keys);
  std::mt19937_64 rng(kNodeSeed);
  std::uniform_int_distribution<uint64_t> key_dist(0, options.keys - 1);
  uint64_t last_ts = 0;
  for (uint64_t i = 0; i < options.messages; ++i) {
    const uint64_t msg_id = i + 2;
    const uint64_t k = key_dist(rng);
    const std::string key = StrFormat("k%05llu", static_cast<unsigned long long>(k));
    Expected& e = w.expected[msg_id];
    if (i % 2 == 0) {
      const uint64_t ts = ++last_ts;
      model[k].push_back(ts);
      e.kind = Expected::Kind::kPut;
      e.version = model[k].size();
      w.input += StrFormat(
          R"({"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":%llu,"key":"%s","value":"%s","timestamp":%llu}})"
          "\n",
          static_cast<unsigned long long>(msg_id), key.c_str(), PutValue(ts).c_str(),
          static_cast<unsigned long long>(ts));
    } else {
      const uint64_t read_ts = std::uniform_int_distribution<uint64_t>(0, last_ts)(rng);
      const auto& versions = model[k];
      const auto it = std::upper_bound(versions.begin(), versions.end(), read_ts);
      e.kind = Expected::Kind::kGet;
      if (it != versions.begin()) {
        e.version = static_cast<uint64_t>(it - versions.begin());
        e.value = PutValue(*std::prev(it));
      }
      w.input += StrFormat(
          R"({"src":"c1","dest":"n1","body":{"type":"mvcc_get","msg_id":%llu,"key":"%s","read_timestamp":%llu}})"
          "\n",
          static_cast<unsigned long long>(msg_id), key.c_str(),
          static_cast<unsigned long long>(read_ts));
    }
  }
  return w;
}

struct RunResult {
  double seconds = 0;
  uint64_t replies = 0;
  uint64_t errors = 0;  // replies of type "error"
  uint64_t wrong = 0;   // replies that disagree with the model, or duplicates
  uint64_t missing = 0;
  std::string first_problem;
};

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno != EINTR) {
      return;  // the node went away; the reader reports the missing replies
    }
  }
}

void CheckReplies(std::string_view output, const NodeWorkload& w, RunResult* result) {
  simdjson::dom::parser parser;
  std::vector<bool> seen(w.expected.size(), false);
  auto problem = [&](std::string_view what, std::string_view line) {
    ++result->wrong;
    if (result->first_problem.empty()) {
      result->first_problem = std::string(what) + ": " + std::string(line.substr(0, 300));
    }
  };
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string_view::npos) end = output.size();
    const std::string_view line = output.substr(start, end - start);
    start = end + 1;
    simdjson::dom::element body;
    if (parser.parse(line.data(), line.size())["body"].get(body) != simdjson::SUCCESS) {
      problem("not a JSON message with a body", line);
      continue;
    }
    std::string_view type;
    uint64_t in_reply_to = 0;
    if (body["type"].get(type) != simdjson::SUCCESS ||
        body["in_reply_to"].get(in_reply_to) != simdjson::SUCCESS ||
        in_reply_to >= w.expected.size() || in_reply_to == 0) {
      problem("reply without a usable type / in_reply_to", line);
      continue;
    }
    if (type == "error") {
      seen[in_reply_to] = true;  // answered, just not successfully
      ++result->errors;
      if (result->first_problem.empty())
        result->first_problem = "error reply: " + std::string(line);
      continue;
    }
    if (seen[in_reply_to]) {
      problem("second reply to one request", line);
      continue;
    }
    seen[in_reply_to] = true;
    const Expected& e = w.expected[in_reply_to];
    switch (e.kind) {
      case Expected::Kind::kInit:
        if (type != "init_ok") problem("expected init_ok", line);
        break;
      case Expected::Kind::kPut: {
        uint64_t version = 0;
        if (type != "mvcc_put_ok" || body["version"].get(version) != simdjson::SUCCESS ||
            version != e.version) {
          problem("mvcc_put_ok with the wrong version", line);
        }
        break;
      }
      case Expected::Kind::kGet: {
        if (type != "mvcc_get_ok") {
          problem("expected mvcc_get_ok", line);
          break;
        }
        simdjson::dom::element value = body["value"];
        if (e.version == 0) {
          if (!value.is_null()) problem("mvcc_get_ok found a value where there is none", line);
        } else {
          std::string_view got;
          uint64_t version = 0;
          if (value.get_string().get(got) != simdjson::SUCCESS || got != e.value ||
              body["version"].get(version) != simdjson::SUCCESS || version != e.version) {
            problem("mvcc_get_ok with the wrong value or version (expected " + e.value + " v" +
                        std::to_string(e.version) + ")",
                    line);
          }
        }
        break;
      }
    }
  }
  for (size_t id = 1; id < seen.size(); ++id) {
    if (!seen[id]) ++result->missing;
  }
  if (result->missing > 0 && result->first_problem.empty()) {
    result->first_problem = std::to_string(result->missing) + " requests got no reply";
  }
}

RunResult RunOnce(const NodeBenchOptions& options, const NodeWorkload& w) {
  const uint64_t expected_replies = options.messages + 1;
  Child child = SpawnChild({options.path}, /*pipe_stdin=*/true);
  // Bigger pipes mean fewer wake-ups on both sides; failure just keeps 64 KiB.
  fcntl(child.stdin_fd, F_SETPIPE_SZ, 1 << 20);
  fcntl(child.stdout_fd, F_SETPIPE_SZ, 1 << 20);

  RunResult result;
  std::string output;
  output.reserve(expected_replies * 100);
  const auto start = Clock::now();
  // The writer feeds stdin while this thread drains stdout: writing
  // everything first would deadlock once both pipes are full.
  std::thread writer([&] { WriteAll(child.stdin_fd, w.input); });
  uint64_t lines = 0;
  bool stalled = false;
  while (lines < expected_replies) {
    pollfd p{child.stdout_fd, POLLIN, 0};
    const int ready = poll(&p, 1, kStallTimeoutMs);
    if (ready == 0) {
      stalled = true;
      break;
    }
    if (ready < 0) {
      if (errno == EINTR) continue;
      Fatal(std::string("poll: ") + std::strerror(errno));
    }
    const size_t old_size = output.size();
    output.resize(old_size + (1 << 16));
    const ssize_t n = read(child.stdout_fd, output.data() + old_size, 1 << 16);
    output.resize(old_size + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n == 0) break;  // the node exited early
    if (n < 0) {
      if (errno == EINTR) continue;
      Fatal(std::string("read from node: ") + std::strerror(errno));
    }
    lines += static_cast<uint64_t>(
        std::count(output.begin() + static_cast<ptrdiff_t>(old_size), output.end(), '\n'));
  }
  result.seconds = SecondsSince(start);
  if (stalled) {
    std::fprintf(stderr, "  node sent nothing for %d s after %llu replies; killing it\n",
                 kStallTimeoutMs / 1000, static_cast<unsigned long long>(lines));
    kill(child.pid, SIGKILL);
  }
  writer.join();
  close(child.stdin_fd);  // EOF: the node should exit now

  // Collect anything extra (there should be nothing) until the node exits.
  while (true) {
    pollfd p{child.stdout_fd, POLLIN, 0};
    const int ready = poll(&p, 1, kExitTimeoutMs);
    if (ready == 0) {
      std::fprintf(stderr, "  node did not exit %d s after EOF on stdin; killing it\n",
                   kExitTimeoutMs / 1000);
      kill(child.pid, SIGKILL);
      break;
    }
    if (ready < 0 && errno == EINTR) continue;
    char buffer[1 << 16];
    const ssize_t n = read(child.stdout_fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  close(child.stdout_fd);
  const int status = WaitChild(child.pid);
  if (status != 0 && !stalled) {
    std::fprintf(stderr, "  node exited with status %d\n", status);
  }
  result.replies = static_cast<uint64_t>(std::count(output.begin(), output.end(), '\n'));
  CheckReplies(output, w, &result);
  return result;
}

}  // namespace

JsonLine RunNodeBench(const NodeBenchOptions& options, bool* ok) {
  if (access(options.path.c_str(), X_OK) != 0) Fatal("--node: cannot execute " + options.path);
  std::fprintf(stderr, "[node] generating %llu messages over %llu keys\n",
               static_cast<unsigned long long>(options.messages),
               static_cast<unsigned long long>(options.keys));
  const NodeWorkload w = MakeNodeWorkload(options);
  const uint64_t requests = options.messages + 1;
  std::vector<double> rates;
  RunResult worst;
  *ok = true;
  for (int run = 0; run < options.runs; ++run) {
    const RunResult r = RunOnce(options, w);
    rates.push_back(static_cast<double>(r.replies) / r.seconds);
    std::fprintf(stderr, "[node] run %d: %llu replies in %.3f s (%.0f msg/s)\n", run + 1,
                 static_cast<unsigned long long>(r.replies), r.seconds, rates.back());
    if (r.replies != requests || r.errors > 0 || r.wrong > 0 || r.missing > 0) {
      *ok = false;
      if (worst.first_problem.empty()) worst = r;
      std::fprintf(stderr, "[node] run %d FAILED: %llu errors, %llu wrong, %llu missing; %s\n",
                   run + 1, static_cast<unsigned long long>(r.errors),
                   static_cast<unsigned long long>(r.wrong),
                   static_cast<unsigned long long>(r.missing), r.first_problem.c_str());
    }
    if (worst.replies == 0) worst.replies = r.replies;
  }
  const double median = Median(rates);
  JsonLine line;
  line.Str("engine", "strata-node")
      .Str("workload", "node")
      .Num("ops_per_s", median)
      .Num("ns_per_op", 1e9 / median, 2)
      .Int("median_of", options.runs)
      .Int("runs", options.runs)
      .NumList("run_ops_per_s", rates)
      .Int("messages", static_cast<int64_t>(requests))
      .Int("keys", static_cast<int64_t>(options.keys))
      .Bool("verified", *ok)
      .Num("load_avg_1m", LoadAverage1m(), 2);
  if (!*ok) {
    line.Int("replies", static_cast<int64_t>(worst.replies))
        .Int("errors", static_cast<int64_t>(worst.errors))
        .Int("wrong", static_cast<int64_t>(worst.wrong))
        .Int("missing", static_cast<int64_t>(worst.missing))
        .Str("first_problem", worst.first_problem);
  }
  return line;
}

}  // namespace strata::bench
