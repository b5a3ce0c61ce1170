#pragma once
// The live pipeline, one direction: annotate -> resolve instance -> record
// (taps: recording file, flight recorder, event lines, metrics) ->
// correlate. What the correlator asks for comes out as a detect::Output for
// the Dispatcher (dispatcher.h). The same object runs live, on a recording
// and on a capture dump (replay.h), so they reach the same verdicts.
#include <cstdint>
#include <functional>
#include <vector>

#include "detect/correlator.h"
#include "lunwatch.pb.h"

namespace lunwatch::detect {
class Annotator;
}
namespace lunwatch::inventory {
class InstanceResolver;
}

namespace lunwatch::agent {

class Pipeline {
 public:
  struct Options {
    detect::CorrelatorOptions correlator;
    // Live: stamp each event (wall and monotonic time when missing, a fresh
    // sequence number). Replay: events keep the stamps they were recorded with.
    bool stamp = true;
  };
  using Tap = std::function<void(const v1::Event&)>;
  using Clock = std::function<uint64_t()>;  // ns

  explicit Pipeline(Options options);

  // Kernel events only: names devices and resolves the instance first.
  // Annotator and resolver are optional (not on replay: recorded events
  // carry their annotation).
  void set_annotator(detect::Annotator* a) { annotator_ = a; }
  void set_resolver(inventory::InstanceResolver* r) { resolver_ = r; }
  // Observers of every stamped event, before the correlator, in order.
  void add_tap(Tap t) { taps_.push_back(std::move(t)); }
  // Time sources for stamping (tests set fixed clocks).
  void set_clocks(Clock unix_ms, Clock mono_ns);

  // A kernel event: annotate, resolve, stamp its wall time, then feed().
  void on_kernel_event(v1::Event&& ev, detect::Output& out);
  // Any event (sysfs, inventory, identity, bindings, kernel): stamp, taps, correlate.
  void feed(v1::Event ev, detect::Output& out);

  detect::Correlator& correlator() { return correlator_; }
  const detect::Correlator& correlator() const { return correlator_; }
  const detect::CorrelatorOptions& correlator_options() const { return options_.correlator; }
  uint64_t events() const { return seq_; }

 private:
  Options options_;
  detect::Correlator correlator_;
  detect::Annotator* annotator_ = nullptr;
  inventory::InstanceResolver* resolver_ = nullptr;
  std::vector<Tap> taps_;
  Clock unix_ms_;
  Clock mono_ns_;
  uint64_t seq_ = 0;
};

}  // namespace lunwatch::agent
