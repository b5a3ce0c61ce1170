#pragma once
// `lunwatch run`: builds the agent (agent/agent.h) and runs it. The settings
// and the pipeline live in agent/.
#include "agent/options.h"

namespace lunwatch::cli {

using agent::AgentOptions;

int run_agent(const AgentOptions& options);

}  // namespace lunwatch::cli
