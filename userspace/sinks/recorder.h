#pragma once
// The flight recorder: the last N seconds of events (bounded in bytes too),
// plus a baseline of the state-setting events that fell out of the window
// (latest inventory per source, topology, bindings, identity per device, stack
// edges, SCSI bindings), so a capture replays to the same verdict.
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "lunwatch.pb.h"

namespace lunwatch::sinks {

class FlightRecorder {
 public:
  struct Options {
    int64_t keep_ms = 70'000;          // window length (before + after of a capture)
    uint64_t max_bytes = 64ull << 20;  // window size bound
  };
  FlightRecorder();
  explicit FlightRecorder(Options o);

  void add(const v1::Event& ev);
  std::vector<v1::Event> window() const { return {window_.begin(), window_.end()}; }
  // Baseline events older than the window's first event, in arrival order.
  std::vector<v1::Event> baseline() const;
  uint64_t bytes() const { return bytes_; }
  uint64_t evicted() const { return evicted_; }

 private:
  void evict_front();
  Options opt_;
  std::deque<v1::Event> window_;
  std::deque<size_t> sizes_;
  uint64_t bytes_ = 0;
  uint64_t evicted_ = 0;
  std::map<std::string, v1::Event> baseline_;
};

// Which baseline slot a state-setting event occupies ("" for events that set no state).
std::string baseline_key(const v1::Event& ev);

}  // namespace lunwatch::sinks
