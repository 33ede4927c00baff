#include "service/auto_compactor.h"

#include <algorithm>
#include <cctype>

#include "base/thread_name.h"

namespace strata::service {

std::optional<AutoCompactionOptions> ParseAutoCompaction(const std::string& mode,
                                                         const std::string& retention,
                                                         std::string* error) {
  AutoCompactionOptions o;
  if (retention.empty() || retention == "0") return o;  // off
  size_t digits = 0;
  while (digits < retention.size() && std::isdigit(static_cast<unsigned char>(retention[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 15) {
    *error = "--auto-compaction-retention '" + retention + "' is not a number or a duration";
    return std::nullopt;
  }
  const int64_t n = std::stoll(retention.substr(0, digits));
  const std::string unit = retention.substr(digits);
  if (mode == "revision") {
    if (!unit.empty()) {
      *error = "--auto-compaction-retention for mode revision is a number of revisions";
      return std::nullopt;
    }
    o.mode = AutoCompactionOptions::Mode::kRevision;
    o.revisions = n;
    return o;
  }
  if (mode != "periodic") {
    *error = "--auto-compaction-mode must be 'periodic' or 'revision'";
    return std::nullopt;
  }
  o.mode = AutoCompactionOptions::Mode::kPeriodic;
  if (unit.empty() || unit == "h") {
    o.retention = std::chrono::hours(n);  // etcd: a plain number is hours
  } else if (unit == "m") {
    o.retention = std::chrono::minutes(n);
  } else if (unit == "s") {
    o.retention = std::chrono::seconds(n);
  } else if (unit == "ms") {
    o.retention = std::chrono::milliseconds(n);
  } else {
    *error = "--auto-compaction-retention '" + retention + "': units are h, m, s or ms";
    return std::nullopt;
  }
  return o;
}

AutoCompactor::AutoCompactor(KvService* kv, AutoCompactionOptions options)
    : kv_(kv), options_(options) {
  thread_ = std::thread([this] {
    NameThisThread("strata-compact");
    Run();
  });
}

AutoCompactor::~AutoCompactor() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void AutoCompactor::CompactTo(int64_t revision) {
  if (revision <= std::max<int64_t>(0, kv_->compact_revision())) return;
  // The answer arrives once the horizon is durable; nothing waits for it.
  kv_->Compact({revision, false}, [](Reply<CompactionResponse>) {});
}

void AutoCompactor::Run() {
  using Clock = std::chrono::steady_clock;
  const bool periodic = options_.mode == AutoCompactionOptions::Mode::kPeriodic;
  const auto tick = periodic ? std::max<std::chrono::milliseconds>(std::chrono::milliseconds(1000),
                                                                   options_.retention / 10)
                             : std::chrono::milliseconds(1000);
  std::deque<std::pair<Clock::time_point, int64_t>> samples;  // periodic: (when, revision)
  UniqueLock lock(mu_);
  while (!stop_) {
    if (cv_.WaitFor(lock, tick, [&]() STRATA_REQUIRES(mu_) { return stop_; })) break;
    lock.unlock();
    kv_->ApplyDeferredCompaction();
    const auto now = Clock::now();
    const int64_t current = kv_->current_revision();
    if (options_.mode == AutoCompactionOptions::Mode::kOff) {
      // Nothing of its own to compact.
    } else if (periodic) {
      samples.emplace_back(now, current);
      // The newest sample at least `retention` old is what may go.
      std::optional<int64_t> target;
      while (!samples.empty() && now - samples.front().first >= options_.retention) {
        target = samples.front().second;
        samples.pop_front();
      }
      if (target) CompactTo(*target);
    } else {
      const int64_t target = current - options_.revisions;
      const int64_t step = std::max<int64_t>(1, options_.revisions / 10);
      if (target >= std::max<int64_t>(0, kv_->compact_revision()) + step) CompactTo(target);
    }
    lock.lock();
  }
}

}  // namespace strata::service
