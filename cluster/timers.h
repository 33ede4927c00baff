// Timers: the event loop's time and delayed work, as the roles see it.
//
// Roles never read a clock for scheduling: the loop that drives them sets
// the current event's time and runs what is due, so a test drives time by
// hand and a run is repeatable. (Timestamps are another matter: they come
// from the hybrid clock.)
#ifndef STRATA_CLUSTER_TIMERS_H_
#define STRATA_CLUSTER_TIMERS_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>

namespace strata::cluster {

class Timers final {
 public:
  using Clock = std::chrono::steady_clock;

  // The current event's time.
  Clock::time_point now() const { return now_; }
  void SetNow(Clock::time_point now) { now_ = now; }

  // Runs `task` `delay` after now.
  void After(Clock::duration delay, std::function<void()> task);
  // Runs `task` every `interval`, first after one interval.
  void Every(std::chrono::milliseconds interval, std::function<void()> task);
  // The same for a task of an object that may go first (a shard's server,
  // when its replica moves away): it runs only while `owner` lives, and
  // an Every stops once it is gone.
  using Owner = std::weak_ptr<const void>;
  void After(Clock::duration delay, Owner owner, std::function<void()> task);
  void Every(std::chrono::milliseconds interval, Owner owner, std::function<void()> task);

  // Sets now, runs every task due by then (tasks may add tasks); returns
  // when the next one is due (time_point::max() if none).
  Clock::time_point RunDue(Clock::time_point now);

  size_t pending() const { return tasks_.size(); }

 private:
  Clock::time_point now_{};
  std::multimap<Clock::time_point, std::function<void()>> tasks_;
};

}  // namespace strata::cluster

#endif  // STRATA_CLUSTER_TIMERS_H_
