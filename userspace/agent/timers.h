#pragma once
// The agent's periodic work as a table of (interval, action), run from the
// poll loop in table order. A timer can be brought forward (sysfs changed:
// re-read the topology soon, but not more often than a minimum gap).
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace lunwatch::agent {

// Where the agent's single loop spends its time, by kind of work (each timer
// by name, and the event, answer and refresh handling around them): the loop
// serves the stop flag, the timers and the ring in turn, so a slow work item
// delays all of them. Exported as lunwatch_loop_work_seconds_total{work}.
class LoopWork {
 public:
  using Clock = std::chrono::steady_clock;
  struct Work {
    double seconds = 0;  // wall time in it, in all
    uint64_t runs = 0;
    double longest_s = 0;  // the longest single run
  };
  // Runs fn and books its wall time under `work`; returns that time.
  double run(const std::string& work, const std::function<void()>& fn) {
    auto t0 = Clock::now();
    fn();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    auto& w = works_[work];
    w.seconds += s;
    w.runs++;
    if (s > w.longest_s) w.longest_s = s;
    if (on_slow && s >= slow_s) on_slow(work, s);
    return s;
  }
  // Called after a single run of at least slow_s (the agent logs it).
  std::function<void(const std::string& work, double seconds)> on_slow;
  double slow_s = 2.0;
  const std::map<std::string, Work>& works() const { return works_; }

 private:
  std::map<std::string, Work> works_;
};

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
  // With `account`, each action's time is booked under the timer's name.
  void run_due(Clock::time_point now, LoopWork* account = nullptr) {
    for (auto& t : timers_) {
      bool early = t.expedite_gap >= Clock::duration::zero() && now - t.last > t.expedite_gap;
      if (!early && now < t.next) continue;
      t.expedite_gap = Clock::duration(-1);
      t.last = now;
      t.next = now + t.interval;
      if (account)
        account->run(t.name, t.action);
      else
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
