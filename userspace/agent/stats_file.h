#pragma once
// `lunwatch run --stats-file`: kernel flow counters, drops, program stats and
// consumer counters as JSON, written when the agent stops.
#include <string>

#include "agent/timers.h"
#include "probes/loader.h"

namespace lunwatch::agent {

// With `loop`, also the event loop's time by kind of work ("loop_work").
void write_stats_file(const std::string& path, const probes::Probes& p, const LoopWork* loop = nullptr);

}  // namespace lunwatch::agent
