#pragma once
// `lunwatch run --stats-file`: kernel flow counters, drops, program stats and
// consumer counters as JSON, written when the agent stops.
#include <string>

#include "probes/loader.h"

namespace lunwatch::agent {

void write_stats_file(const std::string& path, const probes::Probes& p);

}  // namespace lunwatch::agent
