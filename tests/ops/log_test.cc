// Log: text and JSON lines, levels, and throttled refusals that say how
// many they stood for.
#include "ops/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace strata::ops {
namespace {

// Everything written to a pipe so far.
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

struct Pipe {
  Pipe() { EXPECT_EQ(::pipe(fds), 0); }
  ~Pipe() {
    ::close(fds[0]);
    if (fds[1] >= 0) ::close(fds[1]);
  }
  std::string Close() {
    ::close(fds[1]);
    fds[1] = -1;
    return ReadAll(fds[0]);
  }
  int fds[2] = {-1, -1};
};

TEST(LogTest, TextLinesCarryTheProgramAndWarningsTheirLevel) {
  Pipe p;
  LogOptions o;
  o.fd = p.fds[1];
  Log log(o);
  log.Info("server", "ready");
  log.Write(LogLevel::kWarn, "health", "unhealthy");
  log.Write(LogLevel::kDebug, "server", "not shown at info");
  EXPECT_EQ(p.Close(), "strata-server: ready\nstrata-server: warn: unhealthy\n");
}

TEST(LogTest, JsonLinesEscapeTheMessage) {
  LogOptions o;
  o.json = true;
  Log log(o);
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796432770123));
  EXPECT_EQ(log.Format(LogLevel::kError, "storage", "a \"quoted\"\\path\nnext\x01", at),
            "{\"level\":\"error\",\"ts\":\"2026-12-05T01:06:10.123Z\",\"component\":\"storage\","
            "\"msg\":\"a \\\"quoted\\\"\\\\path\\nnext\\u0001\"}\n");
}

TEST(LogTest, ThrottledKindsWriteOnceAnIntervalAndCountTheRest) {
  Pipe p;
  LogOptions o;
  o.fd = p.fds[1];
  o.throttle = std::chrono::seconds(0);  // every call may write...
  Log every(o);
  every.Throttled(LogLevel::kWarn, "server", "a", "first");
  every.Throttled(LogLevel::kWarn, "server", "a", "second");
  o.throttle = std::chrono::seconds(3600);  // ...or one an hour
  Log hourly(o);
  for (int i = 0; i < 5; ++i) hourly.Throttled(LogLevel::kWarn, "server", "b", "flood");
  hourly.Throttled(LogLevel::kWarn, "server", "c", "another kind");
  EXPECT_EQ(p.Close(),
            "strata-server: warn: first\nstrata-server: warn: second\n"
            "strata-server: warn: flood\nstrata-server: warn: another kind\n");
}

TEST(LogTest, LevelsParse) {
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarn);
  EXPECT_FALSE(ParseLogLevel("loud").has_value());
}

}  // namespace
}  // namespace strata::ops
