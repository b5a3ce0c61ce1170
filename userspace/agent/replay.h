#pragma once
// Replay: a recording (`lunwatch run --record`) or a capture dump's events run
// through the same Pipeline as the live agent, with the correlator options of
// the same config (options.h), so it reaches the same verdicts. Events keep
// the stamps they were recorded with.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "detect/correlator.h"
#include "lunwatch.pb.h"

namespace lunwatch::agent {

struct ReplaySinks {
  std::function<void(const v1::Alert&)> alert;
  std::function<void(const v1::Event&)> event;  // every event, before the correlator
};

// Events replayed, or why the recording could not be read.
Result<uint64_t> replay_recording(const std::string& path, const detect::CorrelatorOptions& options,
                                  const ReplaySinks& sinks);
// Alerts raised.
uint64_t replay_events(const std::vector<v1::Event>& events, const detect::CorrelatorOptions& options,
                       const ReplaySinks& sinks);

}  // namespace lunwatch::agent
