// Log: the server's lines on stderr, as text ("strata-server: ...") or as
// JSON lines with level, time and component (etcd's --log-format json
// shape), below a level (--log-level). Throttled() keeps a flood of the
// same refusal to one line a minute, saying how many it stood for.
//
// Written by hand: a line is one write(2) of a few fields; spdlog (Debian)
// formats by pattern and would not escape a message into valid JSON.
#ifndef STRATA_OPS_LOG_H_
#define STRATA_OPS_LOG_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/mutex.h"

namespace strata::ops {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// "debug", "info", "warn", "error"; nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view name);

struct LogOptions {
  LogLevel level = LogLevel::kInfo;
  bool json = false;
  std::string program = "strata-server";  // text lines start with it
  int fd = 2;
  std::chrono::seconds throttle{60};
};

class Log {
 public:
  explicit Log(LogOptions options = {}) : options_(std::move(options)) {}

  void Write(LogLevel level, std::string_view component, std::string_view message) const;
  void Info(std::string_view component, std::string_view message) const {
    Write(LogLevel::kInfo, component, message);
  }
  // At most one line per `kind` per throttle interval; the next one says
  // how many were left out meanwhile.
  void Throttled(LogLevel level, std::string_view component, std::string_view kind,
                 std::string_view message);

  // One line as it would be written (for tests).
  std::string Format(LogLevel level, std::string_view component, std::string_view message,
                     std::chrono::system_clock::time_point now) const;

 private:
  struct Seen {
    std::chrono::steady_clock::time_point last;
    uint64_t left_out = 0;
  };
  const LogOptions options_;
  Mutex mu_;
  std::map<std::string, Seen, std::less<>> seen_ STRATA_GUARDED_BY(mu_);  // one entry per kind
};

}  // namespace strata::ops

#endif  // STRATA_OPS_LOG_H_
