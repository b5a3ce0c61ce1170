#include "agent/replay.h"

#include "agent/dispatcher.h"
#include "agent/pipeline.h"
#include "sinks/recording.h"

namespace lunwatch::agent {
namespace {

struct Replay {
  Replay(const detect::CorrelatorOptions& options, const ReplaySinks& sinks)
      : pipeline(Pipeline::Options{options, false}), dispatcher(targets(sinks)) {
    if (sinks.event) pipeline.add_tap(sinks.event);
  }
  static DispatchTargets targets(const ReplaySinks& sinks) {
    DispatchTargets t;
    t.alert = sinks.alert;
    return t;
  }
  void feed(const v1::Event& ev) {
    detect::Output out;
    pipeline.feed(ev, out);
    dispatcher.dispatch(out);
  }
  Pipeline pipeline;
  Dispatcher dispatcher;
};

}  // namespace

Result<uint64_t> replay_recording(const std::string& path, const detect::CorrelatorOptions& options,
                                  const ReplaySinks& sinks) {
  Replay r(options, sinks);
  return sinks::read_recording(path, [&](v1::Event&& ev) { r.feed(ev); });
}

uint64_t replay_events(const std::vector<v1::Event>& events, const detect::CorrelatorOptions& options,
                       const ReplaySinks& sinks) {
  Replay r(options, sinks);
  for (const auto& e : events) r.feed(e);
  return r.dispatcher.stats().alerts;
}

}  // namespace lunwatch::agent
