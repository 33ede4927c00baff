#include "ops/log.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "protocol/json_writer.h"

namespace strata::ops {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

std::string Log::Format(LogLevel level, std::string_view component, std::string_view message,
                        std::chrono::system_clock::time_point now) const {
  std::string line;
  if (!options_.json) {
    line = options_.program + ": ";
    if (level >= LogLevel::kWarn) line += std::string(LevelName(level)) + ": ";
    line.append(message);
    line.push_back('\n');
    return line;
  }
  // RFC 3339 in UTC with milliseconds, as etcd's "ts".
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char ts[80];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  line = "{\"level\":\"";
  line += LevelName(level);
  line += "\",\"ts\":\"";
  line += ts;
  line += "\",\"component\":";
  protocol::AppendJsonString(&line, component);
  line += ",\"msg\":";
  protocol::AppendJsonString(&line, message);
  line += "}\n";
  return line;
}

void Log::Write(LogLevel level, std::string_view component, std::string_view message) const {
  if (level < options_.level) return;
  const std::string line = Format(level, component, message, std::chrono::system_clock::now());
  // One write a line, so lines from several threads never interleave.
  (void)!::write(options_.fd, line.data(), line.size());
}

void Log::Throttled(LogLevel level, std::string_view component, std::string_view kind,
                    std::string_view message) {
  if (level < options_.level) return;
  const auto now = std::chrono::steady_clock::now();
  uint64_t left_out = 0;
  {
    MutexLock lock(mu_);
    auto it = seen_.find(kind);
    if (it != seen_.end() && now - it->second.last < options_.throttle) {
      ++it->second.left_out;
      return;
    }
    if (it == seen_.end()) {
      // Kinds are a fixed few (the server's refusals); the bound is a
      // guard, not a limit anyone should reach.
      if (seen_.size() >= 1024) seen_.clear();
      it = seen_.emplace(std::string(kind), Seen{}).first;
    }
    left_out = it->second.left_out;
    it->second = Seen{now, 0};
  }
  std::string line(message);
  if (left_out > 0) {
    line += " (and " + std::to_string(left_out) + " more like it since the last such line)";
  }
  Write(level, component, line);
}

}  // namespace strata::ops
