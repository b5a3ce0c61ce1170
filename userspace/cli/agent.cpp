#include "cli/agent.h"

#include "agent/agent.h"
#include "cli/commands.h"
#include "common/log.h"

namespace lunwatch::cli {

int run_agent(const AgentOptions& options) {
  auto agent = agent::Agent::make(options);
  if (!agent.ok()) {
    log::error(agent.error().message);
    return exit_code(agent.error().code);
  }
  return agent.value()->run();
}

}  // namespace lunwatch::cli
