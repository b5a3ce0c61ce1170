#pragma once
// The agent's pid file doubles as its single-instance lock: the running agent
// holds an exclusive flock on it for its whole life. A second agent is refused;
// `lunwatch dump now` signals only a pid whose file is locked and whose
// process is lunwatch (a stale file naming a reused pid is refused).
#include <sys/types.h>

#include <string>

#include "common/result.h"

namespace lunwatch {

// Creates (0644, O_NOFOLLOW) and locks path, writes our pid. The fd stays
// open (close-on-exec) until exit. Errc::kInvalidArgument when another agent
// holds it (its pid in the message).
Result<int> lock_pid_file(const std::string& path);

// The pid of the live lunwatch agent that holds path's lock.
Result<pid_t> running_agent_pid(const std::string& path);

}  // namespace lunwatch
