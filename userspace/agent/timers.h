#pragma once
// The agent's periodic work as a table of (interval, action), run from the
// poll loop in table order. A timer can be brought forward (sysfs changed:
// re-read the topology soon, but not more often than a minimum gap).
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace lunwatch::agent {

class Timers {
 public:
  using Clock = std::chrono::steady_clock;
  using Action = std::function<void()>;

  // Runs every `interval`, first at `start + first` (first < 0: start + interval).
  void add(std::string name, Clock::duration interval, Action action, Clock::time_point start,
           Clock::duration first = Clock::duration(-1)) {
    Timer t{std::move(name), interval, std::move(action), start + (first < Clock::duration::zero() ? interval : first),
            start};
    timers_.push_back(std::move(t));
  }
  // Due soon: no later than min_gap after its last run (and not before now).
  void expedite(const std::string& name, Clock::duration min_gap) {
    for (auto& t : timers_)
      if (t.name == name) t.expedite_gap = min_gap;
  }
  // Runs what is due at `now`; an action's next run is `interval` after now.
  void run_due(Clock::time_point now) {
    for (auto& t : timers_) {
      bool early = t.expedite_gap >= Clock::duration::zero() && now - t.last > t.expedite_gap;
      if (!early && now < t.next) continue;
      t.expedite_gap = Clock::duration(-1);
      t.last = now;
      t.next = now + t.interval;
      t.action();
    }
  }
  size_t size() const { return timers_.size(); }

 private:
  struct Timer {
    std::string name;
    Clock::duration interval;
    Action action;
    Clock::time_point next;
    Clock::time_point last;
    Clock::duration expedite_gap = Clock::duration(-1);
  };
  std::vector<Timer> timers_;
};

inline Timers::Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Timers::Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace lunwatch::agent
