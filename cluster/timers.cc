#include "cluster/timers.h"

namespace strata::cluster {

void Timers::After(Clock::duration delay, std::function<void()> task) {
  tasks_.emplace(now_ + delay, std::move(task));
}

void Timers::Every(std::chrono::milliseconds interval, std::function<void()> task) {
  After(interval, [this, interval, task = std::move(task)] {
    task();
    Every(interval, task);
  });
}

void Timers::After(Clock::duration delay, Owner owner, std::function<void()> task) {
  After(delay, [owner = std::move(owner), task = std::move(task)] {
    if (!owner.expired()) task();
  });
}

void Timers::Every(std::chrono::milliseconds interval, Owner owner, std::function<void()> task) {
  After(interval, [this, interval, owner = std::move(owner), task = std::move(task)] {
    if (owner.expired()) return;
    task();
    Every(interval, owner, task);
  });
}

Timers::Clock::time_point Timers::RunDue(Clock::time_point now) {
  now_ = now;
  while (!tasks_.empty() && tasks_.begin()->first <= now) {
    auto task = std::move(tasks_.begin()->second);
    tasks_.erase(tasks_.begin());
    task();
  }
  return tasks_.empty() ? Clock::time_point::max() : tasks_.begin()->first;
}

}  // namespace strata::cluster
