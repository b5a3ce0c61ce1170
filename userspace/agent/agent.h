#pragma once
// The live agent: kernel events, sysfs topology, SG_IO identities and
// attachment sources all become v1::Event values fed, in order, through one
// Pipeline (pipeline.h); its output is carried out by a Dispatcher
// (dispatcher.h); periodic work is a Timers table (timers.h); the guard's maps
// follow the policy through GuardSync (guard_sync.h). Single-threaded except
// for SG_IO workers, which never block the loop.
#include <memory>

#include "agent/options.h"
#include "common/result.h"

namespace lunwatch::agent {

class Agent {
 public:
  // Checks the settings, loads the probes, opens the sinks and the guard.
  // An error carries the Errc the command's exit status comes from
  // (kInvalidArgument: a bad setting; kIo: a file that cannot be opened;
  // the probes' own codes).
  static Result<std::unique_ptr<Agent>> make(const AgentOptions& options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Watches until SIGINT/SIGTERM or the configured duration; 0 on a clean stop.
  int run();

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lunwatch::agent
