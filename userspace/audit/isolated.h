#pragma once
// The posture audit run from `lunwatch run`, isolated from the agent's event
// loop: it reads files any local user or package may have written (nova.conf,
// multipath.conf, dpkg status, Python metadata), so it runs in a forked child
// with a deadline. A crash or hang there costs a finding (LW-AUDIT-CRASHED,
// LW-AUDIT-TIMEOUT), never the agent. poll() never blocks.
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "audit/audit.h"

namespace lunwatch::audit {

class IsolatedAudit {
 public:
  IsolatedAudit() = default;
  IsolatedAudit(const IsolatedAudit&) = delete;
  IsolatedAudit& operator=(const IsolatedAudit&) = delete;
  ~IsolatedAudit();

  // Forks the child (no-op while one runs). `fn` defaults to run_audit; tests
  // pass a function that crashes or hangs.
  using AuditFn = Report (*)(const AuditOptions&);
  bool start(const AuditOptions& options, std::chrono::milliseconds deadline, AuditFn fn = nullptr);
  bool running() const { return pid_ > 0; }
  // The findings (id and severity only) once the child is done; a synthetic
  // finding when it crashed, hung past the deadline or sent garbage.
  std::optional<Report> poll();

 private:
  Report finish(const std::string& failure);
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  std::chrono::steady_clock::time_point deadline_{};
};

}  // namespace lunwatch::audit
